"""The reference partner app ("Acme Observability" on integration.example.com): its login, its
onboarding URL, its callback (token exchange, API key, first metric on the callback's region), its
pages and its switchable defects; the control API's view of it; and one run over real sockets and
TLS proving its outbound calls reach the emulator the way a partner's server reaches Datadog."""
from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import trustme

from emukit import Emu, authorize, redeem, revoke, s256
from emulator.behaviour import DEFECTS
from emulator.partner import DNSLikeTransport
from emulator.server import AsyncMappedTransport, start
from emulator.state import load_seed
from core.errors import ConfigError
from core.network import Network, make_client
from partnerkit import (DEFECT_CHECKS, PARTNER, PARTNER_USER, AsgiAgent, PartnerPage, SyncAgent, Trail, connect,
                        installations, partner_login, query, start_url, token_requests, walk, with_query)

OAUTH_SITES = ["US1", "US3", "US5", "EU1", "AP1"]
KEY_PREFIX = "Acme Observability OAuth Client API Key "


@pytest.fixture
def agent(emu):
    return AsgiAgent(emu)


@pytest.fixture
def signed_in(emu):
    a = AsgiAgent(emu)
    assert partner_login(a).status_code == 302
    return a


def published(emu, site="EU1"):
    return emu.client(site, "published")


def secrets_of(emu) -> set[str]:
    """Every value no partner page may show: client secrets, codes, tokens, API key values."""
    store = emu.store
    out = {c.secret for c in store.clients.values()} | set(store.codes) | set(store.access_tokens)
    out |= set(store.refresh_tokens) | {k.key for k in store.api_keys.values()}
    out |= {i.api_key for i in emu.app.partner.installations.values()}
    return {s for s in out if s}


def assert_no_secrets(emu, *texts: str) -> None:
    for secret in secrets_of(emu):
        for text in texts:
            assert secret not in text


def partner_texts(trail: Trail) -> list[str]:
    return [trail.response.text] + [p.body_text for u, p in trail.pages if u.startswith(PARTNER)]


def connected(trail: Trail) -> bool:
    return trail.response.status_code == 200 and trail.page.h1 == "Connected to Datadog"


def keys_in(emu, site: str, org_id: str) -> list:
    return [k for k in emu.store.api_keys.values() if k.site == site and k.org_id == org_id]


def metrics_in(emu, site: str, org_id: str) -> list[dict]:
    return [m for m in emu.store.metrics if m["site"] == site and m["org_id"] == org_id
            and m["metric"] == "acme.integration.installed"]


def failure(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    page = PartnerPage(resp.text)
    assert page.h1 == "Could not connect to Datadog" and resp.headers["cache-control"] == "no-store"
    assert len(page.alerts) == 1
    return page.alerts[0]


# ---- partner login ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/datadog/start?site=https%3A%2F%2Fapp.datadoghq.eu&domain=datadoghq.eu",
                                  "/oauth/callback?code=abc&state=xyz&domain=datadoghq.eu",
                                  "/datadog/connected?install=1"])
def test_every_page_needs_a_partner_session(emu, agent, path):
    resp = agent.get(PARTNER + path)
    assert resp.status_code == 302 and resp.headers["cache-control"] == "no-store"
    location = resp.headers["location"]
    assert location.startswith("/login?") and query(location) == {"next": path}
    assert token_requests(emu.store) == []


def test_login_page(agent):
    resp = agent.get(PARTNER + "/login?next=/datadog/start")
    page = PartnerPage(resp.text)
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    assert page.title == "Acme Observability · Sign in" and page.h1 == "Sign in to Acme Observability"
    assert page.labels == ["Email", "Password"]
    assert "<label for=email>" in resp.text and "id=email" in resp.text and "<label for=password>" in resp.text
    form = page.forms[0]
    assert form.method == "post" and form.action == "/login" and form.fields["next"] == "/datadog/start"
    assert form.button("Sign in")


