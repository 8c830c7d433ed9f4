"""CHARACTERIZE baselines: storage and comparison (harness/results/baseline.py), and the plugin's use of
them (fixtures/baselines.py via AllureRecorder.observe and verify()): warnings on change, "new"
without a baseline, --update-baseline, and the controller writing the files under xdist."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results import baseline as bl
from core.errors import ConfigError
from core.redact import REDACTOR

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
T1 = "suites/test_refresh.py::test_rotation[US1-sandbox]"


def _store(directory: Path, site: str = "US1", observations=None, **extra) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{site}.json"
    path.write_text(json.dumps({"schema": 1, "site": site, "target_mode": "datadog",
                                "observations": observations or {}, **extra}))
    return path


# ---- values -------------------------------------------------------------------------------------

def test_normalise_gives_the_json_form():
    assert bl.normalise(("a", 1)) == ["a", 1]
    assert bl.normalise({"b": 2, "a": (1,)}) == {"a": [1], "b": 2}
    assert bl.normalise({1, 2}) == str({1, 2}) or isinstance(bl.normalise({1, 2}), str)
    assert bl.normalise(3.5) == 3.5 and bl.normalise(None) is None


def test_normalise_redacts_known_secrets():
    REDACTOR.add("bl-secret-value-0001", "access_token")
    assert "bl-secret-value-0001" not in json.dumps(bl.normalise({"token": "x bl-secret-value-0001 y"}))


def test_change_message_and_long_values():
    assert bl.change_message("DD-X", "status 200", "status 400") == "[CHANGED] DD-X: was status 200, now status 400"
    assert bl.change_message("K", {"a": 1}, [1]) == '[CHANGED] K: was {"a": 1}, now [1]'
    assert bl.show("x" * 500).endswith("...") and len(bl.show("x" * 500)) == 160


# ---- comparison ---------------------------------------------------------------------------------

def test_no_baseline_file_means_everything_is_new(tmp_path):
    b = bl.load_site(tmp_path, "US1")
    assert not b.exists and b.observations == {}
    c = b.compare(T1, "DD-ROTATION", "same")
    assert (c.status, c.now, c.warning("DD-ROTATION")) == ("new", "same", None)
    assert "US1.json does not exist yet" in c.describe("DD-ROTATION")
    assert b.missing(T1, []) == {}


def test_compare_unchanged_changed_new_and_missing(tmp_path):
    _store(tmp_path, observations={T1: {"DD-ROTATION": "same", "DD-OLD": "status 200", "DD-LIST": [1, 2]}})
    b = bl.load_site(tmp_path, "US1")
    assert b.exists and b.target_mode == "datadog"
    assert b.compare(T1, "DD-ROTATION", "same").status == "unchanged"
    assert b.compare(T1, "DD-LIST", (1, 2)).status == "unchanged"  # compared in JSON form
    changed = b.compare(T1, "DD-OLD", "status 400")
    assert (changed.status, changed.was, changed.now) == ("changed", "status 200", "status 400")
    assert changed.warning("DD-OLD") == "[CHANGED] DD-OLD: was status 200, now status 400"
    assert b.compare(T1, "DD-BRAND-NEW", 1).status == "new"
    assert b.compare("suites/other.py::t[US1-sandbox]", "DD-ROTATION", "same").status == "new"
    assert b.missing(T1, ["DD-ROTATION", "DD-LIST"]) == {"DD-OLD": "status 200"}


def test_baseline_of_the_other_kind_of_target_is_not_compared(tmp_path):
    _store(tmp_path, observations={T1: {"DD-ROTATION": "same"}})
    b = bl.load_site(tmp_path, "US1")
    c = b.compare(T1, "DD-ROTATION", "rotated", target_mode="emulator")
    assert c.status == "new" and "recorded against datadog" in c.describe("DD-ROTATION")
    assert b.missing(T1, [], target_mode="emulator") == {}
    assert b.compare(T1, "DD-ROTATION", "rotated", target_mode="datadog").status == "changed"


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not a readable baseline JSON file"),
    ('["a"]', "expected an object"),
    ('{"observations": []}', "expected an object"),
    ('{"schema": 2, "observations": {}}', "schema 2 is not supported"),
    ('{"site": "EU1", "observations": {}}', "holds the baseline of 'EU1', not 'US1'"),
    ('{"observations": {"t": "v"}}', "must be an object of key -> observed value"),
])
def test_malformed_baseline_files_are_config_errors(tmp_path, content, problem):
    (tmp_path / "US1.json").write_text(content)
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        bl.load_site(tmp_path, "US1")


# ---- writing ------------------------------------------------------------------------------------

def test_merge_replaces_complete_tests_and_updates_the_others():
    stored = {"a": {"k1": 1, "k2": 2}, "b": {"k1": 1, "k2": 2}, "c": {"k": 0}}
    run = {"a": {"k1": 10}, "b": {"k1": 10}, "d": {"k": ("x",)}}
    merged = bl.merge(stored, run, complete=["a"])
    assert merged == {"a": {"k1": 10}, "b": {"k1": 10, "k2": 2}, "c": {"k": 0}, "d": {"k": ["x"]}}


def test_write_site_round_trip_and_keeps_tests_not_run(tmp_path):
    path = bl.write_site(tmp_path / "new-dir", "EU1", {T1: {"B": 2, "A": "x"}}, complete=[T1], target_mode="emulator")
    data = json.loads(path.read_text())
    assert data["schema"] == 1 and data["site"] == "EU1" and data["target_mode"] == "emulator"
    assert list(data["observations"][T1]) == ["A", "B"] and data["updated_at"].endswith("Z")
    bl.write_site(tmp_path / "new-dir", "EU1", {"other::t": {"K": 1}}, target_mode="emulator")
    b = bl.load_site(tmp_path / "new-dir", "EU1")
    assert b.observations == {T1: {"A": "x", "B": 2}, "other::t": {"K": 1}}
    assert not list((tmp_path / "new-dir").glob("*.tmp"))


def test_write_site_starts_afresh_over_the_other_kind_of_target(tmp_path):
    _store(tmp_path, observations={"old::t": {"K": 1}})  # recorded against datadog
    bl.write_site(tmp_path, "US1", {T1: {"K": 2}}, complete=[T1], target_mode="emulator")
    b = bl.load_site(tmp_path, "US1")
    assert b.observations == {T1: {"K": 2}} and b.target_mode == "emulator"


def test_written_files_are_redacted(tmp_path):
    REDACTOR.add("bl-secret-value-0002", "refresh_token")
    path = bl.write_site(tmp_path, "US1", {T1: {"K": "bl-secret-value-0002"}}, target_mode="datadog")
    assert "bl-secret-value-0002" not in path.read_text()


# ---- the pytest plugin: AllureRecorder.observe and verify() -------------------------------------

INNER_TESTS = '''
import os
import pytest
from types import SimpleNamespace as NS

from fixtures.grants import AllureRecorder
from harness.checks import registry as checks, token

TARGETS = [NS(name="US1-x", site=NS(key="US1")), NS(name="EU1-y", site=NS(key="EU1"))]
VALUE = os.environ.get("BL_VALUE", "same refresh token")


@pytest.fixture(autouse=True)
def _name_target(request):
    request.node.user_properties.append(("ddoauth_target", request.node.callspec.params["target"].name))


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_observes(target, request):
    rec = AllureRecorder(request.node)
    rec.observe("DD-REFRESH-ROTATION", VALUE)
    rec.observe("DD-STATUS", 200)
    rec.observe("DD-STATUS", 201)  # the same key twice in one test: stored as "DD-STATUS #2"
    if not os.environ.get("BL_SKIP_EXTRA"):
        rec.observe("DD-EXTRA", "x")
    # a CHARACTERIZE check records "holds" when it holds, its message when not
    checks.verify(rec, token.token_expires_in, {"expires_in": int(os.environ.get("BL_TTL", "3600"))},
                  severity=checks.CHARACTERIZE)
'''

NO_PLAYWRIGHT = ("-p", "no:playwright")
POLICY = ("-p", "fixtures.waivers", "-p", "fixtures.baselines")  # inner sessions' plugins besides reporting


@pytest.fixture
def inner(pytester: pytest.Pytester):
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_inner=INNER_TESTS)
    (pytester.path / "w").mkdir()
    return pytester


def _run(pytester: pytest.Pytester, *args: str):
    return pytester.runpytest(*NO_PLAYWRIGHT, "-p", "fixtures.reporting", *POLICY,
                              "--waivers", "w", "--baseline-dir", "b", *args)


def _verdict(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "reports" / "verdict.json").read_text())


def test_first_run_is_all_new_then_update_writes_then_unchanged(inner):
    first = _run(inner)
    first.assert_outcomes(passed=2)
    v = _verdict(inner)
    assert v["baseline"]["counts"] == {"new": 10, "unchanged": 0, "changed": 0, "updated": 0}
    assert v["totals"]["warnings"] == 0 and v["totals"]["baseline_changes"] == 0  # "new" is information
    assert not (inner.path / "b").exists()

    _run(inner, "--update-baseline").assert_outcomes(passed=2)
    us1 = json.loads((inner.path / "b" / "US1.json").read_text())
    assert us1["observations"] == {"test_inner.py::test_observes[US1-x]": {
        "DD-ENDPOINTS-TTL": "holds", "DD-EXTRA": "x", "DD-REFRESH-ROTATION": "same refresh token",
        "DD-STATUS": 200, "DD-STATUS #2": 201}}
    assert us1["target_mode"] is None  # no targets plugin in this inner run
    assert set(json.loads((inner.path / "b" / "EU1.json").read_text())["observations"]) == {
        "test_inner.py::test_observes[EU1-y]"}
    v = _verdict(inner)
    assert v["baseline"]["mode"] == "update" and sorted(v["baseline"]["written"]) == ["EU1.json", "US1.json"]

    _run(inner).assert_outcomes(passed=2)
    v = _verdict(inner)
    assert v["baseline"]["counts"]["unchanged"] == 10 and v["totals"]["baseline_changes"] == 0


def test_a_change_is_a_warning_in_the_verdict_and_the_terminal(inner, monkeypatch):
    _run(inner, "--update-baseline")
    monkeypatch.setenv("BL_VALUE", "new refresh token")
    monkeypatch.setenv("BL_TTL", "7200")
    monkeypatch.setenv("BL_SKIP_EXTRA", "1")
    results = inner.path / "allure-results"
    outcome = _run(inner, "-k", "US1", "--alluredir", str(results))
    outcome.assert_outcomes(passed=1)  # a change never fails the test
    outcome.stdout.fnmatch_lines([
        "US1-x  passed 1  failed 0  broken 0  skipped 0  waived 0  warnings 3",
        "[[]CHANGED[]] DD-ENDPOINTS-TTL: was holds, now expires_in is 7200  (test_inner.py::test_observes[[]US1-x[]])",
        "[[]CHANGED[]] DD-EXTRA: was x, now (not observed)  (*)",
        "[[]CHANGED[]] DD-REFRESH-ROTATION: was same refresh token, now new refresh token  (*)",
    ])
    v = _verdict(inner)
    changes = v["targets"]["US1-x"]["baseline_changes"]
    assert [(c["key"], c["was"], c["now"]) for c in changes] == [
        ("DD-ENDPOINTS-TTL", "holds", "expires_in is 7200"),
        ("DD-EXTRA", "x", "(not observed)"),
        ("DD-REFRESH-ROTATION", "same refresh token", "new refresh token")]
    assert v["totals"]["baseline_changes"] == 3 and v["ok"] is True
    result = json.loads(next(results.glob("*-result.json")).read_text())
    texts = [a["name"] for a in result.get("attachments", [])]
    assert "SHOULD warning" in texts and "observed (DD-REFRESH-ROTATION)" in texts


def test_update_does_not_warn_and_drops_keys_a_passing_test_no_longer_observes(inner, monkeypatch):
    _run(inner, "--update-baseline")
    monkeypatch.setenv("BL_VALUE", "rotated")
    monkeypatch.setenv("BL_SKIP_EXTRA", "1")
    _run(inner, "--update-baseline").assert_outcomes(passed=2)
    v = _verdict(inner)
    assert v["totals"]["warnings"] == 0 and v["baseline"]["counts"]["updated"] == 2
    stored = json.loads((inner.path / "b" / "US1.json").read_text())["observations"]
    assert stored["test_inner.py::test_observes[US1-x]"]["DD-REFRESH-ROTATION"] == "rotated"
    assert "DD-EXTRA" not in stored["test_inner.py::test_observes[US1-x]"]


def test_malformed_baseline_is_a_usage_error(inner):
    (inner.path / "b").mkdir()
    (inner.path / "b" / "US1.json").write_text("{oops")
    outcome = _run(inner)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*US1.json: not a readable baseline JSON file*"])


def test_xdist_workers_compare_and_the_controller_writes(inner, monkeypatch):
    pytest.importorskip("xdist")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    _store(inner.path / "b", observations={"test_inner.py::test_observes[US1-x]": {"DD-REFRESH-ROTATION": "old"}},
           target_mode=None)
    outcome = inner.runpytest_subprocess("-p", "fixtures.reporting", *POLICY, "--waivers", "w",
                                         "--baseline-dir", "b", "--update-baseline", "-n", "2")
    outcome.assert_outcomes(passed=2)
    # the workers compared with the stored file ("updated" = changed, in update mode) ...
    v = _verdict(inner)
    assert v["baseline"]["counts"] == {"new": 9, "unchanged": 0, "changed": 0, "updated": 1}
    # ... and the controller wrote what both workers observed
    assert sorted(p.name for p in (inner.path / "b").iterdir()) == ["EU1.json", "US1.json"]
    us1 = json.loads((inner.path / "b" / "US1.json").read_text())["observations"]
    assert us1["test_inner.py::test_observes[US1-x]"]["DD-REFRESH-ROTATION"] == "same refresh token"
    assert us1["test_inner.py::test_observes[US1-x]"]["DD-STATUS #2"] == 201
    eu1 = json.loads((inner.path / "b" / "EU1.json").read_text())["observations"]
    assert list(eu1) == ["test_inner.py::test_observes[EU1-y]"]
