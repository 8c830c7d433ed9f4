"""fixtures.reporting + harness.results.report, exercised through inner pytest sessions (pytester)."""

from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path

import allure_commons
import pytest
from allure_commons.logger import AllureFileLogger

from harness.results import report as report_mod
from harness.results.report import CATEGORIES, ReportToolMissing, categorize, generate_html, summarize

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SECRET = "inner-Cl1ent-S3cret/+value"
UNREGISTERED_TOKEN = "at-unregistered-9f8e7d6c"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64))

INNER_CONFTEST = """
from fixtures.keys import ENVIRONMENT


def pytest_configure(config):
    config.stash.setdefault(ENVIRONMENT, {}).update({"target_mode": "emulator", "site": "US1"})
"""

INNER_TESTS = f'''
import allure
import pytest
from core.errors import ConformanceFailure, LoginFailed
from core.redact import register_secret

SECRET = {SECRET!r}
PNG = {PNG!r}


@pytest.fixture
def us1(request):
    request.node.user_properties.append(("ddoauth_target", "US1-x"))
    register_secret(SECRET, "client_secret")
    return SECRET


@pytest.fixture
def eu1(request):
    request.node.user_properties.append(("ddoauth_target", "EU1-y"))


@pytest.fixture
def setup_boom(us1):
    raise RuntimeError("fixture could not start the browser")


def test_passes_with_attachments(us1, request):
    request.node.user_properties.append(("ddoauth_warning", "consent page slow"))
    request.node.user_properties.append(("ddoauth_warning", "scope list reordered"))
    allure.attach(f"client_secret used: {{us1}}\\nAuthorization: Bearer {UNREGISTERED_TOKEN}",
                  name="exchange", attachment_type=allure.attachment_type.TEXT)
    allure.attach(PNG, name="screenshot", attachment_type=allure.attachment_type.PNG)
    print(f"stdout mentions {{us1}}")


def test_assertion_leaks_secret(us1):
    body = {{"access_token": "{UNREGISTERED_TOKEN}", "state": "s"}}
    assert body["access_token"] == us1, f"token endpoint echoed {{us1}}"


def test_conformance_failure(us1):
    raise ConformanceFailure(f"redirect carried client_secret={{us1}}")


def test_broken_exception(us1):
    raise RuntimeError(f"harness crashed holding {{us1}}")


def test_login_failed(us1):
    raise LoginFailed("MFA page not recognised")


def test_setup_error(setup_boom):
    pass


def test_waived(us1):
    pytest.skip("WAIVED: DDOAUTH-1 sandbox lacks the scope")


def test_eu_pass(eu1):
    pass


def test_eu_fail(eu1):
    assert 1 == 2


def test_no_target():
    pass


class _Target:
    def __init__(self, name):
        self.name = name


@pytest.mark.parametrize("target", [_Target("AP1-z")], ids=["AP1-z"])
def test_setup_error_before_target_named(target, setup_boom_plain):
    pass


@pytest.fixture
def setup_boom_plain():
    raise RuntimeError("no browser")
'''


def _all_forms(value: str) -> list[str]:
    return [
        value,
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        json.dumps(value)[1:-1],
    ]


