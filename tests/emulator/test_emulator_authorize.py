"""Browser side of the emulator (web hosts): login, MFA, site and org pickers, consent, authorize errors."""
from __future__ import annotations

import secrets
from urllib.parse import parse_qsl, urlsplit

import pytest

from emukit import ANTI_FRAMING, Page, Pkce, auth_params, authorize, redeem
from core.scopes import load_catalogue

CLIENT_ID_ERROR = "invalid_request - Invalid client_id parameter value"
REDIRECT_ERROR = "invalid_request - Mismatching redirect URI"
OAUTH_SITES = ["US1", "US3", "US5", "EU1", "AP1"]
NO_OAUTH_SITES = ["AP2", "UK1", "US1-FED", "US2-FED"]


def authorize_get(emu, site="EU1", client="test", browser=None, **params):
    c = emu.client(site, client) if isinstance(client, str) else client
    p = auth_params(c, pkce=Pkce.new(), **params)
    p = {k: v for k, v in p.items() if v is not None}
    url = f"https://{emu.site(site).web_host}/oauth2/v1/authorize"
    return (browser.get(url, params=p) if browser else emu.get(url, params=p)), p


def assert_error_page(resp, text):
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    assert "location" not in resp.headers
    assert resp.headers["content-type"].startswith("text/html")
    page = Page(resp.text)
    assert any(text in a for a in page.alerts), page.alerts
    assert_page_headers(resp)


def assert_page_headers(resp):
    assert resp.headers.get("cache-control") == "no-store"
    for name, value in ANTI_FRAMING.items():
        assert resp.headers.get(name) == value, name


def redirect_params(resp) -> dict:
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    return dict(parse_qsl(urlsplit(resp.headers["location"]).query, keep_blank_values=True))


# ---- fatal errors: a Datadog error page and no redirect ----------------------------------------

def test_unknown_client_id_shows_error_page(emu):
    resp = emu.get("https://app.datadoghq.eu/oauth2/v1/authorize",
                   params=auth_params(emu.client("EU1"), pkce=Pkce.new(), client_id="00000000-0000-0000-0000-000000000000"))
    assert_error_page(resp, CLIENT_ID_ERROR)


def test_missing_client_id_shows_error_page(emu):
    p = auth_params(emu.client("EU1"), pkce=Pkce.new())
    del p["client_id"]
    resp = emu.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=p)
    assert_error_page(resp, "invalid_request - Missing client_id parameter")


def test_client_id_of_another_site_is_unknown(emu):
    # test clients are per site: the US3 test client does not exist on EU1
    p = auth_params(emu.client("US3"), pkce=Pkce.new())
    resp = emu.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=p)
    assert_error_page(resp, CLIENT_ID_ERROR)


def test_disabled_client_shows_error_page(emu):
    c = emu.client("EU1")
    assert emu.control("POST", f"clients/{c.id}/disable").status_code == 200
    resp, _ = authorize_get(emu)
    assert_error_page(resp, CLIENT_ID_ERROR)


REGISTERED = "https://integration.example.com/oauth/callback"
MISMATCHES = {
    "trailing slash": REGISTERED + "/",
    "extra path": REGISTERED + "/extra",
    "prefix only": "https://integration.example.com/oauth/call",
    "extra query": REGISTERED + "?x=1",
    "fragment": REGISTERED + "#frag",
    "host case": "https://INTEGRATION.example.com/oauth/callback",
    "path case": "https://integration.example.com/OAuth/callback",
    "scheme": "http://integration.example.com/oauth/callback",
    "explicit default port": "https://integration.example.com:443/oauth/callback",
    "other port": "https://integration.example.com:8443/oauth/callback",
    "loopback other port": "http://127.0.0.1:8766/oauth/callback",
    "loopback localhost": "http://localhost:8765/oauth/callback",
    "percent-encoded": "https://integration.example.com/oauth/%63allback",
    "userinfo": "https://user@integration.example.com/oauth/callback",
    "other host": "https://evil.example/oauth/callback",
}


