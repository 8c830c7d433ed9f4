"""Token endpoint, code exchange: the token answer, the error answers, the PKCE verifier, the
authorization code (replay, binding, expiry) and client authentication.

Sources: Datadog's troubleshooting and endpoint pages (DD-*), RFC 6749 (OAuth 2.0), RFC 7636 (PKCE).
Each check returns None when the requirement holds, or a one-line failure message that never
contains a secret value.
"""
from __future__ import annotations

import re

from harness.checks._helpers import error_body_kind, error_text, estimate_token_bits, refusal
from harness.checks.registry import CHARACTERIZE, SHOULD, check

DD_BAD_CODE = "Invalid code or code verifier"  # troubleshooting: "OAuth with PKCE"
DD_MISMATCHING_REDIRECT = "Mismatching redirect URI"  # troubleshooting + FAQ
# RFC 6749 §5.2 error codes, plus RFC 7009 §2.2.1 and the §4.1.2.1 codes servers reuse on this endpoint
RFC_TOKEN_ERRORS = ("invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                    "unsupported_grant_type", "invalid_scope", "unsupported_token_type", "server_error",
                    "temporarily_unavailable")
# RFC 6749 §5.2: error and error_description use %x20-21 / %x23-5B / %x5D-7E only (no '"' and no '\')
_RFC_ERROR_CHARS = re.compile(r'^[\x20-\x21\x23-\x5b\x5d-\x7e]*$')


# ---- the token answer ----------------------------------------------------------------------------

@check("RFC6749-5.1", "token response is 200 JSON")
def token_ok(ex) -> str | None:
    if ex.status != 200:
        return f"status {ex.status}: {ex.response_body[:200].decode('utf-8', 'replace')}"
    if not isinstance(ex.json, dict):
        return f"body is not a JSON object (Content-Type {ex.header('content-type')!r})"
    return None


@check("RFC6749-5.1", "token response has access_token, token_type Bearer, refresh_token")
def token_fields(body: dict) -> str | None:
    problems = []
    if not isinstance(body.get("access_token"), str) or not body.get("access_token"):
        problems.append("access_token missing")
    if str(body.get("token_type", "")).lower() != "bearer":
        problems.append(f"token_type {body.get('token_type')!r}")
    if not isinstance(body.get("refresh_token"), str) or not body.get("refresh_token"):
        problems.append("refresh_token missing")
    return "; ".join(problems) or None


@check("DD-ENDPOINTS-TTL", "expires_in is an integer near 3600 (1 hour)")
def token_expires_in(body: dict) -> str | None:
    value = body.get("expires_in")
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expires_in is {value!r} ({type(value).__name__})"
    return None if 3000 <= value <= 3600 else f"expires_in is {value}"


@check("RFC6749-5.1", "token response is Cache-Control: no-store")
def token_no_store(ex) -> str | None:
    cc = ex.header("cache-control") or ""
    return None if "no-store" in cc else f"Cache-Control is {cc!r}"


@check("RFC6749-5.1", "token response is labelled Content-Type: application/json")
def token_content_type(ex) -> str | None:
    # RFC 6749 §5.1: "using the application/json media type"; a charset parameter is fine
    ct = ex.header("content-type")
    if not ct:
        return "no Content-Type header"
    return None if ct.split(";")[0].strip().lower() == "application/json" else f"Content-Type is {ct!r}"


@check("RFC6749-5.1", "token response carries Pragma: no-cache", SHOULD)
def token_pragma_no_cache(ex) -> str | None:
    # RFC 6749 §5.1 asks for it beside no-store; RFC 9111 deprecates Pragma, so only a warning
    pragma = ex.header("pragma")
    if pragma is None:
        return "no Pragma header"
    return None if "no-cache" in pragma.lower() else f"Pragma is {pragma!r}"


@check("RFC6749-3.3", "the token's scope string equals the client's scopes")
def token_scope(body: dict, configured: tuple[str, ...]) -> str | None:
    scope = body.get("scope")
    if scope is None:
        return "scope missing (allowed by RFC 6749 when unchanged; Datadog sends it)"
    got = scope.split()
    extra = sorted(set(got) - set(configured))
    missing = sorted(set(configured) - set(got))
    return f"extra {extra}, missing {missing}" if extra or missing else None


