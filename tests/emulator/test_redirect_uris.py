"""Bring your own redirect URI (issue 14): a client's redirect URIs from the seed (each client's own list and
the seed's `redirect_uris` section), through the control API (`GET|POST /_emulator/clients/<id>/redirect-uris`),
and `ddoauth-emulator --partner-host HOST --partner-port PORT`, which registers a partner app's redirect URI,
issues its certificate and writes its env file and an integration-mode targets file."""
from __future__ import annotations

import stat
from argparse import Namespace
from pathlib import Path

import pytest
import yaml
from emukit import authorize, redeem

from core.errors import ConfigError
from emulator import cli
from emulator.server import start
from emulator.state import Store, load_seed, redirect_uri_problem
from emulator.targets import PartnerApp, check_partner_host, partner_targets_document
from harness.config.targets import load_targets

NEW = "https://app.second-partner.test/auth/datadog/return"


def uris(emu, client_id):
    return emu.control("GET", f"clients/{client_id}/redirect-uris")


def change(emu, client_id, body):
    return emu.control("POST", f"clients/{client_id}/redirect-uris", body)


def one_line_400(resp, fragment: str) -> str:
    assert resp.status_code == 400, (resp.status_code, resp.text)
    (message,) = resp.json()["errors"]
    assert "\n" not in message and fragment in message, message
    return message


# ---- control API ------------------------------------------------------------------------------------

def test_get_lists_the_seeded_redirect_uris(emu):
    c = emu.client("EU1", "test")
    resp = uris(emu, c.id)
    assert resp.status_code == 200
    assert resp.json() == {"client_id": c.id, "redirect_uris": c.redirect_uris}
    assert "https://integration.example.com/oauth/callback" in resp.json()["redirect_uris"]


def test_added_uri_is_accepted_at_authorize_and_token(emu):
    c = emu.client("EU1", "test")
    before = authorize(emu, site="EU1", redirect_uri=NEW)
    assert before.response.status_code == 400 and "Mismatching redirect URI" in before.response.text
    resp = change(emu, c.id, {"add": [NEW]})
    assert resp.status_code == 200 and resp.json()["redirect_uris"][-1] == NEW
    flow = authorize(emu, site="EU1", redirect_uri=NEW)
    assert flow.response.status_code == 302 and flow.location.startswith(NEW + "?")
    assert redeem(emu, flow).status_code == 200
    # exact match still: a prefix or another path of the same host is refused
    assert authorize(emu, site="EU1", redirect_uri=NEW + "/x").response.status_code == 400


def test_published_client_changes_on_every_site(emu):
    pub = emu.client("US1", "published")
    assert change(emu, pub.id, {"add": [NEW]}).status_code == 200
    sites = {c.site for c in emu.store.clients.values() if c.id == pub.id and NEW in c.redirect_uris}
    assert sites == {c.site for c in emu.store.clients.values() if c.id == pub.id} and len(sites) == 9
    # a test client's id is its site's only
    test_eu = emu.client("EU1", "test")
    change(emu, test_eu.id, {"add": [NEW]})
    assert NEW not in emu.client("US1", "test").redirect_uris


def test_add_is_idempotent_and_remove_drops(emu):
    c = emu.client("EU1", "test")
    n = len(c.redirect_uris)
    change(emu, c.id, {"add": [NEW, NEW]})
    assert change(emu, c.id, {"add": [NEW]}).json()["redirect_uris"].count(NEW) == 1
    assert len(c.redirect_uris) == n + 1
    after = change(emu, c.id, {"remove": [NEW]}).json()["redirect_uris"]
    assert NEW not in after and len(after) == n
    assert authorize(emu, site="EU1", redirect_uri=NEW).response.status_code == 400


def test_loopback_http_is_allowed(emu):
    c = emu.client("EU1", "test")
    for uri in ("http://127.0.0.1:9000/cb", "http://localhost:9000/cb", "http://[::1]:9000/cb"):
        assert change(emu, c.id, {"add": [uri]}).status_code == 200, uri