def _files_containing(directory: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                if needle.encode() in data:
                    hits.append(f"{path.name}: {needle}")
    return hits


# pytest-playwright keeps a process-global soft-assertion scope open around each test
# call; an in-process inner session must not load it again.
NO_PLAYWRIGHT = ("-p", "no:playwright")


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """An inner project that can import harness and fixtures from this repository."""
    pytester.syspathinsert(ROOT)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


@pytest.fixture
def inner_run(inner: pytest.Pytester):
    results = inner.path / "allure-results"
    outcome = inner.runpytest(*NO_PLAYWRIGHT, "-p", "fixtures.reporting", "--alluredir", str(results), "-rA")
    return inner, outcome, results


def test_no_secret_reaches_results_or_terminal(inner_run) -> None:
    pytester, outcome, results = inner_run
    outcome.assert_outcomes(passed=3, failed=5, skipped=1, errors=2)
    assert list(results.glob("*-result.json")), "allure wrote nothing"
    needles = _all_forms(SECRET) + [UNREGISTERED_TOKEN]
    assert _files_containing(results, needles) == []
    assert _files_containing(pytester.path / "reports", needles) == []
    terminal = outcome.stdout.str() + outcome.stderr.str()
    for needle in needles:
        assert needle not in terminal
    assert "[REDACTED:client_secret]" in terminal
    # the redacted text is still there for the reader
    texts = [p.read_text() for p in results.glob("*-attachment.txt")]
    assert any("client_secret used: [REDACTED:client_secret]" in t and "Bearer [REDACTED]" in t for t in texts)
    messages = [
        (json.loads(p.read_text()).get("statusDetails") or {}).get("message", "") for p in results.glob("*-result.json")
    ]
    assert any("token endpoint echoed [REDACTED:client_secret]" in m for m in messages)


def test_image_attachments_pass_through(inner_run) -> None:
    _, _, results = inner_run
    pngs = list(results.glob("*-attachment.png"))
    assert len(pngs) == 1
    assert pngs[0].read_bytes() == PNG


def test_side_files_written(inner_run) -> None:
    _, _, results = inner_run
    categories = json.loads((results / "categories.json").read_text())
    assert [c["name"] for c in categories] == [
        "Waived",
        "Login failed",
        "Datadog unreachable or 5xx",
        "Configuration",
        "Endpoint absent on this target",
        "Prerequisite failed",
        "Harness error",
        "Conformance failure",
    ]
    props = dict(
        line.split("=", 1) for line in (results / "environment.properties").read_text().splitlines() if line
    )
    assert props["target_mode"] == "emulator"
    assert props["site"] == "US1"
    for key in ("harness_version", "python", "playwright"):
        assert props[key]
    executor = json.loads((results / "executor.json").read_text())
    assert executor == {"name": "ddoauth", "type": "local"}


def test_verdict_counts_per_target(inner_run) -> None:
    pytester, outcome, _ = inner_run
    verdict = json.loads((pytester.path / "reports" / "verdict.json").read_text())
    us1 = verdict["targets"]["US1-x"]
    assert {k: us1[k] for k in ("passed", "failed", "broken", "skipped", "waived", "warnings")} == {
        "passed": 1,
        "failed": 2,
        "broken": 3,
        "skipped": 0,
        "waived": 1,  # a skip whose message starts with WAIVED
        "warnings": 2,
    }
    assert us1["waived_tests"] == ["test_inner.py::test_waived"]
    assert us1["warned_tests"] == ["test_inner.py::test_passes_with_attachments"]
    assert us1["waivers_no_longer_needed"] == [] and us1["baseline_changes"] == []
    assert us1["failed_tests"] == [
        "test_inner.py::test_assertion_leaks_secret",
        "test_inner.py::test_conformance_failure",
    ]
    assert us1["broken_tests"] == [
        "test_inner.py::test_broken_exception",
        "test_inner.py::test_login_failed",
        "test_inner.py::test_setup_error",
    ]
    eu1 = verdict["targets"]["EU1-y"]
    assert (eu1["passed"], eu1["failed"], eu1["broken"]) == (1, 1, 0)
    assert verdict["targets"]["(no target)"]["passed"] == 1
    assert list(verdict["targets"]) == sorted(verdict["targets"])
    assert verdict["targets"]["AP1-z"]["broken_tests"] == ["test_inner.py::test_setup_error_before_target_named[AP1-z]"]
    assert verdict["totals"] == {"tests": 11, "passed": 3, "failed": 3, "broken": 4, "skipped": 0, "waived": 1,
                                 "warnings": 2, "waivers_no_longer_needed": 0, "baseline_changes": 0}
    assert verdict["exit_status"] == 1 and verdict["ok"] is False
    assert verdict["harness_version"]
    assert verdict["started_at"] <= verdict["finished_at"]
    assert list(verdict) == [
        "schema",
        "harness_version",
        "started_at",
        "finished_at",
        "duration_seconds",
        "exit_status",
        "exit_status_name",
        "ok",
        "totals",
        "targets",
        "waivers",
        "baseline",
    ]
    assert verdict["waivers"] is None and verdict["baseline"] is None  # fixtures.waivers, .baselines not loaded
    # the terminal section
    outcome.stdout.fnmatch_lines(
        [
            "*ddoauth verdict per target*",
            "(no target)  passed 1  failed 0  broken 0  skipped 0  waived 0  warnings 0",
            "AP1-z        passed 0  failed 0  broken 1  skipped 0  waived 0  warnings 0",
            "EU1-y        passed 1  failed 1  broken 0  skipped 0  waived 0  warnings 0",
            "US1-x        passed 1  failed 2  broken 3  skipped 0  waived 1  warnings 2",
        ]
    )


def test_allure_statuses_and_categories(inner_run) -> None:
    _, _, results = inner_run
    by_name = {}
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text())
        by_name[data["name"]] = (data["status"], categorize(data["status"], (data.get("statusDetails") or {}).get("message")))
    assert by_name["test_broken_exception"] == ("broken", "Harness error")
    assert by_name["test_login_failed"] == ("broken", "Login failed")
    assert by_name["test_conformance_failure"] == ("failed", "Conformance failure")
    assert by_name["test_assertion_leaks_secret"] == ("failed", "Conformance failure")
    assert by_name["test_waived"] == ("skipped", "Waived")
    assert by_name["test_setup_error"][0] == "broken"
    summary = summarize(results)
    assert summary["total"] == 11
    assert (summary["passed"], summary["failed"], summary["broken"], summary["skipped"]) == (3, 3, 4, 1)
    assert summary["by_category"]["Waived"] == 1
    assert summary["by_category"]["Login failed"] == 1


