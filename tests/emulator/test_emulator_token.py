"""Back channel (API host): the token endpoint (code and refresh grants) and revocation."""
from __future__ import annotations

import base64
import json

import pytest

from emukit import Pkce, authorize, redeem, refresh, revoke, tokens

BAD_CODE = "Invalid code or code verifier"


def rfc_error(resp, status, error, description=None):
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["error"] == error, body
    if description is not None:
        assert body["error_description"] == description
    assert resp.headers["cache-control"] == "no-store"
    return body


# ---- authorization_code grant ------------------------------------------------------------------

def test_token_response_fields(emu):
    flow = authorize(emu)
    resp = redeem(emu, flow)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600 and isinstance(body["expires_in"], int)
    assert body["scope"] == " ".join(emu.client("EU1").scopes)
    assert body["access_token"] != body["refresh_token"]


def test_json_body_accepted(emu):
    flow = authorize(emu)
    resp = redeem(emu, flow, json=True)
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer"


def test_form_body_with_charset_accepted(emu):
    flow = authorize(emu)
    from urllib.parse import urlencode
    resp = emu.post(emu.token_url("EU1"), content=urlencode(flow.token_body()),
                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert resp.status_code == 200


def test_alias_v2_token_path(emu):
    flow = authorize(emu)
    resp = redeem(emu, flow, alias=True)
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "multipart/form-data; boundary=x", None])
def test_wrong_content_type_gives_invalid_code(emu, ctype):
    flow = authorize(emu)
    headers = {"Content-Type": ctype} if ctype else {}
    resp = emu.post(emu.token_url("EU1"), content=json.dumps(flow.token_body()).encode(), headers=headers)
    rfc_error(resp, 400, "invalid_grant", BAD_CODE)
    # the code was not consumed by the unreadable request
    assert redeem(emu, flow).status_code == 200


def test_missing_client_secret_is_401(emu):
    flow = authorize(emu)
    resp = redeem(emu, flow, client_secret=None)
    rfc_error(resp, 401, "invalid_client")
    assert redeem(emu, flow).status_code == 200  # a failed client authentication does not burn the code


def test_empty_client_secret_is_401(emu):
    rfc_error(redeem(emu, authorize(emu), client_secret=""), 401, "invalid_client")


def test_wrong_client_secret_is_401_invalid_client(emu):
    body = rfc_error(redeem(emu, authorize(emu), client_secret="ddcs_wrong"), 401, "invalid_client")
    assert body["error_description"]


@pytest.mark.parametrize("client_id", [None, "", "00000000-0000-0000-0000-000000000000"])
def test_missing_or_unknown_client_id_is_401(emu, client_id):
    rfc_error(redeem(emu, authorize(emu), client_id=client_id), 401, "invalid_client")


def test_other_sites_client_is_unknown_here(emu):
    us3 = emu.client("US3")
    rfc_error(redeem(emu, authorize(emu), client_id=us3.id, client_secret=us3.secret), 401, "invalid_client")


@pytest.mark.parametrize("verifier", ["wrong" * 10, None, "", "a" * 42, "a" * 129, "short"],
                         ids=["wrong", "missing", "empty", "42", "129", "short"])
def test_wrong_verifier_refused(emu, verifier):
    resp = redeem(emu, authorize(emu), code_verifier=verifier)
    rfc_error(resp, 400, "invalid_grant", BAD_CODE)


def test_verifier_of_another_flow_refused(emu):
    a, b = authorize(emu), authorize(emu)
    rfc_error(redeem(emu, a, code_verifier=b.pkce.verifier), 400, "invalid_grant", BAD_CODE)


@pytest.mark.parametrize("code", ["not-a-code", "", None])
def test_bad_code(emu, code):
    resp = redeem(emu, authorize(emu), code=code)
    if code:
        rfc_error(resp, 400, "invalid_grant", BAD_CODE)
    else:
        rfc_error(resp, 400, "invalid_request")


def test_code_is_single_use(emu):
    flow = authorize(emu)
    first = redeem(emu, flow)
    assert first.status_code == 200
    rfc_error(redeem(emu, flow), 400, "invalid_grant", BAD_CODE)
    # a replayed code revokes what it issued (RFC 6749 §4.1.2)
    access = first.json()["access_token"]
    assert emu.get(emu.api("EU1", "/api/v1/dashboard"), headers=emu.bearer(access)).status_code == 403


def test_concurrent_double_redemption(emu):
    flow = authorize(emu)
    url = emu.token_url("EU1")
    body = flow.token_body()
    results = emu.gather(*[("POST", url, {"data": body})] * 2)
    assert sorted(r.status_code for r in results) == [200, 400]


