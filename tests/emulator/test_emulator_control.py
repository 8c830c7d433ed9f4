"""The control API under /_emulator/: state, reset, clock, client administration, grants, keys,
behaviour switches, defects catalogue, response rules and code minting."""
from __future__ import annotations

import time

import pytest

from emukit import Emu, Pkce, authorize, redeem, refresh, tokens
from emulator.behaviour import DEFECTS, SWITCHES


def ok(resp, status=200):
    assert resp.status_code == status, (resp.status_code, resp.text)
    return resp.json()


def dash(emu, access, site="EU1"):
    return emu.get(emu.api(site, "/api/v1/dashboard"), headers=emu.bearer(access)).status_code


# ---- state / reset / clock ------------------------------------------------------------------------

def test_state_has_everything_including_credentials(emu):
    state = ok(emu.control("GET", "state"))
    assert set(state["sites"]) == {"US1", "US3", "US5", "EU1", "AP1", "AP2", "UK1", "US1-FED", "US2-FED"}
    eu = state["sites"]["EU1"]
    assert eu["domain"] == "datadoghq.eu" and eu["api_host"] == "api.datadoghq.eu" and eu["oauth"] is True
    assert {o["kind"] for o in eu["orgs"]} == {"partner_sandbox", "customer"}
    users = {u["key"]: u for u in eu["users"]}
    assert users["mfa"]["totp_secret"] and users["developer"]["password"]
    assert len(users["multiorg"]["org_ids"]) == 2
    clients = {c["key"]: c for c in eu["clients"]}
    assert clients["test"]["kind"] == "test" and clients["published"]["kind"] == "published"
    for c in clients.values():
        assert c["secret"] and c["redirect_uris"] and "api_keys_write" in c["scopes"] and c["onboarding_url"]
    # test clients have distinct ids per site; the published one is shared
    ids = {k: {s["clients"][i]["id"] for s in state["sites"].values() for i in range(2) if s["clients"][i]["key"] == k}
           for k in ("test", "published")}
    assert len(ids["test"]) == 9 and len(ids["published"]) == 1
    import uuid
    for cid in ids["test"] | ids["published"]:
        assert str(uuid.UUID(cid)) == cid  # client ids are UUIDs
    assert all(str(uuid.UUID(o["id"])) == o["id"] for o in eu["orgs"])  # usable as dd_oid
    assert state["behaviour"]["refresh_rotation"] == "none" and state["clock_offset"] == 0


def test_state_credentials_work(emu):
    eu = emu.control("GET", "state").json()["sites"]["EU1"]
    client = next(c for c in eu["clients"] if c["key"] == "test")
    flow = authorize(emu)
    resp = emu.post(emu.token_url("EU1"), data=flow.token_body(client_id=client["id"], client_secret=client["secret"]))
    assert resp.status_code == 200
    assert [g["client_id"] for g in emu.control("GET", "state").json()["sites"]["EU1"]["grants"]] == [client["id"]]


def test_control_on_every_kind_of_host(emu):
    for host in ("api.datadoghq.com", "app.datadoghq.eu", "http-intake.logs.us5.datadoghq.com", "api.ddog-gov.com"):
        assert emu.control("GET", "state", host=host).status_code == 200


def test_control_api_can_be_switched_off():
    e = Emu(control_api=False)
    try:
        resp = e.control("GET", "state")
        assert resp.status_code == 404 and resp.json() == {"errors": ["Not found"]}
        assert e.control("POST", "reset").status_code == 404
    finally:
        e.close()


def test_reset(emu):
    t = tokens(emu)
    key = emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=emu.bearer(t["access_token"])).json()
    emu.behaviour(refresh_rotation="rotate_invalidate", expired_token_status=401)
    emu.defects("state_dropped")
    emu.advance(100)
    ok(emu.control("POST", "rules", {"match": {"path": "^/nothing$"}, "action": {"status": 500}}), 201)
    old_ids = {k: c.id for k, c in emu.store.clients.items()}
    assert ok(emu.control("POST", "reset")) == {"reset": True}
    state = ok(emu.control("GET", "state"))
    assert state["behaviour"]["refresh_rotation"] == "none" and state["behaviour"]["defects"] == []
    assert state["clock_offset"] == 0
    assert ok(emu.control("GET", "rules")) == {"rules": []}
    assert dash(emu, t["access_token"]) == 403
    assert emu.get(emu.api("EU1", "/api/v1/validate"),
                   headers={"DD-API-KEY": key["data"]["attributes"]["key"]}).status_code == 403
    assert {k: c.id for k, c in emu.store.clients.items()} == old_ids  # ids are stable; secrets are re-issued
    assert "code" in authorize(emu).callback