@pytest.mark.parametrize("body, fragment", [
    ({"add": ["http://app.second-partner.test/cb"]}, "must be https (plain http only on a loopback address)"),
    ({"add": [NEW + "#frag"]}, "must not contain a fragment"),
    ({"add": ["/oauth/callback"]}, "must be an absolute https URL"),
    ({"add": ["ftp://app.second-partner.test/cb"]}, "must be an absolute https URL"),
    ({"add": ["https://user:pw@app.second-partner.test/cb"]}, "must not carry a user name or password"),
    ({"add": ["https://app.second-partner.test/a b"]}, "holds whitespace"),
    ({"add": ["https://app.second-partner.test:99999/cb"]}, "invalid port"),
    ({"add": [""]}, "non-empty string"),
    ({"add": NEW}, "add must be a list of redirect URIs"),
    ({"add": [3]}, "add must be a list of redirect URIs"),
    ({"remove": "x"}, "remove must be a list"),
    ({"uris": [NEW]}, "unknown key 'uris'"),
    ({}, "nothing to change"),
])
def test_bad_requests_are_one_line_400s_and_change_nothing(emu, body, fragment):
    c = emu.client("EU1", "test")
    before = list(c.redirect_uris)
    one_line_400(change(emu, c.id, body), fragment)
    assert c.redirect_uris == before


def test_a_client_keeps_one_redirect_uri(emu):
    c = emu.client("EU1", "test")
    one_line_400(change(emu, c.id, {"remove": list(c.redirect_uris)}), "at least one redirect URI")
    assert c.redirect_uris


def test_body_must_be_a_json_object(emu):
    c = emu.client("EU1", "test")
    resp = emu.post(f"https://api.datadoghq.com/_emulator/clients/{c.id}/redirect-uris", json=[NEW])
    one_line_400(resp, "JSON object")


def test_unknown_client_is_404(emu):
    assert uris(emu, "nope").status_code == 404
    assert change(emu, "nope", {"add": [NEW]}).status_code == 404
    assert emu.control("DELETE", f"clients/{emu.client('EU1').id}/redirect-uris").status_code == 404


def test_reset_returns_to_the_seed(emu):
    c = emu.client("EU1", "test")
    change(emu, c.id, {"add": [NEW]})
    emu.control("POST", "reset")
    assert NEW not in emu.client("EU1", "test").redirect_uris


# ---- seed -------------------------------------------------------------------------------------------

def write_seed(tmp_path, seed) -> Path:
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed))
    return path


def test_seed_redirect_uris_section_adds_to_every_site(tmp_path, emu):
    seed = load_seed()
    seed["redirect_uris"] = {"published": [NEW]}
    store = Store(emu.store.registry, load_seed(write_seed(tmp_path, seed)))
    pubs = [c for c in store.clients.values() if c.key == "published"]
    assert len(pubs) == 9 and all(c.redirect_uris == ["https://integration.example.com/oauth/callback", NEW]
                                  for c in pubs)
    assert all(NEW not in c.redirect_uris for c in store.clients.values() if c.key == "test")
    store.reset()
    assert all(NEW in c.redirect_uris for c in store.clients.values() if c.key == "published")


@pytest.mark.parametrize("change_seed, fragment", [
    (lambda s: s.__setitem__("redirect_uris", {"nope": [NEW]}), "redirect_uris: unknown client 'nope'"),
    (lambda s: s.__setitem__("redirect_uris", [NEW]), "'redirect_uris' must map client keys"),
    (lambda s: s.__setitem__("redirect_uris", {"published": NEW}), "redirect_uris.published must be a list"),
    (lambda s: s.__setitem__("redirect_uris", {"published": ["http://x.test/cb"]}), "must be https"),
    (lambda s: s["clients"][0].__setitem__("redirect_uris", ["https://a.test/cb#x"]), "client test: redirect_uris"),
    (lambda s: s["clients"][0].__setitem__("redirect_uris", []), "at least one redirect URI"),
])
def test_seed_redirect_uris_are_checked(tmp_path, change_seed, fragment):
    seed = load_seed()
    change_seed(seed)
    path = write_seed(tmp_path, seed)
    with pytest.raises(ConfigError) as err:
        load_seed(path)
    assert str(path) in str(err.value) and fragment in str(err.value) and "\n" not in str(err.value)


