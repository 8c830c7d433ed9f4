"""The defect campaign: prove that every check can fail, and that none fails wrongly.

For each named server defect of the emulator (emulator/behaviour.py DEFECTS): run the smallest
selection of suites that should catch it, with only that defect switched on, and record which
tests failed. A defect counts as caught only when one of its expected tests failed (or, for a
SHOULD-level requirement, warned) - not merely when something failed. Clean runs (no defect)
count false failures.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class DefectOutcome:
    defect: str
    expected: list[str]
    failed: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @staticmethod
    def _name(test_id: str) -> str:
        return test_id.split("::")[-1].split("[")[0]

    @property
    def caught_by(self) -> list[str]:
        hits = {self._name(t) for t in self.failed + self.warned + self.broken}  # a 5xx defect breaks its catcher
        return sorted(h for h in hits if h in self.expected)

    @property
    def verdict(self) -> str:
        if self.caught_by:
            return "caught"
        if self.failed or self.broken:
            return "wrong catcher"
        return "MISSED"


def _run_pytest(args: list[str], workdir: Path, timeout: float) -> dict:
    verdict = workdir / "verdict.json"
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "-q", "-p", "no:cacheprovider",
           "--reports-dir", str(workdir), "--verdict-path", str(verdict), *args]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if not verdict.exists():
        return {}
    return json.loads(verdict.read_text())


def _collect(verdict: dict, key: str) -> list[str]:
    out = []
    for name, record in (verdict.get("targets") or {}).items():
        out += record.get(key, [])
    return out


def run_defect(defect: str, expected: list[str], targets: list[str], timeout: float = 600) -> DefectOutcome:
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ddoauth-campaign-") as tmp:
        args = ["--emulator-defect", defect, "-k", " or ".join(expected)]
        for t in targets:
            args += ["--target", t]
        verdict = _run_pytest(args, Path(tmp), timeout)
    return DefectOutcome(defect, expected, _collect(verdict, "failed_tests"), _collect(verdict, "warned_tests"),
                         _collect(verdict, "broken_tests"), time.monotonic() - start)


# Defects only a secret rotation reveals: the rotation story (baseline -> rotate -> verify) catches them,
# and it asserts itself that exactly the expected rotation test failed.
ROTATION_DEFECTS = {"old_secret_accepted", "refresh_killed_by_rotation"}


def run_rotation_defect(defect: str, expected: list[str], timeout: float = 900) -> DefectOutcome:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "e2e" / "test_rotation_story.py"),
                           "-q", "-p", "no:cacheprovider", "-k", defect], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    failed = [f"suites/rotation/test_rotation.py::{expected[0]}"] if proc.returncode == 0 else []
    return DefectOutcome(defect, expected, failed, [], [], time.monotonic() - start)


def clean_run(targets: list[str], timeout: float = 900) -> tuple[int, list[str]]:
    with tempfile.TemporaryDirectory(prefix="ddoauth-campaign-") as tmp:
        args = []
        for t in targets:
            args += ["--target", t]
        verdict = _run_pytest(args, Path(tmp), timeout)
    failures = _collect(verdict, "failed_tests") + _collect(verdict, "broken_tests")
    passed = sum(r.get("passed", 0) for r in (verdict.get("targets") or {}).values())
    if not verdict:
        failures = ["(the clean run wrote no verdict)"]
    return passed, failures


def campaign(defects: dict[str, tuple[str, list[str]]], targets: list[str], repeat: int = 1,
             echo=print) -> tuple[list[DefectOutcome], int]:
    echo(f"{'defect':34} {'expected catcher':44} {'caught by':44} verdict")
    outcomes = []
    for name, (_, expected) in defects.items():
        outcome = (run_rotation_defect(name, expected) if name in ROTATION_DEFECTS
                   else run_defect(name, expected, targets))
        outcomes.append(outcome)
        echo(f"{name:34} {', '.join(expected)[:44]:44} {', '.join(outcome.caught_by)[:44] or '-':44} "
             f"{outcome.verdict} ({outcome.seconds:.0f} s)")
    false_failures = 0
    for i in range(repeat):
        passed, failures = clean_run(targets)
        false_failures += len(failures)
        echo(f"clean run {i + 1}/{repeat}: {passed} passed, {len(failures)} failed"
             + (f": {', '.join(failures[:5])}" if failures else ""))
    caught = sum(o.verdict == "caught" for o in outcomes)
    echo(f"caught {caught}/{len(outcomes)} defects, false failures {false_failures}")
    return outcomes, false_failures