@pytest.mark.parametrize("body,status", [({"advance": 30}, 200), ({"advance": "30"}, 200), ({}, 200),
                                         ({"advance": "soon"}, 400), ({"advance": None}, 400), ([1], 400)])
def test_clock_inputs(emu, body, status):
    resp = emu.control("POST", "clock", body)
    assert resp.status_code == status, resp.text


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_clock_refuses_non_finite(emu, raw):
    resp = emu.post("https://api.datadoghq.com/_emulator/clock", content='{"advance": %s}' % raw,
                    headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert emu.control("GET", "state").json()["clock_offset"] == 0
    access, _ = emu.mint("EU1")
    assert dash(emu, access) == 200


def test_clock_advances_and_accumulates(emu):
    before = time.time()
    body = ok(emu.control("POST", "clock", {"advance": 30}))
    assert body["clock_offset"] == 30 and body["now"] >= before + 30
    assert ok(emu.control("POST", "clock", {"advance": 15}))["clock_offset"] == 45


# ---- clients ------------------------------------------------------------------------------------

def test_rotate_secret(emu):
    client = emu.client("EU1")
    old = client.secret
    t = tokens(emu)
    key = emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=emu.bearer(t["access_token"])).json()
    flow = authorize(emu)
    body = ok(emu.control("POST", f"clients/{client.id}/rotate-secret"))
    assert body["client_id"] == client.id and body["client_secret"] != old
    # the old secret stops working at once
    old_resp = redeem(emu, flow, client_secret=old)
    assert old_resp.status_code == 401 and old_resp.json()["error"] == "invalid_client"
    assert redeem(emu, flow, client_secret=body["client_secret"]).status_code == 200
    # refresh tokens, access tokens and API keys survive
    r = emu.post(emu.token_url("EU1"), data={"grant_type": "refresh_token", "client_id": client.id,
                                             "client_secret": body["client_secret"], "refresh_token": t["refresh_token"]})
    assert r.status_code == 200
    assert dash(emu, t["access_token"]) == 200
    assert emu.get(emu.api("EU1", "/api/v1/validate"),
                   headers={"DD-API-KEY": key["data"]["attributes"]["key"]}).status_code == 200
    # and the state shows the new secret
    eu = emu.control("GET", "state").json()["sites"]["EU1"]
    assert next(c for c in eu["clients"] if c["id"] == client.id)["secret"] == body["client_secret"]


def test_rotate_published_secret_applies_to_every_region(emu):
    pub = emu.client("EU1", "published")
    new = ok(emu.control("POST", f"clients/{pub.id}/rotate-secret"))["client_secret"]
    assert {c.secret for c in emu.store.clients.values() if c.id == pub.id} == {new}


def test_publish_makes_the_test_client_usable_from_any_org(emu):
    assert authorize(emu, user="customer").response.status_code == 400
    c = emu.client("EU1")
    assert ok(emu.control("POST", f"clients/{c.id}/publish")) == {"client_id": c.id, "kind": "published"}
    flow = authorize(emu, user="customer")
    assert flow.callback["dd_oid"] == emu.org("EU1", "customer").id
    assert redeem(emu, flow).status_code == 200


def test_disable_client_revokes_grants_and_blocks_new_ones(emu):
    c = emu.client("EU1")
    t = tokens(emu)
    assert ok(emu.control("POST", f"clients/{c.id}/disable")) == {"client_id": c.id, "disabled": True}
    assert dash(emu, t["access_token"]) == 403
    assert refresh(emu, "EU1", c, t["refresh_token"]).status_code == 401
    assert "Invalid client_id" in authorize(emu).response.text
    assert ok(emu.control("POST", f"clients/{c.id}/enable")) == {"client_id": c.id, "disabled": False}
    assert refresh(emu, "EU1", c, t["refresh_token"]).status_code == 400  # old grants stay revoked
    assert "code" in authorize(emu).callback