@pytest.mark.parametrize("uri", MISMATCHES.values(), ids=MISMATCHES.keys())
def test_redirect_uri_mismatch_shows_error_page(emu, uri):
    resp, _ = authorize_get(emu, redirect_uri=uri)
    assert_error_page(resp, REDIRECT_ERROR)


def test_missing_redirect_uri_shows_error_page(emu):
    p = auth_params(emu.client("EU1"), pkce=Pkce.new())
    del p["redirect_uri"]
    resp = emu.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=p)
    assert_error_page(resp, "invalid_request - Missing redirect URI")


def test_fatal_check_wins_over_redirectable_one(emu):
    # bad redirect URI *and* missing response_type: never redirect to an unverified URI
    resp, _ = authorize_get(emu, redirect_uri="https://evil.example/cb", response_type=None)
    assert_error_page(resp, REDIRECT_ERROR)


def test_each_registered_redirect_uri_works(emu):
    for uri in emu.client("EU1").redirect_uris:
        flow = authorize(emu, redirect_uri=uri)
        assert flow.location.startswith(uri + "?")


def test_duplicate_authorize_parameter_shows_error_page(emu):
    c = emu.client("EU1")
    query = "&".join(f"{k}={v}" for k, v in auth_params(c, pkce=Pkce.new()).items())
    resp = emu.get(f"https://app.datadoghq.eu/oauth2/v1/authorize?{query}&client_id={c.id}")
    assert_error_page(resp, "invalid_request - Duplicate client_id parameter")


@pytest.mark.parametrize("site", NO_OAUTH_SITES)
def test_oauth_unavailable_site_shows_error_page(emu, site):
    resp, _ = authorize_get(emu, site=site)
    assert_error_page(resp, "is not available on " + emu.site(site).web_host)


# ---- the test client only works from its sandbox org --------------------------------------------

def test_test_client_from_customer_org_via_multi_org_user(emu):
    flow = authorize(emu, user="multiorg", org="customer")
    assert_error_page(flow.response, CLIENT_ID_ERROR)


def test_test_client_for_customer_only_user(emu):
    flow = authorize(emu, user="customer")
    assert_error_page(flow.response, CLIENT_ID_ERROR)


def test_test_client_from_sandbox_org_via_multi_org_user(emu):
    flow = authorize(emu, user="multiorg", org="sandbox")
    cb = redirect_params(flow.response)
    assert cb["dd_oid"] == emu.org("EU1", "sandbox").id


def test_test_client_forged_customer_org_on_consent_post(emu):
    # consent shown for the sandbox org; the POST is edited to name the customer org
    flow = authorize(emu, user="multiorg", org="sandbox", stop_at="consent")
    url, page = flow.pages[-1]
    resp = flow.browser.submit(url, page.forms[0], "Authorize", org_id=emu.org("EU1", "customer").id)
    assert_error_page(resp, CLIENT_ID_ERROR)


def test_published_client_from_customer_org(emu):
    flow = authorize(emu, client="published", user="customer")
    cb = redirect_params(flow.response)
    assert cb["dd_oid"] == emu.org("EU1", "customer").id
    assert cb["dd_org_name"] == emu.org("EU1", "customer").name


def test_org_picker_lists_every_org_of_the_user(emu):
    flow = authorize(emu, client="published", user="multiorg", org="customer")
    url, picker = flow.pages[0]
    assert picker.h1 == "Select an organization"
    names = [b[2] for b in picker.forms[0].buttons]
    assert names == [emu.org("EU1", "sandbox").name, emu.org("EU1", "customer").name]
    assert [b[1] for b in picker.forms[0].buttons] == [emu.org("EU1", "sandbox").id, emu.org("EU1", "customer").id]
    cb = redirect_params(flow.response)
    assert cb["dd_oid"] == emu.org("EU1", "customer").id


def test_org_picker_refuses_an_org_the_user_is_not_in(emu):
    flow = authorize(emu, client="published", user="developer", stop_at="consent")
    url, page = flow.pages[-1]
    resp = flow.browser.submit(url, page.forms[0], "Authorize", org_id=emu.org("US3", "sandbox").id)
    assert resp.status_code == 400 and "Unknown organization" in resp.text


# ---- redirectable errors ---------------------------------------------------------------------

