"""A grant for tests whose subject is something else: the consent flow's result, the code exchange,
and the tokens; when they cannot be had, the reason (PrerequisiteFailed, or ClientAuthRefused for a
wrong client secret) instead of a bare assertion."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from core.errors import ClientAuthRefused, PrerequisiteFailed
from core.pkce import PKCE
from harness.browser.consent import FlowResult
from harness.config.targets import Target
from harness.http.exchange import DatadogHTTP, Exchange
from harness.http.oauth_client import ClientCredentials, OAuthClient


def oauth_client(http: DatadogHTTP, target: Target, domain: str | None = None) -> OAuthClient:
    return OAuthClient(http, ClientCredentials(target.client.id, target.client.secret, target.client.kind),
                       domain or target.site.domain)


@dataclass
class Authorization:
    """One completed consent flow: what was sent, what came back."""
    target: Target
    pkce: PKCE
    state: str
    url: str
    flow: FlowResult

    @property
    def callback(self) -> dict:
        return self.flow.callback

    @property
    def code(self) -> str | None:
        return self.callback.get("code")

    @property
    def domain(self) -> str:
        # every call after the callback follows its domain, as Datadog tells partners to
        return self.callback.get("domain") or self.target.site.domain


@dataclass
class Grant:
    authorization: Authorization
    token_exchange: Exchange
    tokens: dict = field(default_factory=dict)

    @property
    def access_token(self) -> str:
        return self.tokens["access_token"]

    @property
    def refresh_token(self) -> str:
        token = self.tokens.get("refresh_token")
        if not token:  # test_token_response_fields owns that field and fails for it
            raise PrerequisiteFailed(f"the token answer for {self.authorization.target.name} has no refresh_token")
        return token


def new_state() -> str:
    # long, with URL-special characters: it must come back byte for byte
    return "ddoauth " + secrets.token_urlsafe(24) + "/+=&?é"


def exchange(http: DatadogHTTP, auth: Authorization, **kwargs) -> Exchange:
    client = oauth_client(http, auth.target, auth.domain)
    return client.exchange_code(auth.code, auth.target.redirect_uri, auth.pkce.verifier, **kwargs)


def complete_grant(http: DatadogHTTP, auth: Authorization) -> Grant:
    """Tokens for a test whose subject is something else: when they cannot be had, the test is broken
    with the reason (the tests that own authorize and token report the failure themselves)."""
    name = auth.target.name
    if auth.code is None:
        raise PrerequisiteFailed(f"no grant for {name}: the consent flow ended without a code "
                                 f"({auth.flow.error_text or auth.flow.final_url})")
    ex = exchange(http, auth)
    error = ex.json.get("error") if isinstance(ex.json, dict) else None
    if ex.status == 401 or error == "invalid_client":
        raise ClientAuthRefused(f"client authentication refused for target {name}: check client.id / "
                                f"client.secret ({ex.brief()})")
    if ex.status != 200 or not isinstance(ex.json, dict) or "access_token" not in ex.json:
        raise PrerequisiteFailed(f"no grant for {name}: the code exchange failed ({ex.brief()})")
    return Grant(auth, ex, dict(ex.json))