@pytest.mark.parametrize("action", ["rotate-secret", "publish", "disable", "enable"])
def test_client_action_unknown_client_is_404(emu, action):
    assert emu.control("POST", f"clients/nope/{action}").status_code == 404


def test_revoke_a_users_authorization(emu):
    c = emu.client("EU1", "published")
    mine = tokens(emu, client="published", user="developer")
    theirs = tokens(emu, client="published", user="customer")
    user = emu.user("EU1", "developer")
    assert ok(emu.control("POST", "grants/revoke", {"user_id": user.id, "client_id": c.id})) == {"revoked_grants": 1}
    assert dash(emu, mine["access_token"]) == 403
    assert refresh(emu, "EU1", c, mine["refresh_token"]).status_code == 400
    assert dash(emu, theirs["access_token"]) == 200
    # the user can authorize again
    assert dash(emu, tokens(emu, client="published")["access_token"]) == 200
    # without user_id: every user's grant for the client
    assert ok(emu.control("POST", "grants/revoke", {"client_id": c.id}))["revoked_grants"] == 2
    assert dash(emu, theirs["access_token"]) == 403


def test_delete_api_key(emu):
    t = tokens(emu)
    h = emu.bearer(t["access_token"])
    key = emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=h).json()["data"]
    assert ok(emu.control("DELETE", f"api-keys/{key['id']}")) == {"deleted": True}
    assert emu.get(emu.api("EU1", "/api/v1/validate"), headers={"DD-API-KEY": key["attributes"]["key"]}).status_code == 403
    assert emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=h).status_code == 201
    assert emu.control("DELETE", "api-keys/nope").status_code == 404


def test_expire_one_access_token(emu):
    a = tokens(emu)
    b = tokens(emu)
    assert ok(emu.control("POST", "tokens/expire", {"access_token": a["access_token"]})) == {"expired": True}
    assert dash(emu, a["access_token"]) == 403
    assert dash(emu, b["access_token"]) == 200  # the clock did not move for anyone else
    emu.behaviour(expired_token_status=401)
    assert dash(emu, a["access_token"]) == 401  # it is an expiry, not a revocation
    assert refresh(emu, "EU1", emu.client("EU1"), a["refresh_token"]).status_code == 200
    assert emu.control("POST", "tokens/expire", {"access_token": "nope"}).status_code == 404
    assert emu.control("POST", "tokens/expire", [1]).status_code == 400


def test_request_log(emu):
    emu.get("https://app.datadoghq.eu/account/login")
    log = ok(emu.control("GET", "requests"))["requests"]
    assert log[-1]["host"] == "app.datadoghq.eu" and log[-1]["path"] == "/account/login" and log[-1]["status"] == 200


@pytest.mark.parametrize("method,path", [("GET", "nope"), ("POST", "state"), ("GET", "reset"), ("PUT", "rules"),
                                         ("GET", "clients/x/publish"), ("GET", "codes")])
def test_unknown_control_endpoint_404(emu, method, path):
    resp = emu.control(method, path)
    assert resp.status_code == 404 and resp.json()["errors"]


# ---- behaviour and defects ------------------------------------------------------------------------

def test_behaviour_lists_switches(emu):
    body = ok(emu.control("GET", "behaviour"))
    assert body["switches"] == {k: list(v) for k, v in SWITCHES.items()}
    assert {k: body["behaviour"][k] for k in SWITCHES} == {k: v[0] for k, v in SWITCHES.items()}


def test_every_switch_value_is_accepted(emu):
    for name, values in SWITCHES.items():
        for v in values:
            assert ok(emu.control("POST", "behaviour", {name: v}))["behaviour"][name] == v


@pytest.mark.parametrize("body", [{"nope": 1}, {"refresh_rotation": "sometimes"}, {"expired_token_status": 500},
                                  {"expired_token_status": "401"}, {"defects": ["nope"]}, [1], "x"])
def test_behaviour_bad_input_is_400(emu, body):
    resp = emu.control("POST", "behaviour", body)
    assert resp.status_code == 400 and resp.json()["errors"]