def _redirect_error(emu, **params):
    resp, _ = authorize_get(emu, **params)
    cb = redirect_params(resp)
    assert resp.headers["location"].startswith(REGISTERED + "?")
    assert "code" not in cb
    return cb


def test_missing_response_type_redirects(emu):
    cb = _redirect_error(emu, response_type=None, state="s1")
    assert cb == {"error": "invalid_request", "error_description": "Missing response_type parameter.", "state": "s1"}


@pytest.mark.parametrize("rtype", ["token", "code token", "id_token", "CODE", ""])
def test_unsupported_response_type_redirects(emu, rtype):
    cb = _redirect_error(emu, response_type=rtype, state="s2")
    expected = "invalid_request" if rtype == "" else "unsupported_response_type"
    assert cb["error"] == expected and cb["state"] == "s2" and cb["error_description"]


def _pkce_error(emu, challenge, method):
    c = emu.client("EU1")
    p = auth_params(c, state="pk")
    if challenge is not None:
        p["code_challenge"] = challenge
    if method is not None:
        p["code_challenge_method"] = method
    resp = emu.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=p)
    return redirect_params(resp)


def test_pkce_missing_challenge_redirects(emu):
    cb = _pkce_error(emu, None, None)
    assert cb == {"error": "invalid_request", "error_description": "Code challenge required.", "state": "pk"}


def test_pkce_plain_refused(emu):
    v = "a" * 50
    cb = _pkce_error(emu, v, "plain")
    assert cb == {"error": "invalid_request", "error_description": "Transform algorithm not supported.", "state": "pk"}


def test_pkce_challenge_without_method_means_plain_and_is_refused(emu):
    cb = _pkce_error(emu, "a" * 50, None)
    assert cb["error_description"] == "Transform algorithm not supported."


@pytest.mark.parametrize("method", ["s256", "SHA256", "S512", "RS256"])
def test_pkce_unknown_method_refused(emu, method):
    cb = _pkce_error(emu, Pkce.new().challenge, method)
    assert cb["error_description"] == "Transform algorithm not supported."


@pytest.mark.parametrize("challenge", ["a" * 42, "a" * 129, "a" * 42 + "=", "a" * 50 + "+", "a" * 50 + "/",
                                       "a" * 50 + " ", "a" * 50 + "\n"],
                         ids=["42 chars", "129 chars", "padded", "plus", "slash", "space", "newline"])
def test_pkce_bad_challenge_refused(emu, challenge):
    cb = _pkce_error(emu, challenge, "S256")
    assert cb == {"error": "invalid_request", "error_description": "Invalid code_challenge parameter value.",
                  "state": "pk"}


@pytest.mark.parametrize("length", [43, 128])
def test_pkce_challenge_length_bounds_accepted(emu, length):
    c = emu.client("EU1")
    p = auth_params(c, code_challenge="A" * length, code_challenge_method="S256")
    resp = emu.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=p)
    assert resp.status_code == 302 and resp.headers["location"].startswith("/account/login")


def test_pkce_sha256_method_name_accepted(emu):
    pkce = Pkce.new()
    pkce.method = "SHA-256"  # the docs' spelling
    flow = authorize(emu, pkce=pkce)
    assert redeem(emu, flow).status_code == 200


def test_pkce_optional_switch_allows_no_challenge(emu):
    emu.behaviour(pkce="optional")
    flow = authorize(emu, pkce=None)
    assert "code" in redirect_params(flow.response)
    assert redeem(emu, flow).status_code == 200


@pytest.mark.parametrize("scope", ["org_management", "dashboards_read not_a_scope", "DASHBOARDS_READ"])
def test_invalid_scope_redirects(emu, scope):
    cb = _redirect_error(emu, scope=scope, state="sc")
    assert cb["error"] == "invalid_scope" and cb["state"] == "sc"


def test_requested_scope_subset_is_what_consent_and_token_carry(emu):
    flow = authorize(emu, scope="dashboards_read hosts_read")
    assert [s for s, _ in flow.consent.scopes] == ["dashboards_read", "hosts_read"]
    assert redeem(emu, flow).json()["scope"] == "dashboards_read hosts_read"


