"""CHARACTERIZE observations during a run: compared with the site's baseline, collected, written
(``--update-baseline``) and summarised (plain Python, no pytest; the files are baseline.py's).

Under xdist, workers compare (each reads the files) and send each observation to the
controller as a user property (BASELINE_PROPERTY, JSON); only the controller writes.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.results import baseline as baselines
from harness.results.outcome import PASSED, classify_report
from harness.results.properties import BASELINE_PROPERTY, json_objects

UPDATED = "updated"  # a change, in update mode: written, not warned about
_COUNTED = (baselines.NEW, baselines.UNCHANGED, baselines.CHANGED, UPDATED)


@dataclass(frozen=True)
class Observed:
    key: str  # as stored (a repeated key in one test gets " #2", " #3"...)
    comparison: baselines.Comparison
    warning: str | None  # the SHOULD-style warning of a change
    property: str  # the BASELINE_PROPERTY value (JSON) that carries it to the verdict and the controller


def _property(site: str | None, key: str, status: str, was: Any, now: Any) -> str:
    return json.dumps({"site": site, "key": key, "status": status, "was": was, "now": now}, default=str)


@dataclass
class BaselineRun:
    directory: Path
    baselines: dict[str, baselines.Baseline]
    update: bool
    target_mode: str | None  # "emulator" | "datadog" | None (unknown)
    # the controller's bookkeeping, from the reports
    observations: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # site -> test -> key -> value
    passed: set[str] = field(default_factory=set)  # tests whose call passed: their observations are complete
    counts: Counter = field(default_factory=Counter)
    written: list[str] = field(default_factory=list)

    def baseline(self, site: str) -> baselines.Baseline:
        found = self.baselines.get(site)
        if found is None:  # a site outside the selection (a region pair's second site): read it lazily
            found = self.baselines[site] = baselines.load_site(self.directory, site)
        return found

    def missing(self, nodeid: str, site: str | None, seen: dict[str, Any]) -> list[Observed]:
        """A test that passed without making an observation its baseline holds: that is a change too."""
        if site is None or self.update:
            return []
        out = []
        for key, was in self.baseline(site).missing(nodeid, seen, self.target_mode).items():
            comparison = baselines.Comparison(baselines.CHANGED, was=was, now=baselines.NOT_OBSERVED)
            out.append(Observed(key, comparison, comparison.warning(key),
                                _property(site, key, baselines.CHANGED, was, baselines.NOT_OBSERVED)))
        return out

    def add_report(self, report: Any) -> None:
        if report.when == "call" and classify_report(report).status == PASSED:
            self.passed.add(report.nodeid)
        if report.when != "teardown":
            return  # teardown's user properties hold everything the test recorded
        for data in json_objects(getattr(report, "user_properties", ()) or (), BASELINE_PROPERTY):
            if not data.get("site"):
                continue
            self.counts[data.get("status", baselines.NEW)] += 1
            if data.get("now") != baselines.NOT_OBSERVED:
                self.observations.setdefault(data["site"], {}).setdefault(report.nodeid, {})[
                    data["key"]] = data.get("now")

    def write(self) -> None:
        """Update mode: merge what the run observed into the sites' files."""
        if not self.update:
            return
        for site, tests in sorted(self.observations.items()):
            path = baselines.write_site(self.directory, site, tests, complete=[t for t in tests if t in self.passed],
                                        target_mode=self.target_mode)
            self.written.append(path.name)

    def summary(self) -> dict[str, Any]:
        """The verdict's "baseline"."""
        return {"dir": str(self.directory), "mode": "update" if self.update else "compare",
                "target_mode": self.target_mode, "observations": sum(self.counts.values()),
                "counts": {k: self.counts.get(k, 0) for k in _COUNTED}, "written": list(self.written)}


def observe(run: BaselineRun | None, nodeid: str, site: str | None, seen: dict[str, Any], key: str,
            value: Any) -> Observed:
    """Compare one observation of a test with its site's baseline. seen: the test's observations so
    far (key -> value), updated here; run None: no baselines plugin, every observation is new."""
    stored_key, n = key, 2
    while stored_key in seen:
        stored_key, n = f"{key} #{n}", n + 1
    now = baselines.normalise(value)
    seen[stored_key] = now
    if run is None or site is None:
        comparison = baselines.Comparison(baselines.NEW, now=now, note="no baseline: the test has no target")
    else:
        comparison = run.baseline(site).compare(nodeid, stored_key, now, run.target_mode)
    status = comparison.status
    if run is not None and run.update and status == baselines.CHANGED:
        status = UPDATED
    warning = comparison.warning(stored_key) if status == baselines.CHANGED else None
    return Observed(stored_key, comparison, warning, _property(site, stored_key, status, comparison.was, now))


__all__ = ["BaselineRun", "Observed", "UPDATED", "observe"]
