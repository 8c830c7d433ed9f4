"""harness/checks/{token,refresh,revoke,api}.py: every back-channel check (token endpoint, refresh
grant, revocation, Datadog's API) can pass and can fail, with one informative line."""
from __future__ import annotations

import json
import re
import secrets

import httpx
import pytest
from checkcases import assert_cases_cover, checks_of, assert_fails_one_line, assert_holds, case_params

from harness.checks import api, refresh, revoke, token
from harness.checks._helpers import error_body_kind, estimate_token_bits
from harness.checks.registry import CHARACTERIZE, MUST, SHOULD
from core.errors import TargetUnavailable
from harness.http.exchange import Exchange


def ex(status: int = 200, body=None, headers: dict | None = None, raw: bytes | None = None) -> Exchange:
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return Exchange(method="POST", url="https://api.datadoghq.com/oauth2/v1/token",
                    request_headers={"Accept": "application/json"}, request_body=b"grant_type=x",
                    status=status, response_headers=headers or {"Content-Type": "application/json"},
                    response_body=content, elapsed_ms=3.0)


def case(*args, **kwargs):
    return args, kwargs


def rfc(error: str, description: str | None = None) -> dict:
    return {"error": error, **({"error_description": description} if description is not None else {})}


def dd(*messages) -> dict:
    return {"errors": list(messages)}


TOKEN = {"access_token": "ddat_x", "token_type": "bearer", "refresh_token": "ddrt_y", "expires_in": 3600,
         "scope": "metrics_read dashboards_read"}
BAD_CODE = "Invalid code or code verifier"
FORBIDDEN = ex(403, dd("Forbidden"))
TLS_ERROR = ("GET https://api.bigcorp.datadoghq.eu/api/v2/users/me: ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] "
             "certificate verify failed: Hostname mismatch, certificate is not valid for 'api.bigcorp.datadoghq.eu'.")
RATE = {"x-ratelimit-limit": "100", "x-ratelimit-period": "60", "x-ratelimit-remaining": "99",
        "x-ratelimit-reset": "10"}
RANDOM = "ddat_" + "Zx9_-aQ3kLmN0pRsTuVwXyZ12b4c6d8eFgHiJ7oPqW5"  # 43 base64url chars after the prefix

