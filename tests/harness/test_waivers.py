"""Waivers: the file format and its validation (harness/results/waivers.py), and what the pytest plugin
(fixtures/waivers.py) does with them: waived failures, waivers no longer needed, expired waivers."""
from __future__ import annotations

import json
import textwrap
from datetime import date
from pathlib import Path

import pytest

from core.errors import ConfigError
from harness.results.report import categorize
from harness.results.waivers import Waiver, load_waivers, parse_waivers

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
SITES = {"US1", "EU1", "US1-FED"}
TODAY = date(2026, 6, 15)


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def _waiver(test: str, expires: date = date(2030, 1, 1)) -> Waiver:
    return Waiver("US1", test, "r", "o", expires, "waivers/US1.yaml", 1)


# ---- format -------------------------------------------------------------------------------------

def test_load_mapping_and_list_forms(tmp_path):
    _write(tmp_path, "US1.yaml", """
        waivers:
          - test: "suites/test_token.py::test_x[US1-*]"
            reason: "DDOAUTH-1: sandbox quirk"
            owner: jane@example.com
            expires: 2026-12-31
        """)
    _write(tmp_path, "EU1.yml", """
        - test: suites/test_refresh.py::test_y
          reason: known
          owner: team-oauth
          expires: "2027-01-02"
        """)
    (tmp_path / "README.md").write_text("ignored")
    (tmp_path / "US1.yaml.example").write_text("ignored: [")
    ws = load_waivers(tmp_path, SITES)
    assert len(ws) == 2 and sorted(Path(f).name for f in ws.files) == ["EU1.yml", "US1.yaml"]
    us1, = ws.for_site("US1")
    assert (us1.test, us1.reason, us1.owner, us1.expires) == (
        "suites/test_token.py::test_x[US1-*]", "DDOAUTH-1: sandbox quirk", "jane@example.com", date(2026, 12, 31))
    assert us1.where.endswith("US1.yaml entry 1 (suites/test_token.py::test_x[US1-*])")
    assert us1.label() == "WAIVED: DDOAUTH-1: sandbox quirk (jane@example.com, until 2026-12-31)"
    assert ws.for_site("EU1")[0].expires == date(2027, 1, 2)
    assert ws.for_site("AP1") == [] and ws.find(None, "x::y") is None


def test_empty_file_and_missing_default_directory(tmp_path):
    _write(tmp_path, "US1.yaml", "# nothing waived yet\n")
    assert len(load_waivers(tmp_path, SITES)) == 0
    assert len(load_waivers(tmp_path / "absent", SITES)) == 0
    with pytest.raises(ConfigError, match="no such directory"):
        load_waivers(tmp_path / "absent", SITES, required=True)


def test_the_shipped_directory_loads():
    ws = load_waivers(ROOT / "waivers", SITES | {"US3", "US5", "AP1", "AP2", "UK1", "US2-FED"})
    assert ws.directory == ROOT / "waivers"


def test_example_file_is_valid():
    import yaml

    data = yaml.safe_load((ROOT / "waivers" / "US1.yaml.example").read_text())
    assert len(parse_waivers(data, "US1", "US1.yaml.example")) == 1