@pytest.mark.parametrize("email,password", [(PARTNER_USER[0], "wrong"), ("nobody@acme.example", PARTNER_USER[1]),
                                            ("", "")])
def test_wrong_login_is_401(agent, email, password):
    resp = partner_login(agent, email, password, "/datadog/start")
    page = PartnerPage(resp.text)
    assert resp.status_code == 401 and page.alerts == ["Wrong email or password"]
    assert page.h1 == "Sign in to Acme Observability" and page.forms[0].fields["next"] == "/datadog/start"
    assert "set-cookie" not in resp.headers


def test_login_sets_a_strict_cookie_and_follows_next(agent):
    nxt = "/datadog/start?domain=datadoghq.eu"
    resp = partner_login(agent, PARTNER_USER[0].upper(), next_path=nxt)
    assert resp.status_code == 302 and resp.headers["location"] == nxt
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("acme_session=")
    attrs = {a.strip().lower() for a in cookie.split(";")}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= attrs
    assert agent.get(PARTNER + nxt).status_code == 302  # to Datadog now, not to the login


@pytest.mark.parametrize("nxt", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "",
                                 "javascript:alert(1)"])
def test_login_next_stays_on_the_partner(agent, nxt):
    assert partner_login(agent, next_path=nxt).headers["location"] == "/"


def test_a_new_session_at_every_login(emu, agent):
    partner_login(agent)
    first = agent.http.cookies["acme_session"]
    partner_login(agent)
    assert agent.http.cookies["acme_session"] != first
    assert list(emu.app.partner.sessions) == [agent.http.cookies["acme_session"]]


def test_home_links_to_the_onboarding_url(signed_in):
    resp = signed_in.get(PARTNER + "/")
    page = PartnerPage(resp.text)
    assert resp.status_code == 200 and page.h1 == "Acme Observability"
    assert ("/datadog/start", "Connect Datadog") in page.links


# ---- the onboarding URL ----------------------------------------------------------------------------

def _authorize_location(resp: httpx.Response) -> tuple[str, dict]:
    assert resp.status_code == 302, resp.text[:300]
    loc = resp.headers["location"]
    parts = urlsplit(loc)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query(loc)


@pytest.mark.parametrize("form", ["origin", "host"])
@pytest.mark.parametrize("key", OAUTH_SITES)
def test_start_goes_to_the_site_authorize_endpoint(emu, signed_in, key, form):
    site = emu.site(key)
    resp = signed_in.get(start_url(site.web_origin if form == "origin" else site.web_host, site.domain))
    where, q = _authorize_location(resp)
    assert where == f"{site.web_origin}/oauth2/v1/authorize"
    assert set(q) == {"response_type", "client_id", "redirect_uri", "state", "code_challenge",
                      "code_challenge_method"}  # no scope: Datadog assigns the client's scopes
    assert q["response_type"] == "code" and q["client_id"] == published(emu, key).id
    assert q["redirect_uri"] == "https://integration.example.com/oauth/callback"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 32
    pending = next(iter(emu.app.partner.sessions.values())).pending
    assert s256(pending[q["state"]]["verifier"]) == q["code_challenge"]


def test_start_without_parameters_goes_to_us1(signed_in):
    where, _ = _authorize_location(signed_in.get(start_url()))
    assert where == "https://app.datadoghq.com/oauth2/v1/authorize"


@pytest.mark.parametrize("key", OAUTH_SITES)
def test_start_with_domain_only(emu, signed_in, key):
    where, _ = _authorize_location(signed_in.get(start_url(domain=emu.site(key).domain)))
    assert where == f"{emu.site(key).web_origin}/oauth2/v1/authorize"


