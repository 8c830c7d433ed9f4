"""Integration mode says what is missing (harness/browser/partner.py): a configured login label, submit
button, success text or URL the partner's page does not have ends the flow within seconds (not after
`timeout_s`) with a problem naming it, the page's URL and title, the labels and buttons it has, and the
saved snapshot. A real Chromium on pages this test serves itself (no network)."""
from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import parse_qsl

import pytest

from harness.browser.consent import ConsentDriver
from harness.browser.partner import PartnerDriver, PartnerFlow
from harness.config.integration import IntegrationConfig, PartnerLogin

ORIGIN = "https://partner.example"
GOOD_FIELDS = (("Email", "demo@partner.example"), ("Password", "pw-diag-4471"))


def _login_page(error: str = "") -> str:
    alert = f"<p role=alert>{error}</p>" if error else ""
    return (f"<html><head><title>Partner sign in</title></head><body>{alert}<form method=post action=/login>"
            "<label for=e>Email</label><input id=e name=email>"
            "<label for=p>Password</label><input id=p name=password type=password>"
            "<button type=submit>Sign in</button></form></body></html>")


def _go(route, path: str):
    # a script hop, not a 302: Playwright does not route the target of a fulfilled redirect
    return route.fulfill(status=200, content_type="text/html",
                         body=f"<html><body><script>location.replace('{ORIGIN}{path}')</script></body></html>")


def _serve(route):
    request = route.request
    if not request.url.startswith(ORIGIN + "/"):
        return route.abort("namenotresolved")
    path = request.url[len(ORIGIN):].split("?")[0]
    if path == "/start":
        return _go(route, "/login")
    if path == "/login" and request.method == "POST":
        form = dict(parse_qsl(request.post_data or ""))
        if form.get("password") == "pw-diag-4471":
            return _go(route, "/done")
        return route.fulfill(status=401, content_type="text/html", body=_login_page("Wrong email or password"))
    if path == "/login":
        return route.fulfill(status=200, content_type="text/html", body=_login_page())
    if path == "/done":
        return route.fulfill(status=200, content_type="text/html",
                             body="<html><head><title>Partner</title></head><body><h1>All set</h1></body></html>")
    return route.fulfill(status=404, body="not found")


@pytest.fixture
def partner_page(page):
    page.route("**/*", _serve)
    return page


def _run(page, tmp_path, fields=GOOD_FIELDS, submit=PartnerLogin.submit, login_url=r"/login", success_text="All set"):
    config = IntegrationConfig(onboarding_url=f"{ORIGIN}/start", redirect_uri=f"{ORIGIN}/cb", client_ids=("c",),
                               success_text=success_text, login=PartnerLogin(fields, submit, login_url),
                               timeout_s=45.0)
    consent = ConsentDriver(None, None, "EU1", snapshot_dir=tmp_path, snapshot_prefix="diag")
    started = time.monotonic()
    flow = PartnerDriver(config, consent, screenshots=False).run(page, f"{ORIGIN}/start")
    return flow, time.monotonic() - started


def _says_the_page(flow, tmp_path):
    assert "partner.example/login" in flow.problem and "'Partner sign in'" in flow.problem
    assert "inputs 'Email', 'Password'" in flow.problem and "buttons 'Sign in'" in flow.problem
    assert list(tmp_path.glob("diag-*-partner-unmatched.aria.yml")), "the page's snapshot is saved"
    assert flow.problem in flow.describe()


def test_the_happy_path_still_succeeds(partner_page, tmp_path):
    flow, seconds = _run(partner_page, tmp_path)
    assert flow.outcome == "success" and flow.problem is None and flow.partner_logins == 1


def test_a_missing_login_label_is_named_at_once(partner_page, tmp_path):
    flow, seconds = _run(partner_page, tmp_path, fields=(("Username", "demo"), ("Password", "pw-diag-4471")))
    assert flow.outcome == "stuck" and seconds < 10, seconds
    assert "has no input labelled 'Username' (integration.login.fields)" in flow.problem
    _says_the_page(flow, tmp_path)