@check("RFC6749-10.10", "tokens and codes are long and random enough (>= 128 bits, estimated)", SHOULD)
def token_entropy(value: str, what: str = "token") -> str | None:
    if not isinstance(value, str) or not value:
        return f"{what} is missing"
    bits, how = estimate_token_bits(value)
    return None if bits >= 128 else f"{what}: about {bits:.0f} bits ({how})"


# ---- the request method ---------------------------------------------------------------------------

@check("RFC6749-3.2", "the token endpoint refuses a GET request (the client MUST use POST) and issues no token")
def token_get_refused(ex) -> str | None:
    body = ex.json if isinstance(ex.json, dict) else {}
    issued = [k for k in ("access_token", "refresh_token") if body.get(k)]
    if 200 <= ex.status < 300 or issued:
        return f"served the GET with {ex.status}" + (f" and {', '.join(issued)}" if issued else "")
    if 400 <= ex.status < 500:
        return None
    return f"answered {ex.status}, expected 405 or another 4xx refusal"


# ---- PKCE ----------------------------------------------------------------------------------------

@check("RFC7636-4.6", "a wrong or missing code_verifier is refused with invalid_grant")
def pkce_verifier_refused(ex, missing: bool = False) -> str | None:
    # RFC 7636 §4.6 names invalid_grant for a mismatch; a missing verifier may be invalid_request (oauthlib)
    return refusal(ex, (400,), ("invalid_grant", "invalid_request") if missing else ("invalid_grant",))


@check("DD-TROUBLESHOOT-PKCE", "a failed PKCE exchange answers 400 'Invalid code or code verifier'")
def dd_invalid_code_text(ex) -> str | None:
    return refusal(ex, (400,), text=DD_BAD_CODE)


# ---- the authorization code ----------------------------------------------------------------------

@check("RFC6749-4.1.2", "a redeemed authorization code cannot be redeemed again")
def code_replay_refused(ex) -> str | None:
    return refusal(ex, (400,), ("invalid_grant",))


@check("RFC6749-4.1.2", "tokens issued for a replayed code are revoked", SHOULD)
def replayed_code_tokens_revoked(probe_ex, what: str = "access token") -> str | None:
    if 200 <= probe_ex.status < 300:
        return f"the first exchange's {what} still works after the replay ({probe_ex.status})"
    if probe_ex.status not in (400, 401, 403):
        return f"the first exchange's {what} answered {probe_ex.status}, neither working nor refused"
    return None


@check("RFC6749-4.1.2", "of concurrent redemptions of one code exactly one succeeds")
def single_concurrent_winner(statuses: list[int]) -> str | None:
    wins = sum(1 for s in statuses if s == 200)
    if wins == 1:
        return None
    return f"{wins} of {len(statuses)} concurrent redemptions succeeded (statuses {sorted(statuses)})"


@check("RFC6749-4.1.3", "a code is bound to the client it was issued to")
def code_bound_to_client(ex) -> str | None:
    return refusal(ex, (400, 401), ("invalid_grant", "invalid_client", "unauthorized_client"))


@check("RFC6749-4.1.3", "a code is bound to the redirect_uri of its authorization request")
def code_bound_to_redirect_uri(ex) -> str | None:
    return refusal(ex, (400,), ("invalid_grant", "invalid_request"))


@check("DD-TROUBLESHOOT-MISMATCHING-REDIRECT", "a redirect URI mismatch answers 'Mismatching redirect URI'")
def dd_mismatching_redirect_text(ex) -> str | None:
    return refusal(ex, (400,), text=DD_MISMATCHING_REDIRECT)


@check("RFC6749-4.1.2", "an expired authorization code is refused with invalid_grant")
def expired_code_refused(ex) -> str | None:
    return refusal(ex, (400,), ("invalid_grant",))


# ---- client authentication -----------------------------------------------------------------------

@check("DD-ENDPOINTS-CLIENT-SECRET", "a confidential client without its client_secret gets 401 Unauthorized")
def missing_secret_is_401(ex) -> str | None:
    return refusal(ex, (401,))


