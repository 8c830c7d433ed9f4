"""A light report: page screenshots only for the tests that failed or broke (--screenshots failing, the
default); --screenshots all keeps one for every page of every test. Real suites, real Chromium, a
server defect that fails one consent-page test."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *extra: str) -> dict[str, tuple[str, int]]:
    """{test name: (status, screenshots attached)} of one run of the consent-page tests on US1."""
    results = tmp_path / "allure-results"
    cmd = [sys.executable, "-m", "pytest", "suites/test_authorize.py",
           "suites/test_errors_authorize.py::test_deny_returns_access_denied", "--target", "US1-sandbox", "-q",
           "-p", "no:cacheprovider", "--emulator-defect", "consent_extra_scope", "--alluredir", str(results),
           "--reports-dir", str(tmp_path), "--verdict-path", str(tmp_path / "verdict.json"), *extra]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)

    def shots(steps) -> int:
        return sum(sum(1 for a in s.get("attachments") or () if a["type"].startswith("image/")) + shots(s.get("steps"))
                   for s in steps or ())
    out = {}
    for path in results.glob("*-result.json"):
        r = json.loads(path.read_text())
        n = shots(r.get("steps")) + sum(1 for a in r.get("attachments") or () if a["type"].startswith("image/"))
        out[r["name"]] = (r["status"], n)
    return out


def test_screenshots_for_failed_tests_only_by_default(tmp_path):
    seen = _run(tmp_path / "failing")
    failed = {n: c for n, (s, c) in seen.items() if s in ("failed", "broken")}
    passed = {n: c for n, (s, c) in seen.items() if s == "passed"}
    assert any(n.startswith("test_consent_lists_exactly_the_client_scopes") for n in failed), seen
    assert failed and all(c > 0 for c in failed.values()), f"a failed test without its pages: {failed}"
    assert passed and not any(passed.values()), f"screenshots in passing tests: {passed}"
    files = len(list((tmp_path / "failing" / "allure-results").glob("*.jpg")))
    assert files == sum(failed.values()), "screenshot files beyond the failed tests' own"

    _run(tmp_path / "all", "--screenshots", "all")  # every page of every test (fixtures' pages too)
    assert len(list((tmp_path / "all" / "allure-results").glob("*.jpg"))) > files