def test_allure_writer_restored_after_session(inner_run) -> None:
    from harness.results.allure_writer import RedactingAllureFileLogger

    _, _, results = inner_run
    leftovers = [
        p
        for p in allure_commons.plugin_manager.get_plugins()
        if isinstance(p, (AllureFileLogger, RedactingAllureFileLogger))
        and Path(getattr(p, "report_dir", getattr(p, "_report_dir", ""))) == results
    ]
    assert leftovers == []


def test_verdict_path_option_and_github_executor(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/ddoauth")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_RUN_NUMBER", "7")
    monkeypatch.setenv("GITHUB_WORKFLOW", "nightly")
    results = inner.path / "ar"
    inner.runpytest(
        *NO_PLAYWRIGHT, "-p", "fixtures.reporting", "--alluredir", str(results), "--verdict-path", "out/v.json", "-k", "eu"
    )
    verdict = json.loads((inner.path / "out" / "v.json").read_text())
    assert list(verdict["targets"]) == ["EU1-y"]
    assert not (inner.path / "reports" / "verdict.json").exists()
    executor = json.loads((results / "executor.json").read_text())
    assert executor["type"] == "github"
    assert executor["name"] == "ddoauth"
    assert executor["buildUrl"] == "https://github.com/acme/ddoauth/actions/runs/42"


def test_verdict_without_alluredir_and_all_green(inner: pytest.Pytester) -> None:
    outcome = inner.runpytest(*NO_PLAYWRIGHT, "-p", "fixtures.reporting", "-k", "eu_pass or no_target")
    outcome.assert_outcomes(passed=2)
    verdict = json.loads((inner.path / "reports" / "verdict.json").read_text())
    assert verdict["ok"] is True and verdict["exit_status"] == 0
    assert not list(inner.path.glob("**/environment.properties"))


