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

from .consent import ConsentDriver, FlowResult, PageVisit, is_datadog_host
from .errors import ConfigError
from .redact import REDACTOR

API_KEY_NAME = "{client} OAuth Client API Key"  # Datadog names the marketplace key after the client
TOKEN_PATHS = ("/oauth2/v1/token", "/api/v2/oauth2/token")


# ---- configuration -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PartnerLogin:
    fields: tuple[tuple[str, str], ...]  # (input label, value), filled in order
    submit: str = r"^(Sign in|Log in|Login|Continue)$"  # the submit button's accessible name (regex)
    url: str | None = None  # regex for the login page URL; default: a partner page showing the first label


@dataclass(frozen=True)
class DataEvidence:
    metric: str
    tag: str | None = None
    wait_s: float = 60.0


@dataclass(frozen=True)
class OrgKeys:
    api_key: str
    app_key: str


@dataclass(frozen=True)
class IntegrationConfig:
    onboarding_url: str
    redirect_uri: str
    client_ids: tuple[str, ...]  # the client ids the partner may use (published and/or test)
    client_name: str | None = None  # Datadog names the partner's API key after it
    success_url: str | None = None  # regex on the final URL
    success_text: str | None = None  # text on the final page
    failure_text: str | None = None  # text on the partner's error page (deny)
    login: PartnerLogin | None = None
    data: DataEvidence | None = None
    org_keys: OrgKeys | None = None
    timeout_s: float = 45.0

    @property
    def partner_host(self) -> str:
        return urlsplit(self.redirect_uri).hostname or ""

    def api_key_prefix(self) -> str | None:
        return API_KEY_NAME.format(client=self.client_name) if self.client_name else None


def _https(value, source: str, where: str, loopback_ok: bool = True) -> str:
    from .config import is_loopback_http  # config imports this module

    parts = urlsplit(str(value))
    if not (parts.scheme == "https" and parts.hostname) and not (loopback_ok and is_loopback_http(str(value))):
        raise ConfigError(f"{source}: {where} must be an https URL (or http on a loopback address), got {value!r}")
    return str(value)


def _regex(value, source: str, where: str) -> str:
    try:
        re.compile(str(value))
    except re.error as exc:
        raise ConfigError(f"{source}: {where} is not a valid regular expression ({exc.msg})") from None
    return str(value)


def _seconds(value, most: float, source: str, where: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1
    if not 0 < seconds <= most:  # also refuses nan
        raise ConfigError(f"{source}: {where} must be a number of seconds in (0, {most:g}]")
    return seconds


def parse_integration(raw, source: str, where: str, client_id: str, client_name: str | None) -> IntegrationConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a mapping (onboarding_url, redirect_uri, success, ...)")
    for key in ("onboarding_url", "redirect_uri"):
        if not raw.get(key):
            raise ConfigError(f"{source}: {where}.{key} is required")
    success = raw.get("success") or {}
    if not isinstance(success, dict) or not (success.get("url") or success.get("text")):
        raise ConfigError(f"{source}: {where}.success needs a url (regex) and/or a text that shows the partner's "
                          f"success page")
    failure = raw.get("failure") or {}
    if not isinstance(failure, dict):
        raise ConfigError(f"{source}: {where}.failure must be a mapping with a text")
    ids = raw.get("client_ids", raw.get("client_id", [client_id]))
    ids = [ids] if isinstance(ids, str) else ids
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ConfigError(f"{source}: {where}.client_id must be a client id or a list of them")
    login = None
    if raw.get("login") is not None:
        lraw = raw["login"]
        fields = lraw.get("fields") if isinstance(lraw, dict) else None
        if not isinstance(fields, dict) or not fields or not all(isinstance(v, str) and v for v in fields.values()):
            raise ConfigError(f"{source}: {where}.login.fields must map input labels to values")
        for label, value in fields.items():
            if re.search("pass|secret|code|token", str(label), re.I):
                REDACTOR.add(value, "partner_password")
        login = PartnerLogin(tuple((str(k), v) for k, v in fields.items()),
                             _regex(lraw.get("submit", PartnerLogin.submit), source, f"{where}.login.submit"),
                             _regex(lraw["url"], source, f"{where}.login.url") if lraw.get("url") else None)
    data = None
    if raw.get("data") is not None:
        draw = raw["data"]
        if not isinstance(draw, dict) or not draw.get("metric"):
            raise ConfigError(f"{source}: {where}.data.metric is required (the metric the partner sends)")
        wait = _seconds(draw.get("wait_s", 60), 900, source, f"{where}.data.wait_s")
        data = DataEvidence(str(draw["metric"]), draw.get("tag"), wait)
    org_keys = None
    if raw.get("org_keys") is not None:
        kraw = raw["org_keys"]
        if not isinstance(kraw, dict) or not kraw.get("api_key") or not kraw.get("app_key"):
            raise ConfigError(f"{source}: {where}.org_keys needs api_key and app_key (from .env)")
        org_keys = OrgKeys(str(kraw["api_key"]), str(kraw["app_key"]))
        REDACTOR.add(org_keys.api_key, "api_key")
        REDACTOR.add(org_keys.app_key, "application_key")
    timeout = _seconds(raw.get("timeout_s", 45), 600, source, f"{where}.timeout_s")
    return IntegrationConfig(
        onboarding_url=_https(raw["onboarding_url"], source, f"{where}.onboarding_url"),
        redirect_uri=_https(raw["redirect_uri"], source, f"{where}.redirect_uri"),
        client_ids=tuple(ids), client_name=raw.get("client_name") or client_name,
        success_url=_regex(success["url"], source, f"{where}.success.url") if success.get("url") else None,
        success_text=success.get("text"), failure_text=failure.get("text"),
        login=login, data=data, org_keys=org_keys, timeout_s=timeout)


def integration_as_dict(cfg: IntegrationConfig) -> dict:
    """The targets-file form of a section (what parse_integration reads back)."""
    out: dict = {"onboarding_url": cfg.onboarding_url, "redirect_uri": cfg.redirect_uri,
                 "client_id": list(cfg.client_ids), "success": {}}
    if cfg.client_name:
        out["client_name"] = cfg.client_name
    if cfg.success_url:
        out["success"]["url"] = cfg.success_url
    if cfg.success_text:
        out["success"]["text"] = cfg.success_text
    if cfg.failure_text:
        out["failure"] = {"text": cfg.failure_text}
    if cfg.login:
        out["login"] = {"fields": dict(cfg.login.fields), "submit": cfg.login.submit}
        if cfg.login.url:
            out["login"]["url"] = cfg.login.url
    if cfg.data:
        out["data"] = {"metric": cfg.data.metric, "wait_s": cfg.data.wait_s,
                       **({"tag": cfg.data.tag} if cfg.data.tag else {})}
    if cfg.org_keys:
        out["org_keys"] = {"api_key": cfg.org_keys.api_key, "app_key": cfg.org_keys.app_key}
    out["timeout_s"] = cfg.timeout_s
    return out


def onboarding_url(base: str, site=None, domain: str | None = None, site_as_host: bool = False) -> str:
    """The onboarding URL as Datadog's tile / "Test Authorization" opens it: `site` and `domain` appended.
    Whether `site` carries the scheme is undocumented (UNCONFIRMED): `site_as_host` sends the bare host."""
    parts = urlsplit(base)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if site is not None:
        query += [("site", site.web_host if site_as_host else site.web_origin), ("domain", domain or site.domain)]
    return urlunsplit(parts._replace(query=urlencode(query)))


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
