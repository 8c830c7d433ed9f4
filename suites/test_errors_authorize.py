"""Authorize, negative: every documented front-channel error and the RFC protections of the
authorization endpoint, seen through a real browser.

A bad client_id or redirect_uri must end on Datadog's error page and never at the redirect URI;
later refusals go back to the registered redirect URI as `?error=` (or, where Datadog's docs are
silent, whatever form it uses is recorded). No test here lets a code reach anyone.
"""
from __future__ import annotations

import dataclasses
import uuid
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import allure
import pytest

from fixtures.grants import authorize, exchange, new_state, oauth_client
from harness.checks import authorization
from harness.checks.authorization import describe_flow
from harness.checks.registry import Check
from harness.config.targets import Target, is_loopback_http
from core.pkce import PKCE
from core.scopes import load_catalogue

pytestmark = [allure.feature("authorize: errors"), allure.severity(allure.severity_level.CRITICAL), pytest.mark.browser]

# a well-formed client id that no Datadog client has (stable, so reports compare run to run)
UNKNOWN_CLIENT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://ddoauth.invalid/unknown-client"))
REDIRECT_VARIANTS = ("extra_path", "added_query", "trailing_slash", "scheme", "host", "port", "case")


# ---- helpers ----------------------------------------------------------------------------------

def request_url(target: Target, state: str | None, pkce: PKCE | None, *, replace: dict[str, str] | None = None,
                drop: tuple[str, ...] = (), extra: list[tuple[str, str]] | None = None) -> str:
    """An authorization request built by hand: the usual parameters, some replaced, dropped or repeated."""
    pairs = [("redirect_uri", target.redirect_uri), ("client_id", target.client.id), ("response_type", "code")]
    if pkce is not None:
        pairs += [("code_challenge", pkce.challenge), ("code_challenge_method", pkce.method)]
    if state is not None:
        pairs.append(("state", state))
    replace = replace or {}
    pairs = [(k, replace.get(k, v)) for k, v in pairs if k not in drop] + list(extra or [])
    return f"{target.site.web_origin}{target.endpoints.authorize}?{urlencode(pairs, quote_via=quote)}"


def altered_redirect_uri(uri: str, variant: str) -> str | None:
    """The registered redirect URI changed in one way (None: that change is allowed for this URI)."""
    p = urlsplit(uri)
    host, port = p.hostname or "", p.port
    userinfo = p.netloc.rpartition("@")[0] + "@" if "@" in p.netloc else ""

    def netloc(h: str, prt: int | None) -> str:
        h = f"[{h}]" if ":" in h else h
        return f"{userinfo}{h}{f':{prt}' if prt else ''}"

    if variant == "extra_path":
        return urlunsplit(p._replace(path=p.path.rstrip("/") + "/extra"))
    if variant == "added_query":
        return urlunsplit(p._replace(query=(p.query + "&" if p.query else "") + "ddoauth=1"))
    if variant == "trailing_slash":
        path = p.path[:-1] if p.path.endswith("/") and len(p.path) > 1 else p.path + "/"
        return urlunsplit(p._replace(path=path))
    if variant == "scheme":
        return urlunsplit(p._replace(scheme="http" if p.scheme == "https" else "https"))
    if variant == "host":
        other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(host, host + ".invalid")
        return urlunsplit(p._replace(netloc=netloc(other, port)))
    if variant == "port":
        if is_loopback_http(uri):
            return None  # RFC 8252 §7.3: any port is allowed on a loopback redirect URI
        other_port = port + 1 if port else (8443 if p.scheme == "https" else 8080)
        return urlunsplit(p._replace(netloc=netloc(host, other_port)))
    if variant == "case":
        if any(c.isalpha() for c in p.path):
            return urlunsplit(p._replace(path=p.path.swapcase()))
        return urlunsplit(p._replace(netloc=netloc(host.upper(), port)))
    raise ValueError(variant)


