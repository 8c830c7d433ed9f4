"""Checks: small named functions, each enforcing one requirement with an id, a link and a severity.

A check returns None when the requirement holds, or a one-line failure message. `verify()`
runs it inside one report step and applies the severity:
  MUST         -> ConformanceFailure (the test fails)
  SHOULD       -> a warning recorded on the test and in the verdict
  CHARACTERIZE -> the observation is recorded (Datadog's docs are silent): the failure message, or
                  "holds"; compared with the site's baseline (fixtures/policy.py); never fails by itself
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from core.errors import ConformanceFailure

MUST, SHOULD, CHARACTERIZE = "MUST", "SHOULD", "CHARACTERIZE"
HOLDS = "holds"  # what a CHARACTERIZE check whose expectation is met records as its observation

DD_DOCS = {
    "DD-ENDPOINTS": "https://docs.datadoghq.com/extend/authorization/oauth2_endpoints/",
    "DD-OAUTH": "https://docs.datadoghq.com/extend/authorization/oauth2_in_datadog/",
    "DD-TROUBLESHOOT": "https://docs.datadoghq.com/developers/integrations/api_integration/#troubleshooting",
    "DD-PUBLISH": "https://docs.datadoghq.com/developers/integrations/oauth_for_integrations/",
    "DD-SCOPES": "https://docs.datadoghq.com/api/latest/scopes/",
    "DD-RATELIMIT": "https://docs.datadoghq.com/api/latest/rate-limits/",
    "DD-VALIDATE": "https://docs.datadoghq.com/api/latest/authentication/validate-api-key/",
}


def requirement_link(req_id: str) -> str:
    """RFC6749-4.1.2 -> the RFC section; DD-... -> the Datadog doc page it comes from."""
    if req_id.startswith("RFC"):
        number, _, section = req_id[3:].partition("-")
        anchor = f"#section-{section}" if section else ""
        return f"https://www.rfc-editor.org/rfc/rfc{number}{anchor}"
    for prefix, url in DD_DOCS.items():
        if req_id.startswith(prefix):
            return url
    return DD_DOCS["DD-ENDPOINTS"]


@dataclass(frozen=True)
class Check:
    name: str
    requirement: str
    title: str
    severity: str
    func: Callable[..., str | None]

    @property
    def link(self) -> str:
        return requirement_link(self.requirement)


REGISTRY: dict[str, Check] = {}


def check(requirement: str, title: str, severity: str = MUST):
    def register(func: Callable[..., str | None]) -> Callable[..., str | None]:
        REGISTRY[func.__name__] = Check(func.__name__, requirement, title, severity, func)
        return func
    return register


class Recorder:
    """Where verify() reports steps, warnings and observations (the pytest layer implements it)."""

    def step(self, title: str):  # context manager
        from contextlib import nullcontext
        return nullcontext()

    def link(self, url: str, name: str) -> None: ...

    def warning(self, text: str) -> None: ...

    def observe(self, key: str, value: Any) -> None: ...


def verify(recorder: Recorder, name: str, *args, severity: str | None = None, **kwargs) -> str | None:
    c = REGISTRY[name]
    level = severity or c.severity
    with recorder.step(f"[{c.requirement}] {c.title}"):
        recorder.link(c.link, c.requirement)
        failure = c.func(*args, **kwargs)
    if failure is None:
        if level == CHARACTERIZE:  # recorded either way: the baseline flags a change in both directions
            recorder.observe(c.requirement, HOLDS)
        return None
    message = f"[{c.requirement}] {c.title}: {failure}"
    if level == MUST:
        raise ConformanceFailure(message)
    if level == SHOULD:
        recorder.warning(message)
    else:
        recorder.observe(c.requirement, failure)
    return failure


# ---- authorization endpoint (browser) ----------------------------------------------------------

@check("DD-ENDPOINTS-AUTHORIZE", "the flow reaches the redirect URI with a code")
def flow_reached_callback(result) -> str | None:
    if result.outcome != "callback":
        where = f"error page: {result.error_text}" if result.error_text else f"stopped at {result.final_url}"
        return f"no callback ({where}); pages: {' -> '.join(result.page_names())}"
    if not result.callback.get("code"):
        return f"callback without code: keys {sorted(result.callback)}"
    return None


@check("RFC6749-4.1.2", "state is echoed byte for byte on the callback")
def state_echoed(callback: dict, sent: str, where: str = "the callback") -> str | None:
    got = callback.get("state")
    if got is None:
        return f"state missing from {where}"
    return None if got == sent else f"state altered: sent {len(sent)} chars, got {len(got)} chars"


@check("DD-OAUTH-REDIRECT-DOMAIN", "the callback carries the site's domain")
def callback_domain(callback: dict, expected_domain: str) -> str | None:
    got = callback.get("domain")
    if got is None:
        return "domain missing from the callback"
    return None if got == expected_domain else f"domain is {got!r}, expected {expected_domain!r}"


@check("DD-OAUTH-REDIRECT-PARAMS", "the callback carries site, dd_oid and dd_org_name", SHOULD)
def callback_org_params(callback: dict) -> str | None:
    missing = [k for k in ("site", "dd_oid", "dd_org_name") if not callback.get(k)]
    return f"missing {', '.join(missing)}" if missing else None


@check("RFC9700-2.1.2", "no token travels in the callback URL")
def no_token_in_callback(callback: dict) -> str | None:
    leaked = [k for k in ("access_token", "refresh_token", "id_token", "token") if k in callback]
    return f"callback carries {', '.join(leaked)}" if leaked else None


@check("RFC6749-3.1", "parameters appear once on the callback")
def callback_no_duplicates(pairs: list[tuple[str, str]]) -> str | None:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    return f"repeated: {', '.join(dupes)}" if dupes else None


@check("RFC9700-2.3", "the consent page lists exactly the client's scopes")
def consent_scopes_exact(shown: list[str] | None, configured: tuple[str, ...]) -> str | None:
    if shown is None:
        return "no consent page was shown"
    extra = sorted(set(shown) - set(configured))
    missing = sorted(set(configured) - set(shown))
    if extra or missing:
        return f"extra {extra or '[]'}, missing {missing or '[]'}"
    return None


@check("RFC9700-4.12", "the redirect after consent is not HTTP 307", SHOULD)
def redirect_not_307(status: int | None) -> str | None:
    return "307 replays the consent POST to the client" if status == 307 else None


@check("RFC6749-10.13", "consent page cannot be framed", SHOULD)
def consent_not_frameable(headers: dict | None) -> str | None:
    if headers is None:
        return "consent page headers not captured"
    xfo = headers.get("x-frame-options", "").strip().upper()
    csp = headers.get("content-security-policy", "")
    m = re.search(r"frame-ancestors\s+([^;]*)", csp)
    if m:
        sources = m.group(1).split()
        if any(src in ("*", "https:", "http:") for src in sources):
            return f"CSP frame-ancestors allows anyone: {m.group(1).strip()!r}"
        return None
    if xfo in ("DENY", "SAMEORIGIN"):
        return None
    return "neither X-Frame-Options nor CSP frame-ancestors"


@check("RFC9700-4.2", "consent page is not cached (Cache-Control: no-store)", SHOULD)
def consent_no_store(headers: dict | None) -> str | None:
    if headers is None:
        return "consent page headers not captured"
    return None if "no-store" in headers.get("cache-control", "") else \
        f"Cache-Control is {headers.get('cache-control')!r}"


# ---- token endpoint --------------------------------------------------------------------------

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


@check("RFC6749-3.3", "the token's scope string equals the client's scopes")
def token_scope(body: dict, configured: tuple[str, ...]) -> str | None:
    scope = body.get("scope")
    if scope is None:
        return "scope missing (allowed by RFC 6749 when unchanged; Datadog sends it)"
    got = scope.split()
    extra = sorted(set(got) - set(configured))
    missing = sorted(set(configured) - set(got))
    return f"extra {extra}, missing {missing}" if extra or missing else None


@check("RFC6749-5.2", "the error answer has the expected status and error")
def oauth_error(ex, status: int | tuple[int, ...], errors: tuple[str, ...] = (), text: str | None = None) -> str | None:
    statuses = (status,) if isinstance(status, int) else status
    body = ex.json
    problems = []
    if ex.status not in statuses:
        problems.append(f"status {ex.status}, expected {'/'.join(map(str, statuses))}")
    flat = _error_text(body) if body is not None else ex.response_body.decode("utf-8", "replace")
    if errors and not any(e in flat for e in errors):
        problems.append(f"error is {flat[:160]!r}, expected one of {list(errors)}")
    if text and text.lower() not in flat.lower():
        problems.append(f"body lacks {text!r}: {flat[:160]!r}")
    return "; ".join(problems) or None


def _error_text(body) -> str:
    """Both shapes Datadog may use: RFC {"error","error_description"} and {"errors":["<error> - <desc>"]}."""
    if isinstance(body, dict):
        parts = [str(body.get("error", "")), str(body.get("error_description", ""))]
        errs = body.get("errors")
        if isinstance(errs, list):
            parts += [e if isinstance(e, str) else str(e.get("detail", e)) for e in errs]
        return " ".join(p for p in parts if p)
    return str(body)


# ---- API ---------------------------------------------------------------------------------------

@check("DD-TROUBLESHOOT-FORBIDDEN", 'the API refuses with 403 {"errors":["Forbidden"]}')
def api_forbidden(ex, allow_401: bool = True) -> str | None:
    ok_status = (401, 403) if allow_401 else (403,)
    if ex.status not in ok_status:
        return f"status {ex.status}, expected {' or '.join(map(str, ok_status))}"
    body = ex.json
    if not (isinstance(body, dict) and isinstance(body.get("errors"), list)):
        return f"body is not the Datadog error envelope: {ex.response_body[:120]!r}"
    return None


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