@pytest.mark.parametrize("site,domain,expected", [
    ("https://customsub.datadoghq.eu", "datadoghq.eu", "app.datadoghq.eu"),  # unknown site: the domain decides
    ("https://customsub.datadoghq.eu", None, "app.datadoghq.com"),
    ("not a url at all", None, "app.datadoghq.com"),
    ("https://app.ddog-gov.com", None, "app.datadoghq.com"),  # no OAuth there: not a usable site
    ("https://us5.datadoghq.com/", "datadoghq.eu", "us5.datadoghq.com"),  # a known site wins
])
def test_start_site_fallbacks(signed_in, site, domain, expected):
    where, _ = _authorize_location(signed_in.get(start_url(site, domain)))
    assert urlsplit(where).hostname == expected


@pytest.mark.parametrize("domain", ["example.com", "api.datadoghq.eu", "ddog-gov.com", "DATADOGHQ.EU.evil"])
def test_start_with_an_unknown_domain_is_400(signed_in, domain):
    alert = failure(signed_in.get(start_url("https://app.datadoghq.eu", domain)), 400)
    assert alert == f"Unknown Datadog region: {domain}"


def test_every_start_is_a_new_flow_and_pending_ones_stay_valid(emu, signed_in):
    _, first = _authorize_location(signed_in.get(start_url(domain="datadoghq.eu")))
    second_resp = signed_in.get(start_url(domain="datadoghq.eu"))
    _, second = _authorize_location(second_resp)
    assert first["state"] != second["state"] and first["code_challenge"] != second["code_challenge"]
    first_url = "https://app.datadoghq.eu/oauth2/v1/authorize?" + urlencode(first)
    trail = walk(signed_in, signed_in.get(first_url))  # the older flow completes
    assert connected(trail)


# ---- the whole install -----------------------------------------------------------------------------

@pytest.mark.parametrize("key", OAUTH_SITES)
def test_install_end_to_end(emu, agent, key):
    site, client = emu.site(key), published(emu, key)
    org = emu.org(key, "customer")
    trail = connect(agent, site.web_origin, site.domain, user="customer")
    assert connected(trail), trail.response.text[:500]
    resp, page = trail.response, trail.page
    assert urlsplit(str(resp.request.url)).path == "/datadog/connected"
    assert page.title == "Acme Observability · Connected" and resp.headers["cache-control"] == "no-store"
    text = " ".join(page.body_text.split())
    assert f"Region: {site.domain}" in text and f"Organization: {org.name}" in text
    assert "You may now close this tab." in text
    # Datadog's side: one key named after the client, the metric, the token exchange on the region's API host
    keys = keys_in(emu, key, org.id)
    assert len(keys) == 1 and keys[0].name.startswith(KEY_PREFIX) and keys[0].client_id == client.id
    points = metrics_in(emu, key, org.id)
    install = installations(emu)[0]
    assert len(points) == 1 and points[0]["tags"] == ["source:acme-observability", f"install:{install['install_id']}"]
    assert abs(points[0]["points"][0][0] - emu.store.now()) < 5 and points[0]["points"][0][1] == 1
    assert [(e["host"], e["client_id"], e["status"]) for e in token_requests(emu.store)] == [
        (site.api_host, client.id, 200)]
    assert install == {"install_id": install["install_id"], "domain": site.domain, "site": site.web_origin,
                       "org_id": org.id, "org_name": org.name, "partner_user": PARTNER_USER[0],
                       "api_key_id": keys[0].id, "installed_at": install["installed_at"]}
    assert trail.flows_started == 1  # no loop back to Datadog
    assert_no_secrets(emu, *partner_texts(trail), json.dumps(installations(emu)))


def test_install_with_a_bare_host_site(emu, agent):
    emu.behaviour(site_param="host")
    trail = connect(agent, "app.datadoghq.eu", "datadoghq.eu")
    assert connected(trail)
    assert installations(emu)[0]["site"] == "app.datadoghq.eu"
    assert metrics_in(emu, "EU1", emu.org("EU1").id)


