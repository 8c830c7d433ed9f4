"""The machine verdict (reports/verdict.json) that CI and the pre-publication gate read (plain Python).

:class:`RunRecord` collects one run's test reports (per test: its target, its phases folded by
the outcome classifier, the waivers it no longer needs, its baseline observations);
:func:`build_verdict` turns it into the verdict; :func:`format_verdict_lines` is the terminal's
"ddoauth verdict per target"; :func:`write_verdict` writes it, redacted.

Per target: counts of passed / failed / broken / skipped / waived tests (harness/results/outcome.py)
and warnings, the failing, broken, waived and warned test ids, waivers no longer needed and
baseline changes. Collection errors count as broken tests of "(no target)".
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import harness
from core.redact import REDACTOR
from harness.results.baseline import CHANGED, change_message
from harness.results.outcome import (BROKEN, FAILED, PASSED, SKIPPED, WAIVED, TestPhases, categorize, classify,
                                     classify_report)
from harness.results.properties import (BASELINE_PROPERTY, TARGET_PROPERTY, UNNEEDED_WAIVER_PROPERTY,
                                        json_objects, last)

NO_TARGET = "(no target)"
VERDICT_SCHEMA = 1
_OUTCOMES = (PASSED, FAILED, BROKEN, SKIPPED, WAIVED)
_LISTED = (FAILED, BROKEN, WAIVED)  # outcomes whose test ids the verdict lists


@dataclass
class TestRecord:
    target: str = NO_TARGET
    phases: TestPhases = field(default_factory=TestPhases)
    unneeded_waivers: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)

    __test__ = False  # not a pytest test class, whatever its name


@dataclass
class RunRecord:
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    tests: dict[str, TestRecord] = field(default_factory=dict)
    collect_errors: list[str] = field(default_factory=list)

    def add_report(self, report: Any) -> None:
        """One phase report of a test (duck-typed pytest TestReport)."""
        rec = self.tests.setdefault(report.nodeid, TestRecord())
        props = list(getattr(report, "user_properties", ()) or ())
        target = last(props, TARGET_PROPERTY)
        if target:
            rec.target = str(target)
        # user properties accumulate over setup, call and teardown: keep the fullest list
        for attr, name in (("unneeded_waivers", UNNEEDED_WAIVER_PROPERTY), ("observations", BASELINE_PROPERTY)):
            found = json_objects(props, name)
            if len(found) >= len(getattr(rec, attr)):
                setattr(rec, attr, found)
        rec.phases.add(report.when, classify_report(report))

    def add_collect_error(self, nodeid: str) -> None:
        self.collect_errors.append(nodeid or "(collection)")

    def interrupted(self, nodeid: str, target: str | None, reason: str) -> None:
        """The test will never report (the process ends now): record it as broken."""
        rec = self.tests.setdefault(nodeid, TestRecord())
        if target:
            rec.target = target
        rec.phases.add("interrupted", classify("interrupted", FAILED, message=reason))


def _empty_counts() -> dict[str, Any]:
    return {**dict.fromkeys(_OUTCOMES, 0), "warnings": 0, **{f"{o}_tests": [] for o in _LISTED},
            "warned_tests": [], "waivers_no_longer_needed": [], "baseline_changes": [], "categories": {}}


def _count(counts: dict[str, Any], nodeid: str, rec: TestRecord) -> None:
    counts["warnings"] += rec.phases.warnings
    if rec.phases.warnings:
        counts["warned_tests"].append(nodeid)
    for waiver in rec.unneeded_waivers:
        counts["waivers_no_longer_needed"].append({**waiver, "test": nodeid})
    for obs in rec.observations:
        if obs.get("status") == CHANGED:
            counts["baseline_changes"].append({"test": nodeid, "key": obs.get("key"), "was": obs.get("was"),
                                               "now": obs.get("now")})
    outcome = rec.phases.outcome
    if outcome is None:  # never reached a result (interrupted run)
        return
    counts[outcome.status] += 1
    if outcome.status in _LISTED:
        counts[f"{outcome.status}_tests"].append(nodeid)
        # the same category the Allure report files the test under (one classifier for both)
        counts["categories"][nodeid] = outcome.category


def _ordered(c: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: c[k] for k in _OUTCOMES}, "warnings": c["warnings"],
        **{f"{o}_tests": sorted(c[f"{o}_tests"]) for o in _LISTED},
        "warned_tests": sorted(c["warned_tests"]),
        "waivers_no_longer_needed": sorted(c["waivers_no_longer_needed"], key=lambda w: w["test"]),
        "baseline_changes": sorted(c["baseline_changes"], key=lambda b: (b["test"], str(b["key"]))),
        "categories": dict(sorted(c["categories"].items())),
    }


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_verdict(run: RunRecord, exit_status: int, exit_name: str, finished_at: datetime,
                  waivers: Mapping[str, Any] | None = None,
                  baseline: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The verdict. exit_name: pytest's name of exit_status; waivers, baseline: the run's summaries
    (harness/results/waiver_run.py, baseline_run.py), None when those plugins are not loaded."""
    targets: dict[str, dict[str, Any]] = {}
    for nodeid, rec in run.tests.items():
        _count(targets.setdefault(rec.target, _empty_counts()), nodeid, rec)
    for nodeid in run.collect_errors:
        counts = targets.setdefault(NO_TARGET, _empty_counts())
        counts[BROKEN] += 1
        counts["broken_tests"].append(nodeid)
        counts["categories"][nodeid] = categorize(BROKEN, "collection error")
    ordered = {name: _ordered(targets[name]) for name in sorted(targets)}
    counted = (*_OUTCOMES, "warnings")
    totals = {k: sum(t[k] for t in ordered.values()) for k in counted}
    totals = {"tests": sum(totals[k] for k in _OUTCOMES), **totals,
              "waivers_no_longer_needed": sum(len(t["waivers_no_longer_needed"]) for t in ordered.values()),
              "baseline_changes": sum(len(t["baseline_changes"]) for t in ordered.values())}
    return {
        "schema": VERDICT_SCHEMA,
        "harness_version": harness.__version__,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(finished_at),
        "duration_seconds": round((finished_at - run.started_at).total_seconds(), 3),
        "exit_status": int(exit_status),
        "exit_status_name": exit_name,
        "ok": int(exit_status) == 0 and totals[FAILED] == 0 and totals[BROKEN] == 0,
        "totals": totals,
        "targets": ordered,
        "waivers": None if waivers is None else dict(waivers),
        "baseline": None if baseline is None else dict(baseline),
    }


