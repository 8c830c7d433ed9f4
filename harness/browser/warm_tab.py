"""One browser tab that logged-in flows take turns in, reset to their saved login before each flow.

A new tab or context costs a renderer process: most of what a short flow costs the browser (measured
with scripts/bench_harness.py: a flow in a kept tab costs about half). What a fresh context with the saved
storage state would give, the reset gives too: the cookies are replaced by the saved ones, and every origin
an earlier flow visited has its storage cleared (localStorage, sessionStorage, IndexedDB, Cache Storage)
over CDP; service workers are blocked in the tab's context. A saved login that carries localStorage cannot
be restored without loading its origins, so such a login is not given a tab (`usable_for`): its flows get
fresh contexts. Left as it was: the HTTP cache (every flow's authorize URL is new) and the tab's history.
Between flows the tab stays on the page the last flow ended on (usually the callback's error page, no
scripts): sending it to about:blank made Chromium start a renderer process for each next flow again.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError

from harness.browser.evidence import cdp_session

# Storage.clearDataForOrigin's types: "local_storage" covers sessionStorage too (checked: both are gone)
CLEARED_STORAGE = "local_storage,indexeddb,cache_storage,websql,file_systems"
SETTLE_TIMEOUT_MS = 5000


def saved_login(state_path: Path) -> dict:
    return json.loads(state_path.read_text())


def usable_for(state: dict) -> bool:
    """A tab can stand in for a fresh context of this saved login (no localStorage to restore)."""
    return not any(origin.get("localStorage") for origin in state.get("origins", []))


class WarmTab:
    """The tab, its CDP session and the origins its flows have visited since the last reset."""

    def __init__(self, browser, context_args: dict):
        self.context = browser.new_context(**context_args, service_workers="block")  # cookies: reset()
        try:
            self.page = self.context.new_page()
            self.cdp = cdp_session(self.page)  # Chromium only: elsewhere fresh contexts (shared with screenshots)
        except PlaywrightError:
            self.context.close()
            raise
        self.visited: set[str] = set()
        self.navigating = False  # a main-frame navigation was requested and has not committed yet
        self.page.on("request", self._on_request)
        self.page.on("framenavigated", self._on_navigated)

    def _on_request(self, request) -> None:
        if request.resource_type in ("document", "xhr", "fetch"):  # what can write storage on an origin
            parts = urlsplit(request.url)
            if parts.scheme in ("https", "http") and parts.netloc:
                self.visited.add(f"{parts.scheme}://{parts.netloc}")
        if request.is_navigation_request() and request.frame == self.page.main_frame:
            self.navigating = True

    def _on_navigated(self, frame) -> None:
        if frame == self.page.main_frame:
            self.navigating = False

    def reset(self, state: dict):
        """The tab as a fresh context of the saved login would be; returns its page."""
        for origin in sorted(self.visited):
            self.cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": CLEARED_STORAGE})
        self.visited.clear()
        self.context.clear_cookies()
        self.context.add_cookies(state.get("cookies", []))
        return self.page

    def settle(self) -> None:
        """After a flow: its last navigation has committed. A flow returns as soon as the redirect to the
        callback is requested; the commit of Chromium's error page for that unreachable host, still
        pending, would interrupt the next flow's first navigation. (Playwright delivers events only
        inside its calls, so none slips between the check and the wait.)"""
        if not self.navigating:
            return
        try:
            self.page.wait_for_event("framenavigated", lambda frame: frame == self.page.main_frame,
                                     timeout=SETTLE_TIMEOUT_MS)
        except PlaywrightError:  # never committed (a download, a cancelled hop): nothing is pending either
            pass
        self.navigating = False

    def close(self) -> None:
        try:
            self.context.close()
        except PlaywrightError:
            pass


class WarmTabs:
    """The warm tab of one browser, lent to one flow at a time whatever its login: reset() puts exactly
    that login's cookies in (one tab per login kept a context and a renderer per site alive in every
    worker: 0.66 GiB more at the default run's peak)."""

    def __init__(self, browser, context_args: dict):
        self.browser, self.context_args = browser, context_args
        self._tab: WarmTab | None = None

    def page_for(self, state_path: Path):
        """The tab, reset to this saved login; None: use a fresh context (the login carries localStorage,
        or the browser speaks no CDP)."""
        state = saved_login(state_path)  # read each time: a relogin may have replaced it
        if not usable_for(state):
            return None
        if self._tab is not None:
            try:
                return self._tab.reset(state)
            except PlaywrightError:  # its browser process went away: start again
                self.drop()
        try:
            self._tab = WarmTab(self.browser, self.context_args)
        except PlaywrightError:
            return None
        return self._tab.reset(state)

    def end(self, ok: bool) -> None:
        """After a flow: settled for the next one, or (the flow broke, maybe the tab with it) dropped."""
        if self._tab is None:
            return
        if not ok:
            self.drop()
            return
        self._tab.settle()

    def drop(self) -> None:
        if self._tab is not None:
            self._tab.close()
            self._tab = None

    def close(self) -> None:
        self.drop()