def test_install_from_the_partner_with_a_region_switch(emu, agent):
    """No parameters: US1's authorize shows the site picker; the user picks EU1 and everything follows."""
    trail = connect(agent, pick="EU1", user="mfa")
    assert connected(trail)
    hosts = [urlsplit(u).hostname for u in trail.authorize_urls]
    assert hosts[0] == "app.datadoghq.com" and hosts[-1] == "app.datadoghq.eu"
    org = emu.org("EU1")
    assert [e["host"] for e in token_requests(emu.store)] == ["api.datadoghq.eu"]
    assert len(keys_in(emu, "EU1", org.id)) == 1 and metrics_in(emu, "EU1", org.id)
    assert not [k for k in emu.store.api_keys.values() if k.site == "US1"]
    assert not [m for m in emu.store.metrics if m["site"] == "US1"]
    assert "Region: datadoghq.eu" in trail.page.body_text


def test_install_with_an_org_picker(emu, agent):
    trail = connect(agent, "https://app.datadoghq.com", "datadoghq.com", user="multiorg", org="customer")
    assert connected(trail)
    assert installations(emu)[0]["org_id"] == emu.org("US1", "customer").id


def test_repeat_install_reuses_the_key(emu, agent):
    first = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu")
    second = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", login=False)
    assert connected(first) and connected(second)
    org = emu.org("EU1")
    assert len(keys_in(emu, "EU1", org.id)) == 1
    statuses = [e["status"] for e in emu.store.request_log if e["path"] == "/api/v2/api_keys/marketplace"]
    assert statuses == [201, 409]
    listing = installations(emu)
    assert len(listing) == 1 and listing[0]["api_key_id"] == keys_in(emu, "EU1", org.id)[0].id
    assert len(metrics_in(emu, "EU1", org.id)) == 2  # sent with the stored key
    assert str(first.response.request.url) == str(second.response.request.url)  # same installation


def test_409_without_a_stored_key_is_a_409_page(emu, agent):
    access, _ = emu.mint("EU1", client="published")  # the org already holds this client's key, we don't
    assert emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=emu.bearer(access)).status_code == 201
    trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu")
    assert failure(trail.response, 409) == "Datadog already holds an API key for this integration in your organization"
    assert installations(emu) == [] and metrics_in(emu, "EU1", emu.org("EU1").id) == []


def test_secret_rotation_is_followed(emu, signed_in):
    resp = signed_in.get(start_url("https://app.datadoghq.eu", "datadoghq.eu"))
    r = emu.control("POST", f"clients/{published(emu).id}/rotate-secret")
    assert r.status_code == 200
    assert connected(walk(signed_in, resp))


# ---- refusals ----------------------------------------------------------------------------------------

def test_deny_stores_nothing(emu, agent):
    trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", decision="Deny")
    alert = failure(trail.response, 400)
    assert "access_denied" in alert
    assert urlsplit(str(trail.response.request.url)).hostname == "integration.example.com"
    assert trail.flows_started == 1  # no loop back to Datadog
    assert installations(emu) == [] and emu.store.api_keys == {} and token_requests(emu.store) == []
    assert next(iter(emu.app.partner.sessions.values())).pending == {}  # the denied flow is forgotten


def _callback(emu, agent) -> str:
    trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", stop_at="callback")
    url = trail.urls[-1]
    assert url.startswith(PARTNER + "/oauth/callback?") and "code" in query(url)
    return url


@pytest.mark.parametrize("state", ["forged-by-someone-else", None, ""])
def test_forged_state_is_refused_and_the_genuine_callback_still_works(emu, agent, state):
    genuine = _callback(emu, agent)
    alert = failure(agent.get(with_query(genuine, state=state)), 400)
    assert alert == "state does not match"
    assert token_requests(emu.store) == [] and installations(emu) == [] and emu.store.api_keys == {}
    assert connected(walk(agent, agent.get(genuine)))


def test_state_is_single_use(emu, agent):
    genuine = _callback(emu, agent)
    assert connected(walk(agent, agent.get(genuine)))
    assert failure(agent.get(genuine), 400) == "state does not match"
    assert len(token_requests(emu.store)) == 1