class DocumentLog:
    """Every document response of the flows' pages: statuses (page_hook=documents.watch) and, where a test
    reads headers, from contexts kept open until the test ends (context_factory=documents.factory)."""

    def __init__(self, browser):
        self.browser = browser
        self.responses = []
        self.contexts = []

    def watch(self, page):
        """authorize(..., page_hook=documents.watch): returns what stops the watching."""
        def on_response(response):
            if response.request.resource_type == "document":
                self.responses.append(response)
        page.on("response", on_response)
        return lambda: page.remove_listener("response", on_response)

    def factory(self, **args):
        context = self.browser.new_context(**args)
        context.on("response", lambda r: self.responses.append(r) if r.request.resource_type == "document" else None)
        self.contexts.append(context)
        return context

    def close(self) -> None:
        for context in self.contexts:
            context.close()

    def last(self, path_prefix: str = "/"):
        for response in reversed(self.responses):
            if urlsplit(response.url).path.startswith(path_prefix) and not 300 <= response.status < 400:
                return response
        return None

    def status(self, path_prefix: str = "/") -> int | None:
        response = self.last(path_prefix)
        return response.status if response is not None else None

    def headers(self, path_prefix: str = "/") -> dict | None:
        response = self.last(path_prefix)
        return {k.lower(): v for k, v in response.all_headers().items()} if response is not None else None


@pytest.fixture
def documents(browser_sessions):
    log = DocumentLog(browser_sessions.browser)
    yield log
    log.close()


def record_form(flow) -> None:
    allure.dynamic.parameter("outcome", describe_flow(flow), excluded=True)


def verify_refused(verify, flow, target: Target, check: Check, expected_errors: tuple[str, ...] = ()) -> None:
    """A refused request: the given check, the form recorded, any redirect only to the registered
    URI, and an error redirect in the RFC's shape."""
    record_form(flow)
    verify(check, flow)
    verify(authorization.refusal_form, flow)
    verify(authorization.callback_at_registered_uri, flow, target.redirect_uri)
    if flow.outcome == "callback" and "error" in flow.callback:
        verify(authorization.redirect_error_code_valid, flow.callback)
        if expected_errors:
            verify(authorization.redirect_error_is, flow.callback, expected_errors)
        verify(authorization.redirect_params_in_query, flow)  # last: the error itself was judged above


# ---- client_id ----------------------------------------------------------------------------------

@allure.story("invalid client_id")
def test_unknown_client_id_shows_error_page(target, browser_sessions, documents, verify):
    url = request_url(target, new_state(), PKCE.generate(), replace={"client_id": UNKNOWN_CLIENT_ID})
    flow = authorize(browser_sessions, target, url=url, page_hook=documents.watch).flow
    record_form(flow)
    verify(authorization.invalid_client_not_redirected, flow)
    verify(authorization.error_page_invalid_client, flow)
    verify(authorization.error_page_status, documents.status("/oauth2/"))


@allure.story("invalid client_id")
def test_test_client_refused_outside_sandbox_org(target, browser_sessions, documents, verify):
    """An unpublished client authorized from another org of the same user: Datadog's documented
    `Invalid client_id parameter value` (the org picker chooses the foreign org)."""
    if target.client.kind != "test":
        pytest.skip("the target's client is published: it works from any org")
    if target.foreign_org is None:
        pytest.skip("the target names no foreign_org (another org of the same user)")
    foreign = dataclasses.replace(target, org=target.foreign_org)
    flow = authorize(browser_sessions, foreign, page_hook=documents.watch).flow
    record_form(flow)
    verify(authorization.invalid_client_not_redirected, flow)
    verify(authorization.error_page_invalid_client, flow)
    verify(authorization.error_page_status, documents.status("/oauth2/"))


@allure.story("published client")
def test_published_client_works_from_any_org(target, browser_sessions, verify):
    if target.client.kind != "published":
        pytest.skip("the target's client is a test client: sandbox org only")
    if target.foreign_org is None:
        pytest.skip("the target names no foreign_org (another org of the same user)")
    foreign = dataclasses.replace(target, org=target.foreign_org)
    flow = authorize(browser_sessions, foreign).flow
    record_form(flow)
    verify(authorization.published_client_any_org, flow, target.foreign_org)
    verify(authorization.callback_at_registered_uri, flow, target.redirect_uri)