def test_deny_redirects_access_denied_with_state(emu):
    flow = authorize(emu, decision="Deny", state="deny-me")
    cb = redirect_params(flow.response)
    assert cb["error"] == "access_denied" and cb["state"] == "deny-me" and "code" not in cb
    assert flow.location.startswith(REGISTERED + "?")


def test_deny_without_state_has_no_state(emu):
    flow = authorize(emu, decision="Deny", state=None)
    cb = redirect_params(flow.response)
    assert cb["error"] == "access_denied" and "state" not in cb


# ---- success and the callback -----------------------------------------------------------------

STATES = {
    "plain": "abc123",
    "empty": "",
    "url specials": "a b+c/d?e=f&g=h#i;j,k",
    "already encoded": "%20%2B%26%3D",
    "html specials": "<script>alert('x')</script>\"&amp;",
    "unicode": "zürich-日本-🙂",
    "json": '{"return_to": "/x?y=1", "nonce": 42}',
    "long": secrets.token_urlsafe(1500),
}


@pytest.mark.parametrize("state", STATES.values(), ids=STATES.keys())
def test_state_echoed_byte_for_byte(emu, state):
    flow = authorize(emu, state=state)
    assert flow.callback["state"] == state


@pytest.mark.parametrize("state", ["a b+c&d=e", "<'\">"], ids=["url", "html"])
def test_state_echoed_on_error_redirect(emu, state):
    cb = _redirect_error(emu, response_type="token", state=state)
    assert cb["state"] == state


def test_no_state_means_no_state_on_callback(emu):
    flow = authorize(emu, state=None)
    assert "state" not in flow.callback and "code" in flow.callback


@pytest.mark.parametrize("site", OAUTH_SITES)
def test_callback_parameters(emu, site):
    extra = {"_site": site} if site == "US1" else {}
    flow = authorize(emu, site=site, state="cb-state", **extra)
    resp = flow.response
    assert resp.status_code == 302  # not 307: a 307 would replay the consent POST to the client
    assert resp.headers["cache-control"] == "no-store"
    assert flow.location.startswith(REGISTERED + "?")
    cb = flow.callback
    s = emu.site(site)
    assert set(cb) == {"code", "state", "domain", "site", "dd_oid", "dd_org_name"}
    assert cb["state"] == "cb-state"
    assert cb["domain"] == s.domain
    assert cb["site"] == f"https://{s.web_host}"
    assert cb["dd_oid"] == emu.org(site, "sandbox").id
    assert cb["dd_org_name"] == emu.org(site, "sandbox").name
    assert len(cb["code"]) >= 20


def test_callback_keeps_the_redirect_uri_query(emu):
    c = emu.client("EU1")
    c.redirect_uris.append("https://integration.example.com/cb?tenant=42")
    flow = authorize(emu, redirect_uri="https://integration.example.com/cb?tenant=42")
    assert flow.location.startswith("https://integration.example.com/cb?tenant=42&code=")
    assert flow.callback["tenant"] == "42"


def test_site_param_switch_bare_host(emu):
    emu.behaviour(site_param="host")
    assert authorize(emu).callback["site"] == "app.datadoghq.eu"


def test_callback_client_id_switch(emu):
    emu.behaviour(callback_client_id=True)
    assert authorize(emu).callback["client_id"] == emu.client("EU1").id
    emu.behaviour(callback_client_id=False)
    assert "client_id" not in authorize(emu).callback


# ---- consent page ------------------------------------------------------------------------------

def test_consent_lists_exactly_the_client_scopes(emu):
    flow = authorize(emu, stop_at="consent")
    page = flow.consent
    cat = load_catalogue()
    client = emu.client("EU1")
    assert page.scopes == [(s, cat.describe(s)) for s in client.scopes]
    assert all(desc and desc != s for s, desc in page.scopes)
    assert page.h1 == f"Authorize {client.name}"
    names = [b[2] for b in page.forms[0].buttons]
    assert names == ["Authorize", "Deny"]
    assert page.forms[0].action == "/oauth2/v1/authorize" and page.forms[0].method == "post"