def test_concurrent_redemption_of_many_codes(emu):
    flows = [authorize(emu) for _ in range(5)]
    calls = [("POST", emu.token_url("EU1"), {"data": f.token_body()}) for f in flows for _ in range(3)]
    results = emu.gather(*calls)
    assert sum(r.status_code == 200 for r in results) == 5
    assert sum(r.status_code == 400 for r in results) == 10


def test_code_bound_to_client(emu):
    flow = authorize(emu)
    pub = emu.client("EU1", "published")
    rfc_error(redeem(emu, flow, client_id=pub.id, client_secret=pub.secret), 400, "invalid_grant", BAD_CODE)


def test_code_bound_to_redirect_uri(emu):
    flow = authorize(emu)
    other = emu.client("EU1").redirect_uris[1]
    rfc_error(redeem(emu, flow, redirect_uri=other), 400, "invalid_request", "Mismatching redirect URI.")
    rfc_error(redeem(emu, flow, redirect_uri=None), 400, "invalid_request", "Mismatching redirect URI.")
    rfc_error(redeem(emu, flow, redirect_uri=flow.redirect_uri + "/"), 400, "invalid_request")
    assert redeem(emu, flow).status_code == 200


def test_code_bound_to_site(emu):
    flow = authorize(emu, client="published")
    resp = emu.post(emu.token_url("US3"), data=flow.token_body())  # same published credentials, other region
    rfc_error(resp, 400, "invalid_grant", BAD_CODE)


def test_code_expires_after_ten_minutes(emu):
    flow = authorize(emu)
    emu.advance(601)
    rfc_error(redeem(emu, flow), 400, "invalid_grant", BAD_CODE)


def test_code_valid_just_before_ten_minutes(emu):
    flow = authorize(emu)
    emu.advance(599)
    assert redeem(emu, flow).status_code == 200


def test_pkce_downgrade_refused(emu):
    emu.behaviour(pkce="optional")
    flow = authorize(emu, pkce=None)
    resp = redeem(emu, flow, code_verifier=Pkce.new().verifier)
    rfc_error(resp, 400, "invalid_grant", BAD_CODE)


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit", "AUTHORIZATION_CODE"])
def test_unsupported_grant_type(emu, grant_type):
    rfc_error(redeem(emu, authorize(emu), grant_type=grant_type), 400, "unsupported_grant_type")


def test_missing_grant_type(emu):
    rfc_error(redeem(emu, authorize(emu), grant_type=None), 400, "invalid_request")


