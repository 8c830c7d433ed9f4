"""Checks, one module per endpoint, and the one place that registers them all.

    authorization  the browser front channel: authorize request, login and consent pages, error pages, callback
    token          the token endpoint's code exchange: answers, errors, PKCE verifier, the code, client auth
    refresh        the refresh grant
    revoke         the revocation endpoint
    api            Datadog's API: refusals, data flow per scope, rate-limit headers, the API host
    integration    the partner's own app (integration mode)

Importing this package imports every endpoint module, so every check is registered (in
``registry.REGISTRY``, by name) before anything looks one up. Callers pass the check object:

    from harness.checks import token
    verify(token.token_ok, ex)           # the pytest fixture (fixtures/grants.py)
    registry.verify(recorder, token.token_ok, ex)
"""
from harness.checks import registry
from harness.checks import api, authorization, integration, refresh, revoke, token
from harness.checks.registry import CHARACTERIZE, MUST, REGISTRY, SHOULD, Check

# every endpoint module, in the order the docs list them (docs/checks.md, scripts/gen_checks_doc.py)
MODULES = (authorization, token, refresh, revoke, api, integration)

__all__ = ["CHARACTERIZE", "MUST", "MODULES", "REGISTRY", "SHOULD", "Check", "api", "authorization", "integration",
           "refresh", "registry", "revoke", "token"]