@pytest.mark.parametrize("body, problem", [
    ("- {test: 'a::b', reason: r, owner: o, expires: 2026-01-01, ticket: 1}", "unknown key(s) ticket"),
    ("- {test: 'a::b', reason: r, expires: 2026-01-01}", "missing owner"),
    ("- {test: 'a::b', reason: '', owner: o, expires: 2026-01-01}", "missing reason"),
    ("- {test: 'a::b', reason: r, owner: o, expires: 31/12/2026}", "expires must be a date YYYY-MM-DD"),
    ("- {test: 'a::b', reason: r, owner: o, expires: '2026-02-30'}", "expires must be a date"),
    ("- {test: test_x, reason: r, owner: o, expires: 2026-01-01}", "must be a pytest test id"),
    ("- {test: 'a::b', reason: [r], owner: o, expires: 2026-01-01}", "reason must be a non-empty string"),
    ("- {test: 'a::b', reason: r, owner: o, expires: 2026-01-01}\n- {test: 'a::b', reason: r, owner: o, expires: 2026-01-01}",
     "already waived by entry 1"),
    ("- just a string", "expected a mapping"),
    ("waivers: {test: 'a::b'}", "expected a list"),
    ("waiver: []", "unknown top-level key(s) waiver"),
    ("- {test: 'a::b', reason: r, owner: o, expires: 2026-01-01\n", "not valid YAML"),
])
def test_bad_files_are_one_line_errors_naming_file_and_entry(tmp_path, body, problem):
    _write(tmp_path, "US1.yaml", body + "\n")
    with pytest.raises(ConfigError) as info:
        load_waivers(tmp_path, SITES)
    message = str(info.value)
    assert problem in message and "US1.yaml" in message and "\n" not in message
    if "entry" in problem or "key(s) ticket" in problem or "missing" in problem:
        assert "entry" in message


def test_file_named_after_no_site_is_refused(tmp_path):
    _write(tmp_path, "us1.yaml", "[]\n")
    with pytest.raises(ConfigError, match=r"'us1' is not a site key"):
        load_waivers(tmp_path, SITES)


def test_two_files_for_one_site_are_refused(tmp_path):
    _write(tmp_path, "US1.yaml", "[]\n")
    _write(tmp_path, "US1.yml", "[]\n")
    with pytest.raises(ConfigError, match="a second waiver file for US1"):
        load_waivers(tmp_path, SITES)


# ---- matching -----------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, nodeid, hit", [
    ("suites/test_token.py::test_x[US1-*]", "suites/test_token.py::test_x[US1-sandbox]", True),
    ("suites/test_token.py::test_x[US1-*]", "suites/test_token.py::test_x[US1-sandbox-chromium]", True),
    ("suites/test_token.py::test_x[US1-*]", "suites/test_token.py::test_x[EU1-sandbox]", False),
    # brackets are literal, not a character class
    ("suites/test_token.py::test_x[US1-*]", "suites/test_token.py::test_xU", False),
    ("suites/test_token.py::test_x[US1-sandbox]", "suites/test_token.py::test_x[US1-sandbox]", True),
    ("suites/test_token.py::test_x[US1-sandbox]", "suites/test_token.py::test_x[US1-sandbox2]", False),
    # no brackets: every parametrisation of that test, and only that test
    ("suites/test_token.py::test_x", "suites/test_token.py::test_x[US1-sandbox]", True),
    ("suites/test_token.py::test_x", "suites/test_token.py::test_x_other[US1-sandbox]", False),
    ("suites/test_token.py::test_x*", "suites/test_token.py::test_x_other[US1-sandbox]", True),
    ("suites/*::test_?", "suites/test_a.py::test_b[US1-sandbox]", True),
    ("suites/test_token.py::test_x", "tests/suites/test_token.py::test_x", False),
])
def test_glob_matching(pattern, nodeid, hit):
    assert _waiver(pattern).matches(nodeid) is hit


def test_first_matching_waiver_of_the_site_wins(tmp_path):
    _write(tmp_path, "US1.yaml", """
        - {test: "s/t.py::test_a[US1-*]", reason: first, owner: o, expires: 2030-01-01}
        - {test: "s/t.py::test_*", reason: second, owner: o, expires: 2030-01-01}
        """)
    ws = load_waivers(tmp_path, SITES)
    assert ws.find("US1", "s/t.py::test_a[US1-x]").reason == "first"
    assert ws.find("US1", "s/t.py::test_b[US1-x]").reason == "second"
    assert ws.find("EU1", "s/t.py::test_a[US1-x]") is None  # a file only waives its own site


# ---- expiry -------------------------------------------------------------------------------------

