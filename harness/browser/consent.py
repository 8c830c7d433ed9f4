"""Drive Datadog's login, MFA, site picker, org picker and consent pages in a real browser.

Pages are recognised and driven through recipes (harness/browser/recipes.yaml: role and label
locators), so a changed Datadog page is a data fix. The redirect to the client's redirect URI
is intercepted in the browser and never fetched: no callback server is needed.
"""
from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import pyotp
import yaml
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from core.errors import LoginFailed, TargetUnavailable
from core.redact import REDACTOR

DATADOG_SUFFIXES = ("datadoghq.com", "datadoghq.eu", "ddog-gov.com")


@dataclass
class PageVisit:
    name: str
    url: str
    screenshot: bytes | None = None
    aria: str | None = None


@dataclass
class FlowResult:
    callback_url: str | None = None
    callback_pairs: list[tuple[str, str]] = field(default_factory=list)
    callback_redirect_status: int | None = None
    error_text: str | None = None
    pages: list[PageVisit] = field(default_factory=list)
    consent_scopes: list[str] | None = None
    consent_headers: dict[str, str] | None = None
    consent_org: str | None = None
    logged_in: bool = False
    final_url: str = ""

    @property
    def callback(self) -> dict[str, str]:
        return dict(self.callback_pairs)

    @property
    def outcome(self) -> str:
        if self.callback_url is not None:
            return "callback"
        if self.error_text is not None:
            return "error_page"
        return "stopped"

    def page_names(self) -> list[str]:
        return [p.name for p in self.pages]


@functools.lru_cache(maxsize=None)
def load_recipes() -> tuple[dict, ...]:
    data = yaml.safe_load(resources.files("harness.browser").joinpath("recipes.yaml").read_text())
    return tuple(data["pages"])


def locate(page: Page, spec: dict, name: str | None = None):
    """A Playwright locator from a recipe entry: {role, name (regex), label, testid}."""
    if "testid" in spec:
        return page.get_by_test_id(spec["testid"])
    if "label" in spec:
        return page.get_by_label(spec["label"], exact=True)
    wanted = name if name is not None else spec.get("name")
    if wanted is None:
        return page.get_by_role(spec["role"])
    pattern = wanted if isinstance(wanted, re.Pattern) else re.compile(wanted)
    return page.get_by_role(spec["role"], name=pattern)


def blocked_hosts_rules(redirect_uris) -> list[str]:
    """Chromium resolver rules that make the redirect URIs' hosts unreachable (checked first)."""
    hosts = sorted({urlsplit(u).hostname for u in redirect_uris if urlsplit(u).hostname})
    return [f"MAP {h} ~NOTFOUND" for h in hosts if h not in ("localhost",) and not h[0].isdigit()]


def is_datadog_host(host: str) -> bool:
    host = (host or "").lower()
    return any(host == s or host.endswith("." + s) for s in DATADOG_SUFFIXES)


class SlowPageWatch:
    """Datadog documents the browser is still waiting for. When a browser wait gives up (a Playwright
    timeout: goto, a click waiting for its navigation; or an unrecognised page) while one of them has
    been pending for a while, Datadog did not deliver its page in time: TargetUnavailable ("Datadog
    unreachable or 5xx"), never a harness error, a login failure or a conformance verdict."""

    SLOW_S = 5.0  # pending at least this long when the wait gave up: Datadog's, not a page just requested

    def __init__(self, page: Page):
        self.page = page
        self.pending: dict = {}  # request -> monotonic start

    def _start(self, request) -> None:
        if request.is_navigation_request() and is_datadog_host(urlsplit(request.url).hostname):
            self.pending[request] = time.monotonic()

    def _done(self, event) -> None:  # response, requestfinished, requestfailed
        self.pending.pop(getattr(event, "request", event), None)

    def __enter__(self) -> "SlowPageWatch":
        for name, handler in self._handlers():
            self.page.on(name, handler)
        return self

    def _handlers(self):
        return (("request", self._start), ("response", self._done), ("requestfinished", self._done),
                ("requestfailed", self._done))

    def __exit__(self, exc_type, exc, tb) -> None:
        for name, handler in self._handlers():
            self.page.remove_listener(name, handler)
        if not isinstance(exc, (PlaywrightTimeoutError, LoginFailed)):
            return
        slow = self.slowest()
        if slow is not None:
            request, seconds = slow
            parts = urlsplit(request.url)  # no query: it carries the state and the PKCE challenge
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            where = f"{request.method} {parts.scheme}://{parts.netloc}{parts.path}"
            raise TargetUnavailable(f"Datadog's page did not arrive in time: {where} still unanswered after "
                                    f"{seconds:.0f} s ({first})") from exc

    def slowest(self) -> tuple | None:
        """(request, seconds) of the longest-pending Datadog document, if it has waited SLOW_S or more."""
        if not self.pending:
            return None
        request, started = min(self.pending.items(), key=lambda item: item[1])
        seconds = time.monotonic() - started
        return (request, seconds) if seconds >= self.SLOW_S else None