def write_verdict(path: Path, verdict: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    text = REDACTOR.redact_text(json.dumps(verdict, indent=2, ensure_ascii=False) + "\n")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def format_verdict_lines(verdict: Mapping[str, Any]) -> list[str]:
    targets = verdict.get("targets") or {}
    if not targets:
        return []
    width = max(len(name) for name in targets)
    lines = [
        f"{name:<{width}}  passed {c['passed']}  failed {c['failed']}  broken {c['broken']}"
        f"  skipped {c['skipped']}  waived {c.get('waived', 0)}  warnings {c['warnings']}"
        for name, c in targets.items()
    ]
    for name, c in targets.items():
        for w in c.get("waivers_no_longer_needed") or ():
            lines.append(f"waiver no longer needed: {w['test']} passes ({w.get('file')} entry {w.get('entry')},"
                         f" owner {w.get('owner')}): remove the entry")
    for name, c in targets.items():
        for b in c.get("baseline_changes") or ():
            lines.append(f"{change_message(str(b['key']), b['was'], b['now'])}  ({b['test']})")
    baseline = verdict.get("baseline")
    if isinstance(baseline, Mapping) and baseline.get("observations"):
        counts = baseline.get("counts") or {}
        summary = ", ".join(f"{counts[k]} {k}" for k in ("new", "unchanged", "changed", "updated") if counts.get(k))
        if baseline.get("mode") == "update":
            lines.append(f"baseline updated in {baseline.get('dir')}: {', '.join(baseline.get('written') or [])}"
                         f" ({summary})")
        else:
            lines.append(f"baseline ({baseline.get('dir')}): {summary}")
    return lines


__all__ = ["NO_TARGET", "VERDICT_SCHEMA", "RunRecord", "TestRecord", "build_verdict", "format_verdict_lines",
           "write_verdict"]