def test_expiry_is_inclusive_of_the_date():
    assert not _waiver("a::b", TODAY).expired(TODAY)
    assert _waiver("a::b", date(2026, 6, 14)).expired(TODAY)


def test_expired_waiver_error_names_file_entry_owner_and_date(tmp_path):
    _write(tmp_path, "US1.yaml", """
        - {test: "s/t.py::test_live", reason: r, owner: o, expires: 2026-06-15}
        - {test: "s/t.py::test_old", reason: r, owner: jane, expires: 2026-06-01}
        """)
    _write(tmp_path, "EU1.yaml", """
        - {test: "s/t.py::test_old_eu", reason: r, owner: o, expires: 2020-01-01}
        """)
    ws = load_waivers(tmp_path, SITES)
    assert [w.test for w in ws.expired(TODAY)] == ["s/t.py::test_old_eu", "s/t.py::test_old"]
    with pytest.raises(ConfigError) as info:
        ws.check_not_expired(TODAY, sites={"US1"})
    assert str(info.value) == (f"{tmp_path / 'US1.yaml'} entry 2 (s/t.py::test_old): waiver owned by jane expired on "
                               "2026-06-01 (today is 2026-06-15): renew its expiry date or remove it")
    with pytest.raises(ConfigError, match=r"EU1.yaml entry 1 .* \(and 1 more expired\)"):
        ws.check_not_expired(TODAY)
    ws.check_not_expired(TODAY, sites={"US1-FED"})  # a site the run does not test


# ---- the pytest plugin --------------------------------------------------------------------------

INNER_TESTS = '''
import pytest
from types import SimpleNamespace as NS


def T(name, site):
    return NS(name=name, site=NS(key=site))


TARGETS = [T("US1-x", "US1"), T("EU1-y", "EU1")]


@pytest.fixture(autouse=True)
def _name_target(request):
    target = request.node.callspec.params.get("target") if hasattr(request.node, "callspec") else None
    if target is not None:
        request.node.user_properties.append(("ddoauth_target", target.name))


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_deviates(target):
    assert target.site.key == "EU1", "[DD-X] Datadog answered 400 instead of 200"


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_fixed_upstream(target):
    pass


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_unreachable(target):
    from core.errors import TargetUnavailable
    raise TargetUnavailable("POST https://api.datadoghq.com/oauth2/v1/token: HTTP 503")


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_not_waived(target):
    assert False, "a real failure"
'''

WAIVERS = """
waivers:
  - test: "test_inner.py::test_deviates[US1-*]"
    reason: "DDOAUTH-7: US1 answers 400"
    owner: jane
    expires: 2099-12-31
  - test: "test_inner.py::test_fixed_upstream"
    reason: "DDOAUTH-8: was broken"
    owner: joe
    expires: 2099-12-31
  - test: "test_inner.py::test_unreachable"
    reason: "never applies to broken tests"
    owner: joe
    expires: 2099-12-31
"""

NO_PLAYWRIGHT = ("-p", "no:playwright")
POLICY = ("-p", "fixtures.waivers", "-p", "fixtures.baselines")  # inner sessions' plugins besides reporting


@pytest.fixture
def inner(pytester: pytest.Pytester):
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_inner=INNER_TESTS)
    (pytester.path / "w").mkdir()
    (pytester.path / "w" / "US1.yaml").write_text(WAIVERS)
    return pytester


def _run(pytester: pytest.Pytester, *args: str):
    return pytester.runpytest(*NO_PLAYWRIGHT, "-p", "fixtures.reporting", *POLICY,
                              "--waivers", "w", "--baseline-dir", "b", "-rs", *args)