def test_consent_follows_client_scope_changes(emu):
    client = emu.client("EU1")
    client.scopes[:] = ["teams_read", "cases_write"]
    page = authorize(emu, stop_at="consent").consent
    assert page.scopes == [("teams_read", load_catalogue().describe("teams_read")),
                           ("cases_write", "Create and update cases.")]


def test_consent_page_headers(emu):
    flow = authorize(emu, stop_at="consent")
    resp = flow.browser.get(flow.pages[-1][0])
    assert resp.status_code == 200 and Page(resp.text).h1.startswith("Authorize")
    assert_page_headers(resp)
    assert resp.headers.get("pragma") == "no-cache"


def test_every_page_has_anti_framing_and_no_store(emu):
    br = emu.browser()
    pages = [br.get("https://app.datadoghq.eu/account/login"),
             br.get("https://app.datadoghq.com/oauth2/v1/authorize",
                    params=auth_params(emu.client("US1", "published"), pkce=Pkce.new())),  # site picker
             br.get("https://app.datadoghq.eu/oauth2/v1/authorize", params={"client_id": "nope"})]  # error
    flow = authorize(emu, client="published", user="multiorg", org="customer", stop_at="consent")
    assert [p.h1 for _, p in flow.pages] == ["Select an organization", f"Authorize {flow.client.name}"]
    picker = flow.browser.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=flow.params)
    assert Page(picker.text).h1 == "Select an organization"
    consent = flow.browser.submit(str(picker.request.url), Page(picker.text).forms[0],
                                  org_id=emu.org("EU1", "customer").id)
    assert Page(consent.text).h1.startswith("Authorize")
    pages += [picker, consent]
    mfa_browser = emu.browser()
    mfa_browser.post("https://app.datadoghq.eu/account/login",
                     {"username": emu.user("EU1", "mfa").email, "password": emu.user("EU1", "mfa").password})
    pages.append(mfa_browser.get("https://app.datadoghq.eu/account/login/mfa"))
    for resp in pages:
        assert resp.headers["content-type"].startswith("text/html")
        assert_page_headers(resp)


def test_consent_post_without_csrf_refused(emu):
    flow = authorize(emu, stop_at="consent")
    url, page = flow.pages[-1]
    form = page.forms[0]
    del form.fields["csrf"]
    resp = flow.browser.submit(url, form, "Authorize")
    assert resp.status_code == 403 and "location" not in resp.headers and "CSRF" in resp.text


def test_consent_post_with_another_sessions_csrf_refused(emu):
    a = authorize(emu, stop_at="consent")
    b = authorize(emu, stop_at="consent")
    url, page = a.pages[-1]
    resp = a.browser.submit(url, page.forms[0], "Authorize", csrf=b.consent.forms[0].fields["csrf"])
    assert resp.status_code == 403


def test_consent_post_without_session_refused(emu):
    flow = authorize(emu, stop_at="consent")
    url, page = flow.pages[-1]
    other = emu.browser()
    resp = other.submit(url, page.forms[0], "Authorize")
    assert resp.status_code == 401 and "location" not in resp.headers


def test_consent_post_revalidates_redirect_uri(emu):
    flow = authorize(emu, stop_at="consent")
    url, page = flow.pages[-1]
    resp = flow.browser.submit(url, page.forms[0], "Authorize", redirect_uri="https://evil.example/cb")
    assert_error_page(resp, REDIRECT_ERROR)


def test_consent_post_revalidates_pkce(emu):
    flow = authorize(emu, stop_at="consent")
    url, page = flow.pages[-1]
    resp = flow.browser.submit(url, page.forms[0], "Authorize", code_challenge_method="plain")
    assert redirect_params(resp)["error"] == "invalid_request"


# ---- login, MFA, sessions ------------------------------------------------------------------------

def test_login_page_has_labelled_fields_and_button(emu):
    resp = emu.get("https://app.datadoghq.eu/account/login")
    page = Page(resp.text)
    assert resp.status_code == 200
    assert page.labels == ["Email", "Password"]
    assert [b[2] for b in page.forms[0].buttons] == ["Log in"]
    assert {"username", "password"} <= set(page.forms[0].fields)