def test_defects_catalogue_and_toggle(emu):
    body = ok(emu.control("GET", "defects"))
    assert body["enabled"] == []
    assert set(body["catalogue"]) == set(DEFECTS)
    for name, entry in body["catalogue"].items():
        assert entry["description"] and entry["caught_by"]
    assert ok(emu.control("POST", "defects", {"enable": ["state_dropped", "domain_missing"]}))["enabled"] == [
        "domain_missing", "state_dropped"]
    assert ok(emu.control("POST", "defects", {"disable": ["state_dropped"]}))["enabled"] == ["domain_missing"]
    assert ok(emu.control("GET", "behaviour"))["behaviour"]["defects"] == ["domain_missing"]


@pytest.mark.parametrize("body", [{"enable": ["no_such_defect"]}, {"enable": "state_dropped"}, {"enable": 5},
                                  {"enable": [[1]]}])
def test_defects_bad_input_is_400(emu, body):
    resp = emu.control("POST", "defects", body)
    assert resp.status_code == 400
    assert emu.control("GET", "defects").json()["enabled"] == []


# ---- rules ---------------------------------------------------------------------------------------

def test_rule_status_times_and_hits(emu):
    rule = {"match": {"host": "api.datadoghq.eu", "method": "POST", "path": "^/oauth2/v1/token$"},
            "action": {"status": 503, "body": {"errors": ["Service Unavailable"]}, "headers": {"Retry-After": "5"}},
            "times": 2}
    listed = ok(emu.control("POST", "rules", rule), 201)["rules"]
    assert listed[0]["match"]["path"] == "^/oauth2/v1/token$" and listed[0]["times"] == 2
    flow = authorize(emu)
    for _ in range(2):
        resp = redeem(emu, flow)
        assert resp.status_code == 503 and resp.json() == {"errors": ["Service Unavailable"]}
        assert resp.headers["retry-after"] == "5"
    assert redeem(emu, flow).status_code == 200  # exhausted: normal service; the code was never touched
    assert ok(emu.control("GET", "rules"))["rules"][0]["hits"] == 2


def test_rule_default_body_and_forever(emu):
    ok(emu.control("POST", "rules", {"match": {"path": "/api/v1/hosts"}, "action": {"status": 500}}), 201)
    access, _ = emu.mint("EU1")
    for _ in range(3):
        resp = emu.get(emu.api("EU1", "/api/v1/hosts"), headers=emu.bearer(access))
        assert resp.status_code == 500 and resp.json() == {"errors": ["Injected by emulator rule"]}
    assert dash(emu, access) == 200


def test_rule_flat_action_form(emu):
    ok(emu.control("POST", "rules", {"match": {"path": "^/account/login$"}, "status": 418, "times": 1}), 201)
    assert emu.get("https://app.datadoghq.eu/account/login").status_code == 418
    assert emu.get("https://app.datadoghq.eu/account/login").status_code == 200


def test_rule_host_glob_and_method(emu):
    ok(emu.control("POST", "rules", {"match": {"host": "*.datadoghq.com", "method": "GET"},
                                     "action": {"status": 502}}), 201)
    assert emu.get("https://api.datadoghq.com/api/v1/validate").status_code == 502
    assert emu.get("https://app.datadoghq.com/account/login").status_code == 502
    assert emu.get("https://api.datadoghq.eu/api/v1/validate").status_code == 403
    assert emu.post("https://api.datadoghq.com/oauth2/v1/token", data={"grant_type": "x"}).status_code == 401


def test_rule_path_regex_searches(emu):
    ok(emu.control("POST", "rules", {"match": {"path": r"/dashboard/[a-z]{3}-"}, "action": {"status": 404,
                                                                                            "body": {"x": 1}}}), 201)
    access, _ = emu.mint("EU1")
    assert emu.get(emu.api("EU1", "/api/v1/dashboard/abc-def-ghi"), headers=emu.bearer(access)).json() == {"x": 1}
    assert dash(emu, access) == 200


