"""Integration mode: drive the partner's own app from its onboarding URL, through Datadog's pages,
to the partner's success page - the callback reaches the partner, nothing is intercepted.

A target's `integration` section says where the app starts, which redirect URI it registered,
how its login and its success page look, and what data it sends. Evidence on Datadog's side
(the API key the partner created, the data it sent, the host it called for the token exchange)
comes from the emulator's state or, against real Datadog, from the org's API with an org API key
and application key.

When the partner's page is not what the configuration describes (a login label or submit button the
page does not have, a login page still showing after submit, a settled partner page that shows neither
the success nor the failure text), the flow ends at once - not after `timeout_s` - with a `problem` that
names what is missing, the page's URL and title and the labels and buttons it does have; the page's
snapshot is saved beside Datadog's unrecognised pages (<reports-dir>/pages/).
"""
from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from core.redact import REDACTOR
from core.sites import DOCUMENTED_ENDPOINTS

from harness.config.integration import IntegrationConfig
from harness.browser.consent import ConsentDriver, FlowResult, PageVisit, is_datadog_host, short_url
from harness.browser.evidence import capture_page, page_screenshot, save_page


# ---- the browser side ------------------------------------------------------------------------------

SUCCESS_SETTLE_S = 0.5  # after a success page: how long it must stay (a refusal is watched for settle_s)


@dataclass
class PartnerFlow:
    start_url: str
    navigations: list[str] = field(default_factory=list)  # every main-frame navigation, in order
    consent: FlowResult | None = None  # Datadog's part of the flow
    final_url: str = ""
    final_status: int | None = None
    final_text: str = ""
    outcome: str = "stuck"  # success | failure | stuck | at_datadog
    pages: list[PageVisit] = field(default_factory=list)
    partner_logins: int = 0
    seconds: float = 0.0
    error: str | None = None  # the browser could not reach the partner (deliver only)
    problem: str | None = None  # what the configuration expected and the partner's page did not have
    authorize_path: str = DOCUMENTED_ENDPOINTS.authorize  # the targets file's endpoints.authorize

    def is_authorize(self, url: str) -> bool:
        """A request to Datadog's authorize endpoint (the partner's hand-over, or Datadog's own hops)."""
        parts = urlsplit(url)
        return is_datadog_host(parts.hostname) and parts.path == self.authorize_path

    @property
    def authorize_urls(self) -> list[str]:
        """The partner's hand-overs to Datadog: authorize requests navigated to from outside Datadog
        (Datadog's own hops - after login, the site picker, the consent form - are not counted)."""
        out, previous = [], None
        for url in self.navigations:
            if self.is_authorize(url) and (previous is None or not is_datadog_host(urlsplit(previous).hostname)):
                out.append(url)
            previous = url
        return out

    @property
    def datadog_authorize_hosts(self) -> list[str]:
        hosts = [urlsplit(u).hostname for u in self.navigations if self.is_authorize(u)]
        return [h for i, h in enumerate(hosts) if i == 0 or hosts[i - 1] != h]

    @property
    def callback_url(self) -> str | None:
        return self.consent.callback_url if self.consent else None

    def describe(self) -> str:
        hops = " -> ".join(f"{urlsplit(u).hostname}{urlsplit(u).path}" for u in self.navigations)
        if self.error:
            return f"the partner did not answer ({self.error}); navigations: {hops}"
        problem = f"; {self.problem}" if self.problem else ""
        return f"{self.outcome} at {urlsplit(self.final_url).hostname}{urlsplit(self.final_url).path} " \
               f"(HTTP {self.final_status}){problem}; navigations: {hops}"


# what the page offers, for a message that says what is missing: visible inputs by their accessible name, buttons
_INVENTORY_JS = """() => {
  const seen = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
  const flat = s => (s || '').replace(/\\s+/g, ' ').trim().slice(0, 60);
  const named = e => {
    if (e.getAttribute('aria-label')) return flat(e.getAttribute('aria-label'));
    const by = e.getAttribute('aria-labelledby');
    if (by) return flat(by.split(/\\s+/).map(id => (document.getElementById(id) || {}).innerText || '').join(' '));
    if (e.labels && e.labels.length) return flat(Array.from(e.labels).map(l => l.innerText).join(' '));
    if (e.getAttribute('placeholder')) return 'placeholder ' + flat(e.getAttribute('placeholder'));
    return '(unlabelled ' + (e.type || e.tagName.toLowerCase()) + ')';
  };
  const inputs = Array.from(document.querySelectorAll('input, textarea, select'))
    .filter(e => e.type !== 'hidden' && seen(e)).map(named);
  const buttons = Array.from(document.querySelectorAll('button, input[type=submit], input[type=button], [role=button]'))
    .filter(seen).map(e => flat(e.innerText || e.value || e.getAttribute('aria-label')));
  const alerts = Array.from(document.querySelectorAll('[role=alert]')).filter(seen).map(e => flat(e.innerText));
  return {inputs: inputs.slice(0, 12), buttons: buttons.slice(0, 12), alerts: alerts.slice(0, 3)};
}"""


