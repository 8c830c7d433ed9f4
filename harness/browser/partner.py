"""Integration mode: drive the partner's own app from its onboarding URL, through Datadog's pages,
to the partner's success page - the callback reaches the partner, nothing is intercepted.

A target's `integration` section says where the app starts, which redirect URI it registered,
how its login and its success page look, and what data it sends. Evidence on Datadog's side
(the API key the partner created, the data it sent, the host it called for the token exchange)
comes from the emulator's state or, against real Datadog, from the org's API with an org API key
and application key.
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

from harness.config.integration import IntegrationConfig
from harness.browser.consent import ConsentDriver, FlowResult, PageVisit, is_datadog_host


# ---- the browser side ------------------------------------------------------------------------------

def _is_authorize(url: str) -> bool:
    parts = urlsplit(url)
    return is_datadog_host(parts.hostname) and parts.path == "/oauth2/v1/authorize"


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

    @property
    def authorize_urls(self) -> list[str]:
        """The partner's hand-overs to Datadog: authorize requests navigated to from outside Datadog
        (Datadog's own hops - after login, the site picker, the consent form - are not counted)."""
        out, previous = [], None
        for url in self.navigations:
            if _is_authorize(url) and (previous is None or not is_datadog_host(urlsplit(previous).hostname)):
                out.append(url)
            previous = url
        return out

    @property
    def datadog_authorize_hosts(self) -> list[str]:
        hosts = [urlsplit(u).hostname for u in self.navigations if _is_authorize(u)]
        return [h for i, h in enumerate(hosts) if i == 0 or hosts[i - 1] != h]

    @property
    def callback_url(self) -> str | None:
        return self.consent.callback_url if self.consent else None

    def describe(self) -> str:
        hops = " -> ".join(f"{urlsplit(u).hostname}{urlsplit(u).path}" for u in self.navigations)
        if self.error:
            return f"the partner did not answer ({self.error}); navigations: {hops}"
        return f"{self.outcome} at {urlsplit(self.final_url).hostname}{urlsplit(self.final_url).path} " \
               f"(HTTP {self.final_status}); navigations: {hops}"


class PartnerDriver:
    """Walks the partner's app: its login (when configured), Datadog's pages, back to the partner."""

    def __init__(self, config: IntegrationConfig, consent: ConsentDriver,
                 on_page: Callable[[PageVisit], None] | None = None, screenshots: bool = True):
        self.config = config
        self.consent = consent
        self.on_page = on_page
        self.screenshots = screenshots

    def run(self, page: Page, url: str, settle_s: float = 1.5, stop_at_datadog: bool = False) -> PartnerFlow:
        """Follow the partner's flow to its success or error page (or, with stop_at_datadog, only until
        the partner hands the browser to Datadog)."""
        flow = PartnerFlow(start_url=url)
        with self._watching(page, flow):
            self._walk(page, url, flow, stop_at_datadog)
            if flow.outcome in ("success", "failure"):
                # a partner that loops back to Datadog would navigate again within moments
                page.wait_for_timeout(int(settle_s * 1000))
                if not self._on_partner(page):
                    flow.outcome = "stuck"
        return flow

    def deliver(self, page: Page, url: str) -> PartnerFlow:
        """Open a (possibly forged) callback URL in the partner's session and see where it ends."""
        flow = PartnerFlow(start_url=url)
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

        def on_request(request):
            if request.is_navigation_request() and request.frame == page.main_frame:
                flow.navigations.append(request.url)
                for k, v in parse_qsl(urlsplit(request.url).query):
                    if k == "code":
                        REDACTOR.add(v, "authorization_code")

        def on_response(response):
            if response.request.is_navigation_request() and response.frame == page.main_frame:
                status["status"] = response.status

        page.on("request", on_request)
        page.on("response", on_response)
        try:
            yield
        finally:
            page.remove_listener("request", on_request)
            page.remove_listener("response", on_response)
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
                if flow.partner_logins >= 2:
                    return  # the partner refused the login twice: stuck
                self._visit(page, flow, "partner login")
                self._log_in(page)
                flow.partner_logins += 1
                continue
            page.wait_for_timeout(100)

    def _await_partner_outcome(self, page: Page, flow: PartnerFlow) -> None:
        deadline = time.monotonic() + self.config.timeout_s
        while time.monotonic() < deadline and not self._record_outcome(page, flow):
            if is_datadog_host(urlsplit(page.url).hostname):
                return  # sent back to Datadog: neither success nor a refusal page
            page.wait_for_timeout(100)

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
            try:
                visit.screenshot = page.screenshot(full_page=True, type="jpeg", quality=70)
            except PlaywrightError:
                visit.screenshot = None
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
