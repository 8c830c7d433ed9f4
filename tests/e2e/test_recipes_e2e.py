"""Page recipes end to end: the suites run against the embedded emulator through a user's recipes
file (`--recipes`), with no code change.

* a recipes file whose login recipe cannot match (its `detect` names an absent element): the first
  login ends at once as "unrecognised page" naming the URL, HTTP status and title, with the page's
  screenshot and accessibility tree under <reports-dir>/pages/ (no --record-pages); every other test of
  that (site, user), in either xdist worker, is broken at once with "earlier login failed: <same reason>";
* a recipes file that drives the login with other locator kinds (css, within, text) and starts it from
  the authorize URL (login_path: null): the tests pass.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from harness.results.report import categorize

ROOT = Path(__file__).resolve().parents[2]
TARGET = "US1-sandbox"
BROKEN_LOGIN = {"pages": {"login": {"detect": {"testid": "no-such-login-form"}}}}
OTHER_LOCATORS = {
    "login_path": None,  # start from the authorize URL
    "pages": {
        "login": {"detect": {"css": "input#password"}, "email": {"css": "input[name=username]"},
                  "password": {"css": "#password", "within": {"css": "form"}},
                  "submit": {"role": "button", "name": "^Log in$", "within": {"css": "form"}}},
        "org_picker": {"detect": {"text": "^Select an organization$"}},
    },
}
LOGIN_TESTS = ("test_deny_returns_access_denied", "test_state_echoed_on_error", "test_unknown_parameter_ignored",
               "test_pkce_challenge_required")


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    results: dict  # test name -> (status, category, message, seconds)
    reports: Path


def _run(work: Path, recipes: dict, select: str, extra: list[str]) -> Run:
    work.mkdir(parents=True)
    recipes_path = work / "recipes.yaml"
    recipes_path.write_text(yaml.safe_dump(recipes, sort_keys=False))
    results_dir = work / "allure-results"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DDOAUTH_", "PYTEST_"))}
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "-p", "no:cacheprovider", "-q",
           "--target", TARGET, "-k", select, "--recipes", str(recipes_path), "--alluredir", str(results_dir),
           "--verdict-path", str(work / "verdict.json"), "--reports-dir", str(work / "reports"),
           "--state-dir", str(work / "state"), "--waivers", str(work / "waivers"),
           "--baseline-dir", str(work / "baselines"), *extra]
    (work / "waivers").mkdir()
    began = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    seconds = time.monotonic() - began
    results = {}
    for path in results_dir.glob("*-result.json"):
        data = json.loads(path.read_text())
        message = (data.get("statusDetails") or {}).get("message") or ""
        results[data["name"].split("[")[0]] = (data["status"], categorize(data["status"], message), message,
                                               (data["stop"] - data["start"]) / 1000)
    return Run(proc.returncode, proc.stdout + proc.stderr, seconds, results, work / "reports")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("recipes-e2e")
    scenarios = {
        "broken_login": (BROKEN_LOGIN, " or ".join(LOGIN_TESTS), ["-p", "xdist", "-n", "2"]),
        "other_locators": (OTHER_LOCATORS, "test_login_page_headers or test_deny_returns_access_denied or "
                                           "test_token_response_fields", []),
    }
    with ThreadPoolExecutor(max_workers=len(scenarios)) as pool:
        futures = {name: pool.submit(_run, base / name, *args) for name, args in scenarios.items()}
        return {name: future.result() for name, future in futures.items()}


def test_an_unrecognised_login_page_fails_fast_is_saved_and_is_not_retried(runs):
    run = runs["broken_login"]
    assert set(run.results) == set(LOGIN_TESTS), run.output[-3000:]
    statuses = {name: r[:2] for name, r in run.results.items()}
    assert set(statuses.values()) == {("broken", "Login failed")}, statuses
    messages = [r[2] for r in run.results.values()]
    first = [m for m in messages if "earlier login failed" not in m]
    assert len(first) == 1, messages  # one login tried for the (site, user), in two workers
    reason = first[0].split("LoginFailed: ", 1)[1].splitlines()[0]
    assert reason.startswith("unrecognised page at https://app.datadoghq.com/account/login "
                             "(HTTP 200, title 'Log in | Datadog') after start; "), reason
    assert "tried error, consent, org_picker, mfa, login, site_picker" in reason and "recipes.yaml" in reason
    for message in messages:
        if message is not first[0]:
            assert f"LoginFailed: earlier login failed: {reason}" in message, message
    # saved without --record-pages, and named in the message
    pages = run.reports / "pages"
    arias = sorted(pages.glob(f"{TARGET}-*-unrecognised.aria.yml"))
    assert len(arias) == 1 and f"saved {arias[0]} (+ .jpg)" in reason, (list(pages.iterdir()), reason)
    assert arias[0].with_name(arias[0].name.replace(".aria.yml", ".jpg")).exists()
    assert arias[0].read_text().startswith("# https://app.datadoghq.com/account/login\n")
    # no per-test wait: the failed login itself is about a second or two; the others are immediate
    durations = sorted(r[3] for r in run.results.values())
    assert durations[-1] < 12 and durations[0] < 2, durations


def test_a_users_recipes_with_other_locators_and_the_login_from_the_authorize_url_pass(runs):
    run = runs["other_locators"]
    assert run.returncode == 0, run.output[-3000:]
    assert {name: r[0] for name, r in run.results.items()} == {
        "test_login_page_headers": "passed", "test_deny_returns_access_denied": "passed",
        "test_token_response_fields": "passed"}, run.output[-3000:]
    assert not (run.reports / "pages").exists() or not list((run.reports / "pages").iterdir())