@dataclass
class Credentials:
    email: str
    password: str | None
    totp_secret: str | None = None


class ConsentDriver:
    def __init__(self, credentials: Credentials | None, org: str | None, site_key: str,
                 decision: str = "authorize", screenshots: bool = True, record_aria: bool = False,
                 on_page: Callable[[PageVisit], None] | None = None, timeout_s: float = 20.0, max_steps: int = 12):
        self.credentials = credentials
        self.org = org
        self.site_key = site_key
        self.decision = decision  # authorize | deny | none (stop at the consent page)
        self.screenshots = screenshots
        self.record_aria = record_aria
        self.on_page = on_page
        self.timeout_s = timeout_s
        self.max_steps = max_steps

    # ---- public -----------------------------------------------------------------------------
    def run(self, page: Page, url: str | None, stop_at: str | None = None) -> FlowResult:
        result = FlowResult()
        last_document: dict = {}
        hops: dict = {}

        def on_request(request):
            # Playwright cannot route redirect hops, but it reports them: the hop that leaves Datadog
            # is the callback. The browser cannot fetch it: the redirect URI hosts resolve to nothing
            # in this browser (see blocked_hosts_rules).
            if result.callback_url is not None or not request.is_navigation_request():
                return
            if is_datadog_host(urlsplit(request.url).hostname) or request.url.startswith(("about:", "chrome-error:")):
                return
            result.callback_url = request.url
            result.callback_pairs = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
            for k, v in result.callback_pairs:
                if k == "code":
                    REDACTOR.add(v, "authorization_code")
            hops["from"] = request.redirected_from

        def on_response(response):
            if response.request.resource_type == "document" and is_datadog_host(urlsplit(response.url).hostname):
                last_document["response"] = response

        page.on("request", on_request)
        page.on("response", on_response)
        try:
            with SlowPageWatch(page):  # a Datadog page that never arrives: TargetUnavailable
                try:
                    if url is not None:  # None: carry on from where the page already is (integration mode)
                        page.goto(url, wait_until="domcontentloaded")
                except PlaywrightError:
                    if result.callback_url is None:  # the callback's failed fetch is expected; anything else is not
                        raise
                self._loop(page, result, last_document, stop_at)
        finally:
            page.remove_listener("request", on_request)
            page.remove_listener("response", on_response)
            result.final_url = page.url
        previous = hops.get("from")
        if previous is not None:
            response = previous.response()
            result.callback_redirect_status = response.status if response else None
        return result

    def login(self, page: Page, web_origin: str) -> FlowResult:
        """Log in on the site's login page (password, then MFA) and stop once Datadog lets us in."""
        with SlowPageWatch(page):  # a Datadog page that never arrives: TargetUnavailable
            return self._login(page, web_origin)

    def _login(self, page: Page, web_origin: str) -> FlowResult:
        result = FlowResult()
        page.goto(f"{web_origin}/account/login", wait_until="domcontentloaded")
        seen: dict[str, int] = {}
        for _ in range(self.max_steps):
            if not urlsplit(page.url).path.startswith("/account/login"):
                result.final_url = page.url
                return result
            name = self._detect(page, result)
            seen[name] = seen.get(name, 0) + 1
            self._visit(page, result, name)
            if name not in ("login", "mfa", "site_picker"):
                break
            getattr(self, f"_act_{name}")(page, result, seen[name])
            page.wait_for_load_state("domcontentloaded")
        raise LoginFailed(f"login on {web_origin} did not complete: {' -> '.join(result.page_names())}")

    # ---- steps ------------------------------------------------------------------------------
    def _loop(self, page: Page, result: FlowResult, last_document: dict, stop_at: str | None) -> None:
        seen: dict[str, int] = {}
        for _ in range(self.max_steps):
            name = self._detect(page, result)
            if name is None:
                return
            seen[name] = seen.get(name, 0) + 1
            self._visit(page, result, name)
            if name == "error":
                recipe = self._recipe("error")
                result.error_text = locate(page, recipe["text"]).first.inner_text().strip()
                return
            if name == "consent":
                self._read_consent(page, result, last_document)
            if name == stop_at:
                return
            action = getattr(self, f"_act_{name}")
            action(page, result, seen[name])
            try:
                page.wait_for_load_state("domcontentloaded")
            except PlaywrightError:
                if result.callback_url is None:
                    raise
            if name == "consent" and self.decision == "none":
                return
        raise LoginFailed(f"no callback after {self.max_steps} pages: {' -> '.join(result.page_names())}")

    def _recipe(self, name: str) -> dict:
        return next(r for r in load_recipes() if r["name"] == name)

    def _detect(self, page: Page, result: FlowResult) -> str | None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if result.callback_url is not None:
                return None
            for recipe in load_recipes():
                try:
                    if locate(page, recipe["detect"]).first.is_visible():
                        return recipe["name"]
                except Exception:  # the page navigated while we looked; look again
                    break
            page.wait_for_timeout(50)
        if result.callback_url is not None:
            return None
        raise LoginFailed(f"unrecognised page at {page.url} after {' -> '.join(result.page_names()) or 'start'}")

    def _visit(self, page: Page, result: FlowResult, name: str) -> None:
        visit = PageVisit(name, page.url)
        if self.screenshots:
            visit.screenshot = page.screenshot(full_page=True, type="jpeg", quality=70)
        if self.record_aria:
            try:
                visit.aria = page.locator("body").aria_snapshot()
            except Exception:
                visit.aria = None
        result.pages.append(visit)
        if self.on_page:
            self.on_page(visit)

    def _read_consent(self, page: Page, result: FlowResult, last_document: dict) -> None:
        recipe = self._recipe("consent")
        scopes = locate(page, recipe["scopes"])
        if recipe["scopes"].get("item_code"):
            result.consent_scopes = [t.strip() for t in scopes.locator("code").all_inner_texts()]
        else:
            result.consent_scopes = [t.strip() for t in scopes.get_by_role("listitem").all_inner_texts()]
        response = last_document.get("response")
        if response is not None:
            result.consent_headers = {k.lower(): v for k, v in response.all_headers().items()}
        org_line = page.get_by_text(re.compile(r"^Organization:")).first
        if org_line.count():
            result.consent_org = org_line.inner_text()

    def _act_site_picker(self, page: Page, result: FlowResult, n: int) -> None:
        recipe = self._recipe("site_picker")
        locate(page, recipe["choice"], name=rf"^{re.escape(self.site_key)}\b").first.click()

    def _act_org_picker(self, page: Page, result: FlowResult, n: int) -> None:
        recipe = self._recipe("org_picker")
        if not self.org:
            raise LoginFailed("the org picker appeared but the target names no org")
        button = locate(page, recipe["choice"], name=rf"^{re.escape(self.org)}$").first
        if not button.count():
            raise LoginFailed(f"org {self.org!r} is not offered by the org picker")
        button.click()

    def _act_login(self, page: Page, result: FlowResult, n: int) -> None:
        recipe = self._recipe("login")
        if n > 1:
            alert = locate(page, recipe["error"]).first
            message = alert.inner_text().strip() if alert.count() else "login page shown again"
            raise LoginFailed(f"login failed for {self.site_key}: {message}")
        if self.credentials is None or not self.credentials.password:
            raise LoginFailed(f"{self.site_key}: the saved browser state has expired; run `ddoauth login` again")
        locate(page, recipe["email"]).fill(self.credentials.email)
        locate(page, recipe["password"]).fill(self.credentials.password)
        locate(page, recipe["submit"]).first.click()
        result.logged_in = True

    def _act_mfa(self, page: Page, result: FlowResult, n: int) -> None:
        recipe = self._recipe("mfa")
        if n > 2:
            raise LoginFailed(f"MFA code refused for {self.site_key}")
        if self.credentials is None or not self.credentials.totp_secret:
            raise LoginFailed(f"{self.site_key}: MFA is required but the target has no totp_secret")
        locate(page, recipe["code"]).fill(pyotp.TOTP(self.credentials.totp_secret).now())
        locate(page, recipe["submit"]).first.click()

    def _act_consent(self, page: Page, result: FlowResult, n: int) -> None:
        if self.decision == "none":
            return
        recipe = self._recipe("consent")
        locate(page, recipe["authorize" if self.decision == "authorize" else "deny"]).first.click()
