"""A parallel run gives the verdict a serial run gives: the same small matrix (two sites, the tests that
share org- and server-wide state - the org's marketplace key, integration mode's partner app, a code
aged past its lifetime - and two server defects so that some tests fail) run serially and with
`-n 2`, compared test by test (JUnit outcomes) and target by target (verdict.json)."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SELECTION = ["suites/test_api_key.py", "suites/test_integration.py", "suites/test_token.py",
             "suites/test_revoke.py", "suites/test_errors_token.py::test_code_expires",
             "suites/test_errors_token.py::test_code_is_single_use"]
DEFECTS = ["partner_static_state", "expires_in_string"]  # caught by test_repeat_install / the token tests


def _run(directory: Path, *extra: str) -> tuple[dict, dict]:
    directory.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pytest", *SELECTION, "--target", "US1-sandbox", "--target", "EU1-sandbox",
           "-p", "no:cacheprovider", "-q", "--reports-dir", str(directory),
           "--verdict-path", str(directory / "verdict.json"), "--junitxml", str(directory / "junit.xml"),
           *[a for d in DEFECTS for a in ("--emulator-defect", d)], *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert (directory / "verdict.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    outcomes = {}
    for case in ET.parse(directory / "junit.xml").iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    verdict = json.loads((directory / "verdict.json").read_text())
    return outcomes, {"exit_status": verdict["exit_status"], "totals": verdict["totals"], "targets": verdict["targets"]}


def test_parallel_verdict_is_the_serial_verdict(tmp_path):
    serial_outcomes, serial = _run(tmp_path / "serial")
    parallel_outcomes, parallel = _run(tmp_path / "parallel", "-n", "2")
    assert "failure" in serial_outcomes.values(), "the defects failed nothing: the comparison proves little"
    assert len(serial_outcomes) >= 20
    differ = {k: (serial_outcomes.get(k), parallel_outcomes.get(k))
              for k in serial_outcomes.keys() | parallel_outcomes.keys()
              if serial_outcomes.get(k) != parallel_outcomes.get(k)}
    assert not differ, f"tests whose outcome changed under -n 2 (serial, parallel): {differ}"
    assert parallel == serial
