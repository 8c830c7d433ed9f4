"""Drive Datadog's login, MFA, site picker, org picker and consent pages in a real browser.

Pages are recognised and driven through recipes (harness/config/recipes.py: the built-in
harness/browser/recipes.yaml merged with the user's recipes file), so a changed Datadog page is a
data fix. A page no recipe recognises ends the flow at once (LoginFailed naming its URL, HTTP status
and title) and is saved under <reports-dir>/pages/. The redirect to the client's redirect URI is
intercepted in the browser and never fetched: no callback server is needed.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urljoin, urlsplit

import pyotp
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from core.errors import LoginFailed, TargetUnavailable
from core.pkce import PKCE
from core.redact import REDACTOR
from harness.browser.evidence import capture_page, page_screenshot, save_page, status_text
from harness.config.recipes import Locator, Recipes, builtin_recipes
from harness.http.oauth_client import target_authorize_url

DATADOG_SUFFIXES = ("datadoghq.com", "datadoghq.eu", "ddog-gov.com")


@dataclass
class PageVisit:
    name: str
    url: str
    screenshot: bytes | None = None
    aria: str | None = None
    saved: Path | None = None  # the stem of the files already saved for it (<reports-dir>/pages/...)


@dataclass
class FlowResult:
    callback_url: str | None = None  # the hop that left Datadog (with its fragment, when it had one)
    callback_pairs: list[tuple[str, str]] = field(default_factory=list)  # the callback's query parameters
    callback_redirect_status: int | None = None
    error_text: str | None = None
    pages: list[PageVisit] = field(default_factory=list)
    consent_scopes: list[str] | None = None
    consent_headers: dict[str, str] | None = None
    consent_org: str | None = None
    logged_in: bool = False
    final_url: str = ""
    # parameters the server put in the callback's fragment (#error=...&state=...), where RFC 6749 §4.1.2.1
    # does not put them: read all the same (authorization.redirect_params_in_query reports the place)
    callback_fragment_pairs: list[tuple[str, str]] = field(default_factory=list)
    # a control the recipes name that the page did not offer, e.g. "consent.deny": the flow stopped there
    missing_control: str | None = None
    via: str = "browser"  # or "form post": the consent form posted without rendering (harness/browser/form_consent.py)

    @property
    def callback(self) -> dict[str, str]:
        """The callback's parameters: the query's, and for keys the query lacks, the fragment's."""
        return {**dict(self.callback_fragment_pairs), **dict(self.callback_pairs)}

    @property
    def consent_shown(self) -> bool:
        """The consent page was met (recognised by its recipe)."""
        return "consent" in self.page_names()

    @property
    def consent_remembered(self) -> bool:
        """The flow reached the callback with a code and no consent page: the server remembered an earlier
        consent, so there was nothing to Deny, no scope list and no consent page headers to read."""
        return self.outcome == "callback" and not self.consent_shown and bool(self.callback.get("code"))

    @property
    def outcome(self) -> str:
        if self.callback_url is not None:
            return "callback"
        if self.error_text is not None:
            return "error_page"
        return "stopped"

    def page_names(self) -> list[str]:
        return [p.name for p in self.pages]


def locate(root, spec: Locator, name: str | None = None):
    """The Playwright locator a recipe's locator names, inside `root` (a Page or a Locator).

    role (+ name, a regex), label (exact), placeholder (exact), text (visible text, a regex), testid,
    css; `within` first narrows the search to the inside of another locator. `name` overrides the
    spec's accessible name (a picker's entry: the org, the site key); on a locator without a role it
    filters by the element's text instead."""
    if isinstance(spec, dict):  # a raw mapping (tests, ad-hoc callers): validated like a recipes file
        spec = Locator.model_validate(spec)
    scope = locate(root, spec.within) if spec.within is not None else root
    if spec.role is not None:
        wanted = name if name is not None else spec.name
        if wanted is None:
            return scope.get_by_role(spec.role)
        return scope.get_by_role(spec.role, name=wanted if isinstance(wanted, re.Pattern) else re.compile(wanted))
    if spec.label is not None:
        found = scope.get_by_label(spec.label, exact=True)
    elif spec.placeholder is not None:
        found = scope.get_by_placeholder(spec.placeholder, exact=True)
    elif spec.text is not None:
        found = scope.get_by_text(re.compile(spec.text))
    elif spec.testid is not None:
        found = scope.get_by_test_id(spec.testid)
    else:
        found = scope.locator(spec.css)
    return found.filter(has_text=re.compile(name)) if name is not None else found


