"""Page recipes as configuration (harness/config/recipes.py): the built-in recipes merged with a
user's recipes file page by page, validated up front (one line naming the file and the field, with
a did-you-mean; exit 4 from pytest), named by a targets file (`recipes:`) or `--recipes`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.errors import ConfigError
from harness.config.recipes import BUILTIN_SOURCE, Locator, builtin_recipes, load_recipes
from harness.config.targets import load_targets

ROOT = Path(__file__).resolve().parents[2]

TARGETS = {
    "targets": [{
        "name": "US1-sandbox", "site": "US1", "org": "Acme",
        "client": {"id": "cid", "secret": "a-client-secret-123", "scopes": ["metrics_read"]},
        "redirect_uri": "https://integration.example.com/oauth/callback",
        "user": {"email": "dev@partner.example", "password": "a-password-456"},
    }],
}


def recipes_file(tmp_path: Path, data, name: str = "recipes.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def recipes_error(tmp_path: Path, data, *fragments: str) -> str:
    path = recipes_file(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_recipes(path)
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# ---- the built-in recipes --------------------------------------------------------------------------

def test_builtin_recipes_keep_todays_pages_order_and_login_path():
    recipes = builtin_recipes()
    assert recipes.names() == ["error", "consent", "org_picker", "mfa", "login", "site_picker"]
    assert [p.recipe.order for p in recipes.pages] == [10, 20, 30, 40, 50, 60]
    assert recipes.login_path == "/account/login" and recipes.source == BUILTIN_SOURCE
    assert recipes.page("login").password == Locator(label="Password")
    assert recipes.page("consent").scope_item == Locator(css="code")
    assert load_recipes(None) is recipes


def test_the_builtin_file_header_documents_every_locator_kind_and_page_key():
    header = (ROOT / "harness/browser/recipes.yaml").read_text().split("\nlogin_path:")[0]
    for word in ("role:", "name:", "label:", "placeholder:", "text:", "testid:", "css:", "within:", "login_path",
                 "settle_s", "order", "click", "scope_item", "--recipes", "recipes:"):
        assert word in header, word


# ---- merge -----------------------------------------------------------------------------------------

def test_a_user_page_replaces_the_keys_it_names_and_keeps_the_others(tmp_path):
    recipes = load_recipes(recipes_file(tmp_path, {"pages": {"login": {
        "detect": {"placeholder": "Password"}, "email": {"placeholder": "you@company.com"}}}}))
    login = recipes.page("login")
    assert login.detect == Locator(placeholder="Password")
    assert login.email == Locator(placeholder="you@company.com")
    assert login.password == Locator(label="Password")  # not named: the built-in one
    assert login.submit == builtin_recipes().page("login").submit
    assert recipes.names() == builtin_recipes().names()
    assert recipes.page("consent") == builtin_recipes().page("consent")
    assert str(tmp_path / "recipes.yaml") in recipes.source


def test_new_pages_and_order(tmp_path):
    recipes = load_recipes(recipes_file(tmp_path, {"pages": {
        "cookie_banner": {"order": 5, "detect": {"role": "dialog", "name": "Cookies"},
                          "click": {"role": "button", "name": "^Accept$"}},
        "interstitial": {"detect": {"text": "^Continue to Datadog"}, "click": {"text": "^Continue$"}},
        "login": {"order": 15},
    }}))
    # cookie_banner first (5), login moved before consent (15), the new page without order after every built-in
    assert recipes.names() == ["cookie_banner", "error", "login", "consent", "org_picker", "mfa", "site_picker",
                               "interstitial"]
    assert recipes.is_custom("cookie_banner") and not recipes.is_custom("login")
    assert recipes.page("interstitial").click == Locator(text="^Continue$")


def test_login_path_and_settle(tmp_path):
    assert load_recipes(recipes_file(tmp_path, {"login_path": "/login"})).login_path == "/login"
    recipes = load_recipes(recipes_file(tmp_path, "login_path: null\nsettle_s: 2.5\n"))
    assert recipes.login_path is None and recipes.settle_s == 2.5
    assert load_recipes(recipes_file(tmp_path, "")).names() == builtin_recipes().names()  # an empty file


def test_within_nests(tmp_path):
    recipes = load_recipes(recipes_file(tmp_path, {"pages": {"login": {"submit": {
        "role": "button", "name": "^Sign in$", "within": {"css": "form", "within": {"testid": "main"}}}}}}))
    submit = recipes.page("login").submit
    assert submit.within == Locator(css="form", within=Locator(testid="main"))


# ---- validation: one line, the file and the field -------------------------------------------------------

@pytest.mark.parametrize("data, fragments", [
    ({"pages": {"login": {"detct": {"label": "x"}}}},
     ["pages.login.detct: unknown key", "did you mean 'detect'?", "known keys here: detect, email"]),
    ({"pages": {"consent": {"authorise": {"role": "button"}}}}, ["pages.consent.authorise", "did you mean 'authorize'?"]),
    ({"pages": {"login": {"email": {"lable": "Email"}}}}, ["pages.login.email.lable: unknown key", "did you mean 'label'?"]),
    ({"pages": {"login": {"email": {"label": "Email", "exact": True}}}}, ["pages.login.email.exact: unknown key"]),
    ({"pages": {"login": {"email": {"label": "E", "within": {"lable": "form"}}}}},
     ["pages.login.email.within.lable: unknown key", "did you mean 'label'?"]),
    ({"pages": {"login": {"email": {"label": "E", "within": "form"}}}}, ["pages.login.email.within: must be a locator"]),
    ({"pages": {"login": {"email": {"label": "E", "within": {}}}}},
     ["pages.login.email.within: a locator needs exactly one of role, label"]),
    ({"pages": {"login": {"email": {"label": "E", "css": "input"}}}}, ["pages.login.email:", "(got label, css)"]),
    ({"pages": {"login": {"email": {"name": "Email"}}}}, ["pages.login.email:", "exactly one of"]),
    ({"pages": {"login": {"email": {"text": "E", "name": "x"}}}}, ["pages.login.email:", "`name` goes with `role`"]),
    ({"pages": {"login": {"submit": {"role": "button", "name": "(Log in"}}}},
     ["pages.login.submit.name: not a valid regular expression"]),
    ({"pages": {"logn": {"detect": {"label": "Password"}}}},
     ["pages.logn: not a built-in page", "did you mean 'login'?", "needs `detect` and `click`"]),
    ({"pages": {"banner": {"detect": {"text": "x"}, "clik": {"text": "y"}}}}, ["pages.banner.clik", "did you mean 'click'?"]),
    ({"pags": {}}, ["pags: unknown key", "did you mean 'pages'?"]),
    ({"pages": {"login": "label: Password"}}, ["pages.login: must be a mapping"]),
    ({"login_path": "account/login"}, ["login_path: a path", "starting with '/'"]),
    ({"settle_s": 0}, ["settle_s: seconds"]),
])
def test_bad_recipes_are_one_line_naming_file_and_field(tmp_path, data, fragments):
    recipes_error(tmp_path, data, *fragments)


def test_unreadable_or_not_yaml(tmp_path):
    recipes_error(tmp_path, "pages: [\n", "not valid YAML")
    recipes_error(tmp_path, "- a list\n", "a recipes file is a mapping")
    with pytest.raises(ConfigError, match="cannot read recipes file"):
        load_recipes(tmp_path / "absent.yaml")


# ---- the targets file names it -----------------------------------------------------------------------

def test_targets_file_names_a_recipes_file_relative_to_itself(tmp_path):
    (tmp_path / "conf").mkdir()
    recipes_file(tmp_path / "conf", {"login_path": "/login"}, "my-recipes.yaml")
    targets = tmp_path / "conf" / "targets.yaml"
    targets.write_text(yaml.safe_dump({**TARGETS, "recipes": "my-recipes.yaml"}))
    config = load_targets(targets, None)
    assert config.recipes.login_path == "/login"
    targets.write_text(yaml.safe_dump(TARGETS))
    assert load_targets(targets, None).recipes is builtin_recipes()


def test_targets_file_recipes_errors(tmp_path):
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump({**TARGETS, "recipes": "absent.yaml"}))
    with pytest.raises(ConfigError, match=r"targets.yaml: recipes 'absent.yaml' does not exist"):
        load_targets(targets, None)
    targets.write_text(yaml.safe_dump({**TARGETS, "recipe": "r.yaml"}))
    with pytest.raises(ConfigError, match=r"recipe: unknown key; did you mean 'recipes'\?"):
        load_targets(targets, None)
    recipes_file(tmp_path, {"pages": {"mfa": {"code": {"lable": "Code"}}}}, "r.yaml")
    targets.write_text(yaml.safe_dump({**TARGETS, "recipes": "r.yaml"}))
    with pytest.raises(ConfigError) as info:
        load_targets(targets, None)
    assert str(info.value).startswith(f"{tmp_path / 'r.yaml'}: pages.mfa.code.lable: unknown key")


def _pytest_suites(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DDOAUTH_", "PYTEST_"))}
    return subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "suites"), "-p", "no:cacheprovider",
                           "--reports-dir", str(cwd / "reports"), "--verdict-path", str(cwd / "verdict.json"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_bad_recipes_are_a_usage_error_exit_4(tmp_path):
    """--recipes (checked before the embedded emulator starts) and a targets file's `recipes:`: exit 4, one
    ERROR line naming the recipes file and the field."""
    bad = recipes_file(tmp_path, {"pages": {"login": {"detect": {"lable": "Password"}}}})
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump({**TARGETS, "recipes": "recipes.yaml"}))
    for args in (["--recipes", str(bad)], ["--targets", str(targets)],
                 # --recipes is read first (and wins over the targets file's)
                 ["--targets", str(targets), "--recipes", str(bad)]):
        proc = _pytest_suites(args, tmp_path)
        text = proc.stdout + proc.stderr
        errors = [line for line in text.splitlines() if line.startswith("ERROR:")]
        assert proc.returncode == 4, text[-1500:]
        assert errors == [f"ERROR: {bad}: pages.login.detect.lable: unknown key; did you mean 'label'? known keys "
                          "here: css, label, name, placeholder, role, testid, text, within"], text[-1500:]
        assert "Traceback" not in text
