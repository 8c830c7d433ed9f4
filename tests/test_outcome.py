"""The one outcome classifier (harness/results/outcome.py): its table of cases, and proof that the
verdict, the validation ledger, the baselines' bookkeeping and the Allure results agree with it
on a real inner pytest session."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from core.errors import ConformanceFailure, LoginFailed, TargetUnavailable
from harness.results.outcome import (BROKEN, CONFORMANCE_FAILURE, FAILED, HARNESS_ERROR, LOGIN_FAILED, PASSED,
                                     SKIPPED, UNREACHABLE, WAIVED, WAIVED_CATEGORY, Outcome, TestPhases, categorize,
                                     classify, classify_report)
from harness.results.properties import OUTCOME_PROPERTY, WARNING_PROPERTY

ROOT = Path(__file__).resolve().parents[1]


def _skip(reason: str) -> BaseException:
    try:
        pytest.skip(reason)
    except BaseException as exc:  # noqa: BLE001 - pytest's Skipped is a BaseException
        return exc
    raise AssertionError("pytest.skip returned")


def _fail(reason: str) -> BaseException:
    try:
        pytest.fail(reason)
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("pytest.fail returned")


# (case, when, pytest's result, the exception, properties) -> the expected outcome
TABLE = [
    ("assertion failure", "call", "failed", AssertionError("expected 200, got 400"), (),
     Outcome(FAILED, CONFORMANCE_FAILURE)),
    ("pytest.fail", "call", "failed", _fail("MUST: no PKCE"), (), Outcome(FAILED, CONFORMANCE_FAILURE)),
    ("ConformanceFailure", "call", "failed", ConformanceFailure("redirect carried the secret"), (),
     Outcome(FAILED, CONFORMANCE_FAILURE)),
    ("LoginFailed", "call", "failed", LoginFailed("MFA page not recognised"), (), Outcome(BROKEN, LOGIN_FAILED)),
    ("TargetUnavailable", "call", "failed", TargetUnavailable("POST /oauth2/v1/token: HTTP 503"), (),
     Outcome(BROKEN, UNREACHABLE)),
    ("KeyError in call", "call", "failed", KeyError("access_token"), (), Outcome(BROKEN, HARNESS_ERROR)),
    ("setup error", "setup", "failed", RuntimeError("no browser"), (), Outcome(BROKEN, HARNESS_ERROR)),
    ("teardown error", "teardown", "failed", RuntimeError("context close"), (), Outcome(BROKEN, HARNESS_ERROR)),
    ("waived skip", "call", "skipped", _skip("WAIVED: DDOAUTH-1 (jane, until 2099-01-01)"), (),
     Outcome(WAIVED, WAIVED_CATEGORY)),
    ("plain skip", "setup", "skipped", _skip("no second site configured"), (), Outcome(SKIPPED, None)),
    ("pass with warning", "call", "passed", None, ((WARNING_PROPERTY, "consent page slow"),), Outcome(PASSED, None, 1)),
    ("marked broken by the worker", "call", "failed", None, ((OUTCOME_PROPERTY, BROKEN),),
     Outcome(BROKEN, HARNESS_ERROR)),
]


@pytest.mark.parametrize("case, when, result, error, props, expected", TABLE, ids=[row[0] for row in TABLE])
def test_classify_table(case, when, result, error, props, expected):
    outcome = classify(when, result, error, properties=props)
    assert outcome == expected
    # the category is exactly the Allure category of the result Allure writes (exconly message)
    if error is not None:
        message = "".join(traceback.format_exception_only(type(error), error)).rstrip()  # exconly()
        assert outcome.category == categorize(outcome.allure_status, message)


def test_labels_and_allure_status():
    assert Outcome(PASSED, None, 2).label == "warning" and Outcome(PASSED).label == PASSED
    assert Outcome(WAIVED, WAIVED_CATEGORY).allure_status == SKIPPED
    assert Outcome(BROKEN, HARNESS_ERROR).allure_status == BROKEN


def test_phases_fold_into_the_test_outcome():
    phases = TestPhases()
    phases.add("setup", classify("setup", "passed"))
    phases.add("call", classify("call", "passed", properties=[(WARNING_PROPERTY, "w")]))
    assert phases.outcome == Outcome(PASSED, None, 1)
    phases.add("teardown", classify("teardown", "failed", RuntimeError("x")))
    assert phases.outcome.status == BROKEN and phases.outcome.warnings == 1  # a teardown error breaks a pass
    skipped = TestPhases()
    skipped.add("setup", classify("setup", "skipped", message="Skipped: WAIVED: r"))
    assert skipped.outcome.status == WAIVED
    assert TestPhases().outcome is None  # never reached a result


class _Crash:
    def __init__(self, message: str):
        self.message = message


class _Repr:
    def __init__(self, message: str):
        self.reprcrash = _Crash(message)

    def __str__(self) -> str:
        return "traceback...\nE   " + self.reprcrash.message


class _Report:
    def __init__(self, when, outcome, longrepr=None, props=()):
        self.when, self.outcome, self.longrepr, self.user_properties = when, outcome, longrepr, list(props)


def test_classify_report_reads_what_the_controller_gets():
    assert classify_report(_Report("call", "failed", _Repr("core.errors.LoginFailed: bad password"),
                                   [(OUTCOME_PROPERTY, BROKEN)])) == Outcome(BROKEN, LOGIN_FAILED)
    failed = _Report("call", "failed", _Repr("AssertionError: x"))
    assert classify_report(failed) == Outcome(FAILED, CONFORMANCE_FAILURE)
    assert classify_report(_Report("setup", "skipped", ("f.py", 1, "Skipped: WAIVED: r"))).status == WAIVED
    # a longrepr flattened to text by the redactor: its "E   " lines are the message
    flat = "def test():\n>   raise TargetUnavailable('x')\nE   core.errors.TargetUnavailable: HTTP 503\n"
    assert classify_report(_Report("call", "failed", flat, [(OUTCOME_PROPERTY, BROKEN)])).category == UNREACHABLE


# ---- one inner session: every reader of results agrees with the classifier ----------------------

INNER_CONFTEST = """
import json
import pytest