# ---- redirect_uri -------------------------------------------------------------------------------

@allure.story("redirect URI mismatch")
@pytest.mark.parametrize("variant", REDIRECT_VARIANTS)
def test_redirect_uri_mismatch_shows_error_page(target, variant, browser_sessions, documents, verify):
    altered = altered_redirect_uri(target.redirect_uri, variant)
    if altered is None:
        pytest.skip(f"{variant}: allowed for a loopback redirect URI (RFC 8252 §7.3)")
    assert altered != target.redirect_uri
    allure.dynamic.parameter("redirect_uri sent", altered)
    url = request_url(target, new_state(), PKCE.generate(), replace={"redirect_uri": altered})
    flow = authorize(browser_sessions, target, url=url, page_hook=documents.watch).flow
    record_form(flow)
    verify(authorization.callback_at_registered_uri, flow, target.redirect_uri)
    verify(authorization.altered_redirect_no_code, flow)
    verify(authorization.error_page_mismatching_redirect, flow)
    verify(authorization.error_page_status, documents.status("/oauth2/"))


# ---- PKCE ---------------------------------------------------------------------------------------

@allure.story("PKCE")
def test_pkce_plain_refused(target, browser_sessions, verify):
    auth = authorize(browser_sessions, target, pkce=PKCE.plain())
    verify_refused(verify, auth.flow, target, authorization.pkce_plain_refused, ("invalid_request",))


@allure.story("PKCE")
def test_pkce_challenge_required(target, browser_sessions, verify):
    flow = authorize(browser_sessions, target, url=request_url(target, new_state(), None)).flow
    verify_refused(verify, flow, target, authorization.pkce_challenge_required, ("invalid_request",))


@allure.story("PKCE")
@pytest.mark.parametrize("length", [42, 129])
def test_pkce_challenge_length_refused(target, length, browser_sessions, verify):
    pkce = PKCE.with_challenge_length(length)
    assert len(pkce.challenge) == length
    auth = authorize(browser_sessions, target, pkce=pkce)
    verify_refused(verify, auth.flow, target, authorization.pkce_challenge_length_refused, ("invalid_request",))


# ---- consent decision and state ----------------------------------------------------------------

@allure.story("deny")
def test_deny_returns_access_denied(target, browser_sessions, verify):
    # a remembered consent shows no page to deny on: once more with force_consent, else skipped
    auth = authorize(browser_sessions, target, decision="deny", needs_consent=True)
    record_form(auth.flow)
    verify(authorization.consent_offers_deny, auth.flow)
    verify(authorization.deny_access_denied, auth.flow)
    verify(authorization.callback_at_registered_uri, auth.flow, target.redirect_uri)
    verify(authorization.state_echoed_on_error, auth.callback, auth.state)
    verify(authorization.redirect_error_code_valid, auth.callback)
    verify(authorization.redirect_params_in_query, auth.flow)  # last: the error itself was judged above


@allure.story("state")
def test_state_echoed_on_error(target, browser_sessions, verify):
    state = new_state()
    url = request_url(target, state, PKCE.generate(), replace={"response_type": "ddoauth_unsupported"})
    flow = authorize(browser_sessions, target, url=url, state=state).flow
    verify_refused(verify, flow, target, authorization.response_type_refused, ("unsupported_response_type",))
    if flow.outcome != "callback":
        pytest.skip(f"no error redirect to check state on ({describe_flow(flow)}); "
                    "test_deny_returns_access_denied checks state on the deny redirect")
    verify(authorization.state_echoed_on_error, flow.callback, state)


# ---- request parameters --------------------------------------------------------------------------

@allure.story("request parameters")
def test_unknown_parameter_ignored(target, browser_sessions, verify):
    state = new_state()
    url = request_url(target, state, PKCE.generate(), extra=[("ddoauth_unknown_parameter", "ignore me")])
    flow = authorize(browser_sessions, target, url=url, state=state).flow
    record_form(flow)
    verify(authorization.unknown_parameter_ignored, flow)
    verify(authorization.state_echoed, flow.callback, state)


