"""Recipes in a real Chromium (page.set_content and routed pages, no network): every locator kind
resolves; the login is driven by a user's recipes (placeholders only, another login path); an
unrecognised page ends the flow at once, names its URL, HTTP status and title, and is saved
(screenshot + redacted accessibility tree); a failed login is remembered for the run."""
from __future__ import annotations

import json
import time

import pytest
import yaml

from core.errors import LoginFailed
from core.redact import REDACTOR
from harness.browser.consent import ConsentDriver, Credentials, locate
from harness.browser.evidence import EARLIER, LoginFailures
from harness.config.recipes import Locator, load_recipes

PAGE = """<main data-testid="main">
  <h1>Sign in to Datadog</h1>
  <form id="login" aria-label="Sign in">
    <label for="e">Email</label><input id="e" placeholder="you@company.com">
    <label>Password <input type="password" placeholder="Your password"></label>
    <button>Log in</button>
  </form>
  <section class="other"><button>Log in</button><p>Organization: Acme Sandbox</p></section>
  <ul aria-label="Requested permissions"><li><code>metrics_read</code> Read metrics</li>
    <li><code>dashboards_read</code> Read dashboards</li></ul>
</main>"""


def spec(**keys) -> Locator:
    return Locator.model_validate(keys)


@pytest.mark.parametrize("keys, expected", [
    ({"role": "heading", "name": "^Sign in to Datadog$"}, "H1"),
    ({"label": "Email"}, "INPUT#e"),
    ({"label": "Password"}, "INPUT[password]"),
    ({"placeholder": "you@company.com"}, "INPUT#e"),
    ({"text": "^Organization:"}, "P"),
    ({"testid": "main"}, "MAIN"),
    ({"css": "form#login input[type=password]"}, "INPUT[password]"),
    ({"role": "button", "name": "^Log in$", "within": {"css": "form#login"}}, "BUTTON@login"),
    ({"role": "button", "name": "^Log in$", "within": {"role": "form", "name": "Sign in"}}, "BUTTON@login"),
    ({"css": "code", "within": {"role": "list", "name": "Requested permissions"}}, None),
])
def test_each_locator_kind_resolves_in_a_real_page(page, keys, expected):
    page.set_content(PAGE)
    found = locate(page, spec(**keys))
    if expected is None:
        assert found.all_inner_texts() == ["metrics_read", "dashboards_read"]
        return
    assert found.count() == 1, f"{keys}: {found.count()} elements"
    described = found.evaluate("e => e.tagName + (e.id ? '#' + e.id : '') + (e.type === 'password' ? '[password]' : '')"
                               " + (e.tagName === 'BUTTON' && e.closest('form') ? '@' + e.closest('form').id : '')")
    assert described == expected


def test_within_narrows_and_a_name_filters_a_locator_without_role(page):
    page.set_content(PAGE)
    assert locate(page, spec(role="button", name="^Log in$")).count() == 2  # without `within`: both buttons
    assert locate(page, spec(role="button", name="^Log in$", within={"css": "section.other"})).count() == 1
    assert locate(page, spec(css="li"), name="^dashboards_read").count() == 1  # a picker entry by its text
    assert locate(page, spec(role="button"), name="^Log in$").count() == 2  # a role's name, overridden
    assert locate(page, {"placeholder": "Your password"}).count() == 1  # a raw mapping is validated and used


# ---- driving pages through a user's recipes ---------------------------------------------------------

ORIGIN = "https://app.datadoghq.com"
OTHER_LOGIN = """<title>Sign in</title><form method="get" action="/home">
  <input name="u" placeholder="Work email"><input name="p" type="password" placeholder="Password">
  <button type="submit">Continue</button></form>"""


def serve(page, routes: dict[str, tuple[int, str]]) -> list[str]:
    """Answer every request from `routes` (path -> (status, html)), else 404."""
    seen: list[str] = []

    def handler(route):
        request = route.request
        path = request.url.split(ORIGIN, 1)[-1].split("?")[0]
        seen.append(f"{request.method} {path}")
        status, html = routes.get(path, (404, "<title>Not Found</title><h1>404 Not Found</h1>"))
        route.fulfill(status=status, body=html, content_type="text/html")

    page.route("**/*", handler)
    return seen


