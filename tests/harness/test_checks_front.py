"""harness/checks_front.py: every front-channel check passes on a conforming flow and fails on a
broken one, with a one-line message that never carries a code or a state value."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from checkcases import assert_cases_cover, checks_of, assert_fails_one_line, assert_holds, case_params

from harness.checks import front_channel as checks_front
from harness.checks.registry import CHARACTERIZE, MUST, REGISTRY, SHOULD
from harness.browser.consent import FlowResult, PageVisit

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


REFUSAL = {"pass": [case(ERR_CB), case(INVALID_CLIENT), case(DENIED)],
           "fail": [case(CODE_CB), case(NO_PARAMS_CB), case(stopped()), case(CODE_IN_PAGE), case(ALTERED_CODE)]}

CASES: dict[str, dict[str, list]] = {
    "error_page_invalid_client": {
        "pass": [case(INVALID_CLIENT), case(error_page("Error\n invalid_request  -  Invalid client_id parameter value"))],
        "fail": [case(MISMATCH), case(CODE_CB), case(ERR_CB), case(stopped()),
                 case(error_page("invalid_client - Invalid client_id parameter value"))],
    },
    "error_page_mismatching_redirect": {
        "pass": [case(MISMATCH), case(error_page("INVALID_REQUEST - MISMATCHING REDIRECT URI."))],
        "fail": [case(INVALID_CLIENT), case(ALTERED_CODE), case(ALTERED_ERR), case(stopped()),
                 case(error_page("invalid_request - Invalid redirect URI."))],
    },
    "invalid_client_not_redirected": {
        "pass": [case(INVALID_CLIENT), case(stopped())],
        "fail": [case(CODE_CB), case(ERR_CB), case(CODE_IN_PAGE)],
    },
    "altered_redirect_no_code": {
        "pass": [case(MISMATCH), case(ALTERED_ERR), case(ERR_CB)],
        "fail": [case(ALTERED_CODE), case(CODE_CB), case(CODE_IN_PAGE)],
    },
    "callback_at_registered_uri": {
        "pass": [case(MISMATCH, CALLBACK), case(CODE_CB, CALLBACK), case(ERR_CB, CALLBACK),
                 case(callback("https://p.example/cb?tenant=1&code=c"), "https://p.example/cb?tenant=1")],
        "fail": [case(ALTERED_CODE, CALLBACK), case(ALTERED_ERR, CALLBACK),
                 case(callback("http://integration.example.com/oauth/callback?error=x"), CALLBACK),
                 case(callback("https://integration.example.com:8443/oauth/callback?code=c"), CALLBACK),
                 case(callback("https://integration.example.com/OAUTH/CALLBACK?code=c"), CALLBACK),
                 case(callback("https://p.example/cb?code=c"), "https://p.example/cb?tenant=1")],
    },
    "error_page_status": {
        "pass": [case(400)],
        "fail": [case(None), case(200), case(500)],
    },
    "published_client_any_org": {
        "pass": [case(CODE_CB, "Acme"), case(callback(f"{CALLBACK}?code=c"), "Acme")],
        "fail": [case(INVALID_CLIENT, "Acme"), case(ERR_CB, "Acme"), case(CODE_CB, "Globex"), case(stopped(), "Acme")],
    },
    "pkce_plain_refused": REFUSAL,
    "pkce_challenge_required": REFUSAL,
    "pkce_challenge_length_refused": REFUSAL,
    "response_type_refused": {"pass": REFUSAL["pass"], "fail": REFUSAL["fail"] + [case(FRAG_TOKEN)]},
    "duplicate_parameter_refused": REFUSAL,
    "unknown_parameter_ignored": {
        "pass": [case(CODE_CB)],
        "fail": [case(ERR_CB), case(INVALID_CLIENT), case(NO_PARAMS_CB), case(stopped())],
    },
    "refusal_form": {
        "pass": [case(ERR_CB), case(DENIED)],
        "fail": [case(INVALID_CLIENT), case(CODE_CB), case(NO_PARAMS_CB), case(stopped())],
    },
    "redirect_error_code_valid": {
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
    "redirect_error_is": {
        "pass": [case({"error": "invalid_request"}, ("invalid_request",)),
                 case({"error": "unauthorized_client"}, ("unsupported_response_type", "unauthorized_client"))],
        "fail": [case({"error": "server_error"}, ("invalid_request",)), case({}, ("invalid_request",))],
    },
    "deny_access_denied": {
        "pass": [case(DENIED)],
        "fail": [case(CODE_CB), case(ERR_CB), case(INVALID_CLIENT), case(NO_PARAMS_CB),
                 case(callback(f"{CALLBACK}?error=access_denied&code=c"))],
    },
    "state_echoed_on_error": {
        "pass": [case({"error": "access_denied", "state": STATE}, STATE)],
        "fail": [case({"error": "access_denied"}, STATE), case({"state": STATE.upper()}, STATE),
                 case({"state": STATE.replace(" ", "+")}, STATE), case({"state": STATE[:-1]}, STATE)],
    },
    "no_token_in_any_url": {
        "pass": [case(CODE_CB), case(ERR_CB), case(INVALID_CLIENT)],
        "fail": [case(FRAG_TOKEN), case(callback(f"{CALLBACK}?access_token=at&token_type=bearer")),
                 case(callback(f"{CALLBACK}?id_token=x")),
                 case(FlowResult(pages=[PageVisit("consent", f"{AUTHZ}#token=t")], final_url=AUTHZ))],
    },
    "unknown_scope_not_granted": {
        "pass": [case(None, None, "org_management"), case(["metrics_read"], "metrics_read", "org_management"),
                 case(["org_management_read"], "org_management_read", "org_management")],
        "fail": [case(["metrics_read", "org_management"], None, "org_management"),
                 case(None, "metrics_read org_management", "org_management"),
                 case(["org_management"], "org_management", "org_management")],
    },
    "unknown_scope_refusal_form": {
        "pass": [case(callback(f"{CALLBACK}?error=invalid_scope&state=s"))],
        "fail": [case(CODE_CB), case(ERR_CB), case(error_page("invalid_scope - unknown scope")), case(stopped())],
    },
    "login_page_not_frameable": {
        "pass": [case({"x-frame-options": "DENY"}), case({"content-security-policy": "frame-ancestors 'self'"})],
        "fail": [case(None), case({}), case({"content-security-policy": "frame-ancestors *"}),
                 case({"x-frame-options": "ALLOW-FROM https://x"})],
    },
    "login_page_no_store": {
        "pass": [case({"cache-control": "no-store"}), case({"cache-control": "private, no-store, max-age=0"})],
        "fail": [case(None), case({}), case({"cache-control": "no-cache"}), case({"cache-control": "max-age=600"})],
    },
}



def test_every_front_check_has_cases():
    assert_cases_cover(CASES, checks_front.__name__)


@pytest.mark.parametrize("name,args,kwargs", case_params(CASES, "pass"))
def test_check_passes(name, args, kwargs):
    assert_holds(name, args, kwargs)


@pytest.mark.parametrize("name,args,kwargs", case_params(CASES, "fail"))
def test_check_fails_with_one_line_without_secrets(name, args, kwargs):
    message = assert_fails_one_line(name, args, kwargs)
    assert CODE not in message and STATE not in message and "at-1" not in message


def test_metadata():
    expected = {
        "error_page_invalid_client": ("DD-TROUBLESHOOT-INVALID-CLIENT-ID", MUST),
        "error_page_mismatching_redirect": ("DD-TROUBLESHOOT-MISMATCHING-REDIRECT", MUST),
        "invalid_client_not_redirected": ("RFC6749-4.1.2.1", MUST),
        "altered_redirect_no_code": ("RFC9700-2.1", MUST),
        "callback_at_registered_uri": ("RFC6749-3.1.2.4", MUST),
        "error_page_status": ("DD-ENDPOINTS-ERROR-PAGE", CHARACTERIZE),
        "published_client_any_org": ("DD-PUBLISH-ANY-ORG", MUST),
        "pkce_plain_refused": ("DD-OAUTH-PKCE-METHOD", MUST),
        "pkce_challenge_required": ("RFC9700-2.1.1", SHOULD),
        "pkce_challenge_length_refused": ("RFC7636-4.2", MUST),
        "response_type_refused": ("RFC6749-4.1.2.1", MUST),
        "duplicate_parameter_refused": ("RFC6749-3.1", SHOULD),
        "unknown_parameter_ignored": ("RFC6749-3.1", MUST),
        "refusal_form": ("RFC6749-4.1.2.1", CHARACTERIZE),
        "redirect_error_code_valid": ("RFC6749-4.1.2.1", MUST),
        "redirect_error_is": ("RFC6749-4.1.2.1", SHOULD),
        "deny_access_denied": ("DD-ENDPOINTS-DENY", MUST),
        "state_echoed_on_error": ("RFC6749-4.1.2.1", MUST),
        "no_token_in_any_url": ("RFC9700-2.1.2", MUST),
        "unknown_scope_not_granted": ("RFC9700-2.3", MUST),
        "unknown_scope_refusal_form": ("RFC6749-4.1.2.1", CHARACTERIZE),
        "login_page_not_frameable": ("RFC6749-10.13", SHOULD),
        "login_page_no_store": ("RFC9700-4.2", SHOULD),
    }
    assert set(expected) == checks_of(checks_front.__name__)
    for name, (req, severity) in expected.items():
        c = REGISTRY[name]
        assert (c.requirement, c.severity) == (req, severity), name
        assert re.fullmatch(r"RFC\d+-[\d.]+|DD-[A-Z-]+", c.requirement)
        assert c.link.startswith("https://") and c.title


def test_messages_say_what_happened():
    assert checks_front.error_page_invalid_client(MISMATCH) == (
        "the error page says 'invalid_request - Mismatching redirect URI.', "
        "expected 'invalid_request - Invalid client_id parameter value'")
    assert "no error page; redirect to https://integration.example.com/oauth/callback/extra" in \
        checks_front.error_page_mismatching_redirect(ALTERED_CODE)
    assert "a code was issued (the callback)" in checks_front.pkce_plain_refused(CODE_CB)
    assert "a code was issued (a URL on app.datadoghq.eu)" in checks_front.altered_redirect_no_code(CODE_IN_PAGE)
    assert checks_front.refusal_form(INVALID_CLIENT) == "error page: invalid_request - Invalid client_id parameter value."
    assert checks_front.unknown_scope_refusal_form(CODE_CB) == "the scope parameter was ignored: a code was issued"
    assert checks_front.no_token_in_any_url(FRAG_TOKEN) == "a URL carries access_token"
    assert checks_front.state_echoed_on_error({"state": "abc"}, "abcd") == "state altered: sent 4 chars, got 3 chars"
    assert checks_front.redirect_error_code_valid({"error": "access_denied", "code": CODE}) == \
        "the error redirect also carries code"
    assert checks_front.describe_flow(stopped()).startswith("stopped at https://app.datadoghq.eu/account/login (login)")


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
