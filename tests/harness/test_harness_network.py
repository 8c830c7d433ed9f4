"""harness/network.py: host mapping, Chromium flags, and a transport that keeps URL, Host and TLS name.

The TLS tests use a real local server: the emulator, whose certificate names every Datadog host
exactly (no wildcards), so a host no site owns must fail the name check.
"""
from __future__ import annotations

import ssl

import httpx
import pytest

from emulator.server import start
from core.errors import TargetUnavailable
from harness.http.exchange import DatadogHTTP
from core.network import MappedTransport, Network, make_client

WELL_KNOWN = "/api/v2/oauth2/.well-known/sites"


# ---- resolve -------------------------------------------------------------------------------------

def test_resolve_exact_and_case_insensitive():
    net = Network(host_map={"api.datadoghq.com": "127.0.0.1:8443"})
    assert net.resolve("api.datadoghq.com") == ("127.0.0.1", 8443)
    assert net.resolve("API.DatadogHQ.com") == ("127.0.0.1", 8443)
    assert net.resolve("app.datadoghq.com") is None
    assert Network().resolve("api.datadoghq.com") is None


def test_resolve_glob():
    net = Network(host_map={"*.datadoghq.eu": "10.0.0.1:443"})
    assert net.resolve("api.datadoghq.eu") == ("10.0.0.1", 443)
    assert net.resolve("http-intake.logs.datadoghq.eu") == ("10.0.0.1", 443)
    assert net.resolve("api.bigcorp.datadoghq.eu") == ("10.0.0.1", 443)  # mapped; the TLS name check refuses it
    assert net.resolve("datadoghq.eu") is None
    assert net.resolve("api.datadoghq.eu.evil.example") is None
    assert net.resolve("api.datadoghq.com") is None


def test_exact_beats_glob_regardless_of_order():
    net = Network(host_map={"*.datadoghq.com": "10.0.0.1:1", "api.datadoghq.com": "10.0.0.2:2"})
    assert net.resolve("api.datadoghq.com") == ("10.0.0.2", 2)
    assert net.resolve("app.datadoghq.com") == ("10.0.0.1", 1)


def test_resolve_ipv6():
    assert Network(host_map={"a.example": "[::1]:8443"}).resolve("a.example") == ("[::1]", 8443)


# ---- chromium flags ------------------------------------------------------------------------------

def test_chromium_args_order():
    net = Network(host_map={"*.datadoghq.eu": "127.0.0.1:1", "api.datadoghq.com": "127.0.0.1:2"},
                  chromium_spki="c3BraQ==")
    assert net.chromium_args(["MAP integration.example.com 127.0.0.1:3", "EXCLUDE localhost"]) == [
        "--host-resolver-rules=MAP integration.example.com 127.0.0.1:3,EXCLUDE localhost,"
        "MAP *.datadoghq.eu 127.0.0.1:1,MAP api.datadoghq.com 127.0.0.1:2",
        "--ignore-certificate-errors-spki-list=c3BraQ==",
    ]
    assert net.chromium_args() == [
        "--host-resolver-rules=MAP *.datadoghq.eu 127.0.0.1:1,MAP api.datadoghq.com 127.0.0.1:2",
        "--ignore-certificate-errors-spki-list=c3BraQ==",
    ]


def test_chromium_args_empty_network():
    assert Network().chromium_args() == []
    assert Network().chromium_args(["MAP a 1.2.3.4:5"]) == ["--host-resolver-rules=MAP a 1.2.3.4:5"]


def test_chromium_spki_is_a_list_or_a_comma_joined_string():
    assert Network(chromium_spki="a, b,").chromium_spki == ("a", "b")
    assert Network(chromium_spki=["a", "b"]).chromium_spki == ("a", "b")
    assert Network(chromium_spki="").chromium_spki is None
    assert Network(chromium_spki=["a", "b"]).chromium_args() == ["--ignore-certificate-errors-spki-list=a,b"]


def test_no_network_ignores_https_errors():
    # Chromium trusts network.ca_bundle through an NSS database (harness/browser/trust.py), never by
    # ignoring certificate errors
    assert not hasattr(Network, "chromium_ignores_https_errors")


# ---- a real TLS server -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    running = start(tmp_path_factory.mktemp("emulator"))
    yield running
    running.stop()


@pytest.fixture
def eu_client(emulator):
    net = Network(host_map={"*.datadoghq.eu": emulator.base_address}, ca_bundle=emulator.tls.ca_pem)
    with make_client(net) as client:
        yield client


def test_ssl_context_trusts_the_bundle(emulator):
    ctx = Network(ca_bundle=emulator.tls.ca_pem).ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert any("ddoauth emulator" in str(c.get("subject")) for c in ctx.get_ca_certs())


def test_mapped_request_keeps_url_and_host(eu_client):
    resp = eu_client.get(f"https://api.datadoghq.eu{WELL_KNOWN}")
    assert resp.status_code == 200, resp.text
    assert str(resp.request.url) == f"https://api.datadoghq.eu{WELL_KNOWN}"
    assert resp.request.headers["host"] == "api.datadoghq.eu"
    assert resp.json()  # the emulator routed it by Host to the EU1 API


def test_host_outside_the_certificate_fails_even_after_a_pooled_success(eu_client):
    assert eu_client.get(f"https://api.datadoghq.eu{WELL_KNOWN}").status_code == 200
    with pytest.raises(httpx.ConnectError) as info:
        eu_client.get("https://api.bigcorp.datadoghq.eu/")
    assert "hostname mismatch" in str(info.value).lower()
    # and the good host still works on the same client afterwards
    assert eu_client.get(f"https://api.datadoghq.eu{WELL_KNOWN}").status_code == 200


def test_separate_pool_per_host(emulator, eu_client):
    eu_client.get(f"https://api.datadoghq.eu{WELL_KNOWN}")
    eu_client.get(f"https://app.datadoghq.eu{WELL_KNOWN}")
    transport = eu_client._transport
    assert isinstance(transport, MappedTransport)
    assert set(transport._pools) == {"api.datadoghq.eu", "app.datadoghq.eu"}


def test_untrusted_ca_fails(emulator):
    net = Network(host_map={"*.datadoghq.eu": emulator.base_address})
    with make_client(net) as client, pytest.raises(httpx.ConnectError, match="(?i)certificate verify failed"):
        client.get(f"https://api.datadoghq.eu{WELL_KNOWN}")


def test_unmapped_host_goes_direct(emulator):
    # Only *.datadoghq.eu is mapped: any other host takes the direct path (no mapped pool).
    # No real network: the direct request goes to a closed local port.
    net = Network(host_map={"*.datadoghq.eu": emulator.base_address}, ca_bundle=emulator.tls.ca_pem)
    transport = MappedTransport(net)
    assert transport.network.resolve("api.datadoghq.com") is None
    with httpx.Client(transport=transport, timeout=5) as client, pytest.raises(httpx.ConnectError):
        client.get("https://127.0.0.1:1/")  # direct, nothing listens on port 1
    assert transport._pools == {}


def test_connect_failure_is_target_unavailable(emulator):
    net = Network(host_map={"*.datadoghq.eu": emulator.base_address}, ca_bundle=emulator.tls.ca_pem)
    http = DatadogHTTP(make_client(net))
    assert http.request("GET", f"https://api.datadoghq.eu{WELL_KNOWN}").status == 200
    with pytest.raises(TargetUnavailable, match="api.bigcorp.datadoghq.eu"):
        http.request("GET", "https://api.bigcorp.datadoghq.eu/api/v1/validate")
    assert http.count == 1
    http.client.close()
