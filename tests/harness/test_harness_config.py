"""harness/config.py: the targets file, `.env` substitution, validation, selection, emulator targets."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from emulator.state import build_store
from harness.config import HarnessConfig, emulator_targets, is_loopback_http, load_targets, parse_targets
from harness.errors import ConfigError
from harness.redact import REDACTOR
from harness.sites import load_registry

ROOT = Path(__file__).resolve().parents[2]
VARS = ("HX_CLIENT_ID", "HX_CLIENT_SECRET", "HX_EMAIL", "HX_PASSWORD", "HX_EU_SECRET")

BASE = {
    "targets": [
        {
            "name": "US1-sandbox",
            "site": "us1",
            "org": "Acme Partner Sandbox",
            "client": {
                "id": "${HX_CLIENT_ID}",
                "secret": "${HX_CLIENT_SECRET}",
                "kind": "test",
                "scopes": ["dashboards_read", "metrics_read"],
            },
            "redirect_uri": "https://integration.example.com/oauth/callback",
            "user": {"email": "${HX_EMAIL}", "password": "${HX_PASSWORD}", "totp_secret": "JBSWY3DPEHPK3PXP"},
        },
        {
            "name": "EU1-published",
            "site": "EU1",
            "org": "Acme EU",
            "client": {"id": "published-id", "secret": "${HX_EU_SECRET}", "kind": "published",
                       "scopes": ["metrics_read"], "name": "Acme Observability"},
            "redirect_uri": "http://127.0.0.1:8765/oauth/callback",
            "user": {"email": "eu@partner.example", "storage_state": "state/eu.json"},
        },
    ],
    "network": {"hosts": {"*.datadoghq.eu": "127.0.0.1:8443", "api.datadoghq.com": "[::1]:9443"},
                "ca_bundle": "ca.pem"},
}

DOTENV = (
    "HX_CLIENT_ID=dotenv-client-id\n"
    "HX_CLIENT_SECRET=dotenv-client-secret-111\n"
    "HX_EMAIL=dev@partner.example\n"
    "HX_PASSWORD=dotenv-password-222\n"
    "HX_EU_SECRET=dotenv-eu-secret-333\n"
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "ca.pem").write_text("not parsed at load time\n")
    (tmp_path / ".env").write_text(DOTENV)
    return tmp_path


def write(workdir: Path, data, name: str = "targets.yaml") -> Path:
    path = workdir / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def base() -> dict:
    return copy.deepcopy(BASE)


def load(workdir: Path, data) -> HarnessConfig:
    return load_targets(write(workdir, data), workdir / ".env")


def config_error(workdir: Path, data, *fragments: str) -> str:
    path = write(workdir, data)
    with pytest.raises(ConfigError) as info:
        load_targets(path, workdir / ".env")
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# ---- a valid file ----------------------------------------------------------------------------

def test_valid_file_substitutes_from_dotenv(workdir):
    cfg = load(workdir, base())
    assert cfg.source == str(workdir / "targets.yaml")
    us1, eu1 = cfg.targets
    assert us1.name == "US1-sandbox" and us1.site.key == "US1" and us1.org == "Acme Partner Sandbox"
    assert us1.client.id == "dotenv-client-id"
    assert us1.client.secret == "dotenv-client-secret-111"
    assert us1.client.kind == "test" and us1.client.scopes == ("dashboards_read", "metrics_read")
    assert us1.user.email == "dev@partner.example" and us1.user.password == "dotenv-password-222"
    assert us1.user.totp_secret == "JBSWY3DPEHPK3PXP"
    assert us1.login_key == ("US1", "dev@partner.example")
    assert not us1.emulated
    assert eu1.site.key == "EU1" and eu1.client.kind == "published" and eu1.client.name == "Acme Observability"
    assert eu1.redirect_uri == "http://127.0.0.1:8765/oauth/callback"
    assert eu1.user.password is None and eu1.user.storage_state == workdir / "state" / "eu.json"
    # network: resolved relative to the targets file
    assert cfg.network.ca_bundle == workdir / "ca.pem"
    assert cfg.network.resolve("api.datadoghq.eu") == ("127.0.0.1", 8443)
    assert cfg.network.resolve("api.datadoghq.com") == ("[::1]", 9443)
    # every configured secret is known to the redactor
    for secret in ("dotenv-client-secret-111", "dotenv-password-222", "dotenv-eu-secret-333", "JBSWY3DPEHPK3PXP"):
        assert secret in REDACTOR


def test_environment_wins_over_dotenv(workdir, monkeypatch):
    monkeypatch.setenv("HX_CLIENT_SECRET", "environ-client-secret-999")
    cfg = load(workdir, base())
    assert cfg.targets[0].client.secret == "environ-client-secret-999"
    assert cfg.targets[0].client.id == "dotenv-client-id"  # the rest still from .env


def test_environment_alone_without_dotenv(workdir, monkeypatch):
    for name, value in (line.split("=", 1) for line in DOTENV.splitlines()):
        monkeypatch.setenv(name, "env-" + value)
    cfg = load_targets(write(workdir, base()), env_file=None)
    assert cfg.targets[0].client.secret == "env-dotenv-client-secret-111"
    cfg = load_targets(write(workdir, base()), env_file=workdir / "no-such.env")
    assert cfg.targets[0].user.password == "env-dotenv-password-222"


def test_substitution_inside_a_longer_string(workdir):
    data = base()
    data["targets"][0]["org"] = "Org of ${HX_EMAIL} (${HX_CLIENT_ID})"
    assert load(workdir, data).targets[0].org == "Org of dev@partner.example (dotenv-client-id)"


def test_parse_targets_directly():
    data = base()
    env = {name: f"direct-value-{i}" for i, name in enumerate(VARS)}
    data.pop("network")
    cfg = parse_targets(data, "inline.yaml", env)
    assert [t.name for t in cfg.targets] == ["US1-sandbox", "EU1-published"]
    assert cfg.targets[0].client.id == "direct-value-0"
    assert cfg.network.host_map == {} and cfg.network.ca_bundle is None


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8765/cb", "http://localhost/cb", "http://[::1]:9000/cb",
                                 "https://integration.example.com/cb"])
def test_loopback_http_and_https_redirects_allowed(workdir, uri):
    data = base()
    data["targets"][0]["redirect_uri"] = uri
    assert load(workdir, data).targets[0].redirect_uri == uri


def test_is_loopback_http():
    assert is_loopback_http("http://127.0.0.1/cb") and is_loopback_http("http://[::1]/cb")
    assert is_loopback_http("http://localhost:1/cb")
    assert not is_loopback_http("https://127.0.0.1/cb")
    assert not is_loopback_http("http://10.0.0.1/cb")
    assert not is_loopback_http("http://localhost.evil.com/cb")


# ---- validation: one line naming the file and the field --------------------------------------

def test_unknown_site(workdir):
    data = base()
    data["targets"][0]["site"] = "ZZ9"
    config_error(workdir, data, "targets[US1-sandbox].site", "'ZZ9'", "US1", "EU1")


def test_missing_variable_names_it(workdir):
    (workdir / ".env").write_text(DOTENV.replace("HX_CLIENT_SECRET=dotenv-client-secret-111\n", ""))
    config_error(workdir, base(), "HX_CLIENT_SECRET", "targets[0].client.secret")


def test_empty_variable_counts_as_missing(workdir):
    (workdir / ".env").write_text(DOTENV.replace("HX_PASSWORD=dotenv-password-222", "HX_PASSWORD="))
    config_error(workdir, base(), "HX_PASSWORD", "user.password")


def test_missing_variable_in_network_section(workdir):
    data = base()
    data["network"]["hosts"] = {"*.datadoghq.eu": "${HX_NOT_SET_ANYWHERE}"}
    config_error(workdir, data, "HX_NOT_SET_ANYWHERE", "network")


def test_malformed_yaml_names_the_line(workdir):
    text = "targets:\n  - name: a\n    site: US1\n   org: [unclosed\n"
    config_error(workdir, text, "not valid YAML", "line 4")


def test_unreadable_file(workdir):
    path = workdir / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load_targets(path, None)
    assert str(info.value).startswith(f"{path}: cannot read")


@pytest.mark.parametrize("data", ["", "targets: []\n", "targets: {}\n", "- just a list\n"])
def test_no_targets(workdir, data):
    config_error(workdir, data, "'targets' must be a non-empty list")


@pytest.mark.parametrize("uri", ["http://integration.example.com/cb", "http://10.1.2.3/cb", "ftp://example.com/cb",
                                 "https:///no-host", "integration.example.com/cb"])
def test_non_https_redirect(workdir, uri):
    data = base()
    data["targets"][0]["redirect_uri"] = uri
    config_error(workdir, data, "targets[US1-sandbox].redirect_uri", "https")


@pytest.mark.parametrize("scopes", [[], None, "dashboards_read", [""], [1]])
def test_empty_or_bad_scope_list(workdir, scopes):
    data = base()
    data["targets"][0]["client"]["scopes"] = scopes
    config_error(workdir, data, "targets[US1-sandbox].client.scopes")


def test_missing_scope_list(workdir):
    data = base()
    del data["targets"][0]["client"]["scopes"]
    config_error(workdir, data, "targets[US1-sandbox].client.scopes")


def test_bad_client_kind(workdir):
    data = base()
    data["targets"][0]["client"]["kind"] = "internal"
    config_error(workdir, data, "targets[US1-sandbox].client.kind", "'internal'")


def test_client_kind_defaults_to_test(workdir):
    data = base()
    del data["targets"][0]["client"]["kind"]
    assert load(workdir, data).targets[0].client.kind == "test"


def test_user_without_password_or_storage_state(workdir):
    data = base()
    del data["targets"][0]["user"]["password"]
    config_error(workdir, data, "targets[US1-sandbox].user", "password", "storage_state")


def test_user_not_a_mapping(workdir):
    data = base()
    data["targets"][0]["user"] = "dev@partner.example"
    config_error(workdir, data, "targets[US1-sandbox].user")


@pytest.mark.parametrize("field", ["name", "site", "org", "client", "redirect_uri", "user"])
def test_required_target_fields(workdir, field):
    data = base()
    del data["targets"][0][field]
    config_error(workdir, data, f".{field}")


@pytest.mark.parametrize("field", ["id", "secret"])
def test_required_client_fields(workdir, field):
    data = base()
    del data["targets"][0]["client"][field]
    config_error(workdir, data, f"targets[US1-sandbox].client.{field} is required")


def test_required_user_email(workdir):
    data = base()
    del data["targets"][0]["user"]["email"]
    config_error(workdir, data, "targets[US1-sandbox].user.email is required")


def test_bad_target_name(workdir):
    data = base()
    data["targets"][0]["name"] = "US1 sandbox"
    config_error(workdir, data, "targets[0].name", "'US1 sandbox'")


def test_duplicate_target_names(workdir):
    data = base()
    data["targets"][1]["name"] = "US1-sandbox"
    config_error(workdir, data, "duplicate target name", "'US1-sandbox'")


@pytest.mark.parametrize("addr", ["localhost:8443", "::1", "10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:70000",
                                  "beef:80", "999.1.1.1:443", "::1:8443", "10.0.0.1:https"])
def test_bad_network_host_address(workdir, addr):
    data = base()
    data["network"]["hosts"] = {"api.datadoghq.com": addr}
    config_error(workdir, data, "network.hosts[api.datadoghq.com]", "ip:port")


@pytest.mark.parametrize("addr", ["10.0.0.5:443", "127.0.0.1:1", "[::1]:8443", "[2001:db8::1]:65535"])
def test_good_network_host_address(workdir, addr):
    data = base()
    data["network"]["hosts"] = {"api.datadoghq.com": addr}
    assert load(workdir, data).network.host_map == {"api.datadoghq.com": addr}


@pytest.mark.parametrize("network", [["a"], {"hosts": ["api.datadoghq.com"]}])
def test_network_shape(workdir, network):
    data = base()
    data["network"] = network
    config_error(workdir, data, "network")


def test_missing_ca_bundle(workdir):
    data = base()
    data["network"]["ca_bundle"] = "corporate-ca.pem"
    config_error(workdir, data, "network.ca_bundle", "corporate-ca.pem")


# ---- selection -----------------------------------------------------------------------------------

def test_select(workdir):
    cfg = load(workdir, base())
    assert [t.name for t in cfg.select()] == ["US1-sandbox", "EU1-published"]
    assert [t.name for t in cfg.select(["EU1-published"])] == ["EU1-published"]
    assert [t.name for t in cfg.select(None, ["eu1"])] == ["EU1-published"]
    assert [t.name for t in cfg.select(["US1-sandbox", "EU1-published"], ["US1"])] == ["US1-sandbox"]
    assert cfg.select(["US1-sandbox"], ["EU1"]) == []


def test_select_unknown_target_name(workdir):
    cfg = load(workdir, base())
    with pytest.raises(ConfigError) as info:
        cfg.select(["EU1-sandbox"])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{cfg.source}: --target 'EU1-sandbox'")
    assert "EU1-published" in message and "US1-sandbox" in message


# ---- the embedded emulator's targets ---------------------------------------------------------------

def test_emulator_targets():
    state = build_store().snapshot()
    targets = emulator_targets(state)
    names = [t.name for t in targets]
    assert len(names) == len(set(names))
    oauth_keys = [s.key for s in load_registry().oauth_sites()]
    assert sorted(names) == sorted([f"{k}-sandbox" for k in oauth_keys] + ["US1-published", "EU1-published"])
    for t in targets:
        s = state["sites"][t.site.key]
        assert t.emulated and t.site.oauth
        sandbox = next(o for o in s["orgs"] if o["key"] == "sandbox")
        assert (t.org, t.org_id) == (sandbox["name"], sandbox["id"])
        client = next(c for c in s["clients"] if c["id"] == t.client.id and c["kind"] == t.client.kind)
        assert t.client.secret == client["secret"] and t.client.scopes == tuple(client["scopes"])
        assert t.redirect_uri in client["redirect_uris"] and t.redirect_uri.startswith("https://")
        assert t.name.endswith("-sandbox") == (t.client.kind == "test")
        assert t.client.secret in REDACTOR
        assert t.user.password in REDACTOR
        if t.user.totp_secret:
            assert t.user.totp_secret in REDACTOR
    # every user kind is exercised somewhere
    by_name = {t.name: t for t in targets}
    assert by_name["EU1-sandbox"].user.totp_secret
    assert len({t.user.email for t in targets}) >= 3


def test_emulator_targets_in_a_config():
    cfg = HarnessConfig(targets=emulator_targets(build_store().snapshot()), emulated=True)
    assert [t.name for t in cfg.select(None, ["EU1"])] == ["EU1-sandbox", "EU1-published"]


# ---- end to end: a bad targets file is a usage error before any test or browser -------------------

BAD_FILES = {
    "unknown-site": ("targets:\n  - name: a\n    site: ZZ9\n", "targets[a].site"),
    # (a missing ${VAR} is covered in-process above; three subprocesses keep this test cheap)
    "malformed": ("targets:\n  - name: a\n    site: US1\n   org: [\n", "line 4"),
    "http-redirect": (yaml.safe_dump({"targets": [{**BASE["targets"][1], "name": "a", "client": {
        "id": "i", "secret": "literal-secret", "scopes": ["metrics_read"]},
        "redirect_uri": "http://example.com/cb"}]}), "targets[a].redirect_uri"),
}


def test_bad_targets_file_is_a_usage_error(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in VARS and not k.startswith(("DDOAUTH_", "PYTEST_"))}
    started = time.monotonic()
    procs = {}
    for name, (text, _) in BAD_FILES.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        procs[name] = (path, subprocess.Popen(
            [sys.executable, "-m", "pytest", "suites", "--targets", str(path), "--env-file", str(tmp_path / "none.env"),
             "-p", "no:cacheprovider"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for name, (path, proc) in procs.items():
        out, err = proc.communicate(timeout=60)
        text = out + err
        assert proc.returncode == 4, f"{name}: exit {proc.returncode}\n{text}"
        errors = [line for line in text.splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1, f"{name}: {text}"
        assert errors[0].startswith(f"ERROR: {path}: "), errors[0]
        assert BAD_FILES[name][1] in errors[0]
        assert "Traceback" not in text
        assert "chromium" not in text.lower() and "playwright" not in text.lower()
        assert "passed" not in text and "collected" not in text
    # loose: the machine may be busy; the real proof of "no browser" is the output above
    assert time.monotonic() - started < 60