def test_duplicate_parameter_refused(emu):
    flow = authorize(emu)
    from urllib.parse import urlencode
    body = urlencode(flow.token_body()) + "&code=" + flow.code
    resp = emu.post(emu.token_url("EU1"), content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    rfc_error(resp, 400, "invalid_request")


def test_extra_parameters_tolerated(emu):
    # Keep sends stale redirect_uri/code_verifier/code on refresh; extra params must be harmless
    flow = authorize(emu)
    assert redeem(emu, flow, resource="https://x", foo="bar").status_code == 200


def test_token_error_body_switch_datadog_shape(emu):
    emu.behaviour(token_error_body="datadog")
    resp = redeem(emu, authorize(emu), code="nope")
    assert resp.status_code == 400
    assert resp.json() == {"errors": [f"invalid_grant - {BAD_CODE}"]}
    resp = redeem(emu, authorize(emu), client_secret="wrong")
    assert resp.status_code == 401 and resp.json()["errors"][0].startswith("invalid_client - ")


def _basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_basic_auth_switch(emu):
    flow = authorize(emu)
    c = flow.client
    # default: the secret belongs in the body; Basic alone is not client authentication
    resp = emu.post(emu.token_url("EU1"), data=flow.token_body(client_secret=None, client_id=None),
                    headers=_basic(c.id, c.secret))
    rfc_error(resp, 401, "invalid_client")
    emu.behaviour(basic_auth=True)
    resp = emu.post(emu.token_url("EU1"), data=flow.token_body(client_secret=None, client_id=None),
                    headers=_basic(c.id, c.secret))
    assert resp.status_code == 200, resp.text
    flow2 = authorize(emu)
    resp = emu.post(emu.token_url("EU1"), data=flow2.token_body(client_secret=None, client_id=None),
                    headers=_basic(c.id, "wrong"))
    body = rfc_error(resp, 401, "invalid_client")
    assert resp.headers["www-authenticate"].startswith("Basic")
    resp = emu.post(emu.token_url("EU1"), data=flow2.token_body(), headers={"Authorization": "Basic !!!notb64"})
    rfc_error(resp, 401, "invalid_client")
    assert body
    # revoke authenticates the same way
    access = emu.post(emu.token_url("EU1"), data=flow2.token_body()).json()["access_token"]
    resp = emu.post("https://api.datadoghq.eu/oauth2/v1/revoke", data={"token": access}, headers=_basic(c.id, c.secret))
    assert resp.status_code == 200
    assert emu.get(emu.api("EU1", "/api/v1/dashboard"), headers=emu.bearer(access)).status_code == 403


# ---- refresh_token grant ----------------------------------------------------------------------

def _dashboards(emu, access, site="EU1"):
    return emu.get(emu.api(site, "/api/v1/dashboard"), headers=emu.bearer(access)).status_code


def test_refresh_default_returns_same_refresh_token(emu):
    t = tokens(emu)
    c = emu.client("EU1")
    resp = refresh(emu, "EU1", c, t["refresh_token"])
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["refresh_token"] == t["refresh_token"]
    assert body["access_token"] != t["access_token"]
    assert body["expires_in"] == 3600 and body["scope"] == t["scope"] and body["token_type"] == "Bearer"
    assert _dashboards(emu, body["access_token"]) == 200
    assert refresh(emu, "EU1", c, t["refresh_token"]).status_code == 200  # reusable


def test_refresh_rotate_keep(emu):
    emu.behaviour(refresh_rotation="rotate_keep")
    t = tokens(emu)
    c = emu.client("EU1")
    new = refresh(emu, "EU1", c, t["refresh_token"]).json()["refresh_token"]
    assert new != t["refresh_token"]
    assert refresh(emu, "EU1", c, t["refresh_token"]).status_code == 200  # the old one still works
    assert refresh(emu, "EU1", c, new).status_code == 200


def test_refresh_rotate_invalidate(emu):
    emu.behaviour(refresh_rotation="rotate_invalidate")
    t = tokens(emu)
    c = emu.client("EU1")
    new = refresh(emu, "EU1", c, t["refresh_token"]).json()["refresh_token"]
    assert new != t["refresh_token"]
    rfc_error(refresh(emu, "EU1", c, t["refresh_token"]), 400, "invalid_grant")
    assert refresh(emu, "EU1", c, new).status_code == 200


def test_refresh_response_omits_refresh_token_switch(emu):
    emu.behaviour(refresh_response_omits_refresh_token=True)
    t = tokens(emu)
    body = refresh(emu, "EU1", emu.client("EU1"), t["refresh_token"]).json()
    assert "refresh_token" not in body and body["access_token"]
    assert "refresh_token" in tokens(emu)  # the code exchange still returns one


def test_refresh_after_access_token_expiry(emu):
    t = tokens(emu)
    emu.advance(3601)
    assert _dashboards(emu, t["access_token"]) == 403
    resp = refresh(emu, "EU1", emu.client("EU1"), t["refresh_token"])
    assert resp.status_code == 200
    assert _dashboards(emu, resp.json()["access_token"]) == 200


def test_refresh_token_never_expires(emu):
    t = tokens(emu)
    emu.advance(10 * 365 * 86400)
    assert refresh(emu, "EU1", emu.client("EU1"), t["refresh_token"]).status_code == 200


def test_access_token_lives_one_hour(emu):
    t = tokens(emu)
    emu.advance(3599)
    assert _dashboards(emu, t["access_token"]) == 200
    emu.advance(2)
    assert _dashboards(emu, t["access_token"]) == 403


def test_refresh_scope_narrowing_and_widening(emu):
    t = tokens(emu)
    c = emu.client("EU1")
    narrow = refresh(emu, "EU1", c, t["refresh_token"], scope="dashboards_read")
    assert narrow.status_code == 200
    rfc_error(refresh(emu, "EU1", c, t["refresh_token"], scope="org_management"), 400, "invalid_scope")


def test_refresh_bound_to_client_and_site(emu):
    t = tokens(emu, client="published")
    pub = emu.client("EU1", "published")
    test = emu.client("EU1")
    rfc_error(refresh(emu, "EU1", test, t["refresh_token"]), 400, "invalid_grant")
    rfc_error(refresh(emu, "US3", emu.client("US3", "published"), t["refresh_token"]), 400, "invalid_grant")
    assert refresh(emu, "EU1", pub, t["refresh_token"]).status_code == 200


def test_refresh_errors(emu):
    c = emu.client("EU1")
    rfc_error(refresh(emu, "EU1", c, "ddrt_unknown"), 400, "invalid_grant")
    rfc_error(refresh(emu, "EU1", c, None), 400, "invalid_request")
    t = tokens(emu)
    body = {"grant_type": "refresh_token", "client_id": c.id, "refresh_token": t["refresh_token"]}
    rfc_error(emu.post(emu.token_url("EU1"), data=body), 401, "invalid_client")
    rfc_error(emu.post(emu.token_url("EU1"), data={**body, "client_secret": "x"}), 401, "invalid_client")


def test_refresh_with_access_token_refused(emu):
    t = tokens(emu)
    rfc_error(refresh(emu, "EU1", emu.client("EU1"), t["access_token"]), 400, "invalid_grant")


def test_refresh_via_json_and_alias(emu):
    t = tokens(emu)
    c = emu.client("EU1")
    body = {"grant_type": "refresh_token", "client_id": c.id, "client_secret": c.secret,
            "refresh_token": t["refresh_token"]}
    assert emu.post(emu.token_url("EU1", alias=True), json=body).status_code == 200


# ---- revoke (RFC 7009) ----------------------------------------------------------------------------

def test_revoke_unknown_token_is_200(emu):
    resp = revoke(emu, "EU1", emu.client("EU1"), "ddat_never_issued")
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"


def test_revoke_missing_token_is_400(emu):
    rfc_error(revoke(emu, "EU1", emu.client("EU1"), None), 400, "invalid_request")


@pytest.mark.parametrize("secret", [None, "wrong"])
def test_revoke_checks_client_authentication(emu, secret):
    t = tokens(emu)
    rfc_error(revoke(emu, "EU1", emu.client("EU1"), t["access_token"], secret=secret), 401, "invalid_client")
    assert _dashboards(emu, t["access_token"]) == 200


def test_revoked_access_token_is_refused(emu):
    t = tokens(emu)
    assert revoke(emu, "EU1", emu.client("EU1"), t["access_token"], token_type_hint="access_token").status_code == 200
    assert _dashboards(emu, t["access_token"]) == 403
    # revoking the access token alone leaves the refresh token working
    resp = refresh(emu, "EU1", emu.client("EU1"), t["refresh_token"])
    assert resp.status_code == 200 and _dashboards(emu, resp.json()["access_token"]) == 200


def test_revoked_refresh_token_cascades(emu):
    t = tokens(emu)
    c = emu.client("EU1")
    second = refresh(emu, "EU1", c, t["refresh_token"]).json()["access_token"]
    assert revoke(emu, "EU1", c, t["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert _dashboards(emu, t["access_token"]) == 403
    assert _dashboards(emu, second) == 403
    rfc_error(refresh(emu, "EU1", c, t["refresh_token"]), 400, "invalid_grant")


def test_revoke_with_wrong_hint_still_revokes(emu):
    t = tokens(emu)
    assert revoke(emu, "EU1", emu.client("EU1"), t["access_token"], token_type_hint="refresh_token").status_code == 200
    assert _dashboards(emu, t["access_token"]) == 403


def test_revoke_twice_is_200(emu):
    t = tokens(emu)
    c = emu.client("EU1")
    assert revoke(emu, "EU1", c, t["refresh_token"]).status_code == 200
    assert revoke(emu, "EU1", c, t["refresh_token"]).status_code == 200


def test_revoke_json_body(emu):
    t = tokens(emu)
    c = emu.client("EU1")
    resp = emu.post("https://api.datadoghq.eu/oauth2/v1/revoke",
                    json={"client_id": c.id, "client_secret": c.secret, "token": t["access_token"]})
    assert resp.status_code == 200 and _dashboards(emu, t["access_token"]) == 403


def test_revoke_at_another_site_does_nothing(emu):
    t = tokens(emu, client="published")
    assert revoke(emu, "US3", emu.client("US3", "published"), t["access_token"]).status_code == 200
    assert _dashboards(emu, t["access_token"]) == 200


def test_revoke_foreign_token_switch(emu):
    t = tokens(emu)  # issued to the test client
    pub = emu.client("EU1", "published")
    assert revoke(emu, "EU1", pub, t["access_token"]).status_code == 200
    assert _dashboards(emu, t["access_token"]) == 200  # ignored: not this client's token
    emu.behaviour(revoke_foreign_token="reject")
    rfc_error(revoke(emu, "EU1", pub, t["access_token"]), 400, "unauthorized_client")
    assert _dashboards(emu, t["access_token"]) == 200
