"""harness/sites.py: the one registry of Datadog sites and hosts."""
from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.sites import load_registry, parse_registry

ALL = ["US1", "US3", "US5", "EU1", "AP1", "AP2", "UK1", "US1-FED", "US2-FED"]


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_nine_sites(registry):
    assert len(registry) == 9
    assert registry.keys() == ALL
    assert [s.key for s in registry] == ALL


def test_hosts_unique_across_sites(registry):
    hosts = registry.all_hosts()
    assert len(hosts) == len(set(hosts)) == 9 * 4
    domains = [s.domain for s in registry]
    assert len(domains) == len(set(domains))


def test_oauth_sites(registry):
    assert [s.key for s in registry.oauth_sites()] == ["US1", "US3", "US5", "EU1", "AP1"]


def test_environments(registry):
    assert {s.key for s in registry if s.environment == "gov"} == {"US1-FED", "US2-FED"}
    assert {s.environment for s in registry} == {"commercial", "gov"}


def test_urls(registry):
    us1, eu1, us3 = registry.get("US1"), registry.get("EU1"), registry.get("US3")
    assert us1.web_origin == "https://app.datadoghq.com" and eu1.api_origin == "https://api.datadoghq.eu"
    assert us3.web_origin == "https://us3.datadoghq.com" and us3.api_origin == "https://api.us3.datadoghq.com"
    for site in registry:
        assert site.api_host == f"api.{site.domain}"  # what the harness builds from a callback's domain
        assert site.hosts == (site.web_host, site.api_host, site.logs_intake_host, site.event_intake_host)


def test_get_is_case_insensitive(registry):
    assert registry.get("eu1").key == "EU1"
    assert registry.get("us1-fed").key == "US1-FED"


def test_unknown_site_lists_the_known_ones(registry):
    with pytest.raises(ConfigError) as info:
        registry.get("EU2")
    message = str(info.value)
    assert "'EU2'" in message and "\n" not in message
    for key in ALL:
        assert key in message


def test_by_domain(registry):
    assert registry.by_domain("datadoghq.eu").key == "EU1"
    assert registry.by_domain("datadoghq.com").key == "US1"
    assert registry.by_domain("us5.datadoghq.com").key == "US5"
    assert registry.by_domain("bigcorp.datadoghq.eu") is None
    assert registry.by_domain("example.com") is None


def test_by_host(registry):
    assert registry.by_host("api.datadoghq.eu").key == "EU1"
    assert registry.by_host("APP.DATADOGHQ.COM").key == "US1"
    assert registry.by_host("http-intake.logs.ap1.datadoghq.com:443").key == "AP1"
    assert registry.by_host("event-management-intake.us2.ddog-gov.com").key == "US2-FED"
    assert registry.by_host("api.bigcorp.datadoghq.eu") is None
    assert registry.by_host("datadoghq.eu") is None


def test_parse_registry_errors():
    with pytest.raises(ConfigError, match="'sites' mapping is missing"):
        parse_registry({"sites": []}, "x.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml: site ZZ1: missing api_host, oauth"):
        parse_registry({"sites": {"ZZ1": {"domain": "d", "web_host": "w", "logs_intake_host": "l",
                                          "environment": "commercial"}}}, "x.yaml")


def test_parse_registry_defaults_event_intake_host():
    reg = parse_registry({"sites": {"zz1": {"domain": "zz.example", "web_host": "app.zz.example",
                                            "api_host": "api.zz.example", "logs_intake_host": "logs.zz.example",
                                            "environment": "commercial", "oauth": True}}})
    site = reg.get("ZZ1")
    assert site.key == "ZZ1" and site.event_intake_host == "event-management-intake.zz.example"