def test_waived_failure_is_skipped_as_waived_and_reported(inner):
    results = inner.path / "allure-results"
    outcome = _run(inner, "--alluredir", str(results))
    outcome.assert_outcomes(passed=3, failed=4, skipped=1)  # test_unreachable is broken (a failure to pytest), not waived
    outcome.stdout.fnmatch_lines([
        "*WAIVED: DDOAUTH-7: US1 answers 400 (jane, until 2099-12-31); waived failure: "
        "[[]DD-X[]] Datadog answered 400 instead of 200*",
    ])
    verdict = json.loads((inner.path / "reports" / "verdict.json").read_text())
    us1 = verdict["targets"]["US1-x"]
    assert (us1["passed"], us1["failed"], us1["broken"], us1["skipped"], us1["waived"]) == (1, 1, 1, 0, 1)
    assert us1["waived_tests"] == ["test_inner.py::test_deviates[US1-x]"]
    assert us1["broken_tests"] == ["test_inner.py::test_unreachable[US1-x]"]
    assert verdict["targets"]["EU1-y"]["waived"] == 0  # US1.yaml does not waive EU1 tests
    assert verdict["totals"]["waived"] == 1
    assert verdict["waivers"] == {"dir": str(inner.path / "w"), "files": ["US1.yaml"], "entries": 3, "applied": 1,
                                  "no_longer_needed": 1}
    by_name = {}
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text())
        by_name[data["name"]] = (data["status"], categorize(data["status"], data["statusDetails"]["message"])
                                 if data.get("statusDetails") else None)
    assert by_name["test_deviates[US1-x]"] == ("skipped", "Waived")
    assert by_name["test_unreachable[US1-x]"] == ("broken", "Datadog unreachable or 5xx")
    assert by_name["test_not_waived[US1-x]"] == ("failed", "Conformance failure")
    waived = next(json.loads(p.read_text()) for p in results.glob("*-result.json")
                  if json.loads(p.read_text())["name"] == "test_deviates[US1-x]")
    assert any(a["name"] == "waived failure" for a in waived.get("attachments", []))


def test_waived_test_that_passes_is_reported(inner):
    outcome = _run(inner, "-k", "fixed_upstream")
    outcome.assert_outcomes(passed=2)
    outcome.stdout.fnmatch_lines([
        "*ddoauth verdict per target*",
        "US1-x  passed 1  failed 0  broken 0  skipped 0  waived 0  warnings 1",
        "waiver no longer needed: test_inner.py::test_fixed_upstream[[]US1-x[]] passes (*US1.yaml entry 2, owner joe):"
        " remove the entry",
    ])
    verdict = json.loads((inner.path / "reports" / "verdict.json").read_text())
    unneeded, = verdict["targets"]["US1-x"]["waivers_no_longer_needed"]
    assert unneeded["test"] == "test_inner.py::test_fixed_upstream[US1-x]"
    assert (unneeded["pattern"], unneeded["entry"], unneeded["owner"], unneeded["reason"], unneeded["expires"]) == (
        "test_inner.py::test_fixed_upstream", 2, "joe", "DDOAUTH-8: was broken", "2099-12-31")
    assert verdict["totals"]["waivers_no_longer_needed"] == 1
    assert verdict["ok"] is True  # reported, not a failure


def test_expired_waiver_stops_the_run_before_any_test(inner):
    (inner.path / "w" / "EU1.yaml").write_text(
        "- {test: 'test_inner.py::test_deviates', reason: r, owner: ann, expires: 2001-02-03}\n")
    outcome = _run(inner)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*EU1.yaml entry 1 (test_inner.py::test_deviates): waiver owned by ann expired on "
                                  "2001-02-03*renew its expiry date or remove it"])
    assert "passed" not in outcome.stdout.str()


def test_bad_waiver_file_is_a_usage_error(inner):
    (inner.path / "w" / "US1.yaml").write_text("- {test: 'x::y', reason: r, owner: o}\n")
    outcome = _run(inner)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*US1.yaml entry 1 (x::y): missing expires"])


def test_missing_waivers_directory_given_explicitly_is_a_usage_error(inner):
    outcome = inner.runpytest(*NO_PLAYWRIGHT, "-p", "fixtures.waivers", "--waivers", "nope")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*--waivers *nope: no such directory"])
