"""harness/checks_back.py: every back-channel check can pass and can fail, with one informative line."""
from __future__ import annotations

import json
import re
import secrets

import httpx
import pytest
from checkcases import assert_cases_cover, checks_of, assert_fails_one_line, assert_holds, case_params

from harness.checks import back_channel as checks_back
from harness.checks.registry import CHARACTERIZE, MUST, REGISTRY, SHOULD
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
RANDOM = "ddat_" + "Zx9_-aQ3kLmN0pRsTuVwXyZ12b4c6d8eFgHiJ7oPqW5"  # 43 base64url chars after the prefix

CASES: dict[str, dict[str, list]] = {
    "pkce_verifier_refused": {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(400, dd(f"invalid_grant - {BAD_CODE}"))),
                 case(ex(400, rfc("invalid_request", "Code verifier required.")), missing=True)],
        "fail": [case(ex(200, TOKEN)), case(ex(500, dd("Internal Server Error"))),
                 case(ex(400, rfc("invalid_request", "Code verifier required."))),
                 case(ex(401, rfc("invalid_grant")))],
    },
    "dd_invalid_code_text": {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(400, dd(f"invalid_grant - {BAD_CODE}"))),
                 case(ex(400, raw=b"Invalid code or code verifier", headers={"Content-Type": "text/plain"}))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_grant", "Code expired."))),
                 case(ex(415, rfc("invalid_request", BAD_CODE))), case(ex(500, raw=b""))],
    },
    "code_replay_refused": {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(400, dd("invalid_grant - Code reused")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request"))), case(ex(401, rfc("invalid_grant")))],
    },
    "replayed_code_tokens_revoked": {
        "pass": [case(FORBIDDEN), case(ex(401, dd("Unauthorized"))), case(ex(400, rfc("invalid_grant")), "refresh")],
        "fail": [case(ex(200, {"data": {}})), case(ex(200, TOKEN), "refresh token"), case(ex(500, raw=b""))],
    },
    "single_concurrent_winner": {
        "pass": [case([200, 400]), case([400, 200]), case([200, 400, 400])],
        "fail": [case([200, 200]), case([400, 400]), case([500, 400]), case([])],
    },
    "code_bound_to_client": {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(401, rfc("invalid_client"))),
                 case(ex(400, dd("unauthorized_client - not yours")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request"))), case(ex(403, rfc("invalid_grant")))],
    },
    "code_bound_to_redirect_uri": {
        "pass": [case(ex(400, rfc("invalid_request", "Mismatching redirect URI."))),
                 case(ex(400, rfc("invalid_grant"))),
                 case(ex(400, dd("invalid_request - Mismatching redirect URI.")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_client"))), case(ex(302, raw=b""))],
    },
    "dd_mismatching_redirect_text": {
        "pass": [case(ex(400, dd("invalid_request - Mismatching redirect URI."))),
                 case(ex(400, rfc("invalid_request", "Mismatching redirect URI.")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request", "Missing redirect URI."))),
                 case(ex(401, rfc("invalid_request", "Mismatching redirect URI.")))],
    },
    "expired_code_refused": {
        "pass": [case(ex(400, rfc("invalid_grant", BAD_CODE))), case(ex(400, dd("invalid_grant - expired")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request")))],
    },
    "missing_secret_is_401": {
        "pass": [case(ex(401, rfc("invalid_client"))), case(ex(401, dd("Unauthorized")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_client"))), case(ex(400, rfc("invalid_grant")))],
    },
    "client_auth_refused": {
        "pass": [case(ex(401, rfc("invalid_client", "Client authentication failed."))),
                 case(ex(400, dd("invalid_client - bad secret")))],
        "fail": [case(ex(200, TOKEN)), case(ex(401, dd("Unauthorized"))), case(ex(400, rfc("invalid_grant")))],
    },
    "client_auth_401": {
        "pass": [case(ex(401, rfc("invalid_client")))],
        "fail": [case(ex(400, rfc("invalid_client"))), case(ex(200, TOKEN))],
    },
    "unsupported_grant_type_refused": {
        "pass": [case(ex(400, rfc("unsupported_grant_type"))), case(ex(400, dd("unsupported_grant_type - no")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_request"))), case(ex(401, rfc("invalid_client")))],
    },
    "error_body_well_formed": {
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
    "error_shape_consistent": {
        "pass": [case({"a": "rfc", "b": "rfc"}), case({"a": "datadog"}), case({})],
        "fail": [case({"invalid_grant": "rfc", "invalid_client": "datadog"})],
    },
    "token_entropy": {
        "pass": [case(RANDOM), case(secrets.token_urlsafe(32), "refresh token"), case("3f9a" * 2 + "c1d2e3b4" * 3),
                 case("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0." + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9d")],
        "fail": [case(""), case(None), case("ddat_" + "a" * 40), case("ab" * 30), case("123456789012"),
                 case("ddat_Zx9aQ3kLmN0pRsT")],
    },
    "refresh_bound_to_client": {
        "pass": [case(ex(400, rfc("invalid_grant", "Invalid refresh token."))), case(ex(401, rfc("invalid_client")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_scope")))],
    },
    "refresh_needs_client_auth": {
        "pass": [case(ex(401, rfc("invalid_client"))), case(ex(400, dd("invalid_request - Missing client_secret")))],
        "fail": [case(ex(200, TOKEN)), case(ex(400, rfc("invalid_grant")))],
    },
    "refresh_scope_not_escalated": {
        "pass": [case(ex(400, rfc("invalid_scope")), "logs_read_data"),
                 case(ex(200, TOKEN), "logs_read_data"),
                 case(ex(200, {k: v for k, v in TOKEN.items() if k != "scope"}), "logs_read_data")],
        "fail": [case(ex(200, {**TOKEN, "scope": "metrics_read logs_read_data"}), "logs_read_data"),
                 case(ex(500, raw=b""), "logs_read_data"),
                 case(ex(400, rfc("unsupported_grant_type")), "logs_read_data")],
    },
    "revoke_bad_client_refused": {
        "pass": [case(ex(401, rfc("invalid_client"))), case(ex(400, dd("invalid_request - bad params")))],
        "fail": [case(ex(200, raw=b"")), case(ex(400, rfc("unsupported_token_type")))],
    },
    "token_still_valid": {
        "pass": [case(ex(200, {"data": {}})), case(ex(200, TOKEN))],
        "fail": [case(FORBIDDEN), case(ex(400, rfc("invalid_grant")))],
    },
    "revoke_foreign_refused": {
        "pass": [case(ex(400, rfc("unauthorized_client"))), case(ex(401, rfc("invalid_client")))],
        "fail": [case(ex(200, raw=b""))],
    },
    "api_forbidden_documented": {
        "pass": [case(FORBIDDEN), case(ex(401, dd("Unauthorized")), allow_401=True),
                 case(ex(403, dd("Forbidden", "extra detail")))],
        "fail": [case(ex(200, {"data": {}})), case(ex(401, dd("Unauthorized"))),
                 case(ex(401, raw=b"Unauthorized"), allow_401=True), case(ex(403, raw=b"<html>Forbidden</html>")),
                 case(ex(403, {"error": "Forbidden"})), case(ex(403, dd("Not allowed"))), case(ex(404, dd("Not found")))],
    },
    "subdomain_host_tls_failure": {
        "pass": [case(TLS_ERROR), case(TargetUnavailable(TLS_ERROR)),
                 case(httpx.ConnectError("Hostname/IP does not match certificate's altnames"))],
        "fail": [case(ex(200, {"data": {}})), case(FORBIDDEN),
                 case(TargetUnavailable("GET https://api.x.datadoghq.eu/: ConnectError: [Errno -2] Name or service "
                                        "not known")),
                 case("ReadTimeout: timed out")],
    },
}


def test_every_back_channel_check_has_cases():
    assert_cases_cover(CASES, checks_back.__name__)


@pytest.mark.parametrize("name,args,kwargs", case_params(CASES, "pass"))
def test_check_passes(name, args, kwargs):
    assert_holds(name, args, kwargs)


@pytest.mark.parametrize("name,args,kwargs", case_params(CASES, "fail"))
def test_check_fails_with_one_line(name, args, kwargs):
    assert_fails_one_line(name, args, kwargs)


def test_registry_metadata():
    for name in checks_of(checks_back.__name__):
        c = REGISTRY[name]
        assert c.severity in (MUST, SHOULD, CHARACTERIZE)
        assert re.fullmatch(r"RFC\d+-[\d.]+|DD-[A-Z-]+", c.requirement), c.requirement
        assert c.link.startswith("https://") and c.title


def test_severities_follow_the_sources():
    severity = {name: REGISTRY[name].severity for name in checks_of(checks_back.__name__)}
    assert severity["replayed_code_tokens_revoked"] == SHOULD  # RFC 6749 §4.1.2 "SHOULD"
    assert severity["client_auth_401"] == SHOULD  # RFC 6749 §5.2: 401 is a MAY for client_secret_post
    assert severity["token_entropy"] == SHOULD  # a black-box length estimate cannot prove entropy
    assert severity["revoke_foreign_refused"] == CHARACTERIZE and severity["error_shape_consistent"] == CHARACTERIZE
    for name in ("pkce_verifier_refused", "dd_invalid_code_text", "code_replay_refused", "single_concurrent_winner",
                 "missing_secret_is_401", "api_forbidden_documented", "subdomain_host_tls_failure",
                 "token_still_valid", "refresh_scope_not_escalated"):
        assert severity[name] == MUST, name
    assert REGISTRY["dd_invalid_code_text"].link.endswith("#troubleshooting")
    assert REGISTRY["missing_secret_is_401"].link == "https://docs.datadoghq.com/extend/authorization/oauth2_endpoints/"


def test_messages_name_the_problem_and_never_the_secret():
    assert checks_back.code_replay_refused(ex(200, TOKEN)) == "accepted with 200, expected 400"
    assert checks_back.pkce_verifier_refused(ex(500, {"errors": ["Internal Server Error"]})) == \
        "answered 500, expected 400; error is 'Internal Server Error', expected invalid_grant"
    assert "2 of 2 concurrent redemptions succeeded" in checks_back.single_concurrent_winner([200, 200])
    message = checks_back.token_entropy("ddat_" + "a" * 40, "access token")
    assert message.startswith("access token: about 0 bits") and "a" * 10 not in message
    assert "'logs_read_data'" in checks_back.refresh_scope_not_escalated(
        ex(200, {**TOKEN, "scope": "logs_read_data"}), "logs_read_data")
    assert "do not include the org subdomain" in checks_back.subdomain_host_tls_failure(ex(200, {}))
    assert "expected 403 (or 401)" in checks_back.api_forbidden_documented(ex(200, {}), allow_401=True)
    assert "%x20-21" in checks_back.error_body_well_formed(ex(400, rfc("invalid_grant", 'a"b')))


def test_error_body_kind():
    assert checks_back.error_body_kind(ex(400, rfc("invalid_grant"))) == "rfc"
    assert checks_back.error_body_kind(ex(400, dd("Forbidden"))) == "datadog"
    assert checks_back.error_body_kind(ex(400, raw=b"")) == "empty"
    assert checks_back.error_body_kind(ex(400, raw=b"<html>")) == "not json"
    assert checks_back.error_body_kind(ex(400, ["x"])) == "other"


@pytest.mark.parametrize("token,low,high", [
    (RANDOM, 200, 260),  # prefix stripped, 43 chars x 6 bits at most
    (secrets.token_hex(16), 120, 128.1),
    (secrets.token_urlsafe(16), 120, 132.1),
    ("ab" * 30, 0, 61),  # repetitive: bounded by its two distinct characters
    ("x" * 64, 0, 0),
])
def test_estimate_token_bits(token, low, high):
    bits, how = checks_back.estimate_token_bits(token)
    assert low <= bits <= high, (bits, how)
