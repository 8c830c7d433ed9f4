"""The suites against a Datadog they have never seen, by configuration alone (issue 12 item 6).

The embedded emulator's second face: `face=second` (other login path, placeholders only, an unlabelled
consent list, "Allow access" / "Cancel"), `remember_consent=true`, `absent_endpoints=some` (users-me and
list-hosts answer 404) and `error_response_mode=fragment`, all at once, driven through
recipes/second-face.yaml with no code change:

    pytest suites/test_authorize.py ... --target US1-sandbox --recipes recipes/second-face.yaml \
        --emulator-behaviour face=second --emulator-behaviour remember_consent=true \
        --emulator-behaviour absent_endpoints=some --emulator-behaviour error_response_mode=fragment

What is asserted (read from verdict.json's per-target `categories` and Allure's results):

* the run completes (a verdict, pytest's exit 0 or 1: no usage, config or internal error);
* the login works through the recipes file: no test in "Login failed", and the flows that need no
  consent page of their own pass;
* no test ends as a "Harness error".

The tests marked TOLERANCE below depend on the harness's handling of what the face changes (issue 12
item 3): remembered consent is a skip with its reason, never a failure; an error in the redirect's
fragment is read and failed under [RFC6749-4.1.2.1] (the code flow's errors belong in the query); a
documented endpoint answering 404 fails the test that owns it ([DD-SCOPES-ENDPOINT]) and breaks the
tests that needed it as evidence in the "Endpoint absent on this target" category; nothing else fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.results.outcome import (
    CONFORMANCE_FAILURE,
    ENDPOINT_ABSENT,
    HARNESS_ERROR,
    LOGIN_FAILED,
    categorize,
)

TARGET = "US1-sandbox"
RECIPES = ROOT / "recipes" / "second-face.yaml"
SWITCHES = {"face": "second", "remember_consent": "true", "absent_endpoints": "some",
            "error_response_mode": "fragment"}
SELECTION = ["suites/test_authorize.py", "suites/test_token.py", "suites/test_refresh.py",
             "suites/test_errors_authorize.py", "suites/test_scopes.py"]
# tests driven through the recipes file alone: the login on /signin and one consent to a code (callback,
# token), the login page's own headers (login_path), the error page (no test id on this face)
DRIVEN_BY_THE_RECIPES = ("test_callback_parameters", "test_token_response_fields", "test_code_exchange_with_json_body",
                         "test_login_page_headers", "test_unknown_client_id_shows_error_page")
# absent_endpoints=some: users-me (the read probe of user_self_profile_read, and the identity probe other
# tests use as evidence) and list-hosts (hosts_read's read probe); their data-flow tests own them
ABSENT_OWNER_SCOPES = ("user_self_profile_read", "hosts_read")
ABSENT_PATHS = ("/api/v2/users/me", "/api/v1/hosts")


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    verdict: dict  # verdict.json's entry for TARGET
    results: dict  # nodeid-ish "name[params]" -> (status, category, message)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    work = tmp_path_factory.mktemp("second-face")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DDOAUTH_", "PYTEST_"))}
    (work / "waivers").mkdir()
    cmd = [sys.executable, "-m", "pytest", *SELECTION, "-p", "no:cacheprovider", "-q", "--target", TARGET,
           "--recipes", str(RECIPES), "--alluredir", str(work / "allure-results"),
           "--verdict-path", str(work / "verdict.json"), "--reports-dir", str(work / "reports"),
           "--state-dir", str(work / "state"), "--waivers", str(work / "waivers"),
           "--baseline-dir", str(work / "baselines")]
    for key, value in SWITCHES.items():
        cmd += ["--emulator-behaviour", f"{key}={value}"]
    began = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.monotonic() - began
    output = proc.stdout + proc.stderr
    verdict_path = work / "verdict.json"
    assert verdict_path.exists(), f"the run did not complete (exit {proc.returncode}):\n{output[-4000:]}"
    verdict = json.loads(verdict_path.read_text())["targets"].get(TARGET)
    assert verdict is not None, f"no verdict for {TARGET}:\n{output[-4000:]}"
    results = {}
    for path in (work / "allure-results").glob("*-result.json"):
        data = json.loads(path.read_text())
        message = (data.get("statusDetails") or {}).get("message") or ""
        results[data["name"]] = (data["status"], categorize(data["status"], message), message)
    summary = {"seconds": round(seconds, 1), "exit": proc.returncode,
               **{k: verdict.get(k) for k in ("passed", "failed", "broken", "skipped")}}
    print(f"\nsecond face run: {json.dumps(summary)}")  # the run time, for the record (pytest -s)
    (work / "summary.json").write_text(json.dumps(summary))
    return Run(proc.returncode, output, seconds, verdict, results)


def _table(run: Run, names) -> str:
    return "\n".join(f"  {n}: {run.verdict['categories'].get(n)}" for n in names)


def test_run_completes(run):
    assert run.returncode in (0, 1), f"exit {run.returncode}:\n{run.output[-3000:]}"
    total = sum(run.verdict[k] for k in ("passed", "failed", "broken", "skipped"))
    assert total >= 40, run.verdict  # the whole selection ran (about 60 tests)
    assert run.seconds < 600, f"{run.seconds:.0f} s"


def test_login_works_through_the_recipes_file(run):
    login_failed = [n for n, c in run.verdict["categories"].items() if c == LOGIN_FAILED]
    assert not login_failed, "Login failed:\n" + _table(run, login_failed) + "\n" + run.output[-3000:]
    assert run.verdict["passed"] > 0
    passed = {name.split("[")[0] for name, (status, _, _) in run.results.items() if status == "passed"}
    missing = [t for t in DRIVEN_BY_THE_RECIPES if t not in passed]
    assert not missing, f"expected to pass through the recipes file: {missing}"


def test_no_harness_error(run):
    errors = [n for n, c in run.verdict["categories"].items() if c == HARNESS_ERROR]
    messages = {n: m[:300] for n, (s, c, m) in run.results.items() if c == HARNESS_ERROR}
    assert not errors, "Harness error:\n" + _table(run, errors) + "\n" + json.dumps(messages, indent=1)


# ---- TOLERANCE: these depend on the harness tolerating what the face changes (issue 12 item 3, by other
# engineers): remembered consent is a skip with its reason, an error in the fragment is read and failed
# under RFC 6749 §4.1.2.1 (the code flow's errors belong in the query), a documented endpoint answering 404
# fails the test that owns it ([DD-SCOPES-ENDPOINT]) and breaks, in its own category, the tests that
# needed it as evidence. Not weakened to pass.

def _messages(run: Run, category: str) -> dict[str, str]:
    return {n: m for n, (s, c, m) in run.results.items() if c == category}


def test_tolerance_the_face_breaks_only_with_the_right_requirement(run):
    """Every conformance failure is one the face causes, under its requirement, and nothing else fails."""
    wrong = {}
    for name, message in _messages(run, CONFORMANCE_FAILURE).items():
        fragment = "[RFC6749-4.1.2.1]" in message and "fragment" in message
        absent = name.split("[")[0] == "test_scope_data_flow" and "[DD-SCOPES-ENDPOINT]" in message and any(
            f"-{scope}-" in name for scope in ABSENT_OWNER_SCOPES)
        if not (fragment or absent):
            wrong[name] = message[:300]
    assert not wrong, "conformance failures the face does not explain:\n" + json.dumps(wrong, indent=1)


def test_tolerance_fragment_errors_are_read_and_reported_as_such(run):
    _, category, message = next(v for n, v in run.results.items() if n.startswith("test_unknown_scope_refused["))
    assert category == CONFORMANCE_FAILURE and "[RFC6749-4.1.2.1]" in message and "fragment" in message, message


def test_tolerance_absent_endpoints_fail_their_owner_and_break_the_rest_in_their_category(run):
    owners = {n: v for n, v in run.results.items() if n.startswith("test_scope_data_flow[")
              and any(f"-{scope}-" in n for scope in ABSENT_OWNER_SCOPES)}
    assert len(owners) == len(ABSENT_OWNER_SCOPES), sorted(run.results)
    assert all(s == "failed" and "[DD-SCOPES-ENDPOINT]" in m for s, _, m in owners.values()), owners
    for name, (status, category, message) in run.results.items():
        # tests that only used users-me as evidence fall back on another read the scopes allow: judged, not broken
        assert status != "broken", (name, category, message[:300])
        if "answered 404" in message:  # a 404 is never a failure of a test about something else
            assert category == ENDPOINT_ABSENT or name in owners, (name, category, message[:300])


def test_tolerance_remembered_consent_is_a_skip_with_its_reason(run):
    """Tests that need the consent page (Deny, the scope list, the page's headers) meet none the second
    time: skipped with the reason (the recipes file names no force_consent parameter), never failed."""
    for name in ("test_deny_returns_access_denied", "test_consent_lists_exactly_the_client_scopes"):
        status, _, message = next((v for n, v in run.results.items() if n.startswith(name + "[")), (None, None, ""))
        assert status in ("passed", "skipped"), (name, status, message[:300])
        if status == "skipped":
            assert "consent was remembered" in message, (name, message[:300])
    silent = [n for n, (status, _, message) in run.results.items() if status == "skipped" and not message.strip()]
    assert not silent, silent