def test_rule_delay(emu):
    ok(emu.control("POST", "rules", {"match": {"path": "^/api/v1/validate$"}, "action": {"delay_ms": 250},
                                     "times": 1}), 201)
    start = time.monotonic()
    resp = emu.get(emu.api("EU1", "/api/v1/validate"))
    assert time.monotonic() - start >= 0.25
    assert resp.status_code == 403  # the normal answer, late
    emu.get(emu.api("EU1", "/api/v1/validate"))
    # times=1: the second request is not delayed (read from the rule's hits, not a clock: machines are noisy)
    assert [r["hits"] for r in emu.control("GET", "rules").json()["rules"]] == [1]


def test_rule_delay_then_status(emu):
    ok(emu.control("POST", "rules", {"match": {"path": "validate"}, "action": {"delay_ms": 100, "status": 504}}), 201)
    start = time.monotonic()
    assert emu.get(emu.api("EU1", "/api/v1/validate")).status_code == 504
    assert time.monotonic() - start >= 0.1


def test_rules_never_block_the_control_api(emu):
    ok(emu.control("POST", "rules", {"match": {}, "action": {"status": 500}}), 201)
    assert emu.get("https://app.datadoghq.eu/account/login").status_code == 500
    assert ok(emu.control("DELETE", "rules")) == {"rules": []}
    assert emu.get("https://app.datadoghq.eu/account/login").status_code == 200


def test_rules_first_match_wins_in_order(emu):
    ok(emu.control("POST", "rules", {"match": {"path": "login"}, "action": {"status": 401}, "times": 1}), 201)
    ok(emu.control("POST", "rules", {"match": {"path": "login"}, "action": {"status": 402}}), 201)
    assert emu.get("https://app.datadoghq.eu/account/login").status_code == 401
    assert emu.get("https://app.datadoghq.eu/account/login").status_code == 402


@pytest.mark.parametrize("rule", [
    {"match": {"path": "x"}},  # no action
    {"match": {"path": "("}, "action": {"status": 500}},
    {"action": {"status": 99}}, {"action": {"status": 600}}, {"action": {"status": "abc"}},
    {"match": "x", "action": {"status": 500}}, {"action": "x"},
    {"action": {"status": 500}, "times": "x"}, {"action": {"status": 500}, "times": -1},
    {"action": {"status": 500, "headers": {"X-Num": 5}}}, {"action": {"status": 500, "headers": "x"}},
    {"action": {"delay_ms": "slow"}}, [1],
])
def test_bad_rule_is_400(emu, rule):
    resp = emu.control("POST", "rules", rule)
    assert resp.status_code == 400, resp.text
    assert ok(emu.control("GET", "rules")) == {"rules": []}
    assert emu.get("https://app.datadoghq.eu/account/login").status_code == 200


# ---- minted codes -----------------------------------------------------------------------------------

def test_mint_codes(emu):
    c = emu.client("EU1")
    pkce = Pkce.new()
    body = ok(emu.control("POST", "codes", {"site": "EU1", "client_id": c.id, "code_challenge": pkce.challenge,
                                            "count": 3}), 201)
    assert len(set(body["codes"])) == 3 and body["redirect_uri"] == c.redirect_uris[0]
    assert body["org_id"] == c.org_id and body["expires_in"] == 600 and body["scopes"] == c.scopes
    for code in body["codes"]:
        form = {"grant_type": "authorization_code", "client_id": c.id, "client_secret": c.secret, "code": code,
                "redirect_uri": c.redirect_uris[0], "code_verifier": pkce.verifier}
        resp = emu.post(emu.token_url("EU1"), data=form)
        assert resp.status_code == 200 and resp.json()["scope"] == " ".join(c.scopes)
        assert emu.post(emu.token_url("EU1"), data=form).status_code == 400


def test_mint_codes_options_and_expiry(emu):
    c = emu.client("EU1", "published")
    org = emu.org("EU1", "customer")
    pkce = Pkce.new()
    body = ok(emu.control("POST", "codes", {"site": "EU1", "client_id": c.id, "code_challenge": pkce.challenge,
                                            "org_id": org.id, "scopes": ["hosts_read"],
                                            "redirect_uri": c.redirect_uris[0]}), 201)
    assert body["user_id"] == emu.user("EU1", "multiorg").id or body["user_id"] == emu.user("EU1", "customer").id
    emu.advance(601)
    form = {"grant_type": "authorization_code", "client_id": c.id, "client_secret": c.secret,
            "code": body["codes"][0], "redirect_uri": c.redirect_uris[0], "code_verifier": pkce.verifier}
    assert emu.post(emu.token_url("EU1"), data=form).status_code == 400