def read_fragment(result: FlowResult, redirected_from: str | None, location: str | None) -> None:
    """The callback's fragment, which the browser never sends: from the Location header of the redirect that
    left Datadog (a fragment of the Location wins; without one the request's own is inherited), else from
    where the browser ended when it is the callback (integration mode: the partner's page was loaded)."""
    if result.callback_url is None:
        return
    fragment = ""
    if location:
        fragment = urlsplit(urljoin(redirected_from or result.callback_url, location)).fragment
    if not fragment and result.final_url:
        final, hop = urlsplit(result.final_url), urlsplit(result.callback_url)
        if (final.scheme, final.netloc, final.path) == (hop.scheme, hop.netloc, hop.path):
            fragment = final.fragment
    if not fragment:
        return
    result.callback_fragment_pairs = parse_qsl(fragment, keep_blank_values=True)
    for k, v in result.callback_fragment_pairs:
        if k == "code":
            REDACTOR.add(v, "authorization_code")
    if "#" not in result.callback_url:
        result.callback_url = f"{result.callback_url}#{fragment}"


def login_start(recipes: Recipes, target) -> str:
    """Where a login starts: the recipes' login_path on the target's web host, or (login_path: null)
    a fresh authorize URL of the target's client, from which Datadog sends the browser to its login."""
    if recipes.login_path is not None:
        return f"{target.site.web_origin}{recipes.login_path}"
    return target_authorize_url(target, secrets.token_urlsafe(16), PKCE.generate())


def short_url(url: str) -> str:
    """scheme://host/path, with `?…` when there was a query (it carries state and the PKCE challenge)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("http"):
        return url[:120]
    return f"{parts.scheme}://{parts.netloc}{parts.path}{'?…' if parts.query else ''}"


class DocumentStatus:
    """The HTTP status of the page's current document (its last main-frame navigation response)."""

    def __init__(self, page: Page):
        self.page = page
        self.status: int | None = None
        self.url: str | None = None

    def _on_response(self, response) -> None:
        try:
            if response.request.is_navigation_request() and response.frame == self.page.main_frame \
                    and not 300 <= response.status < 400:
                self.status, self.url = response.status, response.url
        except Exception:
            pass

    def __enter__(self) -> "DocumentStatus":
        self.page.on("response", self._on_response)
        return self

    def __exit__(self, *exc) -> None:
        self.page.remove_listener("response", self._on_response)


def blocked_hosts_rules(redirect_uris) -> list[str]:
    """Chromium resolver rules that make the redirect URIs' hosts unreachable (checked first)."""
    hosts = sorted({urlsplit(u).hostname for u in redirect_uris if urlsplit(u).hostname})
    return [f"MAP {h} ~NOTFOUND" for h in hosts if h not in ("localhost",) and not h[0].isdigit()]


def is_datadog_host(host: str) -> bool:
    host = (host or "").lower()
    return any(host == s or host.endswith("." + s) for s in DATADOG_SUFFIXES)


def request_line(method: str, url: str) -> str:
    """`POST https://host/path`: no query (it carries the state and the PKCE challenge)."""
    parts = urlsplit(url)
    return f"{method} {parts.scheme}://{parts.netloc}{parts.path}"