def test_a_missing_login_label_without_a_login_url_ends_when_the_page_settles(partner_page, tmp_path):
    flow, seconds = _run(partner_page, tmp_path, fields=(("Username", "demo"),), login_url=None)
    assert flow.outcome == "stuck" and seconds < 12, seconds
    assert "matches none of the configured pages" in flow.problem
    assert "a login page with an input labelled 'Username'" in flow.problem and "success.text 'All set'" in flow.problem
    _says_the_page(flow, tmp_path)


def test_a_missing_submit_button_is_named(partner_page, tmp_path):
    flow, seconds = _run(partner_page, tmp_path, submit=r"^Log on$")
    assert seconds < 10, seconds
    assert "has no button named /^Log on$/ (integration.login.submit)" in flow.problem
    _says_the_page(flow, tmp_path)


def test_the_login_page_still_showing_after_submit_ends_the_flow(partner_page, tmp_path):
    flow, seconds = _run(partner_page, tmp_path, fields=(("Email", "demo@partner.example"), ("Password", "wrong-pw")))
    assert seconds < 12, seconds
    assert "login page is still showing after submit" in flow.problem
    assert "'Wrong email or password'" in flow.problem
    _says_the_page(flow, tmp_path)


def test_a_wrong_success_text_is_named_when_the_page_settles(partner_page, tmp_path):
    flow, seconds = _run(partner_page, tmp_path, success_text="Connected to Datadog")
    assert flow.outcome == "stuck" and seconds < 12, seconds
    assert "success.text 'Connected to Datadog'" in flow.problem and "partner.example/done" in flow.problem
    assert "title 'Partner'" in flow.problem


class _FakeRequest:
    def __init__(self, page, url):
        self.frame, self.url = page.main_frame, url

    def is_navigation_request(self):
        return True


class _FakeResponse:
    def __init__(self, request, status=200):
        self.request, self.frame, self.status = request, request.frame, status


class _FakePage:
    """Only what PartnerDriver._watching and _settled read: events are emitted by the test."""
    main_frame = object()

    def __init__(self):
        self.url, self.handlers = f"{ORIGIN}/login", {}

    def on(self, event, handler):
        self.handlers[event] = handler

    def remove_listener(self, event, handler):
        self.handlers.pop(event, None)

    def emit(self, event, arg):
        self.handlers[event](arg)

    def evaluate(self, script):
        assert "readyState" in script
        return "complete"

    def locator(self, _selector):
        return SimpleNamespace(inner_text=lambda timeout: "")


def _settles(page, driver, within_s=2.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if driver._settled(page):
            return True
        time.sleep(0.02)
    return False


def _quick_settling_driver(tmp_path) -> PartnerDriver:
    config = IntegrationConfig(onboarding_url=f"{ORIGIN}/start", redirect_uri=f"{ORIGIN}/cb", client_ids=("c",),
                               success_text="All set", settle_s=0.1)
    return PartnerDriver(config, ConsentDriver(None, None, "EU1", snapshot_dir=tmp_path), screenshots=False)


def test_a_superseded_navigation_whose_finish_event_is_lost_does_not_hold_the_page_unsettled(tmp_path):
    # seen in Chromium: a document that starts the next navigation while it loads (location.replace in an
    # inline script) is answered but never reported finished or failed; the page it went on to settles
    driver, page = _quick_settling_driver(tmp_path), _FakePage()
    with driver._watching(page, PartnerFlow(start_url=f"{ORIGIN}/start")):
        start = _FakeRequest(page, f"{ORIGIN}/start")
        page.emit("request", start)
        page.emit("response", _FakeResponse(start))  # ... and no requestfinished for it, ever
        login = _FakeRequest(page, f"{ORIGIN}/login")
        page.emit("request", login)
        assert not _settles(page, driver, within_s=0.4), "the latest navigation is unanswered: not settled"
        page.emit("response", _FakeResponse(login, 401))
        page.emit("requestfinished", login)
        assert _settles(page, driver), "the superseded request must not count as in flight"


def test_an_answered_navigation_counts_as_loaded_once_its_document_is_complete(tmp_path):
    driver, page = _quick_settling_driver(tmp_path), _FakePage()
    with driver._watching(page, PartnerFlow(start_url=f"{ORIGIN}/start")):
        login = _FakeRequest(page, f"{ORIGIN}/login")
        page.emit("request", login)
        page.emit("response", _FakeResponse(login))  # its requestfinished late or lost
        assert _settles(page, driver)
