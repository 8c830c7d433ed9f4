"""The consent driver tells what the server did (a real Chromium, routed pages, no network): a consent
page without a Deny control ends the flow at once with FlowResult.missing_control (a conformance check,
not a timeout); an error returned in the redirect's fragment is read from the Location header; a
server that remembered consent goes straight to the callback and the FlowResult says so."""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from harness.browser.consent import ConsentDriver, FlowResult, PageVisit, read_fragment
from harness.checks import authorization

ORIGIN = "https://app.datadoghq.com"
CALLBACK = "https://partner.example/oauth/callback"
AUTHORIZE = f"{ORIGIN}/oauth2/v1/authorize?client_id=c&redirect_uri={quote(CALLBACK, safe='')}&state=s"
CONSENT = """<title>Authorize Acme</title><h1>Authorize Acme</h1>
<ul aria-label="Requested permissions"><li><code>metrics_read</code></li></ul>
<form method="post" action="/oauth2/v1/authorize"><button name="decision" value="allow">Authorize</button>{deny}</form>"""
DENY = '<button name="decision" value="deny">Deny</button>'


def serve(page, get_html: str | None, post_location: str | None, get_location: str | None = None) -> None:
    """Datadog's authorize endpoint: GET shows `get_html` (or redirects to get_location), POST redirects to
    post_location; the partner's host is unreachable, as blocked_hosts_rules makes it in a real run."""
    def handler(route):
        request = route.request
        if request.url.startswith(CALLBACK):
            route.abort("namenotresolved")
        elif request.method == "POST":
            route.fulfill(status=302, headers={"Location": post_location})
        elif get_location is not None:
            route.fulfill(status=302, headers={"Location": get_location})
        else:
            route.fulfill(status=200, body=get_html, content_type="text/html")
    page.route("**/*", handler)


def test_a_consent_page_without_deny_is_a_missing_control_at_once(page):
    serve(page, CONSENT.format(deny=""), f"{CALLBACK}?error=access_denied&state=s")
    began = time.monotonic()
    flow = ConsentDriver(None, "Acme", "US1", decision="deny", screenshots=False).run(page, AUTHORIZE)
    elapsed = time.monotonic() - began
    assert elapsed < 5, f"{elapsed:.1f} s: a missing control is not waited for"
    assert flow.missing_control == "consent.deny" and flow.outcome == "stopped" and flow.consent_shown
    message = authorization.consent_offers_deny(flow)
    assert message == "the consent page has no Deny control (the recipe's consent.deny found nothing on it)"
    assert "no Deny control" in authorization.flow_reached_callback(flow)


def test_deny_with_the_control_present_reaches_the_callback(page):
    serve(page, CONSENT.format(deny=DENY), f"{CALLBACK}?error=access_denied&state=s")
    flow = ConsentDriver(None, "Acme", "US1", decision="deny", screenshots=False).run(page, AUTHORIZE)
    assert flow.missing_control is None and flow.callback == {"error": "access_denied", "state": "s"}
    assert authorization.consent_offers_deny(flow) is None
    assert authorization.redirect_params_in_query(flow) is None


def test_an_error_in_the_fragment_is_read_and_reported_as_such(page):
    serve(page, CONSENT.format(deny=DENY), f"{CALLBACK}#error=access_denied&state=s")
    flow = ConsentDriver(None, "Acme", "US1", decision="deny", screenshots=False).run(page, AUTHORIZE)
    assert flow.callback_pairs == [] and flow.callback_fragment_pairs == [("error", "access_denied"), ("state", "s")]
    assert flow.callback_url == f"{CALLBACK}#error=access_denied&state=s"
    assert authorization.deny_access_denied(flow) is None  # the error itself is still judged
    assert authorization.state_echoed_on_error(flow.callback, "s") is None
    assert authorization.redirect_params_in_query(flow) == \
        "error returned in the fragment, not the query (fragment keys: error, state)"


def test_remembered_consent_goes_straight_to_the_callback(page):
    serve(page, None, "-", get_location=f"{CALLBACK}?code=c0de-remembered&state=s&domain=datadoghq.com")
    flow = ConsentDriver(None, "Acme", "US1", decision="deny", screenshots=False).run(page, AUTHORIZE)
    assert flow.outcome == "callback" and not flow.consent_shown and flow.consent_remembered
    assert flow.callback_redirect_status == 302


# ---- FlowResult and read_fragment without a browser --------------------------------------------------

def test_flow_result_properties():
    consent = [PageVisit("consent", AUTHORIZE)]
    assert not FlowResult(callback_url=f"{CALLBACK}?code=c", callback_pairs=[("code", "c")],
                          pages=consent).consent_remembered
    assert FlowResult(callback_url=f"{CALLBACK}?code=c", callback_pairs=[("code", "c")]).consent_remembered
    # an error redirect without a consent page (invalid_scope, ...) is a refusal, not a remembered consent
    assert not FlowResult(callback_url=f"{CALLBACK}?error=x", callback_pairs=[("error", "x")]).consent_remembered
    assert not FlowResult(error_text="invalid_request").consent_remembered
    # the query wins over the fragment for a key in both
    both = FlowResult(callback_url=CALLBACK, callback_pairs=[("state", "q")],
                      callback_fragment_pairs=[("state", "f"), ("error", "e")])
    assert both.callback == {"state": "q", "error": "e"}


@pytest.mark.parametrize("location, final_url, expected", [
    ("https://partner.example/oauth/callback#error=access_denied&state=s", "chrome-error://chromewebdata/",
     [("error", "access_denied"), ("state", "s")]),
    ("/oauth/callback#error=x", "", [("error", "x")]),  # relative Location
    (None, "https://partner.example/oauth/callback#error=y", [("error", "y")]),  # integration mode: the page loaded
    (None, "https://elsewhere.example/#error=y", []),
    ("https://partner.example/oauth/callback?error=z", "chrome-error://chromewebdata/", []),
])
def test_read_fragment(location, final_url, expected):
    flow = FlowResult(callback_url="https://partner.example/oauth/callback", final_url=final_url)
    read_fragment(flow, "https://partner.example/start" if location and location.startswith("/") else AUTHORIZE,
                  location)
    assert flow.callback_fragment_pairs == expected