def test_state_of_another_session_is_refused(emu, agent):
    genuine = _callback(emu, agent)
    other = AsgiAgent(emu)
    partner_login(other)
    assert failure(other.get(genuine), 400) == "state does not match"
    assert token_requests(emu.store) == []


@pytest.mark.parametrize("domain,reason", [("evil.example", "Unknown Datadog region: evil.example"),
                                           ("ddog-gov.com", "Unknown Datadog region: ddog-gov.com"),
                                           (None, "Datadog's answer does not say which region your organization "
                                                  "lives in")])
def test_callback_domain_must_be_a_datadog_region(emu, agent, domain, reason):
    genuine = _callback(emu, agent)
    assert failure(agent.get(with_query(genuine, domain=domain)), 400) == reason
    assert token_requests(emu.store) == []


def test_token_refusal_is_502_and_shows_no_secret(emu, agent):
    rule = {"match": {"host": "api.datadoghq.eu", "path": "^/oauth2/v1/token$"},
            "action": {"status": 401, "body": {"error": "invalid_client",
                                               "error_description": "Client authentication failed."}}}
    assert emu.control("POST", "rules", rule).status_code == 201
    trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu")
    alert = failure(trail.response, 502)
    assert alert == "Datadog refused the token exchange (HTTP 401: invalid_client - Client authentication failed.)"
    assert installations(emu) == []
    assert_no_secrets(emu, *partner_texts(trail))


def test_data_refusal_is_502(emu, agent):
    rule = {"match": {"host": "api.datadoghq.eu", "path": "^/api/v2/series$"}, "action": {"status": 403}}
    emu.control("POST", "rules", rule)
    trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu")
    assert failure(trail.response, 502) == "Datadog refused our data"


def test_key_refusal_is_502(emu, agent):
    rule = {"match": {"path": "^/api/v2/api_keys/marketplace$"}, "action": {"status": 403,
                                                                           "body": {"errors": ["Forbidden"]}}}
    emu.control("POST", "rules", rule)
    trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu")
    assert failure(trail.response, 502) == "Datadog refused to create an API key (HTTP 403: Forbidden)"


def test_connected_page_only_for_the_own_installation(emu, agent):
    trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu")
    assert connected(trail)
    mine = str(trail.response.request.url)
    emu.store.seed["partner"]["users"].append({"email": "other@acme.example", "password": "other-password-6"})
    other = AsgiAgent(emu)
    partner_login(other, "other@acme.example", "other-password-6")
    assert failure(other.get(mine), 404) == "No such Datadog connection"
    assert failure(agent.get(PARTNER + "/datadog/connected?install=nope"), 404) == "No such Datadog connection"
    assert agent.get(mine).status_code == 200


def test_unknown_partner_path_and_method(signed_in):
    assert signed_in.get(PARTNER + "/nope").status_code == 404
    assert signed_in.post(PARTNER + "/datadog/start", {}).status_code == 405


# ---- control API, rules, request log -------------------------------------------------------------------

def test_control_lists_installations_without_secrets(emu, agent):
    assert emu.control("GET", "partner").json() == {"installations": [], "host": "integration.example.com"}
    assert connected(connect(agent, "https://app.datadoghq.eu", "datadoghq.eu"))
    body = emu.control("GET", "partner", host="app.datadoghq.eu").json()
    assert set(body["installations"][0]) == {"install_id", "domain", "site", "org_id", "org_name", "partner_user",
                                             "api_key_id", "installed_at"}
    assert_no_secrets(emu, json.dumps(body))


def test_reset_clears_the_partner(emu, agent):
    emu.defects("partner_sends_no_data")
    assert connected(connect(agent, "https://app.datadoghq.eu", "datadoghq.eu"))
    assert emu.control("POST", "reset").status_code == 200
    assert installations(emu) == [] and emu.app.partner.sessions == {}
    resp = agent.get(PARTNER + "/")
    assert resp.status_code == 302 and resp.headers["location"].startswith("/login")  # the session is gone
    assert connected(connect(agent, "https://app.datadoghq.eu", "datadoghq.eu"))
    assert metrics_in(emu, "EU1", emu.org("EU1").id)  # the defect went with the reset


