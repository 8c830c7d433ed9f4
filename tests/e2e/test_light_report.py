"""A light report: page screenshots and HTTP exchanges only for the tests that failed or broke (the
default); --screenshots all --http-attachments all keep them for every test. Real suites, real Chromium, a
server defect that fails one consent-page test and one that breaks a token-endpoint test (a 5xx)."""
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
           "-p", "no:cacheprovider", "--emulator-defect", "consent_extra_scope",
           "--emulator-defect", "bad_verifier_500", "suites/test_errors_token.py::test_wrong_verifier_refused",
           "suites/test_token.py", "--alluredir", str(results),
           "--reports-dir", str(tmp_path), "--verdict-path", str(tmp_path / "verdict.json"), *extra]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)

    def count(steps, kind) -> int:
        return sum(sum(1 for a in s.get("attachments") or () if kind(a)) + count(s.get("steps"), kind) for s in steps or ())
    out = {}
    for path in results.glob("*-result.json"):
        r = json.loads(path.read_text())
        for kind, key in ((lambda a: a["type"].startswith("image/"), "shots"), (lambda a: a["name"].startswith("HTTP "), "http")):
            n = count(r.get("steps"), kind) + sum(1 for a in r.get("attachments") or () if kind(a))
            out.setdefault(r["name"], {"status": r["status"]})[key] = n
        for a in _all_attachments(r):  # every attachment a result names was written
            assert (results / a["source"]).exists(), a
    return {n: (v["status"], v["shots"], v["http"]) for n, v in out.items()}


def _all_attachments(item):
    found = list(item.get("attachments") or ())
    for step in item.get("steps") or ():
        found += _all_attachments(step)
    return found


def test_screenshots_for_failed_tests_only_by_default(tmp_path):
    seen = _run(tmp_path / "failing")
    failed = {n: c for n, (s, c, _) in seen.items() if s in ("failed", "broken")}
    passed = {n: c for n, (s, c, _) in seen.items() if s == "passed"}
    http = {n: (s, h) for n, (s, _, h) in seen.items()}
    assert all(h == 0 for s, h in http.values() if s == "passed"), f"HTTP exchanges in passing tests: {http}"
    verifier = next(h for n, (s, h) in http.items() if n.startswith("test_wrong_verifier_refused"))
    assert verifier > 0, f"a broken test lost its exchanges: {http}"
    assert any(n.startswith("test_consent_lists_exactly_the_client_scopes") for n in failed), seen
    consent = next(c for n, c in failed.items() if n.startswith("test_consent_lists_exactly_the_client_scopes"))
    assert consent > 0, f"a failed test without its pages: {failed}"  # (a form-post code renders no page)
    assert passed and not any(passed.values()), f"screenshots in passing tests: {passed}"
    files = len(list((tmp_path / "failing" / "allure-results").glob("*.jpg")))
    assert files == sum(failed.values()), "screenshot files beyond the failed tests' own"

    full = _run(tmp_path / "all", "--screenshots", "all", "--http-attachments", "all")  # today's full report
    assert len(list((tmp_path / "all" / "allure-results").glob("*.jpg"))) > files
    assert any(h > 0 for s, _, h in full.values() if s == "passed"), "--http-attachments all kept none"
