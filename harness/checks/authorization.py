"""Authorization endpoint (browser front channel): the authorize request, the login and consent
pages, Datadog's error pages and the callback.

RFC 6749 §4.1.2.1 splits authorization errors in two: a bad client_id or redirect_uri must never
be redirected (an error page instead), anything later goes back to the registered redirect URI as
`?error=...&state=...`. Datadog documents the first half ("a Datadog error page displays", with
`invalid_request - ...` texts) and the deny redirect; the other refusals are characterized.

Every check takes what the browser saw (a FlowResult, a callback dict, response headers) and returns
None or a one-line failure message; none of them ever prints a code or a state value.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from core.sites import load_registry
from harness.checks.registry import CHARACTERIZE, SHOULD, check

INVALID_CLIENT_TEXT = "invalid_request - Invalid client_id parameter value"
MISMATCHING_REDIRECT_TEXT = "invalid_request - Mismatching redirect URI"
# RFC 6749 §4.1.2.1: the authorization endpoint's error codes
AUTHORIZE_ERRORS = ("invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
                    "invalid_scope", "server_error", "temporarily_unavailable")
# RFC 6749 §4.1.2.1: error_description is %x20-21 / %x23-5B / %x5D-7E (no '"', no '\', ASCII only)
_DESCRIPTION_RE = re.compile(r'\A[\x20-\x21\x23-\x5b\x5d-\x7e]*\Z')
_TOKEN_PARAMS = ("access_token", "refresh_token", "id_token", "token")


# ---- what a flow left behind ---------------------------------------------------------------------

def _urls(flow) -> list[str]:
    """Every URL the flow met: the pages, the callback hop and where the browser ended."""
    urls = [p.url for p in flow.pages]
    urls += [u for u in (flow.callback_url, flow.final_url) if u]
    return urls


def _params(url: str) -> list[tuple[str, str]]:
    """Query and fragment parameters of a URL (an implicit-style answer puts tokens in the fragment)."""
    parts = urlsplit(url)
    return parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(parts.fragment, keep_blank_values=True)


def _code_leaks(flow) -> list[str]:
    """Where a `code` parameter showed up (the callback or any URL met), as places, never values."""
    places = ["the callback"] if flow.callback.get("code") else []
    for url in _urls(flow):
        if url != flow.callback_url and any(k == "code" and v for k, v in _params(url)):
            place = f"a URL on {urlsplit(url).hostname or url[:40]}"
            if place not in places:
                places.append(place)
    return places


def describe_flow(flow) -> str:
    """One line: how the flow ended (no secrets)."""
    if flow.outcome == "callback":
        keys = sorted(flow.callback)
        err = flow.callback.get("error")
        base = urlsplit(flow.callback_url or "")
        where = f"{base.scheme}://{base.netloc}{base.path}"
        return f"redirect to {where} with " + (f"error={err}" if err else f"keys {keys}")
    if flow.outcome == "error_page":
        return f"error page: {_one_line(flow.error_text)}"
    pages = " -> ".join(flow.page_names()) or "no page"
    return f"stopped at {flow.final_url} ({pages})"


def _one_line(text: str | None, limit: int = 160) -> str:
    return " ".join((text or "").split())[:limit]


def _refusal_problem(flow) -> str | None:
    """None when the request was refused (error page, or an error redirect without a code)."""
    leaks = _code_leaks(flow)
    if leaks:
        return f"a code was issued ({', '.join(leaks)}): {describe_flow(flow)}"
    if flow.outcome == "error_page":
        return None
    if flow.outcome == "callback":
        return None if flow.callback.get("error") else f"redirected without an error: {describe_flow(flow)}"
    return f"neither refused nor redirected: {describe_flow(flow)}"


def _error_page_problem(flow, wanted: str) -> str | None:
    if flow.outcome != "error_page":
        return f"no error page; {describe_flow(flow)}"
    shown = _one_line(flow.error_text, 400)
    if wanted.lower() not in shown.lower():
        return f"the error page says {shown!r}, expected {wanted!r}"
    return None


def _same_endpoint(url: str, registered: str) -> bool:
    """The callback went to the registered URI: scheme, host, port and path identical, and the
    registered URI's own query parameters kept (RFC 6749 §3.1.2: the server adds to the query)."""
    got, want = urlsplit(url), urlsplit(registered)
    if (got.scheme, got.netloc, got.path) != (want.scheme, want.netloc, want.path):
        return False
    pairs = parse_qsl(got.query, keep_blank_values=True)
    return all(p in pairs for p in parse_qsl(want.query, keep_blank_values=True))


