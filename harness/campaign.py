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


def clean_run(targets: list[str], select: str | None = None, timeout: float = 1800) -> tuple[tuple, list[str]]:
    """The suites (or the `-k` selection) on a clean emulator: ((passed, skipped), failed or broken tests)."""
    with tempfile.TemporaryDirectory(prefix="ddoauth-campaign-") as tmp:
        args = ["-k", select] if select else []
        for t in targets:
            args += ["--target", t]
        verdict = _run_pytest(args, Path(tmp), timeout)
    failures = _collect(verdict, "failed_tests") + _collect(verdict, "broken_tests")
    records = (verdict.get("targets") or {}).values()
    counts = (sum(r.get("passed", 0) for r in records), sum(r.get("skipped", 0) for r in records))
    if not verdict:
        failures = ["(the clean run wrote no verdict)"]
    return counts, failures


# Defects that only show when the customer's region is not US1: their run adds an EU1 target.
NEEDS_ANOTHER_REGION = {"partner_ignores_domain", "partner_wrong_site_key"}


def targets_for(defect: str, targets: list[str]) -> list[str]:
    if defect in NEEDS_ANOTHER_REGION and all(t.startswith("US1-") for t in targets):
        return targets + ["EU1-sandbox"]
    return targets


def campaign(defects: dict[str, tuple[str, list[str]]], targets: list[str], repeat: int = 1,
             clean_select: str | None = None, echo=print) -> tuple[list[DefectOutcome], int]:
    """Each defect alone, then `repeat` clean runs, which must agree with each other; returns
    (outcomes, false failures), where a clean run that differs from the first counts as one."""
    echo(f"{'defect':34} {'expected catcher':44} {'caught by':44} verdict")
    outcomes = []
    for name, (_, expected) in defects.items():
        outcome = (run_rotation_defect(name, expected) if name in ROTATION_DEFECTS
                   else run_defect(name, expected, targets_for(name, targets)))
        outcomes.append(outcome)
        echo(f"{name:34} {', '.join(expected)[:44]:44} {', '.join(outcome.caught_by)[:44] or '-':44} "
             f"{outcome.verdict} ({outcome.seconds:.0f} s)")
    false_failures = 0
    first = None
    for i in range(repeat):
        counts, failures = clean_run(targets, clean_select)
        false_failures += len(failures)
        differs = first is not None and counts != first
        first = first or counts
        false_failures += int(differs)
        echo(f"clean run {i + 1}/{repeat}: {counts[0]} passed, {counts[1]} skipped, {len(failures)} failed"
             + (f": {', '.join(failures[:5])}" if failures else "") + (" (differs from run 1)" if differs else ""))
    caught = sum(o.verdict == "caught" for o in outcomes)
    echo(f"caught {caught}/{len(outcomes)} defects, false failures {false_failures}")
    return outcomes, false_failures
