"""Results that tell the truth, end to end: real suites against the embedded emulator, switched to
behave as a Datadog that differs. Each scenario names the tests it runs, the emulator behaviour or
defect, and the one-line outcome each test must end with (status, and the words of its reason).

Scenarios whose switch the emulator does not have (yet) are skipped, not failed.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from emulator.behaviour import DEFECTS, SWITCHES  # noqa: E402

# name -> (pytest args, behaviour switches, defects, {test-id substring: (status, reason regex)})
SCENARIOS = {
    # Datadog's own callback lacks `domain`: the partner cannot finish, but the failure names Datadog's requirement
    "integration-callback-without-domain": (
        ["suites/test_integration.py", "-m", "integration_mode", "--target", "EU1-sandbox", "-k", "test_tile_start"],
        {}, {"domain_missing"},
        {"test_tile_start": ("FAILED", r"\[DD-OAUTH-REDIRECT-DOMAIN\] Datadog's callback to the partner")}),
    # the shared grant consents first; the deny test then meets no consent page: skipped, never failed
    "remembered-consent": (
        ["suites/test_authorize.py::test_callback_parameters", "suites/test_errors_authorize.py",
         "--target", "US1-sandbox", "-k", "test_callback_parameters or test_deny"],
        {"remember_consent": "true"}, set(),
        {"test_callback_parameters": ("PASSED", ""),
         "test_deny_returns_access_denied": ("SKIPPED", r"consent was remembered: no consent page to drive")}),
    # the deny error comes back after '#': read (access_denied is judged) and reported as such
    "error-in-fragment": (
        ["suites/test_errors_authorize.py", "--target", "US1-sandbox", "-k", "test_deny"],
        {"error_response_mode": "fragment"}, set(),
        {"test_deny_returns_access_denied": ("FAILED", r"error returned in the fragment, not the query")}),
    # users-me (the preferred identity probe) and list-hosts answer 404: the owners fail; the revoke test
    # proves its evidence on the next read the scopes allow, so it is judged, not broken
    "absent-endpoints": (
        ["suites/test_scopes.py", "suites/test_revoke.py", "--target", "US1-sandbox",
         "-k", "test_scope_data_flow or test_revoked_access_token_is_refused"],
        {"absent_endpoints": "some"}, set(),
        {"test_scope_data_flow[US1-sandbox-hosts_read": ("FAILED", r"endpoint absent on this target"),
         "test_scope_data_flow[US1-sandbox-user_self_profile_read": ("FAILED", r"endpoint absent on this target"),
         "test_scope_data_flow[US1-sandbox-metrics_read": ("PASSED", ""),
         "test_revoked_access_token_is_refused": ("PASSED", "")}),
}


def _available(behaviour: dict, defects: set) -> str | None:
    for name, value in behaviour.items():
        if name not in SWITCHES:
            return f"the emulator has no behaviour switch {name!r} yet"
    unknown = defects - set(DEFECTS)
    return f"the emulator has no defect {sorted(unknown)} yet" if unknown else None


def _outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """test name -> (PASSED | FAILED | ERROR | SKIPPED, the one-line message)."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        status, message = "PASSED", ""
        for kind, name in (("failure", "FAILED"), ("error", "ERROR"), ("skipped", "SKIPPED")):
            found = case.find(kind)
            if found is not None:
                status, message = name, " ".join((found.get("message") or "").split())
                break
        out[case.get("name")] = (status, message)
    return out


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario(scenario, tmp_path):
    args, behaviour, defects, expected = SCENARIOS[scenario]
    missing = _available(behaviour, defects)
    if missing:
        pytest.skip(missing)
    verdict_path = tmp_path / "verdict.json"
    junit = tmp_path / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-q", "--junitxml", str(junit),
           "--verdict-path", str(verdict_path), "--reports-dir", str(tmp_path), "--state-dir", str(tmp_path)]
    for name, value in behaviour.items():
        cmd += ["--emulator-behaviour", f"{name}={value}"]
    for defect in sorted(defects):
        cmd += ["--emulator-defect", defect]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    out = proc.stdout
    assert verdict_path.exists(), out[-3000:] + proc.stderr[-2000:]
    summary = _outcomes(junit)
    for test, (status, reason) in expected.items():
        lines = [f"{st} {name}: {message}" for name, (st, message) in summary.items() if test in name]
        assert lines, f"{test}: not in the run:\n" + "\n".join(summary) + out[-2000:]
        for line in lines:
            assert re.match(rf"^(?:{status}) ", line), f"{test}: {line}"
            assert re.search(reason, line), f"{test}: {line}"
    verdict = json.loads(verdict_path.read_text())["targets"]
    categories = {k: v for t in verdict.values() for k, v in t.get("categories", {}).items()}
    assert "Harness error" not in categories.values(), categories
    if scenario == "absent-endpoints":
        absent = {k for k, v in categories.items() if v == "Endpoint absent on this target"}
        assert any("test_scope_data_flow" in k and "hosts_read" in k for k in absent), categories
        assert not any("test_revoked_access_token_is_refused" in k for k in absent), categories