# ---- the callback --------------------------------------------------------------------------------

@check("DD-ENDPOINTS-AUTHORIZE", "the flow reaches the redirect URI with a code")
def flow_reached_callback(result) -> str | None:
    if result.outcome != "callback" and getattr(result, "missing_control", None):
        return (f"no callback: the consent page offers no {result.missing_control.split('.')[-1].title()} control "
                f"(the recipe's {result.missing_control} found nothing); pages: {' -> '.join(result.page_names())}")
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


@check("DD-OAUTH-REDIRECT-PARAMS", "the callback's dd_oid and dd_org_name name the org that was authorized")
def callback_org_matches(callback: dict, org_name: str, org_id: str | None = None) -> str | None:
    """Only the parameters present are compared (callback_org_params asks for them); dd_oid only when the
    target knows its org id."""
    problems = []
    named = callback.get("dd_org_name")
    if named and named.strip() != org_name.strip():
        problems.append(f"dd_org_name is {named!r}, expected {org_name!r}")
    got_id = callback.get("dd_oid")
    if org_id and got_id and got_id != org_id:
        problems.append(f"dd_oid is {got_id!r}, expected {org_id!r}")
    return "; ".join(problems) or None


def _site_owner(host: str, sites) -> str | None:
    """The domain of the most specific known site that `host` is, or is a subdomain of."""
    owners = [s.domain for s in sites if host == s.domain or host.endswith("." + s.domain)]
    return max(owners, key=len, default=None)


@check("DD-OAUTH-REDIRECT-PARAMS", "the callback's site is the target's site (its web origin or host)")
def callback_site_matches(callback: dict, site, sites=None) -> str | None:
    """`site` is a core Site; `sites` every known site (default: the registry). Datadog's docs leave the
    form open (full origin or bare host); an org subdomain of the same site (bigcorp.datadoghq.eu) is
    the same site, another site's host (us3.datadoghq.com for US1) is not."""
    got = callback.get("site")
    if not got:
        return None  # presence: callback_org_params
    parts = urlsplit(got if "://" in got else f"https://{got}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") or parts.query or port:
        return f"site {got!r} is neither an https origin nor a host name"
    host = parts.hostname.lower()
    if host == site.web_host:
        return None
    if _site_owner(host, load_registry() if sites is None else sites) == site.domain:
        return None
    return f"site is {got!r}, expected {site.web_origin} or {site.web_host} (site {site.key})"


@check("RFC6749-4.1.2.1", "the redirect carries its parameters in the query, not the fragment")
def redirect_params_in_query(flow) -> str | None:
    """RFC 6749 §4.1.2 / §4.1.2.1: code, error and state are added to the query component of the redirect
    URI. A server that answers `#error=...&state=...` is read all the same (FlowResult.callback), so the
    error itself is still judged by the other checks; this one reports where it was."""
    keys = [k for k, _ in getattr(flow, "callback_fragment_pairs", [])]
    if not keys:
        return None
    listed = ", ".join(sorted(set(keys)))
    if "error" in keys:
        return f"error returned in the fragment, not the query (fragment keys: {listed})"
    if "code" in keys:
        return f"code returned in the fragment, not the query (fragment keys: {listed})"
    wanted = [k for k in keys if k in ("state", "error_description", "error_uri", "domain")]
    return f"redirect parameters returned in the fragment, not the query: {listed}" if wanted else None


@check("RFC9700-2.1.2", "no token travels in the callback URL")
def no_token_in_callback(callback: dict) -> str | None:
    leaked = [k for k in ("access_token", "refresh_token", "id_token", "token") if k in callback]
    return f"callback carries {', '.join(leaked)}" if leaked else None


@check("RFC6749-3.1", "parameters appear once on the callback")
def callback_no_duplicates(pairs: list[tuple[str, str]]) -> str | None:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    return f"repeated: {', '.join(dupes)}" if dupes else None


# ---- consent page --------------------------------------------------------------------------------

@check("RFC9700-2.3", "the consent page lists exactly the client's scopes")
def consent_scopes_exact(shown: list[str] | None, configured: tuple[str, ...]) -> str | None:
    if shown is None:
        return "no consent page was shown"
    extra = sorted(set(shown) - set(configured))
    missing = sorted(set(configured) - set(shown))
    if extra or missing:
        return f"extra {extra or '[]'}, missing {missing or '[]'}"
    return None


