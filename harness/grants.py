"""A grant for tests whose subject is something else: the consent flow's result, the code exchange,
and the tokens; when they cannot be had, the reason (PrerequisiteFailed, or ClientAuthRefused for a
wrong client secret) instead of a bare assertion."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from core.errors import ClientAuthRefused, PrerequisiteFailed
from core.pkce import PKCE
from harness.browser.consent import FlowResult
from harness.config.targets import Target
from harness.http.exchange import DatadogHTTP, Exchange
from harness.http.oauth_client import oauth_client


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
        return token_field(self.tokens, "access_token", f"the token answer for {self.authorization.target.name}")

    @property
    def refresh_token(self) -> str:
        token = self.tokens.get("refresh_token")
        if not token:  # test_token_response_fields owns that field and fails for it
            raise PrerequisiteFailed(f"the token answer for {self.authorization.target.name} has no refresh_token")
        return token


def token_field(body, name: str, where: str = "the token answer") -> str:
    """A token answer's field for a test whose subject is something else: missing, the test is broken with
    the reason (PrerequisiteFailed), never a KeyError; the test that owns the field fails for it
    (test_token_response_fields, the refresh answer checks)."""
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise PrerequisiteFailed(f"{where} has no {name}")
    return value


# ---- a consent page to drive ---------------------------------------------------------------------

CONSENT_REMEMBERED = "consent was remembered: no consent page to drive"


def with_params(url: str, extra: tuple[tuple[str, str], ...]) -> str:
    """The URL with these query parameters set (a parameter already there is replaced)."""
    parts = urlsplit(url)
    names = {k for k, _ in extra}
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names] + list(extra)
    return urlunsplit(parts._replace(query=urlencode(pairs, quote_via=quote)))


@dataclass
class ConsentRun:
    url: str  # the authorize URL of the flow kept
    flow: FlowResult
    skip_reason: str | None = None  # set: the server remembered consent and showed no page to drive


def drive_consent(run: Callable[[str], FlowResult], url: str, force: tuple[tuple[str, str], ...] = ()) -> ConsentRun:
    """A flow that must meet the consent page (Deny, the scope list, the page's headers). When the server
    went straight to the callback (consent remembered), run once more (`run` uses a fresh logged-in context)
    with the recipes' force_consent parameters; without them, or when the page still does not come, the
    test is to be skipped with CONSENT_REMEMBERED: a remembered consent is not a failure."""
    flow = run(url)
    if not flow.consent_remembered:
        return ConsentRun(url, flow)
    if not force:
        return ConsentRun(url, flow, f"{CONSENT_REMEMBERED} (the recipes set no force_consent parameters; "
                                     f"Datadog documents none)")
    again = with_params(url, force)
    flow = run(again)
    if flow.consent_remembered:
        shown = "&".join(f"{k}={v}" for k, v in force)
        return ConsentRun(again, flow, f"{CONSENT_REMEMBERED} (not even with the recipes' force_consent: {shown})")
    return ConsentRun(again, flow)


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
        missing = auth.flow.missing_control
        why = f"the consent page has no {missing} control" if missing else auth.flow.error_text or auth.flow.final_url
        raise PrerequisiteFailed(f"no grant for {name}: the consent flow ended without a code ({why})")
    ex = exchange(http, auth)
    error = ex.json.get("error") if isinstance(ex.json, dict) else None
    if ex.status == 401 or error == "invalid_client":
        raise ClientAuthRefused(f"client authentication refused for target {name}: check client.id / "
                                f"client.secret ({ex.brief()})")
    if ex.status != 200 or not isinstance(ex.json, dict) or "access_token" not in ex.json:
        raise PrerequisiteFailed(f"no grant for {name}: the code exchange failed ({ex.brief()})")
    return Grant(auth, ex, dict(ex.json))
