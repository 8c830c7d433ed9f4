"""Token endpoint, refresh grant (RFC 6749 §6): a refresh token stays with its client and its scope."""
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
