"""Back-channel checks for the negative and security suites (token, refresh, revoke, API).

Registered into :data:`harness.checks.REGISTRY` like every other check: import this module
(the suites do) and call them through ``verify("name", ...)``. Each returns None when the
requirement holds, or a one-line failure message that never contains a secret value.

Sources: Datadog's troubleshooting and endpoint pages (DD-*), RFC 6749 (OAuth 2.0),
RFC 7009 (revocation), RFC 7636 (PKCE).
"""
from __future__ import annotations

import math
import re

from harness.checks.registry import CHARACTERIZE, SHOULD, _error_text, check

DD_BAD_CODE = "Invalid code or code verifier"  # troubleshooting: "OAuth with PKCE"
DD_MISMATCHING_REDIRECT = "Mismatching redirect URI"  # troubleshooting + FAQ
DD_SUBDOMAIN_ADVICE = ("Datadog: do not include the org subdomain in the API host; call https://api.<domain> "
                       "(for example datadoghq.eu, not bigcorp.datadoghq.eu)")

# RFC 6749 §5.2 error codes, plus RFC 7009 §2.2.1 and the §4.1.2.1 codes servers reuse on this endpoint
RFC_TOKEN_ERRORS = ("invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                    "unsupported_grant_type", "invalid_scope", "unsupported_token_type", "server_error",
                    "temporarily_unavailable")
# RFC 6749 §5.2: error and error_description use %x20-21 / %x23-5B / %x5D-7E only (no '"' and no '\')
_RFC_ERROR_CHARS = re.compile(r'^[\x20-\x21\x23-\x5b\x5d-\x7e]*$')

_TLS_NAME_FAILURE = re.compile(
    r"hostname|host name|altname|not valid for|doesn't match|does not match|CERTIFICATE_VERIFY_FAILED", re.I)


# ---- helpers -------------------------------------------------------------------------------------

def _body_text(ex) -> str:
    body = ex.json
    return _error_text(body) if body is not None else ex.response_body.decode("utf-8", "replace")


def _refusal(ex, statuses: tuple[int, ...], errors: tuple[str, ...] = (), text: str | None = None) -> str | None:
    """Status in `statuses`, and (when given) one of `errors` and `text` in the error answer."""
    problems = []
    flat = _body_text(ex)
    if ex.status not in statuses:
        if 200 <= ex.status < 300:  # served: the error fields are beside the point
            return f"accepted with {ex.status}, expected {'/'.join(map(str, statuses))}"
        problems.append(f"answered {ex.status}, expected {'/'.join(map(str, statuses))}")
    if errors and not any(e in flat for e in errors):
        problems.append(f"error is {flat[:120]!r}, expected {' or '.join(errors)}")
    if text and text.lower() not in flat.lower():
        problems.append(f"body lacks {text!r}: {flat[:120]!r}")
    return "; ".join(problems) or None


def error_body_kind(ex) -> str:
    """'rfc' ({"error": ...}), 'datadog' ({"errors": [...]}), 'empty', 'not json' or 'other'."""
    if not ex.response_body:
        return "empty"
    body = ex.json
    if body is None:
        return "not json"
    if isinstance(body, dict) and "error" in body:
        return "rfc"
    if isinstance(body, dict) and "errors" in body:
        return "datadog"
    return "other"


_CHARSETS = (  # (name, pattern, alphabet size), narrowest first
    ("digits", re.compile(r"^[0-9]+$"), 10),
    ("hex", re.compile(r"^[0-9a-f]+$|^[0-9A-F]+$"), 16),
    ("alphanumeric", re.compile(r"^[A-Za-z0-9]+$"), 62),
    ("base64url", re.compile(r"^[A-Za-z0-9_-]+$"), 64),
    ("base64", re.compile(r"^[A-Za-z0-9+/]+={0,2}$"), 64),
)
_PREFIX = re.compile(r"^[A-Za-z]{2,10}[_-](?=.{16})")  # a fixed type prefix such as "ddat_"


