"""Applying waivers during a run, and the run's waiver summary (plain Python, no pytest).

Only a *failed* call (an assertion: a MUST check, an ``assert``) that a live waiver of the
test's site matches is waived: it becomes a skip whose message starts with ``WAIVED``, which
the outcome classifier and the "Waived" category recognise. Broken tests (Datadog unreachable,
login failed, harness errors, setup errors) are never waived. A waived test that passes is
reported: its waiver is no longer needed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.results.outcome import is_assertion
from harness.results.properties import UNNEEDED_WAIVER_PROPERTY, WAIVED_PROPERTY, json_objects
from harness.results.waivers import Waiver, WaiverSet

_TIMEOUT_FAILURE = "Timeout >"  # pytest-timeout's signal method fails the test with this: not a verdict


def waivable(error: BaseException) -> bool:
    """A failure a waiver may turn into a skip: a failed check, not a crash or a timeout."""
    if not is_assertion(error):
        return False
    return isinstance(error, AssertionError) or not str(error).startswith(_TIMEOUT_FAILURE)


def first_line(error: BaseException, limit: int = 240) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def waived_message(waiver: Waiver, error: BaseException) -> str:
    """The skip message of a waived failure (starts with WAIVED)."""
    return f"{waiver.label()}; waived failure: {first_line(error)}"


def no_longer_needed_message(nodeid: str, waiver: Waiver) -> str:
    return (f"WAIVER NO LONGER NEEDED: {nodeid} passes; {waiver.where} (owner {waiver.owner}, "
            f"until {waiver.expires.isoformat()}) can be removed")


def waiver_property(waiver: Waiver) -> str:
    """The user property value (JSON) naming a waiver: WAIVED_PROPERTY or UNNEEDED_WAIVER_PROPERTY."""
    return json.dumps(waiver.as_dict())


@dataclass
class WaiverRun:
    """The run's waivers, and (on the xdist controller, from the reports) which ones applied."""

    waivers: WaiverSet
    directory: Path
    applied: set[str] = field(default_factory=set)  # test ids whose failure was waived
    unneeded: set[str] = field(default_factory=set)  # test ids that passed under a waiver

    def find(self, site: str | None, nodeid: str) -> Waiver | None:
        return self.waivers.find(site, nodeid)

    def add_report(self, report: Any) -> None:
        if report.when != "teardown":
            return  # teardown's user properties hold everything the test recorded
        props = list(getattr(report, "user_properties", ()) or ())
        if json_objects(props, WAIVED_PROPERTY):
            self.applied.add(report.nodeid)
        if json_objects(props, UNNEEDED_WAIVER_PROPERTY):
            self.unneeded.add(report.nodeid)

    def summary(self) -> dict[str, Any]:
        """The verdict's "waivers"."""
        return {"dir": str(self.directory), "files": [Path(f).name for f in self.waivers.files],
                "entries": len(self.waivers), "applied": len(self.applied), "no_longer_needed": len(self.unneeded)}


__all__ = ["WaiverRun", "first_line", "no_longer_needed_message", "waivable", "waived_message", "waiver_property"]