def test_state_carries_the_partner_seed(emu):
    partner = emu.control("GET", "state").json()["partner"]
    assert partner["host"] == "integration.example.com" and partner["client"] == "published"
    assert partner["users"] == [{"email": PARTNER_USER[0], "password": PARTNER_USER[1]}]


def test_rules_apply_to_partner_pages(emu, agent):
    rule = {"match": {"host": "integration.example.com", "path": "^/login$"}, "action": {"status": 503}, "times": 1}
    assert emu.control("POST", "rules", rule).status_code == 201
    assert agent.get(PARTNER + "/login").status_code == 503
    assert agent.get(PARTNER + "/login").status_code == 200
    log = [e for e in emu.store.request_log if e["host"] == "integration.example.com"]
    assert [e["status"] for e in log] == [503, 200] and "client_id" not in log[0]


def test_request_log_names_the_client_of_token_and_revoke_requests(emu):
    flow = authorize(emu)
    assert redeem(emu, flow, json=True).status_code == 200
    test_client = emu.client("EU1")
    revoke(emu, "EU1", test_client, "whatever")
    emu.behaviour(basic_auth=True)
    basic = base64.b64encode(f"{test_client.id}:{test_client.secret}".encode()).decode()
    emu.post(emu.token_url("EU1"), data={"grant_type": "refresh_token", "refresh_token": "x"},
             headers={"Authorization": f"Basic {basic}"})
    emu.post(emu.token_url("EU1"), content=b"\xff", headers={"content-type": "application/x-www-form-urlencoded"})
    entries = [e for e in emu.store.request_log if e["host"] == "api.datadoghq.eu"]
    assert [(e["path"], e["client_id"]) for e in entries] == [
        ("/oauth2/v1/token", test_client.id), ("/oauth2/v1/revoke", test_client.id),
        ("/oauth2/v1/token", test_client.id), ("/oauth2/v1/token", None)]
    web = [e for e in emu.store.request_log if e["host"] == "app.datadoghq.eu"]
    assert web and all("client_id" not in e for e in web)


def test_token_bodies_still_reach_the_handler_after_logging(emu):
    """The request log reads token bodies first; the handler must still see them (and size limits hold)."""
    flow = authorize(emu)
    assert redeem(emu, flow).status_code == 200
    big = emu.post(emu.token_url("EU1"), content=b"a" * (600 * 1024),
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413


# ---- partner defects ---------------------------------------------------------------------------------

def test_partner_defects_are_catalogued():
    partner = {name: entry for name, entry in DEFECTS.items() if name.startswith("partner_")}
    assert set(partner) == set(DEFECT_CHECKS)
    assert partner["partner_ignores_domain"][1] == ["test_partner_start_follows_domain"]
    for name in ("partner_crashes_on_409", "partner_static_state", "partner_static_pkce", "partner_extra_key"):
        assert partner[name][1] == ["test_repeat_install"]
    assert partner["partner_stores_after_deny"][1] == ["test_deny"]
    assert partner["partner_no_state_check"][1] == ["test_partner_rejects_forged_state"]
    assert partner["partner_wrong_site_key"][1] == ["test_tile_start", "test_partner_start_follows_domain"]
    for name in ("partner_subdomain_api_host", "partner_no_pkce", "partner_sends_no_data", "partner_weak_state"):
        assert partner[name][1] == ["test_tile_start"]


@pytest.mark.parametrize("name", sorted(DEFECT_CHECKS))
def test_partner_defect_changes_behaviour(name):
    for bad in (False, True):
        emu = Emu()
        try:
            if bad:
                emu.defects(name)
            DEFECT_CHECKS[name](emu, bad)
        finally:
            emu.close()


def test_no_pkce_completes_where_pkce_is_optional(emu, agent):
    emu.defects("partner_no_pkce")
    emu.behaviour(pkce="optional")
    assert connected(connect(agent, "https://app.datadoghq.eu", "datadoghq.eu"))


# ---- outbound plumbing ----------------------------------------------------------------------------

def test_unserved_hosts_fail_like_dns(emu):
    async def probe():
        transport = DNSLikeTransport(httpx.ASGITransport(app=emu.app), ["api.datadoghq.eu"])
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(httpx.ConnectError, match="Name or service not known"):
                await http.get("https://api.app.datadoghq.eu/api/v1/validate")
            return (await http.get("https://api.datadoghq.eu/api/v2/oauth2/.well-known/sites")).status_code
    assert emu.run(probe()) == 200


@pytest.mark.parametrize("partner", [{"host": 5}, {"host": "integration.example.com", "client": "nope",
                                                   "users": [{"email": "a", "password": "b"}]},
                                     {"host": "integration.example.com", "client": "published", "users": []},
                                     {"host": "integration.example.com", "client": ["published"],
                                      "users": [{"email": "a", "password": "b"}]}, "x"])
def test_seed_partner_section_is_checked(tmp_path, partner):
    import yaml
    seed = load_seed()
    seed["partner"] = partner
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed))
    with pytest.raises(ConfigError, match="'partner' needs"):
        load_seed(path)


