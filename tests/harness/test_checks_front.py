"""harness/checks/authorization.py: every check of the authorization endpoint (the browser front
channel: callback, consent and login pages, error pages, refusals) passes on a conforming flow and
fails on a broken one, with a one-line message that never carries a code or a state value."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from checkcases import assert_cases_cover, assert_fails_one_line, assert_holds, case_params, checks_of

from harness.checks import authorization
from harness.checks.registry import CHARACTERIZE, MUST, SHOULD
from harness.browser.consent import FlowResult, PageVisit
from core.sites import load_registry

SITES = load_registry()
US1, EU1 = SITES.get("US1"), SITES.get("EU1")
CALLBACK = "https://integration.example.com/oauth/callback"
AUTHZ = "https://app.datadoghq.eu/oauth2/v1/authorize?client_id=c&redirect_uri=x"
CODE = "SECRETCODE123"
STATE = "ddoauth s/+=&?é"


def callback(url: str, pages=("consent",)) -> FlowResult:
    return FlowResult(callback_url=url, callback_pairs=parse_qsl(urlsplit(url).query, keep_blank_values=True),
                      pages=[PageVisit(p, AUTHZ) for p in pages], final_url="chrome-error://chromewebdata/")


def error_page(text: str, url: str = AUTHZ) -> FlowResult:
    return FlowResult(error_text=text, pages=[PageVisit("error", url)], final_url=url)


def stopped(url: str = "https://app.datadoghq.eu/account/login", pages=("login",)) -> FlowResult:
    return FlowResult(pages=[PageVisit(p, url) for p in pages], final_url=url)


INVALID_CLIENT = error_page("invalid_request - Invalid client_id parameter value.")
MISMATCH = error_page("invalid_request - Mismatching redirect URI.")
CODE_CB = callback(f"{CALLBACK}?code={CODE}&state=s&domain=datadoghq.eu&dd_org_name=Acme")
ERR_CB = callback(f"{CALLBACK}?error=invalid_request&error_description=Code+challenge+required.&state=s")
DENIED = callback(f"{CALLBACK}?error=access_denied&state=s")
NO_PARAMS_CB = callback(CALLBACK)
ALTERED_CODE = callback(f"{CALLBACK}/extra?code={CODE}&state=s")
ALTERED_ERR = callback(f"{CALLBACK}/extra?error=invalid_request")
# a code that never reached the callback but showed up in a page URL (e.g. an intermediate hop)
CODE_IN_PAGE = FlowResult(error_text="something", pages=[PageVisit("error", f"{AUTHZ}&code={CODE}")], final_url=AUTHZ)
FRAG_TOKEN = FlowResult(callback_url=f"{CALLBACK}#access_token=at-1&token_type=bearer", callback_pairs=[],
                        final_url=f"{CALLBACK}#access_token=at-1")


def case(*args, **kwargs):
    return args, kwargs


def fragment_callback(fragment: str, query: str = "") -> FlowResult:
    """A redirect whose parameters came after '#' (read from the Location header by the consent driver)."""
    url = f"{CALLBACK}{'?' + query if query else ''}#{fragment}"
    return FlowResult(callback_url=url, callback_pairs=parse_qsl(query, keep_blank_values=True),
                      callback_fragment_pairs=parse_qsl(fragment, keep_blank_values=True),
                      pages=[PageVisit("consent", AUTHZ)], final_url="chrome-error://chromewebdata/")


DENIED_IN_FRAGMENT = fragment_callback("error=access_denied&state=s")
NO_DENY = FlowResult(pages=[PageVisit("consent", AUTHZ)], missing_control="consent.deny", final_url=AUTHZ)


REFUSAL = {"pass": [case(ERR_CB), case(INVALID_CLIENT), case(DENIED)],
           "fail": [case(CODE_CB), case(NO_PARAMS_CB), case(stopped()), case(CODE_IN_PAGE), case(ALTERED_CODE)]}

CASES: dict = {
    # ---- the callback and the consent page
    authorization.site_picker_offered: {"pass": [case(stopped(pages=("login", "site_picker", "consent")))],
                                        "fail": [case(stopped(pages=("login", "consent"))), case(stopped(pages=()))]},
    authorization.flow_reached_callback: {
        "pass": [case(FlowResult(callback_url=f"{CALLBACK}?code=c1&state=s",
                                 callback_pairs=[("code", "c1"), ("state", "s")]))],
        "fail": [case(FlowResult(error_text="invalid_client: unknown client",
                                 pages=[PageVisit("login", "u1"), PageVisit("error", "u2")])),
                 case(FlowResult(final_url="https://app.datadoghq.com/account/login")),
                 case(FlowResult(callback_url=f"{CALLBACK}?error=access_denied",
                                 callback_pairs=[("error", "access_denied")]))],
    },
    authorization.state_echoed: {
        "pass": [case({"state": "a b&c=d"}, "a b&c=d")],
        "fail": [case({}, "s"), case({"state": "a+b"}, "a b"), case({"state": "S"}, "s")],
    },
    authorization.callback_domain: {
        "pass": [case({"domain": "datadoghq.eu"}, "datadoghq.eu")],
        "fail": [case({}, "datadoghq.eu"), case({"domain": "datadoghq.com"}, "datadoghq.eu")],
    },
    authorization.callback_org_params: {
        "pass": [case({"site": "https://app.datadoghq.eu", "dd_oid": "o1", "dd_org_name": "Acme"})],
        "fail": [case({"site": "x"}), case({"site": "", "dd_oid": "o", "dd_org_name": "n"})],
    },
    authorization.callback_org_matches: {
        "pass": [case({"dd_oid": "o1", "dd_org_name": "Acme"}, "Acme", "o1"),
                 case({"dd_oid": "o1", "dd_org_name": "Acme"}, "Acme"),  # org id unknown: the name decides
                 case({}, "Acme", "o1"),  # absent parameters are callback_org_params' business
                 case({"dd_org_name": "Acme "}, "Acme", None)],
        "fail": [case({"dd_oid": "o2", "dd_org_name": "Acme"}, "Acme", "o1"),
                 case({"dd_oid": "o1", "dd_org_name": "Globex"}, "Acme", "o1"),
                 case({"dd_org_name": "Globex"}, "Acme")],
    },
    authorization.callback_site_matches: {
        "pass": [case({"site": "https://app.datadoghq.eu"}, EU1), case({"site": "app.datadoghq.eu"}, EU1),
                 case({"site": "https://bigcorp.datadoghq.eu"}, EU1),  # an org subdomain of the same site
                 case({"site": "https://app.datadoghq.com/"}, US1), case({}, EU1),
                 case({"site": "https://us3.datadoghq.com"}, SITES.get("US3"))],
        "fail": [case({"site": "https://app.datadoghq.com"}, EU1), case({"site": "https://us3.datadoghq.com"}, US1),
                 case({"site": "us5.datadoghq.com"}, US1), case({"site": "http://app.datadoghq.eu"}, EU1),
                 case({"site": "https://app.datadoghq.eu/account"}, EU1),
                 case({"site": "https://app.datadoghq.eu:8443"}, EU1), case({"site": "https://evil.example"}, EU1)],
    },
    authorization.no_token_in_callback: {
        "pass": [case({"code": "c", "state": "s", "domain": "datadoghq.com"})],
        "fail": [case({"code": "c", "access_token": "t"}), case({"token": "t"})],
    },
    authorization.callback_no_duplicates: {
        "pass": [case([("code", "c"), ("state", "s")]), case([])],
        "fail": [case([("code", "a"), ("state", "s"), ("code", "b")])],
    },
    authorization.consent_scopes_exact: {
        "pass": [case(["b", "a"], ("a", "b"))],
        "fail": [case(None, ("a",)), case(["a"], ("a", "b")), case(["a", "b", "c"], ("a", "b")), case([], ("a",))],
    },
    authorization.redirect_not_307: {
        "pass": [case(302), case(303), case(None)],
        "fail": [case(307)],
    },
    authorization.consent_not_frameable: {
        "pass": [case({"x-frame-options": "deny"}), case({"x-frame-options": "SAMEORIGIN"}),
                 case({"content-security-policy": "default-src 'self'; frame-ancestors 'none'"})],
        "fail": [case(None), case({}), case({"x-frame-options": "ALLOWALL"}),
                 case({"content-security-policy": "default-src 'self'"})],
    },
    authorization.consent_no_store: {
        "pass": [case({"cache-control": "no-cache, no-store, must-revalidate"})],
        "fail": [case(None), case({}), case({"cache-control": "private, max-age=0"})],
    },
    # ---- error pages, refusals, scope, login page
    authorization.error_page_invalid_client: {
        "pass": [case(INVALID_CLIENT), case(error_page("Error\n invalid_request  -  Invalid client_id parameter value"))],
        "fail": [case(MISMATCH), case(CODE_CB), case(ERR_CB), case(stopped()),
                 case(error_page("invalid_client - Invalid client_id parameter value"))],
    },
    authorization.error_page_mismatching_redirect: {
        "pass": [case(MISMATCH), case(error_page("INVALID_REQUEST - MISMATCHING REDIRECT URI."))],
        "fail": [case(INVALID_CLIENT), case(ALTERED_CODE), case(ALTERED_ERR), case(stopped()),
                 case(error_page("invalid_request - Invalid redirect URI."))],
    },
    authorization.invalid_client_not_redirected: {
        "pass": [case(INVALID_CLIENT), case(stopped())],
        "fail": [case(CODE_CB), case(ERR_CB), case(CODE_IN_PAGE)],
    },
    authorization.altered_redirect_no_code: {
        "pass": [case(MISMATCH), case(ALTERED_ERR), case(ERR_CB)],
        "fail": [case(ALTERED_CODE), case(CODE_CB), case(CODE_IN_PAGE)],
    },
    authorization.callback_at_registered_uri: {
        "pass": [case(MISMATCH, CALLBACK), case(CODE_CB, CALLBACK), case(ERR_CB, CALLBACK),
                 case(callback("https://p.example/cb?tenant=1&code=c"), "https://p.example/cb?tenant=1")],
        "fail": [case(ALTERED_CODE, CALLBACK), case(ALTERED_ERR, CALLBACK),
                 case(callback("http://integration.example.com/oauth/callback?error=x"), CALLBACK),
                 case(callback("https://integration.example.com:8443/oauth/callback?code=c"), CALLBACK),
                 case(callback("https://integration.example.com/OAUTH/CALLBACK?code=c"), CALLBACK),
                 case(callback("https://p.example/cb?code=c"), "https://p.example/cb?tenant=1")],
    },
    authorization.error_page_status: {
        "pass": [case(400)],
        "fail": [case(None), case(200), case(500)],
    },
    authorization.published_client_any_org: {
        "pass": [case(CODE_CB, "Acme"), case(callback(f"{CALLBACK}?code=c"), "Acme")],
        "fail": [case(INVALID_CLIENT, "Acme"), case(ERR_CB, "Acme"), case(CODE_CB, "Globex"), case(stopped(), "Acme")],
    },
    authorization.pkce_plain_refused: REFUSAL,
    authorization.pkce_challenge_required: REFUSAL,
    authorization.pkce_challenge_length_refused: REFUSAL,
    authorization.response_type_refused: {"pass": REFUSAL["pass"], "fail": REFUSAL["fail"] + [case(FRAG_TOKEN)]},
    authorization.duplicate_parameter_refused: REFUSAL,
    authorization.unknown_parameter_ignored: {
        "pass": [case(CODE_CB)],
        "fail": [case(ERR_CB), case(INVALID_CLIENT), case(NO_PARAMS_CB), case(stopped())],
    },
    authorization.refusal_form: {
        "pass": [case(ERR_CB), case(DENIED)],
        "fail": [case(INVALID_CLIENT), case(CODE_CB), case(NO_PARAMS_CB), case(stopped())],
    },
    authorization.redirect_error_code_valid: {
        "pass": [case({"error": "invalid_request", "error_description": "Code challenge required."}),
                 case({"error": "access_denied", "state": "s"}),
                 case({"error": "server_error", "error_description": "a'b!c#d[e]f~"})],
        "fail": [case({}), case({"code": "c"}), case({"error": "invalid_grant"}), case({"error": "Forbidden"}),
                 case({"error": "access_denied", "state": "s", "code": CODE}),
                 case({"error": "invalid_scope", "error_description": "bad scope", "code": ""}),
                 case({"error": "invalid_request", "access_token": "at-1"}),
                 case({"error": "invalid_request", "error_description": 'say "no"'}),
                 case({"error": "invalid_request", "error_description": "back\\slash"}),
                 case({"error": "invalid_request", "error_description": "ünïcode"}),
                 case({"error": "invalid_request", "error_description": "new\nline"})],
    },
    authorization.redirect_error_is: {
        "pass": [case({"error": "invalid_request"}, ("invalid_request",)),
                 case({"error": "unauthorized_client"}, ("unsupported_response_type", "unauthorized_client"))],
        "fail": [case({"error": "server_error"}, ("invalid_request",)), case({}, ("invalid_request",))],
    },
    authorization.deny_access_denied: {
        "pass": [case(DENIED)],
        "fail": [case(CODE_CB), case(ERR_CB), case(INVALID_CLIENT), case(NO_PARAMS_CB),
                 case(callback(f"{CALLBACK}?error=access_denied&code=c"))],
    },
    authorization.state_echoed_on_error: {
        "pass": [case({"error": "access_denied", "state": STATE}, STATE)],
        "fail": [case({"error": "access_denied"}, STATE), case({"state": STATE.upper()}, STATE),
                 case({"state": STATE.replace(" ", "+")}, STATE), case({"state": STATE[:-1]}, STATE)],
    },
    authorization.no_token_in_any_url: {
        "pass": [case(CODE_CB), case(ERR_CB), case(INVALID_CLIENT)],
        "fail": [case(FRAG_TOKEN), case(callback(f"{CALLBACK}?access_token=at&token_type=bearer")),
                 case(callback(f"{CALLBACK}?id_token=x")),
                 case(FlowResult(pages=[PageVisit("consent", f"{AUTHZ}#token=t")], final_url=AUTHZ))],
    },
    authorization.unknown_scope_not_granted: {
        "pass": [case(None, None, "org_management"), case(["metrics_read"], "metrics_read", "org_management"),
                 case(["org_management_read"], "org_management_read", "org_management")],
        "fail": [case(["metrics_read", "org_management"], None, "org_management"),
                 case(None, "metrics_read org_management", "org_management"),
                 case(["org_management"], "org_management", "org_management")],
    },
    authorization.unknown_scope_refusal_form: {
        "pass": [case(callback(f"{CALLBACK}?error=invalid_scope&state=s"))],
        "fail": [case(CODE_CB), case(ERR_CB), case(error_page("invalid_scope - unknown scope")), case(stopped())],
    },
    authorization.login_page_not_frameable: {
        "pass": [case({"x-frame-options": "DENY"}), case({"content-security-policy": "frame-ancestors 'self'"})],
        "fail": [case(None), case({}), case({"content-security-policy": "frame-ancestors *"}),
                 case({"x-frame-options": "ALLOW-FROM https://x"})],
    },
    authorization.redirect_params_in_query: {
        "pass": [case(DENIED), case(CODE_CB), case(fragment_callback("_=_", "error=access_denied&state=s"))],
        "fail": [case(DENIED_IN_FRAGMENT), case(fragment_callback(f"code={CODE}&state=s")),
                 case(fragment_callback("state=s", "error=access_denied"))],
    },
    authorization.consent_offers_deny: {
        "pass": [case(DENIED), case(DENIED_IN_FRAGMENT)],
        "fail": [case(NO_DENY)],
    },
    authorization.login_page_no_store: {
        "pass": [case({"cache-control": "no-store"}), case({"cache-control": "private, no-store, max-age=0"})],
        "fail": [case(None), case({}), case({"cache-control": "no-cache"}), case({"cache-control": "max-age=600"})],
    },
}



def test_every_front_check_has_cases():
    assert_cases_cover(CASES, authorization)


@pytest.mark.parametrize("check,args,kwargs", case_params(CASES, "pass"))
def test_check_passes(check, args, kwargs):
    assert_holds(check, args, kwargs)


@pytest.mark.parametrize("check,args,kwargs", case_params(CASES, "fail"))
def test_check_fails_with_one_line_without_secrets(check, args, kwargs):
    message = assert_fails_one_line(check, args, kwargs)
    assert CODE not in message and STATE not in message and "at-1" not in message


def test_metadata():
    expected = {
        authorization.site_picker_offered: ("DD-OAUTH-REGION", MUST),
        authorization.flow_reached_callback: ("DD-ENDPOINTS-AUTHORIZE", MUST),
        authorization.state_echoed: ("RFC6749-4.1.2", MUST),
        authorization.callback_domain: ("DD-OAUTH-REDIRECT-DOMAIN", MUST),
        authorization.callback_org_params: ("DD-OAUTH-REDIRECT-PARAMS", SHOULD),
        authorization.callback_org_matches: ("DD-OAUTH-REDIRECT-PARAMS", MUST),
        authorization.callback_site_matches: ("DD-OAUTH-REDIRECT-PARAMS", MUST),
        authorization.no_token_in_callback: ("RFC9700-2.1.2", MUST),
        authorization.callback_no_duplicates: ("RFC6749-3.1", MUST),
        authorization.consent_scopes_exact: ("RFC9700-2.3", MUST),
        authorization.redirect_not_307: ("RFC9700-4.12", SHOULD),
        authorization.consent_not_frameable: ("RFC6749-10.13", SHOULD),
        authorization.consent_no_store: ("RFC9700-4.2", SHOULD),
        authorization.error_page_invalid_client: ("DD-TROUBLESHOOT-INVALID-CLIENT-ID", MUST),
        authorization.error_page_mismatching_redirect: ("DD-TROUBLESHOOT-MISMATCHING-REDIRECT", MUST),
        authorization.invalid_client_not_redirected: ("RFC6749-4.1.2.1", MUST),
        authorization.altered_redirect_no_code: ("RFC9700-2.1", MUST),
        authorization.callback_at_registered_uri: ("RFC6749-3.1.2.4", MUST),
        authorization.error_page_status: ("DD-ENDPOINTS-ERROR-PAGE", CHARACTERIZE),
        authorization.published_client_any_org: ("DD-PUBLISH-ANY-ORG", MUST),
        authorization.pkce_plain_refused: ("DD-OAUTH-PKCE-METHOD", MUST),
        authorization.pkce_challenge_required: ("RFC9700-2.1.1", SHOULD),
        authorization.pkce_challenge_length_refused: ("RFC7636-4.2", MUST),
        authorization.response_type_refused: ("RFC6749-4.1.2.1", MUST),
        authorization.duplicate_parameter_refused: ("RFC6749-3.1", SHOULD),
        authorization.unknown_parameter_ignored: ("RFC6749-3.1", MUST),
        authorization.refusal_form: ("RFC6749-4.1.2.1", CHARACTERIZE),
        authorization.redirect_error_code_valid: ("RFC6749-4.1.2.1", MUST),
        authorization.redirect_error_is: ("RFC6749-4.1.2.1", SHOULD),
        authorization.deny_access_denied: ("DD-ENDPOINTS-DENY", MUST),
        authorization.state_echoed_on_error: ("RFC6749-4.1.2.1", MUST),
        authorization.no_token_in_any_url: ("RFC9700-2.1.2", MUST),
        authorization.unknown_scope_not_granted: ("RFC9700-2.3", MUST),
        authorization.unknown_scope_refusal_form: ("RFC6749-4.1.2.1", CHARACTERIZE),
        authorization.login_page_not_frameable: ("RFC6749-10.13", SHOULD),
        authorization.login_page_no_store: ("RFC9700-4.2", SHOULD),
        authorization.redirect_params_in_query: ("RFC6749-4.1.2.1", MUST),
        authorization.consent_offers_deny: ("DD-ENDPOINTS-CONSENT", MUST),
    }
    assert set(expected) == checks_of(authorization)
    for c, (req, severity) in expected.items():
        assert (c.requirement, c.severity) == (req, severity), c.name
        assert re.fullmatch(r"RFC\d+-[\d.]+|DD-[A-Z-]+", c.requirement)
        assert c.link.startswith("https://") and c.title


def test_callback_messages_are_informative():
    flow = FlowResult(error_text="invalid_client", pages=[PageVisit("login", "u1"), PageVisit("error", "u2")])
    message = authorization.flow_reached_callback(flow)
    assert "error page: invalid_client" in message and "login -> error" in message
    assert "stopped at https://x/" in authorization.flow_reached_callback(FlowResult(final_url="https://x/"))
    assert authorization.callback_org_params({"site": "x"}) == "missing dd_oid, dd_org_name"
    assert authorization.consent_scopes_exact(["a", "c"], ("a", "b")) == "extra ['c'], missing ['b']"
    assert authorization.callback_no_duplicates([("code", "a"), ("code", "b")]) == "repeated: code"
    assert "expected 'datadoghq.eu'" in authorization.callback_domain({"domain": "datadoghq.com"}, "datadoghq.eu")
    assert authorization.callback_org_matches({"dd_oid": "o2", "dd_org_name": "Globex"}, "Acme", "o1") == \
        "dd_org_name is 'Globex', expected 'Acme'; dd_oid is 'o2', expected 'o1'"
    assert authorization.callback_site_matches({"site": "https://app.datadoghq.com"}, EU1) == \
        "site is 'https://app.datadoghq.com', expected https://app.datadoghq.eu or app.datadoghq.eu (site EU1)"
    # the state message tells lengths, never the state values themselves
    assert authorization.state_echoed({"state": "abc"}, "abcd") == "state altered: sent 4 chars, got 3 chars"


def test_messages_say_what_happened():
    assert authorization.error_page_invalid_client(MISMATCH) == (
        "the error page says 'invalid_request - Mismatching redirect URI.', "
        "expected 'invalid_request - Invalid client_id parameter value'")
    assert "no error page; redirect to https://integration.example.com/oauth/callback/extra" in \
        authorization.error_page_mismatching_redirect(ALTERED_CODE)
    assert "a code was issued (the callback)" in authorization.pkce_plain_refused(CODE_CB)
    assert "a code was issued (a URL on app.datadoghq.eu)" in authorization.altered_redirect_no_code(CODE_IN_PAGE)
    assert authorization.refusal_form(INVALID_CLIENT) == \
        "error page: invalid_request - Invalid client_id parameter value."
    assert authorization.unknown_scope_refusal_form(CODE_CB) == "the scope parameter was ignored: a code was issued"
    assert authorization.no_token_in_any_url(FRAG_TOKEN) == "a URL carries access_token"
    assert authorization.state_echoed_on_error({"state": "abc"}, "abcd") == "state altered: sent 4 chars, got 3 chars"
    assert authorization.redirect_error_code_valid({"error": "access_denied", "code": CODE}) == \
        "the error redirect also carries code"
    assert authorization.describe_flow(stopped()).startswith(
        "stopped at https://app.datadoghq.eu/account/login (login)")


# ---- the suite's URL builders ------------------------------------------------------------------

def test_altered_redirect_uris_differ_in_one_way():
    from suites.test_errors_authorize import REDIRECT_VARIANTS, altered_redirect_uri

    got = {v: altered_redirect_uri(CALLBACK, v) for v in REDIRECT_VARIANTS}
    assert got == {
        "extra_path": "https://integration.example.com/oauth/callback/extra",
        "added_query": "https://integration.example.com/oauth/callback?ddoauth=1",
        "trailing_slash": "https://integration.example.com/oauth/callback/",
        "scheme": "http://integration.example.com/oauth/callback",
        "host": "https://integration.example.com.invalid/oauth/callback",
        "port": "https://integration.example.com:8443/oauth/callback",
        "case": "https://integration.example.com/OAUTH/CALLBACK",
    }
    loop = "http://127.0.0.1:8765/oauth/callback"
    assert altered_redirect_uri(loop, "port") is None  # RFC 8252 §7.3: loopback ports float
    assert altered_redirect_uri(loop, "host") == "http://localhost:8765/oauth/callback"
    assert altered_redirect_uri(loop, "scheme") == "https://127.0.0.1:8765/oauth/callback"
    assert altered_redirect_uri("https://p.example:444/cb/?a=1", "port") == "https://p.example:445/cb/?a=1"
    assert altered_redirect_uri("https://p.example:444/cb/?a=1", "trailing_slash") == "https://p.example:444/cb?a=1"
    assert altered_redirect_uri("https://p.example/cb?a=1", "added_query") == "https://p.example/cb?a=1&ddoauth=1"
    assert altered_redirect_uri("https://p.example/", "case") == "https://P.EXAMPLE/"