@pytest.mark.parametrize("email,password", [("dev@partner.example", "wrong"), ("nobody@partner.example", "x"),
                                            ("", "")])
def test_bad_password_shows_visible_error(emu, email, password):
    resp = emu.post("https://app.datadoghq.eu/account/login", data={"username": email, "password": password})
    assert resp.status_code == 401
    page = Page(resp.text)
    assert page.alerts == ["Incorrect email or password."]
    assert "dogweb" not in resp.cookies


def test_login_sets_session_cookie(emu):
    br = emu.browser()
    resp = br.login("EU1")
    assert resp.status_code == 303
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("dogweb=")
    for attr in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attr.lower() in cookie.lower()


def test_login_email_is_case_insensitive(emu):
    u = emu.user("EU1")
    resp = emu.post("https://app.datadoghq.eu/account/login", data={"username": u.email.upper(), "password": u.password})
    assert resp.status_code == 303


def test_user_of_another_site_cannot_log_in_with_wrong_password_there(emu):
    # every site has its own user table (same seed): a password is checked per site
    u = emu.user("EU1")
    resp = emu.post("https://us3.datadoghq.com/account/login", data={"username": u.email, "password": "x"})
    assert resp.status_code == 401


def test_mfa_step(emu):
    br = emu.browser()
    u = emu.user("EU1", "mfa")
    resp = br.post("https://app.datadoghq.eu/account/login", {"username": u.email, "password": u.password, "next": "/x"})
    assert resp.status_code == 303 and resp.headers["location"].startswith("/account/login/mfa")
    page = Page(br.get("https://app.datadoghq.eu" + resp.headers["location"]).text)
    assert page.labels == ["Authentication code"]
    bad = br.post("https://app.datadoghq.eu/account/login/mfa", {"otp": "000000", "next": "/x"})
    assert bad.status_code == 401 and Page(bad.text).alerts == ["That code is not valid. Try the next one."]
    # the half-logged-in session does not count as logged in
    assert br.get("https://app.datadoghq.eu/oauth2/v1/authorize",
                  params=auth_params(emu.client("EU1"), pkce=Pkce.new())).headers["location"].startswith("/account/login")
    import pyotp
    ok = br.post("https://app.datadoghq.eu/account/login/mfa", {"otp": pyotp.TOTP(u.totp_secret).now(), "next": "/x"})
    assert ok.status_code == 303 and ok.headers["location"] == "/x"


def test_mfa_without_pending_login_goes_to_login(emu):
    resp = emu.post("https://app.datadoghq.eu/account/login/mfa", data={"otp": "123456"})
    assert resp.status_code == 303 and resp.headers["location"].startswith("/account/login")
    resp = emu.get("https://app.datadoghq.eu/account/login/mfa")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/account/login")


def test_full_flow_with_mfa_user(emu):
    flow = authorize(emu, user="mfa")
    assert "code" in flow.callback


@pytest.mark.parametrize("nxt", ["//evil.example/x", "https://evil.example/x", "evil", ""])
def test_login_next_is_never_an_open_redirect(emu, nxt):
    u = emu.user("EU1")
    resp = emu.post("https://app.datadoghq.eu/account/login",
                    data={"username": u.email, "password": u.password, "next": nxt})
    assert resp.headers["location"] == "/"


def test_session_is_per_web_host(emu):
    br = emu.browser()
    br.login("EU1")
    sid = br.http.cookies.get("dogweb")
    p = auth_params(emu.client("US3"), pkce=Pkce.new())
    # the browser does not send the EU cookie to US3, and even if it did, US3 would not honour it
    assert br.get("https://us3.datadoghq.com/oauth2/v1/authorize", params=p).headers["location"].startswith("/account/login")
    resp = emu.get("https://us3.datadoghq.com/oauth2/v1/authorize", params=p, headers={"Cookie": f"dogweb={sid}"})
    assert resp.headers["location"].startswith("/account/login")
    # on its own host it is a session
    resp = br.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=auth_params(emu.client("EU1"), pkce=Pkce.new()))
    assert resp.status_code == 200