def test_over_real_sockets_and_tls(tmp_path):
    """The partner's outbound calls leave through the socket with TLS verified against the emulator CA."""
    running = start(tmp_path / "state")
    try:
        net = Network(host_map=running.host_map(), ca_bundle=running.tls.ca_pem)
        with make_client(net) as http:
            agent = SyncAgent(http, running.store)
            trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu")
            assert connected(trail), trail.response.text[:500]
            client = next(c for c in running.store.clients.values() if c.key == "published")
            tokens = token_requests(running.store)
            assert [(e["host"], e["client_id"], e["status"]) for e in tokens] == [("api.datadoghq.eu", client.id, 200)]
            org = next(o for o in running.store.orgs.values() if o.site == "EU1" and o.key == "sandbox")
            assert [m["site"] for m in running.store.metrics if m["org_id"] == org.id] == ["EU1"]
            assert isinstance(running.app.partner.transport_factory(), AsyncMappedTransport)

            # certificates are really checked: with another CA the partner cannot reach Datadog
            stranger = trustme.CA()
            stranger.cert_pem.write_to_path(str(tmp_path / "stranger.pem"))
            real = running.app.partner.transport_factory
            untrusted = Network(host_map=running.host_map(), ca_bundle=tmp_path / "stranger.pem")
            running.app.partner.transport_factory = lambda: AsyncMappedTransport(untrusted)
            try:
                trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", login=False)
            finally:
                running.app.partner.transport_factory = real
            assert failure(trail.response, 502) == "could not reach api.datadoghq.eu"

            # a host nobody serves fails like DNS would: the partner shows its failure page
            assert http.post("https://api.datadoghq.com/_emulator/defects",
                             json={"enable": ["partner_subdomain_api_host"]}).status_code == 200
            trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", login=False)
            assert failure(trail.response, 502) == "could not reach api.app.datadoghq.eu"
            assert len(token_requests(running.store)) == 1

        async def wrong_name():  # a name outside the certificate fails the TLS name check
            probe = Network(host_map={"api.bigcorp.datadoghq.eu": running.base_address}, ca_bundle=running.tls.ca_pem)
            async with httpx.AsyncClient(transport=AsyncMappedTransport(probe)) as h:
                with pytest.raises(httpx.ConnectError) as info:
                    await h.get("https://api.bigcorp.datadoghq.eu/api/v1/validate")
                return str(info.value).lower()
        assert "hostname" in asyncio.run(wrong_name())
    finally:
        running.stop()