def test_store_seed_redirect_uris_survive_reset(emu):
    emu.store.seed_redirect_uris("published", [NEW])
    emu.control("POST", "reset")
    assert all(NEW in c.redirect_uris for c in emu.store.clients.values() if c.key == "published")
    with pytest.raises(ConfigError, match="no seed client 'nope'"):
        emu.store.seed_redirect_uris("nope", [NEW])
    with pytest.raises(ConfigError, match="must be https"):
        emu.store.seed_redirect_uris("published", ["http://a.test/cb"])


def test_redirect_uri_problem_accepts_what_datadog_accepts():
    assert redirect_uri_problem(NEW) is None
    assert redirect_uri_problem("https://app.second-partner.test:9443/cb?x=1") is None
    assert redirect_uri_problem("http://127.0.0.1/cb") is None
    assert redirect_uri_problem("http://10.0.0.1/cb")


# ---- ddoauth-emulator --partner-host ----------------------------------------------------------------

def options(**kw) -> Namespace:
    base = dict(partner_host="app.second-partner.test", partner_port=9443, partner_address="127.0.0.1",
                partner_onboarding_path="/connect/datadog", partner_redirect_path="/auth/datadog/return",
                partner_client="published", partner_ca=None, partner_config=None, partner_targets=None)
    base.update(kw)
    return Namespace(**base)