def test_session_expires_after_12_hours(emu):
    br = emu.browser()
    br.login("EU1")
    emu.advance(12 * 3600 + 1)
    resp = br.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=auth_params(emu.client("EU1"), pkce=Pkce.new()))
    assert resp.headers["location"].startswith("/account/login")


def test_logout_ends_the_session(emu):
    br = emu.browser()
    br.login("EU1")
    resp = br.get("https://app.datadoghq.eu/account/logout")
    assert resp.status_code == 303
    resp = br.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=auth_params(emu.client("EU1"), pkce=Pkce.new()))
    assert resp.headers["location"].startswith("/account/login")


def test_existing_session_skips_login(emu):
    br = emu.browser()
    br.login("EU1")
    flow = authorize(emu, browser=br)
    assert "code" in flow.callback


def test_home_page(emu):
    resp = emu.get("https://app.datadoghq.eu/")
    assert resp.status_code == 200 and "Datadog EU1" in resp.text


# ---- site picker (US1 without tile context) -----------------------------------------------------

def test_site_picker_on_us1_without_session(emu):
    c = emu.client("US1", "published")
    resp = emu.get("https://app.datadoghq.com/oauth2/v1/authorize", params=auth_params(c, pkce=Pkce.new()))
    page = Page(resp.text)
    assert resp.status_code == 200 and page.h1 == "Select your Datadog site"
    offered = [b[1] for f in page.forms for b in f.buttons]
    assert offered == OAUTH_SITES  # commercial OAuth sites only: no AP2/UK1, no gov
    targets = {f.buttons[0][1]: f.action for f in page.forms}
    assert targets["EU1"] == "https://app.datadoghq.eu/oauth2/v1/authorize"
    assert targets["US3"] == "https://us3.datadoghq.com/oauth2/v1/authorize"


def test_site_picker_moves_the_flow_to_the_chosen_region(emu):
    c = emu.client("US1", "published")
    pkce = Pkce.new()
    br = emu.browser()
    resp = br.get("https://app.datadoghq.com/oauth2/v1/authorize", params=auth_params(c, pkce=pkce, state="pick"))
    page = Page(resp.text)
    eu_form = next(f for f in page.forms if f.buttons[0][1] == "EU1")
    resp = br.submit(str(resp.request.url), eu_form, eu_form.buttons[0][2])
    assert resp.request.url.host == "app.datadoghq.eu"
    assert resp.status_code == 302 and resp.headers["location"].startswith("/account/login")
    br.login("EU1", next_path=resp.headers["location"])
    flow = authorize(emu, site="EU1", client="published", browser=br, pkce=pkce, state="pick", stop_at="consent")
    url, consent = flow.pages[-1]
    resp = br.submit(url, consent.forms[0], "Authorize")
    cb = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
    assert cb["domain"] == "datadoghq.eu" and cb["site"] == "https://app.datadoghq.eu" and cb["state"] == "pick"
    # the published client's credentials are the same in every region: redeem at the EU API host
    body = {"grant_type": "authorization_code", "client_id": c.id, "client_secret": c.secret, "code": cb["code"],
            "redirect_uri": c.redirect_uris[0], "code_verifier": pkce.verifier}
    assert emu.post("https://api.datadoghq.eu/oauth2/v1/token", data=body).status_code == 200
    assert emu.post("https://api.datadoghq.com/oauth2/v1/token", data=body).status_code == 400


def test_site_picker_not_shown_with_session_or_when_switched_off(emu):
    c = emu.client("US1", "published")
    br = emu.browser()
    br.login("US1")
    resp = br.get("https://app.datadoghq.com/oauth2/v1/authorize", params=auth_params(c, pkce=Pkce.new()))
    assert Page(resp.text).h1.startswith("Authorize")
    emu.behaviour(site_picker="never")
    resp = emu.get("https://app.datadoghq.com/oauth2/v1/authorize", params=auth_params(c, pkce=Pkce.new()))
    assert resp.status_code == 302 and resp.headers["location"].startswith("/account/login")


def test_site_picker_only_on_us1(emu):
    resp, _ = authorize_get(emu, site="US3")
    assert resp.status_code == 302 and resp.headers["location"].startswith("/account/login")