@check("DD-ENDPOINTS-CONSENT", "the consent page offers Deny (Datadog documents the redirect after a user denies)")
def consent_offers_deny(flow) -> str | None:
    """A documented control the page lacks is the server's failure, not a harness timeout: the consent
    driver looks for the recipe's `deny` briefly and records FlowResult.missing_control."""
    if getattr(flow, "missing_control", None) == "consent.deny":
        return "the consent page has no Deny control (the recipe's consent.deny found nothing on it)"
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


# ---- login page ----------------------------------------------------------------------------------

@check("RFC6749-10.13", "the login page cannot be framed", SHOULD)
def login_page_not_frameable(headers: dict | None) -> str | None:
    if headers is None:
        return "login page headers not captured"
    return consent_not_frameable(headers)


@check("RFC9700-4.2", "the login page is not cached (Cache-Control: no-store)", SHOULD)
def login_page_no_store(headers: dict | None) -> str | None:
    if headers is None:
        return "login page headers not captured"
    return consent_no_store(headers)


# ---- documented error pages (fatal errors: never redirected) -------------------------------------

@check("DD-TROUBLESHOOT-INVALID-CLIENT-ID", f"Datadog's error page says `{INVALID_CLIENT_TEXT}`")
def error_page_invalid_client(flow) -> str | None:
    return _error_page_problem(flow, INVALID_CLIENT_TEXT)


@check("DD-TROUBLESHOOT-MISMATCHING-REDIRECT", f"Datadog's error page says `{MISMATCHING_REDIRECT_TEXT}`")
def error_page_mismatching_redirect(flow) -> str | None:
    return _error_page_problem(flow, MISMATCHING_REDIRECT_TEXT)


@check("RFC6749-4.1.2.1", "an invalid client_id is never redirected to the redirect URI and gets no code")
def invalid_client_not_redirected(flow) -> str | None:
    leaks = _code_leaks(flow)
    if leaks:
        return f"a code was issued ({', '.join(leaks)}): {describe_flow(flow)}"
    if flow.outcome == "callback":
        return f"the browser was redirected: {describe_flow(flow)}"
    return None


@check("RFC9700-2.1", "exact redirect URI matching: no code is issued for an altered redirect URI")
def altered_redirect_no_code(flow) -> str | None:
    leaks = _code_leaks(flow)
    return f"a code was issued ({', '.join(leaks)}): {describe_flow(flow)}" if leaks else None


@check("RFC6749-3.1.2.4", "the browser is only ever redirected to the registered redirect URI")
def callback_at_registered_uri(flow, registered: str) -> str | None:
    if flow.outcome != "callback":
        return None  # no redirect at all: nothing went to an unregistered URI
    if _same_endpoint(flow.callback_url, registered):
        return None
    return f"redirected to an unregistered URI: {describe_flow(flow)}"


@check("DD-ENDPOINTS-ERROR-PAGE", "the error page answers HTTP 400 (oauthlib's status; Datadog's is undocumented)",
       CHARACTERIZE)
def error_page_status(status: int | None) -> str | None:
    if status is None:
        return "the error page's HTTP status was not captured"
    return None if status == 400 else f"the error page answers HTTP {status}"


# ---- test (unpublished) vs published clients -----------------------------------------------------

@check("DD-PUBLISH-ANY-ORG", "a published client is authorized from any org of the user")
def published_client_any_org(flow, org: str) -> str | None:
    if flow.outcome != "callback" or not flow.callback.get("code"):
        return f"no code from org {org!r}: {describe_flow(flow)}"
    named = flow.callback.get("dd_org_name")
    if named is not None and named != org:
        return f"the code was issued for org {named!r}, not {org!r}"
    return None


# ---- refusals after the client is verified -------------------------------------------------------

@check("DD-OAUTH-PKCE-METHOD", "code_challenge_method=plain is refused (Datadog: 'You must use SHA-256')")
def pkce_plain_refused(flow) -> str | None:
    return _refusal_problem(flow)


@check("RFC9700-2.1.1", "an authorization request without code_challenge is refused", SHOULD)
def pkce_challenge_required(flow) -> str | None:
    return _refusal_problem(flow)


@check("RFC7636-4.2", "a code_challenge outside 43..128 characters is refused")
def pkce_challenge_length_refused(flow) -> str | None:
    return _refusal_problem(flow)


@check("RFC6749-4.1.2.1", "a missing or unsupported response_type is refused")
def response_type_refused(flow) -> str | None:
    return _refusal_problem(flow)