def estimate_token_bits(token: str) -> tuple[float, str]:
    """A black-box upper estimate of a token's entropy: characters after any type prefix times the
    bits their alphabet can carry; a JWT counts its signature only (the rest is predictable)."""
    parts = token.split(".")
    if len(parts) == 3 and all(parts):
        body, kind = parts[2], "JWT signature"
    else:
        body, kind = _PREFIX.sub("", token), ""
    body = body.rstrip("=")
    distinct = len(set(body))
    alphabet, name = max(distinct, 2), "mixed charset"
    for charset, pattern, size in _CHARSETS:
        if pattern.match(body):
            alphabet, name = size, charset
            break
    estimate = len(body) * math.log2(alphabet)
    # a long value made of a few repeated characters is not random: bound it by what they can carry
    if distinct < 2:
        estimate = 0.0
    elif distinct < min(alphabet, len(body)) / 4:
        estimate = min(estimate, len(body) * math.log2(distinct))
    return estimate, f"{kind or name}, {len(body)} chars, {distinct} distinct"


# ---- token endpoint: PKCE ------------------------------------------------------------------------

@check("RFC7636-4.6", "a wrong or missing code_verifier is refused with invalid_grant")
def pkce_verifier_refused(ex, missing: bool = False) -> str | None:
    # RFC 7636 §4.6 names invalid_grant for a mismatch; a missing verifier may be invalid_request (oauthlib)
    return _refusal(ex, (400,), ("invalid_grant", "invalid_request") if missing else ("invalid_grant",))


@check("DD-TROUBLESHOOT-PKCE", "a failed PKCE exchange answers 400 'Invalid code or code verifier'")
def dd_invalid_code_text(ex) -> str | None:
    return _refusal(ex, (400,), text=DD_BAD_CODE)


# ---- token endpoint: the authorization code ----------------------------------------------------------

@check("RFC6749-4.1.2", "a redeemed authorization code cannot be redeemed again")
def code_replay_refused(ex) -> str | None:
    return _refusal(ex, (400,), ("invalid_grant",))


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
    return _refusal(ex, (400, 401), ("invalid_grant", "invalid_client", "unauthorized_client"))


@check("RFC6749-4.1.3", "a code is bound to the redirect_uri of its authorization request")
def code_bound_to_redirect_uri(ex) -> str | None:
    return _refusal(ex, (400,), ("invalid_grant", "invalid_request"))


@check("DD-TROUBLESHOOT-MISMATCHING-REDIRECT", "a redirect URI mismatch answers 'Mismatching redirect URI'")
def dd_mismatching_redirect_text(ex) -> str | None:
    return _refusal(ex, (400,), text=DD_MISMATCHING_REDIRECT)


@check("RFC6749-4.1.2", "an expired authorization code is refused with invalid_grant")
def expired_code_refused(ex) -> str | None:
    return _refusal(ex, (400,), ("invalid_grant",))


# ---- token endpoint: client authentication ----------------------------------------------------------

@check("DD-ENDPOINTS-CLIENT-SECRET", "a confidential client without its client_secret gets 401 Unauthorized")
def missing_secret_is_401(ex) -> str | None:
    return _refusal(ex, (401,))


@check("RFC6749-5.2", "a failed client authentication is refused with invalid_client")
def client_auth_refused(ex) -> str | None:
    return _refusal(ex, (400, 401), ("invalid_client",))


@check("RFC6749-5.2", "a failed client authentication answers 401", SHOULD)
def client_auth_401(ex) -> str | None:
    return None if ex.status == 401 else f"answered {ex.status} (RFC 6749 §5.2 allows 400 for client_secret_post)"


# ---- token endpoint: error answers ------------------------------------------------------------------

@check("RFC6749-5.2", "an unknown grant_type is refused with unsupported_grant_type")
def unsupported_grant_type_refused(ex) -> str | None:
    return _refusal(ex, (400,), ("unsupported_grant_type",))


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