CASES: dict = {
    # ---- token endpoint: the answer
    token.token_ok: {
        "pass": [case(ex(200, TOKEN, {"Content-Type": "application/json"}))],
        "fail": [case(ex(400, {"error": "invalid_grant"})),
                 case(ex(200, raw=b"<html>login</html>", headers={"Content-Type": "text/html"})),
                 case(ex(200, ["not", "an", "object"])), case(ex(500, raw=b""))],
    },
    token.token_fields: {
        "pass": [case(TOKEN), case({**TOKEN, "token_type": "Bearer"})],
        "fail": [case({}), case({**TOKEN, "token_type": "mac"}), case({**TOKEN, "access_token": ""}),
                 case({k: v for k, v in TOKEN.items() if k != "refresh_token"}), case({**TOKEN, "access_token": 5})],
    },
    token.token_expires_in: {
        "pass": [case({"expires_in": 3600}), case({"expires_in": 3599})],
        "fail": [case({}), case({"expires_in": "3600"}), case({"expires_in": True}), case({"expires_in": 3600.0}),
                 case({"expires_in": 7200}), case({"expires_in": 60})],
    },
    token.token_no_store: {
        "pass": [case(ex(headers={"Cache-Control": "no-store"})), case(ex(headers={"cache-control": "no-store, private"}))],
        "fail": [case(ex(headers={})), case(ex(headers={"Cache-Control": "max-age=60"}))],
    },
    token.token_content_type: {
        "pass": [case(ex(headers={"Content-Type": "application/json"})),
                 case(ex(headers={"content-type": "application/json; charset=utf-8"})),
                 case(ex(headers={"Content-Type": "Application/JSON"}))],
        "fail": [case(ex(headers={"Cache-Control": "no-store"})),  # no Content-Type at all
                 case(ex(headers={"Content-Type": "text/plain; charset=utf-8"})),
                 case(ex(headers={"Content-Type": "text/html"})),
                 case(ex(headers={"Content-Type": "application/jsonp"})),
                 case(ex(headers={"Content-Type": "application/x-www-form-urlencoded"}))],
    },
    token.token_pragma_no_cache: {
        "pass": [case(ex(headers={"Pragma": "no-cache"})), case(ex(headers={"pragma": "No-Cache"}))],
        "fail": [case(ex(headers={})), case(ex(headers={"Pragma": "public"}))],
    },
    token.token_get_refused: {
        "pass": [case(ex(405, dd("Method Not Allowed"))), case(ex(400, rfc("invalid_request"))),
                 case(ex(401, rfc("invalid_client"))), case(ex(404, raw=b""))],
        "fail": [case(ex(200, TOKEN)), case(ex(204)),
                 case(ex(400, {**rfc("invalid_request"), "access_token": "ddat_x"})),
                 case(ex(500, raw=b"")), case(ex(302, raw=b""))],
    },
    token.token_scope: {
        "pass": [case({"scope": "b a"}, ("a", "b"))],
        "fail": [case({}, ("a",)), case({"scope": "a"}, ("a", "b")), case({"scope": "a b c"}, ("a", "b")),
                 case({"scope": ""}, ("a",))],
    },
    token.oauth_error: {
        "pass": [case(ex(400, {"error": "invalid_grant", "error_description": "code expired"}), 400, ("invalid_grant",)),
                 case(ex(401, {"errors": ["invalid_client - bad secret"]}), (400, 401), ("invalid_client",),
                      text="BAD SECRET"),
                 case(ex(400, raw=b"unsupported_grant_type"), 400, ("unsupported_grant_type",)),
                 case(ex(404, {"errors": [{"detail": "nope"}]}), 404)],
        "fail": [case(ex(200, TOKEN), 400, ("invalid_grant",)),
                 case(ex(400, {"error": "invalid_request"}), 400, ("invalid_grant", "invalid_client")),
                 case(ex(400, {"error": "invalid_grant"}), 400, ("invalid_grant",), text="expired"),
                 case(ex(401, {"error": "invalid_client"}), (400,))],
    },
    # ---- token endpoint: PKCE, the code, client authentication, error answers
    token.pkce_verifier_refused: {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(400, dd(f"invalid_grant - {BAD_CODE}"))),
                 case(ex(400, rfc("invalid_request", "Code verifier required.")), missing=True)],
        "fail": [case(ex(200, TOKEN)), case(ex(500, dd("Internal Server Error"))),
                 case(ex(400, rfc("invalid_request", "Code verifier required."))),
                 case(ex(401, rfc("invalid_grant")))],
    },
    token.dd_invalid_code_text: {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(400, dd(f"invalid_grant - {BAD_CODE}"))),
                 case(ex(400, raw=b"Invalid code or code verifier", headers={"Content-Type": "text/plain"}))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_grant", "Code expired."))),
                 case(ex(415, rfc("invalid_request", BAD_CODE))), case(ex(500, raw=b""))],
    },
    token.code_replay_refused: {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(400, dd("invalid_grant - Code reused")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request"))), case(ex(401, rfc("invalid_grant")))],
    },
    token.replayed_code_tokens_revoked: {
        "pass": [case(FORBIDDEN), case(ex(401, dd("Unauthorized"))), case(ex(400, rfc("invalid_grant")), "refresh")],
        "fail": [case(ex(200, {"data": {}})), case(ex(200, TOKEN), "refresh token"), case(ex(500, raw=b""))],
    },
    token.single_concurrent_winner: {
        "pass": [case([200, 400]), case([400, 200]), case([200, 400, 400])],
        "fail": [case([200, 200]), case([400, 400]), case([500, 400]), case([])],
    },
    token.code_bound_to_client: {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(401, rfc("invalid_client"))),
                 case(ex(400, dd("unauthorized_client - not yours")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request"))), case(ex(403, rfc("invalid_grant")))],
    },
    token.code_bound_to_redirect_uri: {
        "pass": [case(ex(400, rfc("invalid_request", "Mismatching redirect URI."))),
                 case(ex(400, rfc("invalid_grant"))),
                 case(ex(400, dd("invalid_request - Mismatching redirect URI.")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_client"))), case(ex(302, raw=b""))],
    },
    token.dd_mismatching_redirect_text: {
        "pass": [case(ex(400, dd("invalid_request - Mismatching redirect URI."))),
                 case(ex(400, rfc("invalid_request", "Mismatching redirect URI.")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request", "Missing redirect URI."))),
                 case(ex(401, rfc("invalid_request", "Mismatching redirect URI.")))],
    },
    token.expired_code_refused: {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(400, dd("invalid_grant - expired")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request")))],
    },
    token.missing_secret_is_401: {
        "pass": [case(ex(401, rfc("invalid_client"))), case(ex(401, dd("Unauthorized")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_client"))), case(ex(400, rfc("invalid_grant")))],
    },
    token.client_auth_refused: {
        "pass": [case(ex(401, rfc("invalid_client", "Client authentication failed."))),
                 case(ex(400, dd("invalid_client - bad secret")))],
        "fail": [case(ex(200, TOKEN)), case(ex(401, dd("Unauthorized"))), case(ex(400, rfc("invalid_grant")))],
    },
    token.client_auth_401: {
        "pass": [case(ex(401, rfc("invalid_client")))],
        "fail": [case(ex(400, rfc("invalid_client"))), case(ex(200, TOKEN))],
    },
    token.unsupported_grant_type_refused: {
        "pass": [case(ex(400, rfc("unsupported_grant_type"))), case(ex(400, dd("unsupported_grant_type - no")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request"))), case(ex(401, rfc("invalid_client")))],
    },
    token.error_body_well_formed: {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(400, rfc("invalid_client"))),
                 case(ex(400, {**rfc("invalid_scope", "no"), "error_uri": "https://docs.datadoghq.com/x"})),
                 case(ex(400, dd("invalid_grant - Invalid code or code verifier"))),
                 case(ex(400, {"errors": [{"detail": "bad"}]}))],
        "fail": [case(ex(400, rfc("bad_thing", "x"))), case(ex(400, rfc("invalid_grant", 'say "no"'))),
                 case(ex(400, rfc("invalid_grant", "back\\slash"))), case(ex(400, rfc("invalid_grant", "caf\u00e9"))),
                 case(ex(400, rfc("invalid_grant", "line\nbreak"))), case(ex(400, {"error": 5})),
                 case(ex(400, {**rfc("invalid_grant"), "error_uri": "not a uri"})),
                 case(ex(400, dd())), case(ex(400, {"errors": "Forbidden"})), case(ex(400, {"errors": [""]})),
                 case(ex(400, raw=b"<html>oops</html>", headers={"Content-Type": "text/html"})),
                 case(ex(400, raw=b"")), case(ex(400, {"message": "no"}))],
    },
    token.error_shape_consistent: {
        "pass": [case({"a": "rfc", "b": "rfc"}), case({"a": "datadog"}), case({})],
        "fail": [case({"invalid_grant": "rfc", "invalid_client": "datadog"})],
    },
    token.token_entropy: {
        "pass": [case(RANDOM), case(secrets.token_urlsafe(32), "refresh token"), case("3f9a" * 2 + "c1d2e3b4" * 3),
                 case("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0." + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9d")],
        "fail": [case(""), case(None), case("ddat_" + "a" * 40), case("ab" * 30), case("123456789012"),
                 case("ddat_Zx9aQ3kLmN0pRsT")],
    },
    # ---- refresh grant
    refresh.refresh_bound_to_client: {
        "pass": [case(ex(400, rfc("invalid_grant", "Invalid refresh token."))), case(ex(401, rfc("invalid_client")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_scope")))],
    },
    refresh.refresh_needs_client_auth: {
        "pass": [case(ex(401, rfc("invalid_client"))), case(ex(400, dd("invalid_request - Missing client_secret")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_grant")))],
    },
    refresh.refresh_scope_not_escalated: {
        "pass": [case(ex(400, rfc("invalid_scope")), "logs_read_data"),
                 case(ex(200, TOKEN), "logs_read_data"),
                 case(ex(200, {k: v for k, v in TOKEN.items() if k != "scope"}), "logs_read_data")],
        "fail": [case(ex(200, {**TOKEN, "scope": "metrics_read logs_read_data"}), "logs_read_data"),
                 case(ex(500, raw=b""), "logs_read_data"),
                 case(ex(400, rfc("unsupported_grant_type")), "logs_read_data")],
    },
    refresh.refresh_answer_fields: {
        "pass": [case(TOKEN), case({k: v for k, v in TOKEN.items() if k != "refresh_token"}),
                 case({**TOKEN, "token_type": "Bearer"})],
        "fail": [case({}), case({k: v for k, v in TOKEN.items() if k != "token_type"}),
                 case({**TOKEN, "token_type": "mac"}),
                 case({**TOKEN, "access_token": ""}), case({**TOKEN, "refresh_token": ""}),
                 case({**TOKEN, "refresh_token": None})],
    },
    refresh.refresh_scope_within_grant: {
        "pass": [case(TOKEN, ("metrics_read", "dashboards_read")),
                 case(TOKEN, ["dashboards_read", "metrics_read", "x"]),
                 case({"scope": "metrics_read"}, ("metrics_read", "dashboards_read")),  # narrower is allowed
                 case({k: v for k, v in TOKEN.items() if k != "scope"}, ("metrics_read",))],
        "fail": [case({**TOKEN, "scope": "metrics_read dashboards_read org_management"},
                      ("metrics_read", "dashboards_read")),
                 case({"scope": "a"}, ()), case({"scope": ["metrics_read"]}, ("metrics_read",))],
    },
    # ---- revocation
    revoke.revoke_missing_token_refused: {
        "pass": [case(ex(400, rfc("invalid_request", "Missing token parameter."))),
                 case(ex(400, dd("invalid_request - Missing token parameter.")))],
        "fail": [case(ex(200, raw=b"")), case(ex(401, rfc("invalid_client"))),
                 case(ex(400, rfc("unsupported_token_type"))),
                 case(ex(500, raw=b""))],
    },
    revoke.revoke_answered_200: {"pass": [case(ex(200, {}))], "fail": [case(ex(400, rfc("invalid_request"))), case(ex(503, None))]},
    revoke.revoke_bad_client_refused: {
        "pass": [case(ex(401, rfc("invalid_client"))), case(ex(400, dd("invalid_request - bad params")))],
        "fail": [case(ex(200, raw=b"")), case(ex(400, rfc("unsupported_token_type")))],
    },
    revoke.token_still_valid: {
        "pass": [case(ex(200, {"data": {}})), case(ex(200, TOKEN))],
        "fail": [case(FORBIDDEN), case(ex(400, rfc("invalid_grant")))],
    },
    revoke.revoke_foreign_refused: {
        "pass": [case(ex(400, rfc("unauthorized_client"))), case(ex(401, rfc("invalid_client")))],
        "fail": [case(ex(200, raw=b""))],
    },
    # ---- API
    api.api_forbidden: {
        "pass": [case(ex(403, {"errors": ["Forbidden"]})), case(ex(401, {"errors": ["Unauthorized"]}))],
        "fail": [case(ex(200, {"data": []})), case(ex(401, {"errors": ["Unauthorized"]}), allow_401=False),
                 case(ex(403, raw=b"<html>Forbidden</html>")), case(ex(403, {"error": "Forbidden"}))],
    },
    api.api_success: {
        "pass": [case(ex(200, {"data": []}), json_key="data"), case(ex(204)), case(ex(202, {"status": "ok"}), 202),
                 case(ex(200, [{"id": 1}]), json_key="data")],
        "fail": [case(ex(403, {"errors": ["Forbidden"]})), case(ex(200, {"x": 1}), 201),
                 case(ex(200, raw=b"<html>"), json_key="data"), case(ex(200, {"x": 1}), json_key="data")],
    },
    api.endpoint_present: {
        # a 404 with Datadog's error body on a path that names a resource: that resource is gone, the endpoint is there
        "pass": [case(ex(200, {"data": []})), case(ex(403, {"errors": ["Forbidden"]})),
                 case(ex(404, {"errors": ["Not found"]}), names_a_resource=True)],
        "fail": [case(ex(404, raw=b"<html>Not Found</html>")), case(ex(404, {"errors": ["Not found"]})),
                 case(ex(404), names_a_resource=True)],
    },
    api.rate_limit_headers: {
        "pass": [case(ex(headers=RATE)), case(ex(headers={k.upper(): v for k, v in RATE.items()}))],
        "fail": [case(ex(headers={})),
                 case(ex(headers={k: v for k, v in RATE.items() if k != "x-ratelimit-reset"}))],
    },
    api.api_forbidden_documented: {
        "pass": [case(FORBIDDEN), case(ex(401, dd("Unauthorized")), allow_401=True),
                 case(ex(403, dd("Forbidden", "extra detail")))],
        "fail": [case(ex(200, {"data": {}})), case(ex(401, dd("Unauthorized"))),
                 case(ex(401, raw=b"Unauthorized"), allow_401=True), case(ex(403, raw=b"<html>Forbidden</html>")),
                 case(ex(403, {"error": "Forbidden"})), case(ex(403, dd("Not allowed"))), case(ex(404, dd("Not found")))],
    },
    api.validate_unknown_key_refused: {
        "pass": [case(FORBIDDEN), case(ex(403, dd("API key is invalid")))],
        "fail": [case(ex(200, {"valid": False})), case(ex(200, {"valid": True})), case(ex(401, dd("Unauthorized"))),
                 case(ex(403, raw=b"<html>Forbidden</html>")), case(ex(403, {"error": "Forbidden"})),
                 case(ex(404, dd("Not found")))],
    },
    api.subdomain_host_tls_failure: {
        "pass": [case(TLS_ERROR), case(TargetUnavailable(TLS_ERROR)),
                 case(httpx.ConnectError("Hostname/IP does not match certificate's altnames"))],
        "fail": [case(ex(200, {"data": {}})), case(FORBIDDEN),
                 case(TargetUnavailable("GET https://api.x.datadoghq.eu/: ConnectError: [Errno -2] Name or service "
                                        "not known")),
                 case("ReadTimeout: timed out")],
    },
    # ---- the marketplace API key, the data it carries, a refresh's new token, a secret rotation
    api.api_key_created: {
        "pass": [case(ex(201, {"data": {"id": "k1", "attributes": {"key": "abc", "name": "X OAuth Client API Key"}}}))],
        "fail": [case(ex(409, dd("already exists"))), case(ex(201, {"data": {"id": "k1", "attributes": {}}})),
                 case(ex(201, {"data": {"attributes": {"key": "abc"}}})), case(ex(201, raw=b"created")),
                 case(ex(201, {"data": []}))],
    },
    api.api_key_valid: {
        "pass": [case(ex(200, {"valid": True}))],
        "fail": [case(ex(200, {"valid": False})), case(ex(200, {"valid": "true"})), case(ex(200, raw=b"ok")),
                 case(FORBIDDEN)],
    },
    api.submitted_data_returned: {
        "pass": [case(ex(200, {"series": [{"pointlist": [[1, 42]]}]}), "metric point"),
                 case([{"message": "ddoauth probe x"}], "log line"), case(True, "log line")],
        "fail": [case(None, "metric point"), case([], "log line"), case(False, "log line")],
    },
    refresh.refresh_new_access_token: {
        "pass": [case(TOKEN, "ddat_old")],
        "fail": [case(TOKEN, TOKEN["access_token"]), case({k: v for k, v in TOKEN.items() if k != "access_token"},
                                                          "ddat_old"), case({**TOKEN, "access_token": ""}, "")],
    },
    token.token_answers_unchanged: {
        "pass": [case({"fields": ["access_token"], "expires_in": 3600}, {"fields": ["access_token"], "expires_in": 3600})],
        "fail": [case({"fields": ["access_token"], "expires_in": 3600}, {"fields": ["access_token"], "expires_in": 60}),
                 case({"token_type": "bearer"}, {}), case({}, {"scope": ["metrics_read"]})],
    },
}


BACK_CHANNEL = (token, refresh, revoke, api)


def test_every_back_channel_check_has_cases():
    assert_cases_cover(CASES, *BACK_CHANNEL)


@pytest.mark.parametrize("check,args,kwargs", case_params(CASES, "pass"))
def test_check_passes(check, args, kwargs):
    assert_holds(check, args, kwargs)


@pytest.mark.parametrize("check,args,kwargs", case_params(CASES, "fail"))
def test_check_fails_with_one_line(check, args, kwargs):
    assert_fails_one_line(check, args, kwargs)


def test_registry_metadata():
    for c in checks_of(*BACK_CHANNEL):
        assert c.severity in (MUST, SHOULD, CHARACTERIZE)
        assert re.fullmatch(r"RFC\d+-[\d.]+|DD-[A-Z-]+", c.requirement), c.requirement
        assert c.link.startswith("https://") and c.title


def test_severities_follow_the_sources():
    assert token.replayed_code_tokens_revoked.severity == SHOULD  # RFC 6749 §4.1.2 "SHOULD"
    assert token.client_auth_401.severity == SHOULD  # RFC 6749 §5.2: 401 is a MAY for client_secret_post
    assert token.token_entropy.severity == SHOULD  # a black-box length estimate cannot prove entropy
    assert revoke.revoke_foreign_refused.severity == CHARACTERIZE
    assert token.error_shape_consistent.severity == CHARACTERIZE
    assert api.rate_limit_headers.severity == SHOULD
    assert token.token_pragma_no_cache.severity == SHOULD  # RFC 9111 deprecates Pragma; no-store is the MUST
    assert token.token_get_refused.requirement == "RFC6749-3.2"
    assert revoke.revoke_missing_token_refused.requirement == "RFC7009-2.2.1"
    assert api.validate_unknown_key_refused.link.endswith("/validate-api-key/")
    for c in (token.pkce_verifier_refused, token.dd_invalid_code_text, token.code_replay_refused,
              token.single_concurrent_winner, token.missing_secret_is_401, api.api_forbidden_documented,
              api.subdomain_host_tls_failure, revoke.token_still_valid, refresh.refresh_scope_not_escalated,
              token.token_ok, token.token_fields, api.api_success, token.token_content_type, token.token_no_store,
              token.token_get_refused, refresh.refresh_answer_fields, refresh.refresh_scope_within_grant,
              revoke.revoke_missing_token_refused, api.validate_unknown_key_refused):
        assert c.severity == MUST, c.name
    assert token.dd_invalid_code_text.link.endswith("#troubleshooting")
    assert token.missing_secret_is_401.link == "https://docs.datadoghq.com/extend/authorization/oauth2_endpoints/"


def test_messages_name_the_problem_and_never_the_secret():
    assert token.code_replay_refused(ex(200, TOKEN)) == "accepted with 200, expected 400"
    assert token.pkce_verifier_refused(ex(500, {"errors": ["Internal Server Error"]})) == \
        "answered 500, expected 400; error is 'Internal Server Error', expected invalid_grant"
    assert "2 of 2 concurrent redemptions succeeded" in token.single_concurrent_winner([200, 200])
    message = token.token_entropy("ddat_" + "a" * 40, "access token")
    assert message.startswith("access token: about 0 bits") and "a" * 10 not in message
    assert "'logs_read_data'" in refresh.refresh_scope_not_escalated(
        ex(200, {**TOKEN, "scope": "logs_read_data"}), "logs_read_data")
    assert "do not include the org subdomain" in api.subdomain_host_tls_failure(ex(200, {}))
    assert "expected 403 (or 401)" in api.api_forbidden_documented(ex(200, {}), allow_401=True)
    assert "%x20-21" in token.error_body_well_formed(ex(400, rfc("invalid_grant", 'a"b')))
    assert token.token_content_type(ex(headers={"Content-Type": "text/plain"})) == "Content-Type is 'text/plain'"
    assert token.token_get_refused(ex(200, TOKEN)) == "served the GET with 200 and access_token, refresh_token"
    assert "ddat_x" not in token.token_get_refused(ex(200, TOKEN))
    assert refresh.refresh_scope_within_grant({"scope": "a org_management"}, ("a",)) == \
        "the refreshed scope adds ['org_management'], never granted"
    assert api.validate_unknown_key_refused(ex(200, {"valid": False})).startswith("accepted an unknown key with 200")


def test_error_body_kind():
    assert error_body_kind(ex(400, rfc("invalid_grant"))) == "rfc"
    assert error_body_kind(ex(400, dd("Forbidden"))) == "datadog"
    assert error_body_kind(ex(400, raw=b"")) == "empty"
    assert error_body_kind(ex(400, raw=b"<html>")) == "not json"
    assert error_body_kind(ex(400, ["x"])) == "other"


@pytest.mark.parametrize("value,low,high", [
    (RANDOM, 200, 260),  # prefix stripped, 43 chars x 6 bits at most
    (secrets.token_hex(16), 120, 128.1),
    ("0q3kLmN_pRsTuVwXyZ12b4", 120, 132.1),  # 16 random bytes in base64url (fixed: a random one can look prefixed)
    ("aBcDeFgHiJ_kLmNoPqRsTuVwXyZ0123", 180, 192.1),  # 24 random bytes that start like a prefix: all counted
    ("ab" * 30, 0, 61),  # repetitive: bounded by its two distinct characters
    ("x" * 64, 0, 0),
])
def test_estimate_token_bits(value, low, high):
    bits, how = estimate_token_bits(value)
    assert low <= bits <= high, (bits, how)