def page_not_in_time(method: str, url: str, seconds: float, why: str) -> TargetUnavailable:
    """Datadog did not deliver a page in time: the target's fault ("Datadog unreachable or 5xx"), one wording
    for the rendered flow and the posted consent form."""
    return TargetUnavailable(f"Datadog's page did not arrive in time: {request_line(method, url)} still "
                             f"unanswered after {seconds:.0f} s ({why})")


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
        if not request.is_navigation_request():
            return
        # a frame has one navigation in flight: a new one supersedes the one before, whose requestfailed
        # event Chromium does not always send (a superseded document is not Datadog's slowness)
        for earlier in [r for r in self.pending if r.frame == request.frame]:
            del self.pending[earlier]
        if is_datadog_host(urlsplit(request.url).hostname):
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
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise page_not_in_time(request.method, request.url, seconds, first) from exc

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
    NETWORK_QUIET_S = 5.0  # at most this long for the network to go quiet before deciding a page is unknown

    def __init__(self, credentials: Credentials | None, org: str | None, site_key: str,
                 decision: str = "authorize", screenshots: bool = True, record_aria: bool = False,
                 on_page: Callable[[PageVisit], None] | None = None, timeout_s: float = 20.0, max_steps: int = 12,
                 recipes: Recipes | None = None, snapshot_dir: Path | None = None, snapshot_prefix: str = "page"):
        self.recipes = recipes or builtin_recipes()
        self.snapshot_dir = snapshot_dir  # where an unrecognised page is saved (None: nowhere)
        self.snapshot_prefix = snapshot_prefix
        self._document: DocumentStatus | None = None
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
            with SlowPageWatch(page), self._watch_document(page):  # a Datadog page that never arrives: TargetUnavailable
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
        location = None
        if previous is not None:
            response = previous.response()
            result.callback_redirect_status = response.status if response else None
            location = response.header_value("location") if response else None
        read_fragment(result, previous.url if previous is not None else None, location)
        return result

    def login(self, page: Page, web_origin: str, start_url: str | None = None) -> FlowResult:
        """Log in (password, then MFA) and stop once Datadog lets us in. The login starts at `start_url`
        (see login_start), else at the recipes' login_path on `web_origin`."""
        login_path = self.recipes.login_path
        if start_url is None:
            if login_path is None:
                raise LoginFailed(f"the recipes ({self.recipes.source}) set login_path: null, so the login starts "
                                  "from an authorize URL, and none was given")
            start_url = f"{web_origin}{login_path}"
        if login_path is None:  # through the authorize URL: logged in once consent (or the callback) is reached
            result = self.run(page, start_url, stop_at="consent")
            if result.outcome == "error_page":
                raise LoginFailed(f"the login from the authorize URL ended on Datadog's error page: {result.error_text}")
            return result
        with SlowPageWatch(page), self._watch_document(page):  # a Datadog page that never arrives: TargetUnavailable
            return self._login(page, start_url, login_path)

    def _login(self, page: Page, start_url: str, login_path: str) -> FlowResult:
        result = FlowResult()
        page.goto(start_url, wait_until="domcontentloaded")
        seen: dict[str, int] = {}

        def left_login() -> bool:
            return not urlsplit(page.url).path.startswith(login_path)

        for _ in range(self.max_steps):
            name = None if left_login() else self._detect(page, result, done=left_login)
            if name is None:  # Datadog let us in
                result.final_url = page.url
                return result
            seen[name] = seen.get(name, 0) + 1
            self._visit(page, result, name)
            if name == "error":
                raise LoginFailed(f"the login ended on Datadog's error page at {short_url(page.url)}: "
                                  f"{self._error_text(page)}")
            if name not in ("login", "mfa", "site_picker") and not self.recipes.is_custom(name):
                break
            self._act(page, result, name, seen[name])
            page.wait_for_load_state("domcontentloaded")
        raise LoginFailed(f"login at {short_url(start_url)} did not complete: {' -> '.join(result.page_names())}")

    def _watch_document(self, page: Page) -> DocumentStatus:
        self._document = DocumentStatus(page)
        return self._document

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
                result.error_text = self._error_text(page)
                return
            if name == "consent":
                self._read_consent(page, result, last_document)
            if name == stop_at:
                return
            self._act(page, result, name, seen[name])
            if result.missing_control is not None:  # a documented control the page lacks: nothing to click
                return
            try:
                page.wait_for_load_state("domcontentloaded")
            except PlaywrightError:
                if result.callback_url is None:
                    raise
            if name == "consent" and self.decision == "none":
                return
        raise LoginFailed(f"no callback after {self.max_steps} pages: {' -> '.join(result.page_names())}")

    def _recipe(self, name: str):
        return self.recipes.page(name)

    def _act(self, page: Page, result: FlowResult, name: str, n: int) -> None:
        if self.recipes.is_custom(name):  # a page of the user's recipes: click what it names and go on
            locate(page, self._recipe(name).click).first.click()
            return
        getattr(self, f"_act_{name}")(page, result, n)

    def _error_text(self, page: Page) -> str:
        recipe = self._recipe("error")
        return locate(page, recipe.text or recipe.detect).first.inner_text().strip()

    def _match(self, page: Page) -> str | None:
        for recipe in self.recipes.pages:
            try:
                if locate(page, recipe.recipe.detect).first.is_visible():
                    return recipe.name
            except Exception:  # the page navigated while we looked; look again
                return None
        return None

    @staticmethod
    def _loaded(page: Page) -> bool:
        try:
            return page.evaluate("document.readyState") == "complete"
        except Exception:  # navigating
            return False

    def _detect(self, page: Page, result: FlowResult, done: Callable[[], bool] | None = None) -> str | None:
        """The name of the page the browser shows (None: the callback was reached, or `done()`). A page that has
        loaded, whose network went quiet and that no recipe recognises within settle_s (at once when
        its HTTP status is 4xx/5xx) ends the flow: LoginFailed naming it (_unrecognised)."""
        deadline = time.monotonic() + self.timeout_s
        quiet_since: float | None = None
        while True:
            if result.callback_url is not None or (done is not None and done()):
                return None
            name = self._match(page)
            if name is not None:
                return name
            now = time.monotonic()
            if result.callback_url is None and self._loaded(page):
                if quiet_since is None:
                    try:
                        page.wait_for_load_state("networkidle",
                                                 timeout=max(100.0, min(self.NETWORK_QUIET_S, deadline - now) * 1000))
                    except PlaywrightError:
                        pass
                    quiet_since = time.monotonic()
                    continue  # look once more, now that the network is quiet
                status = self._document.status if self._document is not None else None
                if (status is not None and status >= 400) or now - quiet_since >= self.recipes.settle_s:
                    break
            else:
                quiet_since = None
            if now >= deadline:
                break
            page.wait_for_timeout(50)
        if result.callback_url is not None or (done is not None and done()):
            return None
        self._unrecognised(page, result)

    def _unrecognised(self, page: Page, result: FlowResult) -> None:
        url = page.url
        title, screenshot, aria = capture_page(page)
        status = self._document.status if self._document is not None else None
        visit = PageVisit("unrecognised", url, screenshot, aria)
        if self.snapshot_dir is not None:
            visit.saved = save_page(self.snapshot_dir, self.snapshot_prefix, "unrecognised", url, screenshot, aria)
        result.pages.append(visit)
        if self.on_page:
            try:
                self.on_page(visit)
            except Exception:
                pass
        saved = f"saved {visit.saved}.aria.yml (+ .jpg)" if visit.saved else "not saved (no reports dir)"
        before = " -> ".join(result.page_names()[:-1]) or "start"
        raise LoginFailed(f"unrecognised page at {short_url(url)} ({status_text(status)}, title {title.strip()[:80]!r}) "
                          f"after {before}; {saved}; no recipe's `detect` matched (tried "
                          f"{', '.join(self.recipes.names())}): fix the recipe of the page this should be, or add "
                          f"one, in {self.recipes.source}")

    def _visit(self, page: Page, result: FlowResult, name: str) -> None:
        visit = PageVisit(name, page.url)
        if self.screenshots:
            visit.screenshot = page_screenshot(page)  # best effort: None when it cannot be had
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
        if recipe.scopes is not None:
            items = locate(locate(page, recipe.scopes), recipe.scope_item or Locator(role="listitem"))
            result.consent_scopes = [t.strip() for t in items.all_inner_texts()]
        response = last_document.get("response")
        if response is not None:
            result.consent_headers = {k.lower(): v for k, v in response.all_headers().items()}
        if recipe.org is not None:
            org_line = locate(page, recipe.org).first
            if org_line.count():
                result.consent_org = org_line.inner_text()

    def _act_site_picker(self, page: Page, result: FlowResult, n: int) -> None:
        recipe = self._recipe("site_picker")
        locate(page, recipe.choice, name=rf"^{re.escape(self.site_key)}\b").first.click()

    def _act_org_picker(self, page: Page, result: FlowResult, n: int) -> None:
        recipe = self._recipe("org_picker")
        if not self.org:
            raise LoginFailed("the org picker appeared but the target names no org")
        button = locate(page, recipe.choice, name=rf"^{re.escape(self.org)}$").first
        if not button.count():
            raise LoginFailed(f"org {self.org!r} is not offered by the org picker")
        button.click()

    def _act_login(self, page: Page, result: FlowResult, n: int) -> None:
        recipe = self._recipe("login")
        if n > 1:
            alert = locate(page, recipe.error).first
            message = alert.inner_text().strip() if alert.count() else "login page shown again"
            raise LoginFailed(f"login failed for {self.site_key}: {message}")
        if self.credentials is None or not self.credentials.password:
            raise LoginFailed(f"{self.site_key}: the saved browser state has expired; run `ddoauth login` again")
        locate(page, recipe.email).fill(self.credentials.email)
        locate(page, recipe.password).fill(self.credentials.password)
        locate(page, recipe.submit).first.click()
        result.logged_in = True

    def _act_mfa(self, page: Page, result: FlowResult, n: int) -> None:
        recipe = self._recipe("mfa")
        if n > 2:
            raise LoginFailed(f"MFA code refused for {self.site_key}")
        if self.credentials is None or not self.credentials.totp_secret:
            raise LoginFailed(f"{self.site_key}: MFA is required but the target has no totp_secret")
        locate(page, recipe.code).fill(pyotp.TOTP(self.credentials.totp_secret).now())
        locate(page, recipe.submit).first.click()

    def _act_consent(self, page: Page, result: FlowResult, n: int) -> None:
        if self.decision == "none":
            return
        recipe = self._recipe("consent")
        key = "authorize" if self.decision == "authorize" else "deny"
        control = self._control(page, getattr(recipe, key))
        if control is None:  # the docs promise it; its absence is the server's, judged by a check, not a timeout
            result.missing_control = f"consent.{key}"
            return
        control.click()

    def _control(self, page: Page, spec: Locator | None):
        """The first visible element a recipe's control locator finds, or None: on a page already recognised
        a control is looked for briefly (the recipes' settle_s), never for the flow's whole timeout."""
        if spec is None:
            return None
        found = locate(page, spec).first
        try:
            found.wait_for(state="visible", timeout=self.recipes.settle_s * 1000)
        except PlaywrightError:
            return None
        return found