@check("RFC6749-10.10", "tokens and codes are long and random enough (>= 128 bits, estimated)", SHOULD)
def token_entropy(value: str, what: str = "token") -> str | None:
    if not isinstance(value, str) or not value:
        return f"{what} is missing"
    bits, how = estimate_token_bits(value)
    return None if bits >= 128 else f"{what}: about {bits:.0f} bits ({how})"


# ---- refresh grant ----------------------------------------------------------------------------------

@check("RFC6749-6", "a refresh token is bound to the client it was issued to")
def refresh_bound_to_client(ex) -> str | None:
    return _refusal(ex, (400, 401), ("invalid_grant", "invalid_client", "unauthorized_client"))


@check("RFC6749-6", "a refresh without client authentication is refused")
def refresh_needs_client_auth(ex) -> str | None:
    return _refusal(ex, (400, 401), ("invalid_client", "invalid_request"))


@check("RFC6749-6", "a refresh cannot widen the scope of the grant")
def refresh_scope_not_escalated(ex, extra_scope: str) -> str | None:
    if ex.status in (400, 401):
        return _refusal(ex, (400, 401), ("invalid_scope", "invalid_request", "invalid_grant"))
    if ex.status != 200:
        return f"answered {ex.status}: neither refused nor served"
    body = ex.json if isinstance(ex.json, dict) else {}
    granted = str(body.get("scope", "")).split()
    if extra_scope in granted:
        return f"the refreshed token's scope includes {extra_scope!r}, never granted"
    return None


# ---- revocation -------------------------------------------------------------------------------------

@check("RFC7009-2.1", "revoke with bad client credentials is refused, not 200")
def revoke_bad_client_refused(ex) -> str | None:
    return _refusal(ex, (400, 401), ("invalid_client", "invalid_request"))


@check("RFC7009-2.1", "the token still works after a revocation it was not subject to")
def token_still_valid(probe_ex) -> str | None:
    if 200 <= probe_ex.status < 300:
        return None
    return f"the token no longer works: probe answered {probe_ex.status}"


@check("RFC7009-2.1", "revoking another client's token is refused", CHARACTERIZE)
def revoke_foreign_refused(ex) -> str | None:
    if ex.status in (400, 401, 403):
        return None
    return f"ignored with {ex.status} (allowed when the token stays valid)"


# ---- resource API -----------------------------------------------------------------------------------

@check("DD-TROUBLESHOOT-FORBIDDEN", 'the API refuses with 403 {"errors":["Forbidden"]}')
def api_forbidden_documented(ex, allow_401: bool = False) -> str | None:
    body = ex.json
    errors = body.get("errors") if isinstance(body, dict) else None
    if ex.status == 401 and allow_401:
        if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
            return None
        return f"401 without the Datadog error envelope: {ex.response_body[:80]!r}"
    if ex.status != 403:
        verb = "served" if 200 <= ex.status < 300 else "answered"
        return f"{verb} {ex.status}, expected 403{' (or 401)' if allow_401 else ''}"
    if not isinstance(errors, list):
        return f"403 without the Datadog error envelope: {ex.response_body[:80]!r}"
    if "Forbidden" not in errors:
        return f"403 with errors {errors[:3]!r}, expected ['Forbidden']"
    return None


@check("DD-TROUBLESHOOT-SUBDOMAIN", "an org subdomain in the API host fails the TLS hostname check")
def subdomain_host_tls_failure(outcome) -> str | None:
    """`outcome` is the Exchange when the call got an answer, else the transport error (text or exception)."""
    if hasattr(outcome, "status"):
        return f"the host answered {outcome.status}: it should not exist for the API ({DD_SUBDOMAIN_ADVICE})"
    text = str(outcome)
    if _TLS_NAME_FAILURE.search(text):
        return None
    return f"failed, but not with a TLS hostname error: {text[:160]}"