@check("RFC6749-3.1", "a request with a repeated parameter is refused", SHOULD)
def duplicate_parameter_refused(flow) -> str | None:
    return _refusal_problem(flow)


@check("RFC6749-3.1", "an unknown request parameter is ignored: the flow completes")
def unknown_parameter_ignored(flow) -> str | None:
    if flow.outcome != "callback" or not flow.callback.get("code"):
        return f"the flow failed: {describe_flow(flow)}"
    return None


@check("RFC6749-4.1.2.1", "refusals after the redirect URI is verified go back to the client as ?error=",
       CHARACTERIZE)
def refusal_form(flow) -> str | None:
    """Records how a refusal looked when it was not an error redirect (an error page, most likely)."""
    if flow.outcome == "callback" and flow.callback.get("error") and not flow.callback.get("code"):
        return None
    return describe_flow(flow)


@check("RFC6749-4.1.2.1", "the error redirect carries an RFC 6749 error code, a well-formed description and no code")
def redirect_error_code_valid(callback: dict) -> str | None:
    error = callback.get("error")
    if error is None:
        return f"no error parameter (keys {sorted(callback)})"
    problems = []
    # §4.1.2.1: an error response is error, error_description, error_uri and state; never a grant as well
    granted = [k for k in ("code",) + _TOKEN_PARAMS if k in callback]
    if granted:
        problems.append(f"the error redirect also carries {', '.join(granted)}")
    if error not in AUTHORIZE_ERRORS:
        problems.append(f"error {error[:60]!r} is not an RFC 6749 §4.1.2.1 code")
    description = callback.get("error_description")
    if description is not None and not _DESCRIPTION_RE.match(description):
        bad = sorted({c for c in description if not _DESCRIPTION_RE.match(c)})
        problems.append(f"error_description has characters outside %x20-21/%x23-5B/%x5D-7E: {bad[:5]!r}")
    return "; ".join(problems) or None


@check("RFC6749-4.1.2.1", "the error code names the problem", SHOULD)
def redirect_error_is(callback: dict, expected: tuple[str, ...]) -> str | None:
    error = callback.get("error")
    return None if error in expected else f"error is {error!r}, expected {' or '.join(expected)}"


@check("DD-ENDPOINTS-DENY", "Deny on the consent page redirects with error=access_denied and no code")
def deny_access_denied(flow) -> str | None:
    if flow.outcome != "callback":
        return f"no redirect after Deny: {describe_flow(flow)}"
    if flow.callback.get("code"):
        return "Deny still issued a code"
    error = flow.callback.get("error")
    return None if error == "access_denied" else f"error is {error!r}, expected 'access_denied'"


@check("RFC6749-4.1.2.1", "state is echoed byte for byte on the error redirect")
def state_echoed_on_error(callback: dict, sent: str) -> str | None:
    return state_echoed(callback, sent, where="the error redirect")


@check("RFC9700-2.1.2", "no token travels in any URL (query or fragment) of the flow")
def no_token_in_any_url(flow) -> str | None:
    found = []
    for url in _urls(flow):
        for k, v in _params(url):
            if k in _TOKEN_PARAMS and v and k not in found:
                found.append(k)
    return f"a URL carries {', '.join(found)}" if found else None


# ---- scope ---------------------------------------------------------------------------------------

@check("RFC9700-2.3", "a scope the client does not have is never granted (consent page or token)")
def unknown_scope_not_granted(consent_scopes: list[str] | None, token_scope: str | None, scope: str) -> str | None:
    places = []
    if consent_scopes and scope in consent_scopes:
        places.append("the consent page")
    if token_scope and scope in token_scope.split():
        places.append("the token's scope")
    return f"{scope!r} granted: listed on {' and '.join(places)}" if places else None


@check("RFC6749-4.1.2.1", "a scope the client does not have is refused with error=invalid_scope", CHARACTERIZE)
def unknown_scope_refusal_form(flow) -> str | None:
    if flow.outcome == "callback" and flow.callback.get("error") == "invalid_scope" and not flow.callback.get("code"):
        return None
    if flow.outcome == "callback" and flow.callback.get("code"):
        return "the scope parameter was ignored: a code was issued"
    return describe_flow(flow)


@check("DD-OAUTH-REGION", "a flow started without a session offers the site picker")
def site_picker_offered(flow) -> str | None:
    # Datadog documents that users select their region during authorization
    if "site_picker" in flow.page_names():
        return None
    return f"no site picker was offered (pages: {' -> '.join(flow.page_names()) or 'none'})"
