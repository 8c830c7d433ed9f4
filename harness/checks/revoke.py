"""Revocation endpoint (RFC 7009): who may revoke what, and what a revocation leaves alone."""
from __future__ import annotations

from harness.checks._helpers import refusal
from harness.checks.registry import CHARACTERIZE, check


@check("RFC7009-2.1", "revoke with bad client credentials is refused, not 200")
def revoke_bad_client_refused(ex) -> str | None:
    return refusal(ex, (400, 401), ("invalid_client", "invalid_request"))


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


@check("RFC7009-2.2.1", "a revocation request without `token` is refused with 400 invalid_request")
def revoke_missing_token_refused(ex) -> str | None:
    # RFC 7009 §2.1: token is REQUIRED; §2.2.1 errors are RFC 6749 §5.2's (Datadog: bad params -> 400)
    return refusal(ex, (400,), ("invalid_request",))


@check("RFC7009-2.2", "the revocation is answered 200")
def revoke_answered_200(ex) -> str | None:
    # §2.2: 200 whether the token was valid or not (an invalid token is no reason for an error)
    return None if ex.status == 200 else f"revoke answered {ex.status}: {ex.brief()}"