def test_a_users_recipes_drive_a_login_page_with_placeholders_only_on_another_path(page, tmp_path):
    recipes_path = tmp_path / "recipes.yaml"
    recipes_path.write_text(yaml.safe_dump({"login_path": "/signin", "pages": {"login": {
        "detect": {"placeholder": "Password"}, "email": {"placeholder": "Work email"},
        "password": {"placeholder": "Password"}, "submit": {"role": "button", "name": "^Continue$",
                                                             "within": {"css": "form"}}}}}))
    recipes = load_recipes(recipes_path)
    seen = serve(page, {"/signin": (200, OTHER_LOGIN), "/home": (200, "<title>Home</title><h1>Welcome</h1>")})
    driver = ConsentDriver(Credentials("dev@partner.example", "pw-123"), "Acme", "US1", recipes=recipes,
                           snapshot_dir=tmp_path / "pages")
    result = driver.login(page, ORIGIN)
    assert result.page_names() == ["login"] and result.logged_in
    assert result.final_url.startswith(f"{ORIGIN}/home?u=dev%40partner.example&p=")
    assert seen[:2] == ["GET /signin", "GET /home"]


@pytest.mark.parametrize("status, html, words", [
    (404, "<title>Not Found</title><h1>404 Not Found</h1>", "(HTTP 404: the page does not exist, title 'Not Found')"),
    (200, "<title>Welcome back</title><p>Something new</p>", "(HTTP 200, title 'Welcome back')"),
])
def test_an_unrecognised_page_ends_the_flow_at_once_and_is_saved(page, tmp_path, status, html, words):
    secret = "pw-unrecognised-987654"
    REDACTOR.add(secret, "password")
    serve(page, {"/account/login": (status, html.replace("</p>", f" {secret}</p>") if status == 200 else html)})
    pages = tmp_path / "pages"
    driver = ConsentDriver(Credentials("dev@partner.example", secret), "Acme", "US1", snapshot_dir=pages,
                           snapshot_prefix="US1-sandbox")
    began = time.monotonic()
    with pytest.raises(LoginFailed) as info:
        driver.login(page, ORIGIN)
    elapsed = time.monotonic() - began
    message = str(info.value)
    assert elapsed < 6, f"{elapsed:.1f} s: not at once"
    assert "\n" not in message
    assert message.startswith(f"unrecognised page at {ORIGIN}/account/login {words} after start; saved "), message
    assert "tried error, consent, org_picker, mfa, login, site_picker" in message
    assert "harness/browser/recipes.yaml" in message
    arias = list(pages.glob("US1-sandbox-*-unrecognised.aria.yml"))
    assert len(arias) == 1 and f"saved {arias[0]} (+ .jpg)" in message
    assert arias[0].with_name(arias[0].name.replace(".aria.yml", ".jpg")).stat().st_size > 0
    aria = arias[0].read_text()
    assert aria.startswith(f"# {ORIGIN}/account/login\n"), aria
    assert secret not in aria


def test_a_page_that_is_still_loading_is_waited_for(page, tmp_path):
    """Not 'at once' at the wrong time: a login form that appears 1.5 s after load is still recognised."""
    late = """<title>Sign in</title><div id=app></div><script>setTimeout(() => { document.getElementById('app')
      .innerHTML = '<label>Email <input></label><label>Password <input type=password></label>'; }, 1500)</script>"""
    recipes_path = tmp_path / "recipes.yaml"
    recipes_path.write_text("settle_s: 3\n")
    serve(page, {"/account/login": (200, late)})
    driver = ConsentDriver(None, "Acme", "US1", recipes=load_recipes(recipes_path))
    with pytest.raises(LoginFailed, match="the saved browser state has expired"):  # it got to the login page
        driver.login(page, ORIGIN)


# ---- a failed login is remembered --------------------------------------------------------------------

def test_login_failures_are_remembered_in_process_and_across_workers_for_this_run_only(tmp_path):
    state = tmp_path / "US1-abc.json"
    key = ("US1", "dev@partner.example")
    first = LoginFailures("run-1")
    first.check(key, state)  # nothing yet
    first.remember(key, state, LoginFailed("unrecognised page at https://x/account/login (HTTP 404...)"))
    with pytest.raises(LoginFailed) as info:
        first.check(key, state)
    assert str(info.value) == EARLIER + "unrecognised page at https://x/account/login (HTTP 404...)"
    marker = LoginFailures.marker(state)
    assert marker.name == "US1-abc.json.login-failed" and json.loads(marker.read_text())["run"] == "run-1"
    with pytest.raises(LoginFailed, match="^earlier login failed: unrecognised page"):
        LoginFailures("run-1").check(key, state)  # another worker of the same run
    LoginFailures("run-2").check(key, state)  # a later run tries again
    first.remember(key, state, LoginFailed(EARLIER + "x"))  # never "earlier login failed: earlier login failed"
    assert json.loads(marker.read_text())["message"] == "x"