@pytest.mark.parametrize("change", [
    {"site": "XX"}, {"site": "AP2"}, {"client_id": "nope"}, {"redirect_uri": "https://evil.example/cb"},
    {"org_id": "nope"}, {"user_id": "nope"}, {"scopes": ["org_management"]}, {"scopes": "hosts_read"},
    {"code_challenge": "short"}, {"code_challenge_method": "plain"}, {"count": 0}, {"count": 10001},
    {"count": "5"}, {"org_customer": True},
])
def test_mint_codes_bad_input_is_400(emu, change):
    c = emu.client("EU1")
    body = {"site": "EU1", "client_id": c.id, "code_challenge": Pkce.new().challenge}
    if change.pop("org_customer", False):
        change = {"org_id": emu.org("EU1", "customer").id}  # the test client is sandbox-only
    if change.get("site") == "AP2":
        change["client_id"] = emu.client("AP2").id
    body.update(change)
    resp = emu.control("POST", "codes", body)
    assert resp.status_code == 400, resp.text
    assert not emu.store.codes


# every switch has a test exercising its non-default value(s); a new switch must add one here
SWITCH_TESTS = {
    "token_error_body": [("test_emulator_token", "test_token_error_body_switch_datadog_shape")],
    "site_param": [("test_emulator_authorize", "test_site_param_switch_bare_host")],
    "refresh_rotation": [("test_emulator_token", "test_refresh_rotate_keep"),
                         ("test_emulator_token", "test_refresh_rotate_invalidate")],
    "refresh_response_omits_refresh_token": [("test_emulator_token", "test_refresh_response_omits_refresh_token_switch")],
    "expired_token_status": [("test_emulator_api", "test_expired_token_401_switch")],
    "basic_auth": [("test_emulator_token", "test_basic_auth_switch")],
    "pkce": [("test_emulator_authorize", "test_pkce_optional_switch_allows_no_challenge"),
             ("test_emulator_token", "test_pkce_downgrade_refused")],
    "callback_client_id": [("test_emulator_authorize", "test_callback_client_id_switch")],
    "site_picker": [("test_emulator_authorize", "test_site_picker_not_shown_with_session_or_when_switched_off")],
    "revoke_foreign_token": [("test_emulator_token", "test_revoke_foreign_token_switch")],
    "face": [("test_emulator_face", "test_second_face_login_on_signin_placeholders_only"),
             ("test_emulator_face", "test_second_face_consent_unlabelled_list_and_other_buttons")],
    "remember_consent": [("test_emulator_face", "test_remember_consent_skips_the_page_the_second_time")],
    "absent_endpoints": [("test_emulator_face", "test_absent_endpoints_answer_404")],
    "error_response_mode": [("test_emulator_face", "test_error_response_mode_fragment_for_deny")],
}


def test_every_switch_has_a_test():
    import importlib
    assert set(SWITCH_TESTS) == set(SWITCHES)
    for tests in SWITCH_TESTS.values():
        for module, name in tests:
            assert callable(getattr(importlib.import_module(module), name))


def test_code_age_expires_one_code_only(emu):
    """codes/age: one code past its lifetime, the clock (and every other code) untouched, so a test
    that needs an expired code is safe beside others under xdist."""
    aged, other = authorize(emu), authorize(emu)
    body = ok(emu.control("POST", "codes/age", {"code": aged.code, "seconds": 601}))
    assert body["aged"] and body["age"] > 600
    assert emu.control("GET", "state").json()["clock_offset"] == 0
    assert redeem(emu, aged).json()["error"] == "invalid_grant"
    assert redeem(emu, other).status_code == 200


@pytest.mark.parametrize("body,status", [({"code": "nope", "seconds": 1}, 404), ({"seconds": 1}, 404)])
def test_code_age_unknown_code(emu, body, status):
    assert emu.control("POST", "codes/age", body).status_code == status
