"""The warm tab stands in for a fresh context of the saved login: what one flow leaves (cookies, local and
session storage) is gone for the next, the saved login's cookie is back; a login with localStorage is
not given a tab. Real Chromium, real HTTP over a socket."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Error as PlaywrightError

from harness.browser.warm_tab import WarmTab, WarmTabs, usable_for

WRITE = b"""<html><body><script>
localStorage.setItem('left', 'by flow 1'); sessionStorage.setItem('left', 'by flow 1');
document.cookie = 'extra=1; path=/';
</script>written</body></html>"""
READ = b"<html><body>read</body></html>"


class Pages(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = WRITE if self.path.startswith("/write") else READ
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def login_file(tmp_path, value: str):
    state = {"cookies": [{"name": "login", "value": value, "domain": "127.0.0.1", "path": "/", "expires": -1,
                          "httpOnly": False, "secure": False, "sameSite": "Lax"}], "origins": []}
    path = tmp_path / f"state-{value}.json"
    path.write_text(json.dumps(state))
    return path, state


@pytest.fixture
def saved_login(tmp_path):
    return login_file(tmp_path, "L")


def read_back(page, origin):
    page.goto(f"{origin}/read")
    return page.evaluate("[localStorage.getItem('left'), sessionStorage.getItem('left'), document.cookie]")


@pytest.fixture
def tab(chromium):
    tab = WarmTab(chromium, {})
    yield tab
    tab.close()


def test_what_a_flow_leaves_is_gone_for_the_next(tab, origin, saved_login):
    _, state = saved_login
    page = tab.reset(state)
    page.goto(f"{origin}/write")
    assert read_back(page, origin) == ["by flow 1", "by flow 1", "login=L; extra=1"]  # same flow: kept
    tab.settle()
    page = tab.reset(state)
    assert read_back(page, origin) == [None, None, "login=L"]


def test_the_same_tab_serves_every_flow(tab, origin, saved_login):
    _, state = saved_login
    first = tab.reset(state)
    first.goto(f"{origin}/read")
    assert tab.reset(state) is first and len(tab.context.pages) == 1


def test_one_tab_serves_two_logins_each_with_its_own_cookies_only(chromium, origin, tmp_path):
    (site_a, _), (site_b, _) = login_file(tmp_path, "A"), login_file(tmp_path, "B")
    tabs = WarmTabs(chromium, {})
    try:
        page = tabs.page_for(site_a)
        page.goto(f"{origin}/write")
        tabs.end(ok=True)
        again = tabs.page_for(site_b)
        assert again is page and read_back(again, origin) == [None, None, "login=B"]
        tabs.end(ok=False)  # a broken flow: the tab is not lent again
        assert tabs.page_for(site_a) is not page
    finally:
        tabs.close()


def test_a_login_with_local_storage_gets_fresh_contexts():
    assert usable_for({"cookies": [], "origins": []})
    assert usable_for({"cookies": [], "origins": [{"origin": "https://app.datadoghq.com", "localStorage": []}]})
    assert not usable_for({"cookies": [], "origins": [
        {"origin": "https://app.datadoghq.com", "localStorage": [{"name": "dd", "value": "1"}]}]})


def test_an_error_page_left_in_the_tab_is_not_reloaded_by_chromium(page):
    """The callback's host is unreachable in client mode: Chromium's error page must not re-request it
    (with its code) later, while the next flow runs in the same tab (the harness's launch flags)."""
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    with pytest.raises(PlaywrightError):
        page.goto("https://callback.invalid/cb?code=x")  # .invalid never resolves
    page.wait_for_timeout(2500)  # Chromium's first automatic reload comes after about a second
    assert requests == ["https://callback.invalid/cb?code=x"]