from fixtures.keys import BASELINE_RUN, TARGET_PROPERTY


@pytest.fixture(autouse=True)
def _name_target(request):
    # one target per case, so that the verdict's counts of a target are that case's outcome
    request.node.user_properties.append((TARGET_PROPERTY, request.node.name))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    run = session.config.stash[BASELINE_RUN]
    (session.config.rootpath / "baseline-passed.json").write_text(json.dumps(sorted(run.passed)))
"""

INNER_TESTS = '''
import pytest
from core.errors import ConformanceFailure, LoginFailed, TargetUnavailable


@pytest.fixture
def setup_boom():
    raise RuntimeError("fixture could not start the browser")


@pytest.fixture
def teardown_boom():
    yield
    raise RuntimeError("could not close the context")


def test_assertion_failure():
    assert 200 == 400, "token endpoint answered 400"


def test_conformance_failure():
    raise ConformanceFailure("redirect carried the client secret")


def test_login_failed():
    raise LoginFailed("MFA page not recognised")


def test_target_unavailable():
    raise TargetUnavailable("POST https://api.datadoghq.com/oauth2/v1/token: HTTP 503")


def test_key_error_in_call():
    {}["access_token"]


def test_setup_error(setup_boom):
    pass


def test_teardown_error(teardown_boom):
    pass


def test_waived_skip():
    pytest.skip("WAIVED: DDOAUTH-1 sandbox lacks the scope (jane, until 2099-12-31)")


def test_plain_skip():
    pytest.skip("no second site configured")


def test_pass_with_warning(request):
    request.node.user_properties.append(("ddoauth_warning", "consent page slow"))


def test_pass():
    pass
'''

EXPECTED = {
    "test_assertion_failure": Outcome(FAILED, CONFORMANCE_FAILURE),
    "test_conformance_failure": Outcome(FAILED, CONFORMANCE_FAILURE),
    "test_login_failed": Outcome(BROKEN, LOGIN_FAILED),
    "test_target_unavailable": Outcome(BROKEN, UNREACHABLE),
    "test_key_error_in_call": Outcome(BROKEN, HARNESS_ERROR),
    "test_setup_error": Outcome(BROKEN, HARNESS_ERROR),
    "test_teardown_error": Outcome(BROKEN, HARNESS_ERROR),
    "test_waived_skip": Outcome(WAIVED, WAIVED_CATEGORY),
    "test_plain_skip": Outcome(SKIPPED, None),
    "test_pass_with_warning": Outcome(PASSED, None, 1),
    "test_pass": Outcome(PASSED, None),
}


@pytest.fixture(scope="module")
def agreement(tmp_path_factory) -> Path:
    """Runs the inner session once (in a subprocess: the plugins' state stays out of this process)."""
    work = tmp_path_factory.mktemp("outcome")
    (work / "conftest.py").write_text(INNER_CONFTEST)
    (work / "test_cases.py").write_text(INNER_TESTS)
    (work / "w").mkdir()
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:playwright", "-p", "fixtures.reporting",
           "-p", "fixtures.ledger", "-p", "fixtures.waivers", "-p", "fixtures.baselines", "--waivers", "w",
           "--baseline-dir", "b", "--ledger", "ledger.json", "--alluredir", "allure-results", "-q", "test_cases.py"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert (work / "reports" / "verdict.json").exists(), proc.stdout + proc.stderr
    return work


def _verdict_status(counts: dict) -> str:
    found = [status for status in (PASSED, FAILED, BROKEN, SKIPPED, WAIVED) if counts[status]]
    assert len(found) == 1, counts
    return found[0]


def test_verdict_agrees(agreement):
    targets = json.loads((agreement / "reports" / "verdict.json").read_text())["targets"]
    for name, expected in EXPECTED.items():
        assert _verdict_status(targets[name]) == expected.status, name
        assert targets[name]["warnings"] == expected.warnings, name


def test_ledger_agrees(agreement):
    targets = json.loads((agreement / "ledger.json").read_text())["targets"]
    for name, expected in EXPECTED.items():
        assert targets[name]["tests"][f"test_cases.py::{name}"]["last_outcome"] == expected.status, name


def test_baselines_passed_bookkeeping_agrees(agreement):
    passed = json.loads((agreement / "baseline-passed.json").read_text())
    # (a teardown error comes after a passed call: its observations were all made)
    assert sorted(passed) == sorted(f"test_cases.py::{name}" for name, e in EXPECTED.items()
                                    if e.status == PASSED or name == "test_teardown_error")


def test_allure_status_and_category_agree(agreement):
    found = {}
    for path in (agreement / "allure-results").glob("*-result.json"):
        data = json.loads(path.read_text())
        message = (data.get("statusDetails") or {}).get("message")
        found[data["name"]] = (data["status"], categorize(data["status"], message))
    assert found == {name: (e.allure_status, e.category) for name, e in EXPECTED.items()}
