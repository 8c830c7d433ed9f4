"""The validation ledger: per target and test, the last outcome and the last pass date (plain Python).

The pre-publication gate reads it (`ddoauth gate`, harness/gate.py): "every suite passed for the
test client on every configured site within the last N days". One run's results
(:class:`LedgerRun`, fed the run's reports and judged by the outcome classifier) are merged
into what earlier runs recorded (:func:`update_ledger`)::

    {"updated": "...", "targets": {"US1-sandbox": {"site": "US1", "consent_scopes": [...],
      "tests": {"suites/test_token.py::test_x[US1-sandbox]": {"last_outcome": "passed",
        "last_run": "...", "last_pass": "2026-01-31", "harness_version": "0.1.0"}}}}}

Test ids drop the browser suffix (``-chromium]``), so a run with another browser updates the same entry.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import harness
from harness.results.outcome import PASSED, TestPhases, classify_report
from harness.results.properties import CONSENT_SCOPES_PROPERTY, TARGET_PROPERTY, last

_BROWSER_SUFFIX = re.compile(r"-(chromium|firefox|webkit)\]$")


def ledger_test_id(nodeid: str) -> str:
    return _BROWSER_SUFFIX.sub("]", nodeid)


@dataclass
class LedgerRun:
    """What one run adds to the ledger: only tests that named their target."""

    targets: dict[str, str] = field(default_factory=dict)  # test id -> target
    phases: dict[str, TestPhases] = field(default_factory=dict)  # test id -> its phases
    consent_scopes: dict[str, list[str]] = field(default_factory=dict)  # target -> scopes

    def add_report(self, report: Any) -> None:
        props = list(getattr(report, "user_properties", ()) or ())
        target = last(props, TARGET_PROPERTY)
        if not target:
            return
        test_id = ledger_test_id(report.nodeid)
        self.targets[test_id] = str(target)
        self.phases.setdefault(test_id, TestPhases()).add(report.when, classify_report(report))
        scopes = last(props, CONSENT_SCOPES_PROPERTY)
        if scopes is not None:
            self.consent_scopes[str(target)] = str(scopes).split()

    def outcomes(self) -> dict[str, dict[str, str]]:
        """target -> test id -> status, for the tests that reached a result."""
        out: dict[str, dict[str, str]] = {}
        for test_id, phases in self.phases.items():
            outcome = phases.outcome
            if outcome is not None:
                out.setdefault(self.targets[test_id], {})[test_id] = outcome.status
        return out

    def __bool__(self) -> bool:
        return bool(self.outcomes() or self.consent_scopes)


def merge(ledger: dict[str, Any], run: LedgerRun, site_of: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """ledger (as read) updated in place with run; site_of: target name -> site key."""
    targets = ledger.setdefault("targets", {})
    outcomes = run.outcomes()
    for target in sorted(set(outcomes) | set(run.consent_scopes)):
        entry = targets.setdefault(target, {"tests": {}})
        entry.setdefault("tests", {})
        entry["site"] = site_of.get(target, entry.get("site"))
        if target in run.consent_scopes:
            entry["consent_scopes"] = run.consent_scopes[target]
        for test_id, status in outcomes.get(target, {}).items():
            t = entry["tests"].setdefault(test_id, {})
            t["last_outcome"] = status
            t["last_run"] = now.isoformat(timespec="seconds")
            t["harness_version"] = harness.__version__
            if status == PASSED:
                t["last_pass"] = now.date().isoformat()
    ledger["updated"] = now.isoformat(timespec="seconds")
    return ledger


def update_ledger(path: Path, run: LedgerRun, site_of: Mapping[str, str], now: datetime | None = None) -> Path:
    """Merge run into the ledger file (an unreadable one starts afresh) and write it atomically."""
    try:
        ledger = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        ledger = {}
    merge(ledger, run, site_of, now or datetime.now(timezone.utc))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ledger, indent=1, sort_keys=True))
    tmp.replace(path)
    return path


__all__ = ["LedgerRun", "ledger_test_id", "merge", "update_ledger"]
