"""Datadog's API with an OAuth token or the API key: refusals, data flow per scope, rate-limit
headers and the API host (an org subdomain in it fails TLS, as Datadog's troubleshooting page says)."""
from __future__ import annotations

import re

from harness.checks.registry import SHOULD, check
from harness.http.exchange import absent_error, endpoint_absent

DD_SUBDOMAIN_ADVICE = ("Datadog: do not include the org subdomain in the API host; call https://api.<domain> "
                       "(for example datadoghq.eu, not bigcorp.datadoghq.eu)")
_TLS_NAME_FAILURE = re.compile(
    r"hostname|host name|altname|not valid for|doesn't match|does not match|CERTIFICATE_VERIFY_FAILED", re.I)


# ---- refusals ------------------------------------------------------------------------------------

@check("DD-TROUBLESHOOT-FORBIDDEN", 'the API refuses with 403 {"errors":["Forbidden"]}')
def api_forbidden(ex, allow_401: bool = True) -> str | None:
    ok_status = (401, 403) if allow_401 else (403,)
    if ex.status not in ok_status:
        return f"status {ex.status}, expected {' or '.join(map(str, ok_status))}"
    body = ex.json
    if not (isinstance(body, dict) and isinstance(body.get("errors"), list)):
        return f"body is not the Datadog error envelope: {ex.response_body[:120]!r}"
    return None


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


@check("DD-VALIDATE", 'GET /api/v1/validate refuses an unknown API key with 403 {"errors": [...]}')
def validate_unknown_key_refused(ex) -> str | None:
    body = ex.json
    if ex.status != 403:
        verb = "accepted" if 200 <= ex.status < 300 else "answered"
        said = f" ({ex.response_body[:60]!r})" if 200 <= ex.status < 300 else ""
        return f"{verb} an unknown key with {ex.status}{said}, expected 403"
    if not (isinstance(body, dict) and isinstance(body.get("errors"), list)):
        return f"403 without the Datadog error envelope: {ex.response_body[:80]!r}"
    return None


# ---- data flow and rate limits -------------------------------------------------------------------

@check("DD-SCOPES-ENDPOINT", "the scope's documented endpoint exists on this target (no bare 404)")
def endpoint_present(ex, names_a_resource: bool = False) -> str | None:
    """Owned by the test that exercises the endpoint (the per-scope data flow): a documented path that
    answers 404 is absent on this target (with an id in the path: only a 404 without Datadog's JSON error
    body). Other tests that merely use the endpoint are broken with EndpointAbsent instead (suites/probes.py)."""
    if not endpoint_absent(ex, names_a_resource):
        return None
    return str(absent_error(ex))


@check("DD-SCOPES-DATAFLOW", "a granted scope lets data flow (2xx and the documented answer)")
def api_success(ex, expected_status: int | tuple[int, ...] = (200, 201, 202, 204), json_key: str | None = None) -> str | None:
    statuses = (expected_status,) if isinstance(expected_status, int) else expected_status
    if ex.status not in statuses:
        return f"{ex.brief()}: {ex.response_body[:160]!r}"
    if json_key is not None:
        body = ex.json
        if not isinstance(body, (dict, list)):
            return f"{ex.brief()}: body is not JSON ({ex.response_body[:60]!r})"
        if isinstance(body, dict) and json_key not in body:
            return f"{ex.brief()}: answer lacks {json_key!r} (keys {sorted(body)[:8]})"
    return None


@check("DD-RATELIMIT", "API answers carry X-RateLimit-* headers", SHOULD)
def rate_limit_headers(ex) -> str | None:
    missing = [h for h in ("X-RateLimit-Limit", "X-RateLimit-Period", "X-RateLimit-Remaining", "X-RateLimit-Reset")
               if ex.header(h) is None]
    return f"missing {', '.join(missing)}" if missing else None


# ---- API host ------------------------------------------------------------------------------------

@check("DD-TROUBLESHOOT-SUBDOMAIN", "an org subdomain in the API host fails the TLS hostname check")
def subdomain_host_tls_failure(outcome) -> str | None:
    """`outcome` is the Exchange when the call got an answer, else the transport error (text or exception)."""
    if hasattr(outcome, "status"):
        return f"the host answered {outcome.status}: it should not exist for the API ({DD_SUBDOMAIN_ADVICE})"
    text = str(outcome)
    if _TLS_NAME_FAILURE.search(text):
        return None
    return f"failed, but not with a TLS hostname error: {text[:160]}"


# ---- the marketplace API key -----------------------------------------------------------------------

@check("DD-ENDPOINTS-APIKEY", "POST /api/v2/api_keys/marketplace creates the org's key: 201 with data.id and "
                              "data.attributes.key")
def api_key_created(ex) -> str | None:
    if ex.status != 201:
        return f"expected 201, got {ex.brief()}: {ex.response_body[:120]!r}"
    data = (ex.json or {}).get("data") if isinstance(ex.json, dict) else None
    attrs = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attrs, dict):
        return f"the answer has no data.attributes: {ex.response_body[:120]!r}"
    missing = [f for f, v in (("data.id", data.get("id")), ("data.attributes.key", attrs.get("key"))) if not v]
    return f"the answer lacks {', '.join(missing)} (attributes: {sorted(attrs)})" if missing else None


@check("DD-VALIDATE", 'GET /api/v1/validate accepts the org\'s API key: 200 {"valid": true}')
def api_key_valid(ex) -> str | None:
    body = ex.json
    if ex.status != 200:
        return f"answered {ex.status}: {ex.response_body[:120]!r}"
    if not (isinstance(body, dict) and body.get("valid") is True):
        return f"answered {ex.response_body[:120]!r}, not valid: true"
    return None


@check("DD-OAUTH-DATAFLOW", "data submitted with the org's API key comes back (a query, a log search, or "
                            "Datadog's own evidence)")
def submitted_data_returned(found, what: str) -> str | None:
    """`found`: the answer that holds the data (an Exchange, a list of entries or a bool), or None / empty."""
    if found:
        return None
    return f"the submitted {what} never came back"