@allure.story("request parameters")
@pytest.mark.parametrize("parameter", ["redirect_uri", "client_id"])
def test_duplicate_parameter_refused(target, parameter, browser_sessions, verify):
    """The parameter twice: the right value first, a wrong one second. Refusing is a SHOULD; taking
    the second value must still never send the browser to an unregistered URI."""
    second = {"redirect_uri": altered_redirect_uri(target.redirect_uri, "host"),
              "client_id": UNKNOWN_CLIENT_ID}[parameter]
    url = request_url(target, new_state(), PKCE.generate(), extra=[(parameter, second)])
    assert [k for k, _ in parse_qsl(urlsplit(url).query)].count(parameter) == 2
    flow = authorize(browser_sessions, target, url=url).flow
    verify_refused(verify, flow, target, authorization.duplicate_parameter_refused, ("invalid_request",))


@allure.story("response_type")
@pytest.mark.parametrize("response_type", ["missing", "token"])
def test_response_type_refused(target, response_type, browser_sessions, verify):
    if response_type == "missing":
        url = request_url(target, new_state(), PKCE.generate(), drop=("response_type",))
        expected = ("invalid_request",)
    else:
        url = request_url(target, new_state(), PKCE.generate(), replace={"response_type": response_type})
        expected = ("unsupported_response_type", "unauthorized_client")
    flow = authorize(browser_sessions, target, url=url).flow
    verify(authorization.no_token_in_any_url, flow)
    verify_refused(verify, flow, target, authorization.response_type_refused, expected)


# ---- scope ----------------------------------------------------------------------------------------

def absent_scope(target: Target) -> str:
    """A real Datadog scope the target's client is not configured with (org_management if possible)."""
    names = sorted(load_catalogue().scopes)
    preferred = [s for s in ("org_management", "billing_read") if s in names]
    for name in preferred + names:
        if name not in target.client.scopes:
            return name
    raise AssertionError("the scope catalogue has no scope outside the client's")


@allure.story("scope")
def test_unknown_scope_refused(target, browser_sessions, http, verify):
    extra_scope = absent_scope(target)
    allure.dynamic.parameter("scope asked for", extra_scope)
    state = new_state()
    pkce = PKCE.generate()
    scope = f"{target.client.scopes[0]} {extra_scope}"
    url = request_url(target, state, pkce, extra=[("scope", scope)])
    auth = authorize(browser_sessions, target, url=url, state=state, pkce=pkce)
    flow = auth.flow
    record_form(flow)
    token_scope = None
    if auth.code:  # the scope was ignored or granted: what does the token say?
        ex = exchange(http, auth)
        body = ex.json if isinstance(ex.json, dict) else {}
        token_scope = body.get("scope")
        if body.get("refresh_token"):
            oauth_client(http, target, auth.domain).revoke(body["refresh_token"], "refresh_token")
    verify(authorization.unknown_scope_not_granted, flow.consent_scopes, token_scope, extra_scope)
    verify(authorization.unknown_scope_refusal_form, flow)
    verify(authorization.callback_at_registered_uri, flow, target.redirect_uri)
    if flow.outcome == "callback" and "error" in flow.callback:
        verify(authorization.redirect_error_code_valid, flow.callback)
        verify(authorization.redirect_params_in_query, flow)


# ---- login page ----------------------------------------------------------------------------------

@allure.story("login page")
def test_login_page_headers(target, browser_sessions, documents, verify):
    """A fresh browser (no session) stops on the login page: it must resist framing and caching
    as the consent page does (the password form is a clickjacking target too)."""
    flow = authorize(browser_sessions, target, logged_in=False, stop_at="login",
                     context_factory=documents.factory).flow
    assert flow.page_names()[-1:] == ["login"], f"the login page was not reached: {describe_flow(flow)}"
    # the login page's path comes from the recipes (login_path), else from the page the login recipe recognised
    login_path = browser_sessions.recipes.login_path or urlsplit(flow.pages[-1].url).path
    headers = documents.headers(login_path)
    verify(authorization.login_page_not_frameable, headers)
    verify(authorization.login_page_no_store, headers)