def test_xdist_workers_and_controller(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    results = inner.path / "allure-results"
    outcome = inner.runpytest_subprocess("-p", "fixtures.reporting", "--alluredir", str(results), "-n", "2")
    outcome.assert_outcomes(passed=3, failed=5, skipped=1, errors=2)
    verdict = json.loads((inner.path / "reports" / "verdict.json").read_text())
    assert verdict["targets"]["US1-x"]["broken"] == 3
    assert verdict["targets"]["US1-x"]["warnings"] == 2
    assert verdict["totals"]["tests"] == 11
    assert len(list(results.glob("*-result.json"))) == 11
    assert (results / "categories.json").exists()
    needles = _all_forms(SECRET) + [UNREGISTERED_TOKEN]
    assert _files_containing(results, needles) == []
    assert not any(n in outcome.stdout.str() for n in needles)


def test_categories_regexes() -> None:
    assert categorize("skipped", "Skipped: WAIVED: DDOAUTH-3") == "Waived"
    assert categorize("failed", "Failed: WAIVED until fixed") == "Waived"
    assert categorize("skipped", "Skipped: not on this site") is None
    assert categorize("broken", "core.errors.LoginFailed: bad password") == "Login failed"
    assert categorize("broken", "core.errors.TargetUnavailable: 503") == "Datadog unreachable or 5xx"
    assert categorize("broken", "httpx.ConnectError: [Errno 111]") == "Datadog unreachable or 5xx"
    assert categorize("broken", "httpx.ReadTimeout: timed out") == "Datadog unreachable or 5xx"
    assert (
        categorize("broken", "playwright._impl._errors.Error: Page.goto: net::ERR_NAME_NOT_RESOLVED")
        == "Datadog unreachable or 5xx"
    )
    assert categorize("broken", "KeyError: 'x'") == "Harness error"
    assert categorize("broken", "core.errors.ClientAuthRefused: client authentication refused for target X") \
        == "Configuration"
    assert categorize("broken", "core.errors.PrerequisiteFailed: no grant for X") == "Prerequisite failed"
    # a documented endpoint answering 404: broken where another test's subject used it, failed in its owner
    absent = "endpoint absent on this target: GET https://api.datadoghq.com/api/v1/hosts answered 404"
    assert categorize("broken", f"core.errors.EndpointAbsent: {absent}") == "Endpoint absent on this target"
    assert categorize("failed", f"core.errors.ConformanceFailure: [DD-SCOPES-ENDPOINT] x: {absent}") == \
        "Endpoint absent on this target"
    assert categorize("failed", "core.errors.ConformanceFailure: [DD-SCOPES-DATAFLOW] 403") == "Conformance failure"
    assert categorize("failed", "core.errors.ConformanceFailure: no PKCE") == "Conformance failure"
    assert categorize("passed", None) is None
    for c in CATEGORIES:  # valid as JavaScript too: no inline flags, no Python-only syntax
        assert "(?s" not in c["messageRegex"] and "(?P" not in c["messageRegex"]
        assert c["messageRegex"].startswith("^")


def test_generate_html_single_file(inner_run, tmp_path: Path) -> None:
    if not (ROOT / "node_modules" / ".bin" / "allure").exists() or shutil.which("node") is None:
        pytest.skip("npm allure not installed (make setup)")
    _, _, results = inner_run
    index = generate_html(results, tmp_path / "report", ROOT, history_path=tmp_path / "history.jsonl")
    assert index == tmp_path / "report" / "index.html"
    html = index.read_text()
    assert "googletagmanager" not in html
    assert '<script src="http' not in html and 'rel="stylesheet" href="http' not in html
    assert not (tmp_path / "report" / "awesome").exists()  # single file: no asset folders
    for needle in _all_forms(SECRET) + [UNREGISTERED_TOKEN]:
        assert needle not in html
    assert (tmp_path / "history.jsonl").stat().st_size > 0
    # the history (embedded in the report, ~1.4 MB per run of the default suites) keeps the previous run only
    generate_html(results, tmp_path / "report", ROOT, history_path=tmp_path / "history.jsonl")
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 1


def test_generate_html_without_node_modules(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    with pytest.raises(ReportToolMissing, match=r"make setup"):
        generate_html(tmp_path / "results", tmp_path / "report", tmp_path)


def test_environment_properties_escaping(tmp_path: Path) -> None:
    path = report_mod.write_environment(tmp_path, {"a key": "v=1:x", "multi": "l1\nl2", "t": "#x"})
    assert path.read_text() == "a\\ key=v=1:x\nmulti=l1\\nl2\nt=\\#x\n"


HANGING_TEST = '''
import time

import allure
import pytest


class _Target:
    def __init__(self, name):
        self.name = name


@allure.feature("hangs")
@pytest.mark.parametrize("target", [_Target("US1-x")], ids=["US1-x"])
def test_hangs(target, request):
    allure.dynamic.epic("US1")
    allure.dynamic.parameter("target", target.name)
    allure.dynamic.link("https://example.com/rfc", name="RFC-1")
    request.node.user_properties.append(("ddoauth_target", target.name))
    time.sleep(60)
'''


def test_hard_timeout_writes_a_broken_allure_result_and_the_verdict(tmp_path: Path) -> None:
    """fixtures/timeout.py: the test's Allure result, built with allure's public API, and the verdict,
    written before pytest-timeout ends the process (tests/e2e/test_robustness.py does it against the emulator)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("pytest_timeout")
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_hang.py").write_text(HANGING_TEST)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:playwright", "-p", "fixtures.reporting",
           "-p", "fixtures.timeout", "--test-timeout", "1", "--alluredir", "ar", "suites"]
    proc = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)
    said = proc.stdout + proc.stderr
    assert "ddoauth: TestTimeout: suites/test_hang.py::test_hangs[US1-x] did not finish within 1 s" in said
    result, = [json.loads(p.read_text()) for p in (tmp_path / "ar").glob("*-result.json")]
    assert (result["name"], result["fullName"], result["status"]) == (
        "test_hangs[US1-x]", "suites.test_hang#test_hangs", "broken")
    assert result["statusDetails"]["message"].startswith("TestTimeout: ")
    assert categorize(result["status"], result["statusDetails"]["message"]) == "Harness error"
    labels = {(label["name"], label["value"]) for label in result["labels"]}
    assert {("epic", "US1"), ("feature", "hangs"), ("suite", "test_hang")} <= labels
    assert not {name for name, _ in labels} & {"host", "thread", "framework"}  # noise labels are left out
    shown = [p for p in result["parameters"] if p.get("mode") != "hidden"]
    assert shown == [{"name": "target", "value": "'US1-x'"}]  # the dynamic one, not the object
    assert {"name": "pytest node id", "value": "'suites/test_hang.py::test_hangs[US1-x]'", "excluded": True,
            "mode": "hidden"} in result["parameters"]  # ties the result to the verdict's test id
    assert result["links"] == [{"type": "link", "url": "https://example.com/rfc", "name": "RFC-1"}]
    assert result["historyId"] and result["testCaseId"]
    verdict = json.loads((tmp_path / "reports" / "verdict.json").read_text())
    assert verdict["targets"]["US1-x"]["broken_tests"] == ["suites/test_hang.py::test_hangs[US1-x]"]
    assert verdict["interrupted"].startswith("TestTimeout: ")
    assert (tmp_path / "ar" / "categories.json").exists()


def test_trivial_fixture_containers_are_not_written():
    """A fixture container with nothing but a passing fixture's name and timing is left out (most of the
    report's weight); one that failed, or carries steps or attachments, is kept."""
    from allure_commons.model2 import Attachment, StatusDetails, TestAfterResult, TestBeforeResult, TestResultContainer, TestStepResult

    from harness.results.allure_writer import is_trivial_container

    def container(**before):
        return TestResultContainer(uuid="c", befores=[TestBeforeResult(name="f", status="passed", **before)],
                                   afters=[TestAfterResult(name="f::<lambda>")])
    assert is_trivial_container(container())
    assert not is_trivial_container(container(steps=[TestStepResult(name="authorization flow")]))
    assert not is_trivial_container(container(attachments=[Attachment(name="a", source="s", type="text/plain")]))
    broken = container()
    broken.befores[0].status, broken.befores[0].statusDetails = "broken", StatusDetails(message="boom")
    assert not is_trivial_container(broken)
