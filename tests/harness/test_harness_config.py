"""harness/config.py: the targets file, `.env` substitution, validation, selection, emulator targets."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from emulator.state import build_store
from harness.config.targets import HarnessConfig, embedded_config, load_targets, parse_targets
from harness.config.urls import is_loopback_http
from emulator.targets import targets_document
from core.errors import ConfigError
from core.redact import REDACTOR
from core.sites import load_registry

ROOT = Path(__file__).resolve().parents[2]
VARS = ("HX_CLIENT_ID", "HX_CLIENT_SECRET", "HX_EMAIL", "HX_PASSWORD", "HX_EU_SECRET")
TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits, as authenticator apps get them (pyotp wants >= 112)

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
            "user": {"email": "${HX_EMAIL}", "password": "${HX_PASSWORD}", "totp_secret": TOTP},
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
    assert us1.user.totp_secret == TOTP
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
    for secret in ("dotenv-client-secret-111", "dotenv-password-222", "dotenv-eu-secret-333", TOTP):
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


PIN_A, PIN_B = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="


@pytest.mark.parametrize("pins", [f"{PIN_A},{PIN_B}", f"{PIN_A}, {PIN_B}", [PIN_A, PIN_B]],
                         ids=["comma-joined", "comma-space", "yaml-list"])
def test_chromium_spki_list_or_comma_joined(workdir, pins):
    data = base()
    data["network"]["chromium_spki"] = pins
    cfg = load(workdir, data)
    assert cfg.network.chromium_spki == (PIN_A, PIN_B)
    assert f"--ignore-certificate-errors-spki-list={PIN_A},{PIN_B}" in cfg.network.chromium_args()


@pytest.mark.parametrize("pins, fragment", [
    ([PIN_A, "not-a-hash"], "'not-a-hash' is not a base64 SHA-256"),
    ("c3BraQ==", "'c3BraQ==' is not a base64 SHA-256"),  # base64, but 4 bytes
    ({"a": PIN_A}, "must be a list (or a comma-joined string)"),
    ([PIN_A, 3], "must be a list (or a comma-joined string)"),
])
def test_chromium_spki_refused(workdir, pins, fragment):
    data = base()
    data["network"]["chromium_spki"] = pins
    config_error(workdir, data, "network.chromium_spki", fragment)


def test_redirect_uri_with_fragment(workdir):
    data = base()
    data["targets"][0]["redirect_uri"] = "https://integration.example.com/oauth/callback#done"
    config_error(workdir, data, "targets[US1-sandbox].redirect_uri", "fragment")


@pytest.mark.parametrize("secret", ["not base32!", "JBSW Y3DP EHPK 3PXP", "JBSWY3DPEHPK3PXP", 123456])
def test_unusable_totp_secret(workdir, secret):
    data = base()
    data["targets"][0]["user"]["totp_secret"] = secret
    message = config_error(workdir, data, "targets[US1-sandbox].user.totp_secret", "base32")
    assert str(secret) not in message  # a secret, even a broken one, is never shown


def test_empty_totp_secret_means_no_mfa(workdir):
    data = base()
    data["targets"][0]["user"]["totp_secret"] = ""
    assert not load(workdir, data).targets[0].user.totp_secret


# ---- the .env file ----------------------------------------------------------------------------------

def env_error(workdir: Path, *fragments: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_targets(write(workdir, base()), workdir / ".env")
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.startswith(f"{workdir / '.env'}: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize("line,number", [("HX_PASSWORD dotenv-password-222", 4), ('HX_PASSWORD="unterminated', 4),
                                         ("=no-name", 4), ("HX PASSWORD=x", 4)])
def test_malformed_dotenv_line_names_the_line(workdir, line, number):
    lines = DOTENV.splitlines()
    lines[3] = line
    (workdir / ".env").write_text("\n".join(lines) + "\n")
    message = env_error(workdir, f"line {number}", "NAME=value")
    assert "dotenv-password-222" not in message and "unterminated" not in message  # the line may hold a secret


def test_dotenv_comments_blank_lines_export_and_quotes_are_fine(workdir):
    (workdir / ".env").write_text("# secrets\n\n" + DOTENV.replace("HX_PASSWORD=dotenv-password-222",
                                                                   'export HX_PASSWORD="dotenv password 222"'))
    assert load(workdir, base()).targets[0].user.password == "dotenv password 222"


def test_unreadable_dotenv(workdir):
    (workdir / ".env").write_bytes(b"HX_PASSWORD=caf\xe9\n")
    env_error(workdir, "cannot read the env file", "UTF-8")
    (workdir / ".env").unlink()
    (workdir / ".env").mkdir()
    env_error(workdir, "cannot read the env file")


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

def emulator_targets(state: dict) -> list:
    """The embedded default: the emulator's targets document, parsed like a user's file."""
    return embedded_config(targets_document(state, "127.0.0.1:8443", __file__, PIN_A)).targets


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


# ---- end to end: a broken targets file or .env is a usage error before any test or browser ---------

ENV_FILE = "ENV"  # BadConfig.blames: the one ERROR line names the .env, not the targets file
ENV_IS_A_DIRECTORY = object()


@dataclass(frozen=True)
class BadConfig:
    fragment: str  # what the one ERROR line must say: the field (or line) at fault
    targets: str | None = None  # the targets file's text; None: the valid BASE
    dotenv: object = DOTENV  # the .env's text (or bytes, or ENV_IS_A_DIRECTORY)
    args: tuple[str, ...] = ()
    blames: str = "targets"


def changed(edit) -> str:
    """BASE with one change: edit(data, us1) mutates a deep copy (us1: its first target)."""
    data = base()
    edit(data, data["targets"][0])
    return yaml.safe_dump(data, sort_keys=False)


BAD_CONFIGS = {
    # the targets file
    "unknown-site": BadConfig("targets[US1-sandbox].site: unknown Datadog site 'ZZ9'",
                              changed(lambda d, t: t.update(site="ZZ9"))),
    "malformed-yaml": BadConfig("not valid YAML at line 4", "targets:\n  - name: a\n    site: US1\n   org: [\n"),
    "targets-is-a-mapping": BadConfig("'targets' must be a non-empty list",
                                      "targets:\n  US1-sandbox: {site: US1, org: Acme}\n"),
    "missing-required-field": BadConfig("targets[US1-sandbox].org is required", changed(lambda d, t: t.pop("org"))),
    "bad-target-name": BadConfig("targets[0].name 'US1 sandbox'", changed(lambda d, t: t.update(name="US1 sandbox"))),
    "duplicate-target-names": BadConfig("duplicate target name 'US1-sandbox'",
                                        changed(lambda d, t: d["targets"][1].update(name="US1-sandbox"))),
    "http-redirect-uri": BadConfig("targets[US1-sandbox].redirect_uri must be https",
                                   changed(lambda d, t: t.update(redirect_uri="http://integration.example.com/cb"))),
    "redirect-uri-fragment": BadConfig("targets[US1-sandbox].redirect_uri must not contain a fragment",
                                       changed(lambda d, t: t.update(redirect_uri="https://p.example/cb#x"))),
    "missing-client-secret": BadConfig("targets[US1-sandbox].client.secret is required",
                                       changed(lambda d, t: t["client"].pop("secret"))),
    "empty-scope-list": BadConfig("targets[US1-sandbox].client.scopes must be a non-empty list",
                                  changed(lambda d, t: t["client"].update(scopes=[]))),
    "unknown-client-kind": BadConfig("targets[US1-sandbox].client.kind must be 'test' or 'published'",
                                     changed(lambda d, t: t["client"].update(kind="internal"))),
    "user-without-password": BadConfig("targets[US1-sandbox].user needs a password or a storage_state",
                                       changed(lambda d, t: t["user"].pop("password"))),
    "unusable-totp-secret": BadConfig("targets[US1-sandbox].user.totp_secret is not a usable TOTP secret",
                                      changed(lambda d, t: t["user"].update(totp_secret="not base32!"))),
    "bad-network-host": BadConfig("network.hosts[api.datadoghq.com] must be ip:port",
                                  changed(lambda d, t: d["network"].update(hosts={"api.datadoghq.com": "localhost"}))),
    "missing-ca-bundle": BadConfig("network.ca_bundle 'corporate-ca.pem' does not exist",
                                   changed(lambda d, t: d["network"].update(ca_bundle="corporate-ca.pem"))),
    "network-key-typo": BadConfig("network.host: unknown key; did you mean 'hosts'?",
                                  changed(lambda d, t: d["network"].update(host=d["network"].pop("hosts")))),
    "unknown-target": BadConfig("--target 'EU9-nothing' is not a configured target", args=("--target", "EU9-nothing")),
    # the .env file (and the variables the targets file takes from it)
    "env-variable-absent": BadConfig("targets[0].client.secret: environment variable HX_CLIENT_SECRET is not set",
                                     dotenv=DOTENV.replace("HX_CLIENT_SECRET=dotenv-client-secret-111\n", "")),
    "env-variable-empty": BadConfig("targets[0].user.password: environment variable HX_PASSWORD is not set",
                                    dotenv=DOTENV.replace("HX_PASSWORD=dotenv-password-222", "HX_PASSWORD=")),
    "env-variable-absent-in-network": BadConfig(
        "network.hosts.*.datadoghq.eu: environment variable HX_EU_ADDRESS is not set",
        changed(lambda d, t: d["network"]["hosts"].update({"*.datadoghq.eu": "${HX_EU_ADDRESS}"}))),
    "env-malformed-line": BadConfig("line 3: not a NAME=value line", blames=ENV_FILE,
                                    dotenv=DOTENV.replace("HX_EMAIL=", "HX_EMAIL ")),
    "env-not-utf8": BadConfig("cannot read the env file (not UTF-8)", dotenv=DOTENV.encode() + b"X=caf\xe9\n",
                              blames=ENV_FILE),
    "env-is-a-directory": BadConfig("cannot read the env file", dotenv=ENV_IS_A_DIRECTORY, blames=ENV_FILE),
}

FAKE_CHROMIUM = """#!/bin/sh
# stands in for Chromium: a run that starts a browser leaves this marker behind
touch '{marker}'
exit 1
"""


def fake_chromium(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True)
    marker, script = directory / "browser-started", directory / "chromium"
    script.write_text(FAKE_CHROMIUM.format(marker=marker))
    script.chmod(0o755)
    return script, marker


def clean_environment(chromium: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in VARS and not k.startswith(("DDOAUTH_", "PYTEST_"))}
    env["DDOAUTH_CHROMIUM"] = str(chromium)
    return env


def run_suites(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "suites"), "-p", "no:cacheprovider",
                           "--reports-dir", str(cwd / "reports"), "--verdict-path", str(cwd / "verdict.json"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def prepare(case: BadConfig, workdir: Path) -> tuple[Path, Path]:
    workdir.mkdir(parents=True)
    (workdir / "ca.pem").write_text("not parsed at load time\n")
    targets = write(workdir, case.targets if case.targets is not None else yaml.safe_dump(base(), sort_keys=False))
    dotenv = workdir / ".env"
    if case.dotenv is ENV_IS_A_DIRECTORY:
        dotenv.mkdir()
    elif isinstance(case.dotenv, bytes):
        dotenv.write_bytes(case.dotenv)
    else:
        dotenv.write_text(case.dotenv)
    return targets, dotenv


def test_the_bad_config_table_is_broad():
    assert len(BAD_CONFIGS) >= 15
    assert sum(c.blames == ENV_FILE or "environment variable" in c.fragment for c in BAD_CONFIGS.values()) >= 5


def test_bad_config_is_a_usage_error_without_a_browser(tmp_path):
    """Every broken targets file or .env: exit 4 (pytest's usage error), exactly one `ERROR: <file>: ...` line
    naming the field, no traceback, nothing collected - and Chromium never started: DDOAUTH_CHROMIUM points at
    a stand-in that leaves a marker. A control run with a good config proves the stand-in is what gets started."""
    chromium, marker = fake_chromium(tmp_path / "browser")
    env = clean_environment(chromium)

    def one(item: tuple[str, BadConfig]):
        name, case = item
        targets, dotenv = prepare(case, tmp_path / name)
        proc = run_suites(["--targets", str(targets), "--env-file", str(dotenv), *case.args], tmp_path / name, env)
        return name, targets if case.blames == "targets" else dotenv, proc

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, BAD_CONFIGS.items()))
    elapsed = time.monotonic() - started
    problems = []
    for name, blamed, proc in results:
        text = proc.stdout + proc.stderr
        errors = [line for line in text.splitlines() if line.startswith("ERROR:")]
        if proc.returncode != 4:
            problems.append(f"{name}: exit {proc.returncode}, expected 4 (usage error)")
        elif len(errors) != 1:
            problems.append(f"{name}: {len(errors)} ERROR lines")
        elif not errors[0].startswith(f"ERROR: {blamed}: "):
            problems.append(f"{name}: the error does not start with the file at fault: {errors[0]}")
        elif BAD_CONFIGS[name].fragment not in errors[0]:
            problems.append(f"{name}: {BAD_CONFIGS[name].fragment!r} not in {errors[0]}")
        if "Traceback" in text:
            problems.append(f"{name}: a traceback")
        beyond_error = "\n".join(line for line in text.splitlines() if not line.startswith("ERROR:")).lower()
        if "chromium" in beyond_error or "playwright" in beyond_error or "collected" in text or "passed" in text:
            problems.append(f"{name}: got as far as tests or a browser:\n{text[-600:]}")
    assert not problems, "\n".join(problems)
    assert not marker.exists(), "a bad configuration started a browser"
    # loose: the machine may be busy (2 cores, other runs); each case is one pytest start-up (~1.5 s)
    assert elapsed < 240, f"{len(BAD_CONFIGS)} cases took {elapsed:.0f} s"

    # control: a good configuration does reach the browser, and the browser it starts is the stand-in
    control = tmp_path / "control"
    control.mkdir()
    proc = run_suites(["--target", "US1-sandbox", "-k", "test_consent_page_headers"], control, env)
    assert marker.exists(), f"the control run never started the stand-in Chromium:\n{(proc.stdout + proc.stderr)[-800:]}"


# ---- unknown keys: an error with a did-you-mean, never ignored ------------------------------------

@pytest.mark.parametrize("path, key, expected", [
    (("network",), "host", ["network.host: unknown key", "did you mean 'hosts'?"]),
    ((), "target", ["target: unknown key", "did you mean 'targets'?"]),
    (("targets", 0), "redirect_url", ["targets[US1-sandbox].redirect_url", "did you mean 'redirect_uri'?"]),
    (("targets", 0, "client"), "secrets", ["targets[US1-sandbox].client.secrets", "did you mean 'secret'?"]),
    (("targets", 0, "user"), "totp", ["targets[US1-sandbox].user.totp", "did you mean 'totp_secret'?"]),
    (("targets", 1, "client"), "zzz", ["targets[EU1-published].client.zzz: unknown key; known keys here: id, kind"]),
])
def test_unknown_key_is_an_error_with_a_did_you_mean(workdir, path, key, expected):
    data = base()
    node = data
    for part in path:
        node = node[part]
    node[key] = "anything"
    config_error(workdir, data, *expected)


def test_unknown_key_inside_integration_section(workdir):
    data = base()
    data["targets"][0]["integration"] = {"onboarding_url": "https://p.example/start",
                                         "redirect_uri": "https://p.example/cb", "success": {"txt": "Connected"}}
    config_error(workdir, data, "targets[US1-sandbox].integration.success.txt", "did you mean 'text'?")


def test_free_form_maps_take_any_key(workdir):
    data = base()
    data["network"]["hosts"]["my-proxy.internal"] = "127.0.0.1:9000"
    data["targets"][0]["integration"] = {"onboarding_url": "https://p.example/start", "redirect_uri": "https://p.example/cb",
                                         "success": {"text": "ok"}, "login": {"fields": {"Work e-mail": "a@b.c"}}}
    cfg = load(workdir, data)
    assert cfg.network.resolve("my-proxy.internal") == ("127.0.0.1", 9000)
    assert cfg.targets[0].integration.login.fields == (("Work e-mail", "a@b.c"),)


# ---- endpoints: OAuth paths a user can change -------------------------------------------------------

def test_endpoints_default_to_datadogs_documented_paths(workdir):
    target = load(workdir, base()).targets[0]
    assert (target.endpoints.authorize, target.endpoints.token, target.endpoints.revoke) == \
        ("/oauth2/v1/authorize", "/oauth2/v1/token", "/oauth2/v1/revoke")


def test_endpoints_set_in_the_file_reach_every_target_and_keep_the_others(workdir):
    data = base()
    data["endpoints"] = {"token": "/api/v2/oauth2/token"}
    targets = load(workdir, data).targets
    assert {t.endpoints.token for t in targets} == {"/api/v2/oauth2/token"}
    assert {t.endpoints.authorize for t in targets} == {"/oauth2/v1/authorize"}


@pytest.mark.parametrize("value", ["oauth2/v1/token", "https://api.datadoghq.com/oauth2/v1/token",
                                   "/oauth2/v1/token?x=1", "/oauth2/v1/token#f", "//evil.example/token",
                                   "/oauth2 token", 7, None])
def test_an_endpoint_that_is_not_a_path_is_refused(workdir, value):
    data = base()
    data["endpoints"] = {"revoke": value}
    config_error(workdir, data, "endpoints.revoke must be a path starting with '/'")


def test_an_unknown_endpoint_is_an_error_with_a_did_you_mean(workdir):
    data = base()
    data["endpoints"] = {"tokens": "/oauth2/v1/token"}
    config_error(workdir, data, "endpoints.tokens: unknown key", "did you mean 'token'?")
