"""Every named defect in emulator/behaviour.py DEFECTS really changes the emulator's behaviour.

Each check runs twice on fresh emulators: once correct (`bad=False`) and once with only that defect
enabled through the control API (`bad=True`); it asserts the documented behaviour in the first run
and the specific deviation in the second.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from emukit import Emu, Page, Pkce, auth_params, authorize, redeem, refresh, revoke, tokens
from emulator.behaviour import DEFECTS

CHECKS = {}


def check(name):
    def register(fn):
        CHECKS[name] = fn
        return fn
    return register


def _dash(emu, access):
    return emu.get(emu.api("EU1", "/api/v1/dashboard"), headers=emu.bearer(access)).status_code


def _key(emu, access):
    return emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=emu.bearer(access))


@check("code_reuse_allowed")
def _(emu, bad):
    flow = authorize(emu)
    assert redeem(emu, flow).status_code == 200
    assert redeem(emu, flow).status_code == (200 if bad else 400)


@check("pkce_verifier_ignored")
def _(emu, bad):
    assert redeem(emu, authorize(emu), code_verifier="x" * 50).status_code == (200 if bad else 400)


@check("pkce_plain_accepted")
def _(emu, bad):
    v = "p" * 60
    flow = authorize(emu, pkce=Pkce(v, v, "plain"))
    if bad:
        assert "code" in flow.callback
        assert redeem(emu, flow).status_code == 200
    else:
        assert flow.callback["error_description"] == "Transform algorithm not supported."


@check("redirect_prefix_match")
def _(emu, bad):
    c = emu.client("EU1")
    resp = emu.get("https://app.datadoghq.eu/oauth2/v1/authorize",
                   params=auth_params(c, c.redirect_uris[0] + "/../evil", Pkce.new()))
    if bad:
        assert resp.status_code == 302 and resp.headers["location"].startswith("/account/login")
    else:
        assert resp.status_code == 400 and "Mismatching redirect URI" in resp.text


@check("state_dropped")
def _(emu, bad):
    assert ("state" in authorize(emu, state="s").callback) is not bad


@check("domain_missing")
def _(emu, bad):
    assert ("domain" in authorize(emu).callback) is not bad


@check("domain_wrong_region")
def _(emu, bad):
    assert (authorize(emu).callback["domain"] == "datadoghq.eu") is not bad


@check("consent_extra_scope")
def _(emu, bad):
    shown = [s for s, _ in authorize(emu, stop_at="consent").consent.scopes]
    assert (shown == emu.client("EU1").scopes) is not bad
    assert ("org_management" in shown) is bad


@check("token_scope_missing_one")
def _(emu, bad):
    scope = tokens(emu)["scope"].split()
    assert (scope == emu.client("EU1").scopes) is not bad
    if bad:
        assert len(scope) == len(emu.client("EU1").scopes) - 1


@check("expires_in_string")
def _(emu, bad):
    assert tokens(emu)["expires_in"] == ("3600" if bad else 3600)


@check("expires_in_missing")
def _(emu, bad):
    assert ("expires_in" in tokens(emu)) is not bad


@check("token_no_store_missing")
def _(emu, bad):
    resp = redeem(emu, authorize(emu))
    assert resp.status_code == 200
    assert (resp.headers.get("cache-control") == "no-store") is not bad


@check("refresh_fails_after_expiry")
def _(emu, bad):
    t = tokens(emu)
    c = emu.client("EU1")
    assert refresh(emu, "EU1", c, t["refresh_token"]).status_code == 200  # while an access token lives
    emu.advance(3601 * 2)
    assert refresh(emu, "EU1", c, t["refresh_token"]).status_code == (400 if bad else 200)


@check("revoke_noop")
def _(emu, bad):
    t = tokens(emu)
    assert revoke(emu, "EU1", emu.client("EU1"), t["access_token"]).status_code == 200
    assert _dash(emu, t["access_token"]) == (200 if bad else 403)


@check("revoke_no_cascade")
def _(emu, bad):
    t = tokens(emu)
    c = emu.client("EU1")
    assert revoke(emu, "EU1", c, t["refresh_token"]).status_code == 200
    assert refresh(emu, "EU1", c, t["refresh_token"]).status_code == 400
    assert _dash(emu, t["access_token"]) == (200 if bad else 403)


@check("api_key_invalid")
def _(emu, bad):
    key = _key(emu, tokens(emu)["access_token"]).json()["data"]["attributes"]["key"]
    resp = emu.get(emu.api("EU1", "/api/v1/validate"), headers={"DD-API-KEY": key})
    assert resp.status_code == (403 if bad else 200)


@check("api_key_without_scope")
def _(emu, bad):
    access, _ = emu.mint("EU1", scopes=["dashboards_read"])
    assert _key(emu, access).status_code == (201 if bad else 403)
    assert _dash(emu, access) == 200  # other scope checks are unaffected
    hosts = emu.get(emu.api("EU1", "/api/v1/hosts"), headers=emu.bearer(access))
    assert hosts.status_code == 403


@check("api_key_no_409")
def _(emu, bad):
    access = tokens(emu)["access_token"]
    assert _key(emu, access).status_code == 201
    assert _key(emu, access).status_code == (201 if bad else 409)


@check("scope_not_enforced")
def _(emu, bad):
    access, _ = emu.mint("EU1", scopes=["hosts_read"])
    assert _dash(emu, access) == (200 if bad else 403)


@check("read_probe_empty_body")
def _(emu, bad):
    access, _ = emu.mint("EU1")
    resp = emu.get(emu.api("EU1", "/api/v1/dashboard"), headers=emu.bearer(access))
    assert resp.status_code == 200
    assert (resp.content == b"") is bad


@check("logs_dropped")
def _(emu, bad):
    key = _key(emu, tokens(emu)["access_token"]).json()["data"]["attributes"]["key"]
    resp = emu.post("https://http-intake.logs.datadoghq.eu/api/v2/logs", headers={"DD-API-KEY": key},
                    json=[{"message": "kept?"}])
    assert resp.status_code == 202
    reader, _ = emu.mint("EU1", scopes=["logs_read_data"])
    data = emu.get(emu.api("EU1", "/api/v2/logs/events"), headers=emu.bearer(reader)).json()["data"]
    assert len(data) == (0 if bad else 1)


@check("metrics_dropped")
def _(emu, bad):
    key = _key(emu, tokens(emu)["access_token"]).json()["data"]["attributes"]["key"]
    now = int(time.time())
    resp = emu.post(emu.api("EU1", "/api/v2/series"), headers={"DD-API-KEY": key},
                    json={"series": [{"metric": "m.x", "points": [{"timestamp": now, "value": 1}]}]})
    assert resp.status_code == 202
    reader, _ = emu.mint("EU1", scopes=["timeseries_query"])
    q = emu.get(emu.api("EU1", "/api/v1/query"), headers=emu.bearer(reader),
                params={"from": now - 60, "to": now + 1, "query": "avg:m.x{*}"})
    assert len(q.json()["series"]) == (0 if bad else 1)


@check("unknown_client_accepted")
def _(emu, bad):
    c = emu.client("EU1")
    resp = emu.get("https://app.datadoghq.eu/oauth2/v1/authorize",
                   params=auth_params(c, pkce=Pkce.new(), client_id="00000000-0000-0000-0000-000000000000"))
    if bad:
        assert resp.status_code == 302 and resp.headers["location"].startswith("/account/login")
    else:
        assert resp.status_code == 400 and "Invalid client_id parameter value" in resp.text


@check("missing_secret_accepted")
def _(emu, bad):
    assert redeem(emu, authorize(emu), client_secret=None).status_code == (200 if bad else 401)


@check("bad_verifier_500")
def _(emu, bad):
    assert redeem(emu, authorize(emu), code_verifier="v" * 50).status_code == (500 if bad else 400)


@check("rate_limit_headers_missing")
def _(emu, bad):
    access, _ = emu.mint("EU1")
    resp = emu.get(emu.api("EU1", "/api/v1/dashboard"), headers=emu.bearer(access))
    assert ("x-ratelimit-limit" in resp.headers) is not bad


@check("old_secret_accepted")
def _(emu, bad):
    c = emu.client("EU1")
    old = c.secret
    emu.control("POST", f"clients/{c.id}/rotate-secret")
    assert redeem(emu, authorize(emu), client_secret=old).status_code == (200 if bad else 401)


@check("refresh_killed_by_rotation")
def _(emu, bad):
    t = tokens(emu)
    c = emu.client("EU1")
    emu.control("POST", f"clients/{c.id}/rotate-secret")
    assert refresh(emu, "EU1", c, t["refresh_token"]).status_code == (400 if bad else 200)


@check("no_store_missing_on_consent")
def _(emu, bad):
    flow = authorize(emu, stop_at="consent")
    resp = flow.browser.get(flow.pages[-1][0])
    assert Page(resp.text).h1.startswith("Authorize")
    assert (resp.headers.get("cache-control") == "no-store") is not bad
    assert (resp.headers.get("x-frame-options") == "DENY") is not bad


@check("state_altered")
def _(emu, bad):
    sent = "ddoauth st/+=&?é"
    got = authorize(emu, state=sent).callback["state"]
    assert (got == sent) is not bad
    if bad:
        assert sent.startswith(got) and len(got) < len(sent)


@check("error_redirect_with_code")
def _(emu, bad):
    denied = authorize(emu, decision="Deny")
    assert denied.response.status_code == 302 and denied.callback["error"] == "access_denied"
    refused = authorize(emu, scope="org_management")  # not one of the client's scopes: invalid_scope, before login
    assert refused.response.status_code == 302 and refused.callback["error"] == "invalid_scope"
    for flow in (denied, refused):
        assert ("code" in flow.callback) is bad
        if bad:  # a working code, not just a parameter
            assert redeem(emu, flow).status_code == 200


@check("test_client_any_org")
def _(emu, bad):
    flow = authorize(emu, user="multiorg", org="customer")  # the test client, from the user's other org
    if bad:
        assert flow.response.status_code == 302 and flow.callback["dd_oid"] == emu.org("EU1", "customer").id
        assert redeem(emu, flow).status_code == 200
    else:
        assert flow.response.status_code == 400
        assert Page(flow.response.text).text == "invalid_request - Invalid client_id parameter value."


@check("redirect_mismatch_wrong_text")
def _(emu, bad):
    c = emu.client("EU1")
    resp = emu.get("https://app.datadoghq.eu/oauth2/v1/authorize",
                   params=auth_params(c, c.redirect_uris[0] + "/extra", Pkce.new()))
    assert resp.status_code == 400 and "location" not in resp.headers  # still an error page, never a redirect
    text = Page(resp.text).text
    assert text == ("invalid_request - Invalid client_id parameter value." if bad
                    else "invalid_request - Mismatching redirect URI.")


def _code_and_refresh_answers(emu):
    """A code answer and a refresh answer of one grant (raw responses)."""
    code_answer = redeem(emu, authorize(emu))
    assert code_answer.status_code == 200
    c = emu.client("EU1")
    refreshed = refresh(emu, "EU1", c, code_answer.json()["refresh_token"])
    assert refreshed.status_code == 200
    return code_answer, refreshed


@check("token_not_json")
def _(emu, bad):
    for resp in _code_and_refresh_answers(emu):
        media = resp.headers["content-type"].split(";")[0]
        assert media == ("text/plain" if bad else "application/json")
        assert resp.json()["access_token"]  # the body itself stays JSON


@check("token_pragma_missing")
def _(emu, bad):
    for resp in _code_and_refresh_answers(emu):
        assert (resp.headers.get("pragma") == "no-cache") is not bad
        assert resp.headers.get("cache-control") == "no-store"


@check("refresh_no_store_missing")
def _(emu, bad):
    code_answer, refreshed = _code_and_refresh_answers(emu)
    assert code_answer.headers.get("cache-control") == "no-store"
    assert (refreshed.headers.get("cache-control") == "no-store") is not bad


@check("refresh_token_type_missing")
def _(emu, bad):
    code_answer, refreshed = _code_and_refresh_answers(emu)
    assert code_answer.json()["token_type"] == "Bearer"
    assert ("token_type" in refreshed.json()) is not bad


@check("refresh_scope_widened")
def _(emu, bad):
    code_answer, refreshed = _code_and_refresh_answers(emu)
    granted = code_answer.json()["scope"].split()
    assert "org_management" not in granted
    assert (refreshed.json()["scope"].split() == granted) is not bad
    if bad:
        assert refreshed.json()["scope"].split() == granted + ["org_management"]


@check("token_get_accepted")
def _(emu, bad):
    flow = authorize(emu)
    resp = emu.get(emu.token_url("EU1"), params=flow.token_body())
    if bad:
        assert resp.status_code == 200 and resp.json()["access_token"]
    else:
        assert resp.status_code == 405 and "access_token" not in resp.text
        assert redeem(emu, flow).status_code == 200  # the GET left the code alone
    assert emu.get(f"https://{emu.site('EU1').api_host}/oauth2/v1/revoke").status_code == 405  # revoke: never GET


@check("revoke_missing_token_200")
def _(emu, bad):
    resp = revoke(emu, "EU1", emu.client("EU1"), None)
    assert resp.status_code == (200 if bad else 400)
    if not bad:
        assert resp.json()["error"] == "invalid_request"


@check("callback_wrong_org")
def _(emu, bad):
    cb = authorize(emu).callback
    sandbox = emu.org("EU1")
    assert (cb["dd_oid"] == sandbox.id) is not bad
    assert (cb["dd_org_name"] == sandbox.name) is not bad
    if bad:
        assert emu.store.org(cb["dd_oid"]).name == cb["dd_org_name"]  # another real org, named consistently


@check("callback_site_wrong_region")
def _(emu, bad):
    cb = authorize(emu).callback
    assert cb["domain"] == "datadoghq.eu"
    assert (cb["site"] == "https://app.datadoghq.eu") is not bad


@check("callback_path_altered")
def _(emu, bad):
    flow = authorize(emu)
    registered = urlsplit(flow.redirect_uri)
    got = urlsplit(flow.location)
    assert (got.scheme, got.netloc) == (registered.scheme, registered.netloc)
    assert got.path == (registered.path + "/" if bad else registered.path)
    assert redeem(emu, flow).status_code == 200  # the code is still bound to the registered URI


@check("validate_unknown_key_200")
def _(emu, bad):
    resp = emu.get(emu.api("EU1", "/api/v1/validate"), headers={"DD-API-KEY": "0" * 32})
    assert resp.status_code == (200 if bad else 403)
    assert resp.json() == ({"valid": False} if bad else {"errors": ["Forbidden"]})
    key = _key(emu, tokens(emu)["access_token"]).json()["data"]["attributes"]["key"]
    good = emu.get(emu.api("EU1", "/api/v1/validate"), headers={"DD-API-KEY": key})
    assert good.status_code == 200 and good.json() == {"valid": True}  # a real key still validates


# the reference partner app's defects (partner_*) have their checks in test_partner_app.py (partnerkit.py)
SERVER_DEFECTS = {name for name in DEFECTS if not name.startswith("partner_")}


def test_every_defect_has_a_check():
    assert set(CHECKS) == SERVER_DEFECTS


@pytest.mark.parametrize("name", sorted(SERVER_DEFECTS))
def test_defect_changes_behaviour(name):
    for bad in (False, True):
        emu = Emu()
        try:
            if bad:
                emu.defects(name)
                assert emu.control("GET", "defects").json()["enabled"] == [name]
            CHECKS[name](emu, bad)
        finally:
            emu.close()