@check("RFC6749-5.2", "a failed client authentication is refused with invalid_client")
def client_auth_refused(ex) -> str | None:
    return refusal(ex, (400, 401), ("invalid_client",))


@check("RFC6749-5.2", "a failed client authentication answers 401", SHOULD)
def client_auth_401(ex) -> str | None:
    return None if ex.status == 401 else f"answered {ex.status} (RFC 6749 §5.2 allows 400 for client_secret_post)"


# ---- error answers -------------------------------------------------------------------------------

@check("RFC6749-5.2", "the error answer has the expected status and error")
def oauth_error(ex, status: int | tuple[int, ...], errors: tuple[str, ...] = (), text: str | None = None) -> str | None:
    statuses = (status,) if isinstance(status, int) else status
    body = ex.json
    problems = []
    if ex.status not in statuses:
        problems.append(f"status {ex.status}, expected {'/'.join(map(str, statuses))}")
    flat = error_text(body) if body is not None else ex.response_body.decode("utf-8", "replace")
    if errors and not any(e in flat for e in errors):
        problems.append(f"error is {flat[:160]!r}, expected one of {list(errors)}")
    if text and text.lower() not in flat.lower():
        problems.append(f"body lacks {text!r}: {flat[:160]!r}")
    return "; ".join(problems) or None


@check("RFC6749-5.2", "an unknown grant_type is refused with unsupported_grant_type")
def unsupported_grant_type_refused(ex) -> str | None:
    return refusal(ex, (400,), ("unsupported_grant_type",))


@check("RFC6749-5.2", "the error answer is a well-formed RFC 6749 or Datadog {\"errors\": [...]} body")
def error_body_well_formed(ex) -> str | None:
    kind = error_body_kind(ex)
    body = ex.json
    if kind == "rfc":
        problems = []
        error = body.get("error")
        if not isinstance(error, str) or error not in RFC_TOKEN_ERRORS:
            problems.append(f"error {error!r} is not an RFC 6749 §5.2 code")
        for key in ("error", "error_description"):
            value = body.get(key)
            if value is None and key == "error_description":
                continue
            if not isinstance(value, str):
                problems.append(f"{key} is {type(value).__name__}, not a string")
            elif not _RFC_ERROR_CHARS.match(value):
                bad = sorted({c for c in value if not _RFC_ERROR_CHARS.match(c)})
                problems.append(f"{key} has characters outside %x20-21/%x23-5B/%x5D-7E: {bad[:5]!r}")
        uri = body.get("error_uri")
        if uri is not None and not (isinstance(uri, str) and re.match(r"^https?://\S+$", uri)):
            problems.append(f"error_uri {uri!r} is not a URI")
        return "; ".join(problems) or None
    if kind == "datadog":
        errors = body.get("errors")
        if not isinstance(errors, list) or not errors:
            return f"errors is {type(errors).__name__}{'' if errors else ' (empty)'}, not a non-empty list"
        if not all(isinstance(e, str) and e.strip() or isinstance(e, dict) and e.get("detail") for e in errors):
            return "errors holds something other than messages"
        return None
    return f"{kind} body ({ex.header('content-type')!r}): {ex.response_body[:80]!r}"


@check("RFC6749-5.2", "the token endpoint uses one error body shape throughout", CHARACTERIZE)
def error_shape_consistent(kinds: dict[str, str]) -> str | None:
    shapes = sorted(set(kinds.values()))
    if len(shapes) <= 1:
        return None
    return "mixed shapes: " + ", ".join(f"{case}={kind}" for case, kind in sorted(kinds.items()))


# ---- client-secret rotation --------------------------------------------------------------------------

@check("DD-PUBLISH-ROTATION", "a client-secret rotation leaves the token answers as they were (fields, token_type, "
                              "expires_in, scope)")
def token_answers_unchanged(before: dict, after: dict) -> str | None:
    """`before` / `after`: a token answer's shape, no values (suites/rotation/test_rotation.py `_shape`)."""
    changed = [f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in sorted(set(before) | set(after))
               if before.get(key) != after.get(key)]
    return "changed with the rotation: " + "; ".join(changed) if changed else None