class PartnerDriver:
    """Walks the partner's app: its login (when configured), Datadog's pages, back to the partner."""

    def __init__(self, config: IntegrationConfig, consent: ConsentDriver,
                 on_page: Callable[[PageVisit], None] | None = None, screenshots: bool = True,
                 authorize_path: str = DOCUMENTED_ENDPOINTS.authorize):
        self.config = config
        self.authorize_path = authorize_path
        self.consent = consent
        self.on_page = on_page
        self.screenshots = screenshots
        self._nav = {"last": time.monotonic(), "pending": None, "answered": False, "url": ""}

    def run(self, page: Page, url: str, settle_s: float = 1.5, stop_at_datadog: bool = False) -> PartnerFlow:
        """Follow the partner's flow to its success or error page (or, with stop_at_datadog, only until
        the partner hands the browser to Datadog)."""
        flow = PartnerFlow(start_url=url, authorize_path=self.authorize_path)
        with self._watching(page, flow):
            self._walk(page, url, flow, stop_at_datadog)
            if flow.outcome in ("success", "failure"):
                # a partner that loops back to Datadog would navigate again within moments: watched for
                # settle_s after its last navigation on a refusal (where partner_no_loop judges it), a
                # shorter while on success (only whether the page stays)
                quiet = settle_s if flow.outcome == "failure" else min(settle_s, SUCCESS_SETTLE_S)
                left = quiet - (time.monotonic() - self._nav["last"])
                if left > 0:
                    page.wait_for_timeout(int(left * 1000))
                if not self._on_partner(page):
                    flow.outcome = "stuck"
        return flow

    def deliver(self, page: Page, url: str) -> PartnerFlow:
        """Open a (possibly forged) callback URL in the partner's session and see where it ends."""
        flow = PartnerFlow(start_url=url, authorize_path=self.authorize_path)
        with self._watching(page, flow):
            try:
                page.goto(url, wait_until="domcontentloaded")
                self._await_partner_outcome(page, flow)
            except PlaywrightError as exc:  # the partner did not answer: recorded, never taken as a refusal
                flow.error = REDACTOR.redact_text(str(exc).splitlines()[0])
        return flow

    # ---- steps --------------------------------------------------------------------------------
    @contextmanager
    def _watching(self, page: Page, flow: PartnerFlow):
        """Record main-frame navigations and the last document status; fill in where the flow ended."""
        started = time.monotonic()
        status: dict = {}
        # the main frame has one navigation in flight at most: a new one supersedes (cancels or follows)
        # the one before, so only the latest is watched - a superseded request whose requestfinished or
        # requestfailed never arrives must not hold the page "unsettled" until timeout_s
        nav = self._nav = {"last": started, "pending": None, "answered": False, "url": ""}

        def on_request(request):
            if request.is_navigation_request() and request.frame == page.main_frame:
                flow.navigations.append(request.url)
                nav.update(last=time.monotonic(), pending=request, answered=False)
                for k, v in parse_qsl(urlsplit(request.url).query):
                    if k == "code":
                        REDACTOR.add(v, "authorization_code")

        def on_response(response):
            if response.request.is_navigation_request() and response.frame == page.main_frame:
                status["status"] = response.status
                nav["last"] = time.monotonic()
                if response.request == nav["pending"]:
                    nav["answered"] = True

        def on_done(request):
            if request == nav["pending"]:
                nav.update(last=time.monotonic(), pending=None)

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("requestfinished", on_done)
        page.on("requestfailed", on_done)
        try:
            yield
        finally:
            page.remove_listener("request", on_request)
            page.remove_listener("response", on_response)
            page.remove_listener("requestfinished", on_done)
            page.remove_listener("requestfailed", on_done)
            flow.final_url = page.url
            flow.final_status = status.get("status")
            flow.final_text = self._text(page)
            flow.seconds = time.monotonic() - started

    def _walk(self, page: Page, url: str, flow: PartnerFlow, stop_at_datadog: bool) -> None:
        page.goto(url, wait_until="domcontentloaded")
        deadline = time.monotonic() + self.config.timeout_s
        consent_done = False
        while time.monotonic() < deadline:
            host = urlsplit(page.url).hostname or ""
            if is_datadog_host(host):
                if stop_at_datadog:
                    flow.outcome = "at_datadog"
                    return
                if consent_done:
                    return  # Datadog's part ended on Datadog (its error page): the partner never got control
                flow.consent = self.consent.run(page, None)
                consent_done = True
                flow.pages += flow.consent.pages
                if flow.consent.outcome != "callback":
                    return
                continue
            if self._record_outcome(page, flow):
                return
            if self._login_shown(page):
                missing = self._login_missing(page)
                if missing:
                    return self._missing(page, flow, missing)
                if flow.partner_logins >= 2:
                    return  # the partner refused the login twice: stuck
                self._visit(page, flow, "partner login")
                self._log_in(page)
                flow.partner_logins += 1
                if self._still_login(page):
                    return self._missing(page, flow, f"the partner's login page is still showing after submit "
                                                     f"(login {flow.partner_logins}: wrong credentials in "
                                                     f"integration.login.fields, or a submit button that does not "
                                                     f"submit)")
                continue
            if self._settled(page):
                return self._missing(page, flow, self._no_match())
            page.wait_for_timeout(100)

    def _await_partner_outcome(self, page: Page, flow: PartnerFlow) -> None:
        deadline = time.monotonic() + self.config.timeout_s
        while time.monotonic() < deadline and not self._record_outcome(page, flow):
            if is_datadog_host(urlsplit(page.url).hostname):
                return  # sent back to Datadog: neither success nor a refusal page
            if self._settled(page):
                return self._missing(page, flow, self._no_match())
            page.wait_for_timeout(100)

    # ---- what is missing ------------------------------------------------------------------------
    def _settled(self, page: Page) -> bool:
        """The partner's page has stopped moving: no navigation in flight, the same URL and a loaded
        document for settle_s (a page still redirecting, or waiting for its server, is not settled)."""
        nav = self._nav
        if page.url != nav["url"]:
            nav["url"], nav["last"] = page.url, time.monotonic()
            return False
        # a navigation still unanswered is in flight; an answered one whose document has loaded (checked
        # below, settle_s after its response) is done even if its requestfinished event is late or lost
        in_flight = nav["pending"] is not None and not nav["answered"]
        if in_flight or time.monotonic() - nav["last"] < self.config.settle_s:
            return False
        try:
            return page.evaluate("() => document.readyState") == "complete"
        except PlaywrightError:
            return False

    def _no_match(self) -> str:
        c = self.config
        wanted = []
        if c.success_url:
            wanted.append(f"success.url /{c.success_url}/")
        if c.success_text:
            wanted.append(f"success.text {c.success_text!r}")
        if c.failure_text:
            wanted.append(f"failure.text {c.failure_text!r}")
        if c.login is not None:
            wanted.append(f"login.url /{c.login.url}/" if c.login.url else
                          f"a login page with an input labelled {c.login.fields[0][0]!r}")
        return (f"the partner's page settled (no navigation for {c.settle_s:g} s) and matches none of the configured "
                f"pages (" + ", ".join(wanted) + "; a page that is still loading its content needs a longer "
                "integration.settle_s)")

    def _login_missing(self, page: Page) -> str | None:
        login = self.config.login
        absent = [label for label, _ in login.fields if self._count(page.get_by_label(label, exact=True)) == 0]
        if absent:
            return f"the partner's login page has no input labelled {', '.join(repr(a) for a in absent)} " \
                   f"(integration.login.fields)"
        if self._count(page.get_by_role("button", name=re.compile(login.submit))) == 0:
            return f"the partner's login page has no button named /{login.submit}/ (integration.login.submit)"
        return None

    def _still_login(self, page: Page) -> bool:
        """After submit: True when the login page is still (or again) what the browser shows once it settled."""
        deadline = time.monotonic() + self.config.timeout_s
        self._nav["url"] = ""  # count settling from now
        while time.monotonic() < deadline:
            if not self._on_partner(page) or not self._login_shown(page):
                return False
            if self._settled(page):
                return self._login_shown(page)
            page.wait_for_timeout(100)
        return False

    @staticmethod
    def _count(locator) -> int:
        try:
            return locator.count()
        except PlaywrightError:
            return 0

    def _missing(self, page: Page, flow: PartnerFlow, what: str) -> None:
        """End the flow here: `what` is missing. The problem names the page, what it has, where its snapshot is."""
        url = page.url
        try:
            have = page.evaluate(_INVENTORY_JS)
        except PlaywrightError:
            have = {}
        title, screenshot, aria = capture_page(page)
        visit = PageVisit("partner page not as configured", url, screenshot, aria)
        directory = getattr(self.consent, "snapshot_dir", None)
        if directory is not None:
            visit.saved = save_page(directory, getattr(self.consent, "snapshot_prefix", "page"), "partner-unmatched",
                                    url, screenshot, aria)
        flow.pages.append(visit)
        if self.on_page:
            try:
                self.on_page(visit)
            except Exception:  # evidence, best effort
                pass
        inputs = ", ".join(repr(i) for i in have.get("inputs") or []) or "none"
        buttons = ", ".join(repr(b) for b in have.get("buttons") or []) or "none"
        alerts = f"; it says {' / '.join(have['alerts'])!r}" if have.get("alerts") else ""
        saved = f"snapshot {visit.saved}.aria.yml (+ .jpg)" if visit.saved else "snapshot not saved (no reports dir)"
        flow.problem = REDACTOR.redact_text(
            f"{what}; the page at {short_url(url)} (title {title.strip()[:80]!r}) has inputs {inputs} and buttons "
            f"{buttons}{alerts}; {saved}")

    # ---- matching ---------------------------------------------------------------------------------
    def _record_outcome(self, page: Page, flow: PartnerFlow) -> bool:
        outcome = self._partner_outcome(page)
        if outcome:
            flow.outcome = outcome
            self._visit(page, flow, f"partner {outcome}")
        return outcome is not None

    def _on_partner(self, page: Page) -> bool:
        return not is_datadog_host(urlsplit(page.url).hostname)

    def _partner_outcome(self, page: Page) -> str | None:
        if self._on_partner(page) and page.url.startswith("http"):
            if self._matches_success(page):
                return "success"
            text = self.config.failure_text
            if text and self._shows(page, text):
                return "failure"
            # an error status on a partner page that is not the login page is a refusal, too
            if self._is_error_document(page) and not self._login_shown(page):
                return "failure"
        return None

    def _matches_success(self, page: Page) -> bool:
        c = self.config
        if c.success_url and not re.search(c.success_url, page.url):
            return False
        if c.success_text and not self._shows(page, c.success_text):
            return False
        return True

    @staticmethod
    def _shows(page: Page, text: str) -> bool:
        try:
            return page.get_by_text(text).first.is_visible()
        except PlaywrightError:
            return False

    @staticmethod
    def _is_error_document(page: Page) -> bool:
        try:
            status = page.evaluate("() => performance.getEntriesByType('navigation')[0]?.responseStatus || 0")
        except PlaywrightError:
            return False
        return isinstance(status, int) and status >= 400

    def _login_shown(self, page: Page) -> bool:
        login = self.config.login
        if login is None:
            return False
        if login.url:
            return bool(re.search(login.url, page.url))
        try:
            return page.get_by_label(login.fields[0][0], exact=True).first.is_visible()
        except PlaywrightError:
            return False

    def _log_in(self, page: Page) -> None:
        login = self.config.login
        for label, value in login.fields:
            page.get_by_label(label, exact=True).first.fill(value)
        page.get_by_role("button", name=re.compile(login.submit)).first.click()
        page.wait_for_load_state("domcontentloaded")

    def _visit(self, page: Page, flow: PartnerFlow, name: str) -> None:
        visit = PageVisit(name, page.url)
        if self.screenshots:
            visit.screenshot = page_screenshot(page)  # best effort: None when it cannot be had
        flow.pages.append(visit)
        if self.on_page:
            self.on_page(visit)

    @staticmethod
    def _text(page: Page) -> str:
        try:
            return REDACTOR.redact_text(page.locator("body").inner_text(timeout=2000)[:2000])
        except PlaywrightError:
            return ""


def forge_state(callback_url: str, state: str) -> str:
    """The same callback with another `state` (what a cross-site request forgery would deliver)."""
    parts = urlsplit(callback_url)
    query = [(k, state if k == "state" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    if not any(k == "state" for k, _ in query):
        query.append(("state", state))
    return urlunsplit(parts._replace(query=urlencode(query)))