@pytest.mark.parametrize("argv, fragment", [
    (["--partner-host", "app.second-partner.test"], "--partner-host needs --partner-port"),
    (["--partner-port", "9443"], "--partner-port needs --partner-host"),
    (["--partner-host", "api.datadoghq.eu", "--partner-port", "9443"], "a name the emulator serves itself"),
    (["--partner-host", "integration.example.com", "--partner-port", "9443"], "a name the emulator serves itself"),
    (["--partner-host", "https://app.test", "--partner-port", "9443"], "is not a hostname"),
    (["--partner-host", "app.test", "--partner-port", "70000"], "--partner-port (1-65535)"),
    (["--partner-host", "app.test", "--partner-port", "9443", "--partner-redirect-path", "cb"],
     "--partner-redirect-path 'cb' must be a path"),
    (["--partner-host", "app.test", "--partner-port", "9443", "--partner-onboarding-path", "/a#b"],
     "--partner-onboarding-path"),
    (["--partner-host", "app.test", "--partner-port", "9443", "--partner-ca", "/nonexistent.pem"],
     "not a readable PEM file"),
])
def test_cli_refuses_bad_partner_options_in_one_line_before_starting(tmp_path, capsys, argv, fragment):
    rc = cli.main(["--port", "0", "--state-dir", str(tmp_path / "state"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("ddoauth-emulator: ") and fragment in err and "\n" not in err, err
    assert not (tmp_path / "state").exists()  # nothing started, nothing written


def test_cli_refuses_unknown_partner_config_keys(tmp_path, capsys):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("success: {text: Linked}\nredirect_uri: https://x.test/cb\n")
    rc = cli.main(["--port", "0", "--state-dir", str(tmp_path / "state"), "--partner-host", "app.test",
                   "--partner-port", "9443", "--partner-config", str(cfg)])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown key 'redirect_uri' (set by --partner-onboarding-path / --partner-redirect-path)" in err


def test_check_partner_host_normalises():
    assert check_partner_host("App.Second-Partner.test.") == "app.second-partner.test"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    state = tmp_path_factory.mktemp("emu")
    r = start(state)
    yield r, state
    r.stop()


def test_setup_partner_writes_what_the_app_and_the_harness_need(running, tmp_path):
    emu, state = running
    config = {"success": {"url": r"^https://app\.second-partner\.test/done", "text": "Datadog is linked"},
              "failure": {"text": "Datadog link failed"},
              "login": {"fields": {"Work email": "ops@northwind.test", "Passphrase": "pw-123"}, "submit": "^Log me in$"}}
    partner, _, ca = cli.partner_options(options())
    out = cli.setup_partner(emu, state, partner, config, ca, tmp_path / "partner-targets.yaml")
    pdir = state / "partner"
    # the redirect URI on the partner's client, every site, kept across a reset
    pubs = [c for c in emu.store.clients.values() if c.key == "published"]
    assert all(partner.redirect_uri in c.redirect_uris for c in pubs)
    # private files 0600; the env file names the client and where Datadog is
    for name in ("key.pem", "partner.env"):
        assert stat.S_IMODE((pdir / name).stat().st_mode) == 0o600, name
    env = dict(line.split("=", 1) for line in (pdir / "partner.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["DD_CLIENT_ID"] == pubs[0].id and env["DD_CLIENT_SECRET"] == pubs[0].secret
    assert env["DD_REDIRECT_URI"] == "https://app.second-partner.test/auth/datadog/return"
    assert env["DATADOG_ADDRESS"] == emu.base_address and Path(env["DATADOG_CA"]).is_file()
    assert Path(env["PARTNER_TLS_CERT"]).is_file() and Path(env["PARTNER_TLS_KEY"]).is_file()
    # the CA bundle holds the emulator's CA and the partner's
    assert (pdir / "ca-bundle.pem").read_text().count("BEGIN CERTIFICATE") == 2
    # what is printed names files, never the secret
    assert pubs[0].secret not in repr(out) and out["integration_section"] == "complete"
    # the targets file loads as the harness loads it
    text = (tmp_path / "partner-targets.yaml").read_text()
    assert stat.S_IMODE((tmp_path / "partner-targets.yaml").stat().st_mode) == 0o600
    assert "integration: &partner" in text and "integration: *partner" in text and "FILL IN" not in text
    loaded = load_targets(tmp_path / "partner-targets.yaml", env_file=None)
    assert loaded.network.resolve("app.second-partner.test") == ("127.0.0.1", 9443)
    assert loaded.network.resolve("api.datadoghq.eu") == tuple(emu.base_address.split(":")[:1]) + (emu.port,)
    assert loaded.network.chromium_spki and len(loaded.network.chromium_spki) == 2  # a YAML list
    with_integration = [t for t in loaded.targets if t.integration]
    assert {t.site.key for t in with_integration} == {"US1", "US3", "US5", "EU1", "AP1"}
    integ = with_integration[0].integration
    assert integ.onboarding_url == "https://app.second-partner.test/connect/datadog"
    assert integ.redirect_uri == partner.redirect_uri and integ.client_ids == (pubs[0].id,)
    assert integ.success_text == "Datadog is linked" and integ.login.fields[0] == ("Work email", "ops@northwind.test")
    emu.store.reset()
    assert all(partner.redirect_uri in c.redirect_uris for c in emu.store.clients.values() if c.key == "published")


def test_targets_file_without_partner_config_says_what_to_fill_in(running, tmp_path):
    emu, state = running
    partner, _, _ = cli.partner_options(options(partner_host="staging.example-partner.test"))
    out = cli.setup_partner(emu, state, partner, {}, None, tmp_path / "t.yaml")
    text = (tmp_path / "t.yaml").read_text()
    assert out["integration_section"].startswith("FILL IN")
    assert text.count("FILL IN") >= 2 and "success:" in text.split("emulator_control_url")[0]
    with pytest.raises(ConfigError, match=r"integration\.success needs a url"):
        load_targets(tmp_path / "t.yaml", env_file=None)


def test_partner_with_its_own_ca(running, tmp_path):
    import trustme
    emu, state = running
    own = trustme.CA(organization_name="partner's own CA")
    own.cert_pem.write_to_path(str(tmp_path / "own-ca.pem"))
    partner, _, ca = cli.partner_options(options(partner_ca=str(tmp_path / "own-ca.pem")))
    out = cli.setup_partner(emu, state, partner, {"success": {"text": "ok"}}, ca, tmp_path / "t.yaml")
    assert "cert" not in out  # no certificate issued: the partner has its own
    assert own.cert_pem.bytes().decode().strip() in Path(out["ca_bundle"]).read_text()
    doc = yaml.safe_load((tmp_path / "t.yaml").read_text())
    assert doc["network"]["chromium_spki"] == [emu.tls.spki_sha256]


def test_partner_document_keeps_the_reference_app_out(running):
    emu, _ = running
    doc = partner_targets_document(emu.store.snapshot(), emu.base_address, "/ca.pem",
                                   PartnerApp("app.x.test", "127.0.0.1:1"))
    assert "integration.example.com" not in doc["network"]["hosts"]
    sections = [t["integration"] for t in doc["targets"] if "integration" in t]
    assert sections and all(s is sections[0] for s in sections)  # one section, shared
    assert all(t["client"]["kind"] == "test" for t in doc["targets"] if "integration" in t)
