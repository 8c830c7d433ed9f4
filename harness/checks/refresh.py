"""Token endpoint, refresh grant (RFC 6749 §6): a refresh token stays with its client and its scope.

A refresh answer is a §5.1 token answer like the code exchange's (the suites also run the token
module's answer checks on it: status, media type, no-store, expires_in); what differs is checked
here: a new refresh token is optional (§6 "MAY issue"), and the scope may never exceed the grant.
"""
from __future__ import annotations

from harness.checks._helpers import refusal
from harness.checks.registry import check


@check("RFC6749-6", "a refresh token is bound to the client it was issued to")
def refresh_bound_to_client(ex) -> str | None:
    return refusal(ex, (400, 401), ("invalid_grant", "invalid_client", "unauthorized_client"))


@check("RFC6749-6", "a refresh without client authentication is refused")
def refresh_needs_client_auth(ex) -> str | None:
    return refusal(ex, (400, 401), ("invalid_client", "invalid_request"))


@check("RFC6749-6", "a refresh cannot widen the scope of the grant")
def refresh_scope_not_escalated(ex, extra_scope: str) -> str | None:
    if ex.status in (400, 401):
        return refusal(ex, (400, 401), ("invalid_scope", "invalid_request", "invalid_grant"))
    if ex.status != 200:
        return f"answered {ex.status}: neither refused nor served"
    body = ex.json if isinstance(ex.json, dict) else {}
    granted = str(body.get("scope", "")).split()
    if extra_scope in granted:
        return f"the refreshed token's scope includes {extra_scope!r}, never granted"
    return None


# ---- the refresh answer --------------------------------------------------------------------------

@check("RFC6749-6", "a refresh answer has access_token and token_type Bearer (refresh_token, if any, non-empty)")
def refresh_answer_fields(body: dict) -> str | None:
    problems = []
    if not isinstance(body.get("access_token"), str) or not body.get("access_token"):
        problems.append("access_token missing")
    if str(body.get("token_type", "")).lower() != "bearer":
        problems.append(f"token_type {body.get('token_type')!r}")
    if "refresh_token" in body and (not isinstance(body["refresh_token"], str) or not body["refresh_token"]):
        problems.append(f"refresh_token is {body['refresh_token']!r}")  # absent is fine: the old one stays
    return "; ".join(problems) or None


@check("RFC6749-6", "a refresh answer's scope is no wider than the grant's")
def refresh_scope_within_grant(body: dict, granted: tuple[str, ...] | list[str]) -> str | None:
    scope = body.get("scope")
    if scope is None:
        return None  # RFC 6749 §5.1: omitted means unchanged
    if not isinstance(scope, str):
        return f"scope is {type(scope).__name__}, not a space-separated string"
    extra = sorted(set(scope.split()) - set(granted))
    return f"the refreshed scope adds {extra}, never granted" if extra else None


@check("RFC6749-6", "a refresh answer carries a new access token")
def refresh_new_access_token(body: dict, previous: str) -> str | None:
    new = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(new, str) or not new:
        return "the answer has no access_token"
    return "the refresh answered the same access token as before" if new == previous else None
