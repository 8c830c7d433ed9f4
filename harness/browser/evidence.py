"""What the browser leaves behind for a person: page snapshots under <reports-dir>/pages/, and the
memory of a login that failed (so a (site, user) is not logged in again by every later test)."""
from __future__ import annotations

import base64
import json
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import LoginFailed
from core.redact import REDACTOR

EARLIER = "earlier login failed: "


def save_page(directory: Path, prefix: str, name: str, url: str, screenshot: bytes | None,
              aria: str | None) -> Path | None:
    """<directory>/<prefix>-<ms>-<name>.jpg and .aria.yml (the accessible tree, redacted; its first
    line is the URL). Returns the stem (no suffix), or None when there was nothing to save."""
    if not screenshot and aria is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"{prefix}-{int(time.time() * 1000)}-{name}"
    if screenshot:
        stem.with_suffix(".jpg").write_bytes(screenshot)
    if aria is not None:
        stem.with_suffix(".aria.yml").write_text(REDACTOR.redact_text(f"# {url}\n{aria}"))
    return stem


_CDP_SESSIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
SCREENSHOT_QUALITY = 70
MAX_SCREENSHOT_HEIGHT = 8000  # CSS pixels: a page longer than this is cut (the top is what a reviewer reads)


def cdp_session(page):
    """The page's one CDP session (Chromium only: raises elsewhere), made on first use."""
    cdp = _CDP_SESSIONS.get(page)
    if cdp is None:
        cdp = _CDP_SESSIONS[page] = page.context.new_cdp_session(page)
    return cdp


def page_screenshot(page) -> bytes | None:
    """A full-page JPEG of a page a flow passes through, best effort (None when it cannot be had): a busy
    renderer must not break the test. Chromium's own capture (CDP, optimizeForSpeed) costs about half of
    Playwright's screenshot, which a flow pays on every page even when the test passes and the
    screenshot is dropped (--screenshots failing); elsewhere Playwright's."""
    try:
        cdp = cdp_session(page)
        size = cdp.send("Page.getLayoutMetrics")["cssContentSize"]
        viewport = page.viewport_size or {"width": 0, "height": 0}
        params = {"format": "jpeg", "quality": SCREENSHOT_QUALITY, "optimizeForSpeed": True}
        if size["height"] > viewport["height"] or size["width"] > viewport["width"]:
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": max(size["width"], 1),
                              "height": min(max(size["height"], 1), MAX_SCREENSHOT_HEIGHT), "scale": 1}
        return base64.b64decode(cdp.send("Page.captureScreenshot", params)["data"])
    except Exception:
        pass
    try:
        return page.screenshot(full_page=True, type="jpeg", quality=SCREENSHOT_QUALITY, timeout=10000)
    except Exception:
        return None


def capture_page(page) -> tuple[str, bytes | None, str | None]:
    """(title, full-page screenshot, accessibility tree) of a page a flow stopped on, each best effort:
    a page that is navigating or a busy renderer must not turn evidence into an error."""
    def attempt(get):
        try:
            return get()
        except Exception:
            return None
    title = attempt(page.title) or ""
    screenshot = page_screenshot(page)
    aria = attempt(lambda: page.locator("body").aria_snapshot(timeout=5000))
    return title, screenshot, aria


def status_text(status: int | None) -> str:
    if status is None:
        return "HTTP status unknown"
    if status == 404:
        return "HTTP 404: the page does not exist"
    return f"HTTP {status}"


@dataclass
class LoginFailures:
    """Logins that failed in this run, per (site, user): in this process, and for the other xdist
    workers in a marker file beside the storage-state file (written and read under its lock). A
    marker from another run (another `run_id`) is ignored, so a fixed setup is tried again."""
    run_id: str
    failed: dict[tuple[str, str], str] = field(default_factory=dict)

    @staticmethod
    def marker(state_file: Path) -> Path:
        return state_file.with_name(state_file.name + ".login-failed")

    def check(self, key: tuple[str, str], state_file: Path) -> None:
        """Raise LoginFailed("earlier login failed: ...") when the login of `key` failed before in this run."""
        message = self.failed.get(key)
        if message is None:
            try:
                data = json.loads(self.marker(state_file).read_text())
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict) and data.get("run") == self.run_id and data.get("message"):
                message = self.failed[key] = str(data["message"])
        if message is not None:
            raise LoginFailed(EARLIER + message)

    def remember(self, key: tuple[str, str], state_file: Path, exc: BaseException) -> None:
        message = str(exc).removeprefix(EARLIER)
        self.failed[key] = message
        try:
            self.marker(state_file).write_text(json.dumps({"run": self.run_id, "message": message}))
        except OSError:
            pass  # this worker still remembers it
