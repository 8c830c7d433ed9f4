"""THE outcome classifier: what one test's result is, for every reader of results (plain Python).

The verdict (verdict.py), the validation ledger (ledger.py), the baselines' bookkeeping
(baseline_run.py) and the Allure categories (categories.json, from :data:`CATEGORIES`) all
judge a test here, so they cannot disagree.

Status (:func:`classify`, one pytest phase report at a time):

* ``passed``; a pass that recorded SHOULD warnings is still passed (``Outcome.label`` says
  "warning"), warnings never fail a run;
* ``failed``: the test's call failed with an assertion (a MUST check, ``assert``,
  ``pytest.fail``): a conformance verdict about Datadog;
* ``broken``: the harness could not reach a verdict: any other exception in the call (Datadog
  unreachable, login failed, a harness bug), or a failure in setup or teardown;
* ``skipped``, and ``waived``: a skip whose message starts with ``WAIVED`` (a waiver turned an
  expected failure into one, see waiver_run.py).

:class:`TestPhases` folds a test's setup, call and teardown into the test's outcome.

Category: the Allure category the result falls in (:func:`categorize`, first match, as Allure 3
does) from the status Allure gives it and the message Allure shows (``excinfo.exconly()``).

One case where Allure's status is not this one: an *assertion* raised in setup (a fixture's
check) is broken here and in the verdict, while allure-pytest, which decides Allure's statuses,
calls it failed ("Conformance failure").
"""
from __future__ import annotations

import re
import sys
import traceback
from dataclasses import dataclass, replace
from typing import Any

from harness.results.properties import OUTCOME_PROPERTY, WARNING_PROPERTY, Properties, values

PASSED, FAILED, BROKEN, SKIPPED, WAIVED = "passed", "failed", "broken", "skipped", "waived"
STATUSES = (PASSED, FAILED, BROKEN, SKIPPED, WAIVED)
WAIVED_PREFIX = "WAIVED"  # how a waiver's skip message starts (harness/results/waivers.py)

WAIVED_CATEGORY = "Waived"
LOGIN_FAILED = "Login failed"
UNREACHABLE = "Datadog unreachable or 5xx"
HARNESS_ERROR = "Harness error"
CONFORMANCE_FAILURE = "Conformance failure"
CONFIGURATION = "Configuration"
PREREQUISITE_FAILED = "Prerequisite failed"
ENDPOINT_ABSENT = "Endpoint absent on this target"
ABSENT_TEXT = "endpoint absent on this target"  # how EndpointAbsent and the owning test's check say it

# Regexes must work both as Java full matches (Allure 2) and JavaScript `RegExp.test`
# (Allure 3): so `[\s\S]*` instead of DOTALL, no inline flags, no Python-only syntax, and
# a leading `^` so that a search (JS, Python) is tried at position 0 only (linear time).
# allure-pytest's message is `excinfo.exconly()`: "core.errors.LoginFailed: ...",
# "Skipped: WAIVED ...", "Failed: ...", "XFAIL reason\n\n...".
_WAIVED = r"^(?:Skipped: |Failed: |XFAIL )?" + WAIVED_PREFIX + r"[\s\S]*"
_LOGIN = r"^[\s\S]*\bLoginFailed\b[\s\S]*"
_UNREACHABLE = (
    r"^[\s\S]*(?:\bTargetUnavailable\b|\bhttpx\.(?:ConnectError|ConnectTimeout|ReadTimeout|WriteTimeout"
    r"|PoolTimeout|TimeoutException|ReadError|RemoteProtocolError)\b|net::ERR_"
    # a page that never loads (Playwright's navigation timeouts; a locator timeout is not one of them)
    r"|\bTimeoutError: (?:Page|Frame)\.(?:goto|reload|go_back|go_forward|wait_for_load_state|wait_for_url"
    r"|wait_for_navigation|expect_navigation): Timeout)[\s\S]*"
)
_CONFIGURATION = r"^[\s\S]*\b(?:ConfigError|ClientAuthRefused)\b[\s\S]*"
_PREREQUISITE = r"^[\s\S]*\bPrerequisiteFailed\b[\s\S]*"
# a documented endpoint answering 404: broken (EndpointAbsent) where another test's subject needed it, failed
# (a named check saying "endpoint absent on this target") in the test that owns the endpoint
_ABSENT = r"^[\s\S]*(?:\bEndpointAbsent\b|\b" + ABSENT_TEXT.replace(" ", r"\s") + r"\b)[\s\S]*"
# Allure 2 puts a result in every matching category; Allure 3 in the first one.  The
# negative look-ahead keeps the catch-all categories exclusive under both.
_NOT_ABOVE = r"^(?!" + "|".join([_WAIVED, _LOGIN, _UNREACHABLE, _CONFIGURATION, _ABSENT, _PREREQUISITE]) + r")[\s\S]*"

#: Allure categories, first match wins (Allure 3); written to categories.json (report.py) and
#: read by allurerc.mjs.
CATEGORIES: list[dict[str, Any]] = [
    {"name": WAIVED_CATEGORY, "matchedStatuses": [SKIPPED, FAILED, BROKEN], "messageRegex": _WAIVED},
    {"name": LOGIN_FAILED, "matchedStatuses": [BROKEN, FAILED], "messageRegex": _LOGIN},
    {"name": UNREACHABLE, "matchedStatuses": [BROKEN, FAILED], "messageRegex": _UNREACHABLE},
    # the target's configuration (e.g. a wrong client secret), not Datadog
    {"name": CONFIGURATION, "matchedStatuses": [BROKEN], "messageRegex": _CONFIGURATION},
    # a documented endpoint that this target does not have (before "Prerequisite failed": EndpointAbsent is one)
    {"name": ENDPOINT_ABSENT, "matchedStatuses": [BROKEN, FAILED], "messageRegex": _ABSENT},
    # a test whose prerequisite (owned and reported by another test) failed
    {"name": PREREQUISITE_FAILED, "matchedStatuses": [BROKEN], "messageRegex": _PREREQUISITE},
    {"name": HARNESS_ERROR, "matchedStatuses": [BROKEN], "messageRegex": _NOT_ABOVE},
    {"name": CONFORMANCE_FAILURE, "matchedStatuses": [FAILED], "messageRegex": _NOT_ABOVE},
]
_COMPILED = [(c["name"], set(c["matchedStatuses"]), re.compile(c["messageRegex"])) for c in CATEGORIES]


def categorize(status: str, message: str | None) -> str | None:
    """The category an Allure result (status, message) falls in (first match, as Allure 3 does), or None."""
    for name, statuses, regex in _COMPILED:
        if status in statuses and regex.search(message or ""):
            return name
    return None


@dataclass(frozen=True)
class Outcome:
    status: str  # one of STATUSES
    category: str | None = None  # one of CATEGORIES' names (None: passed, or a plain skip)
    warnings: int = 0  # SHOULD warnings the test recorded

    @property
    def allure_status(self) -> str:
        """The status Allure shows (it has no "waived": a waived test is a skip in the Waived category)."""
        return SKIPPED if self.status == WAIVED else self.status

    @property
    def label(self) -> str:
        return "warning" if self.status == PASSED and self.warnings else self.status


def is_assertion(error: BaseException) -> bool:
    """A failed check rather than a crash: an AssertionError (ConformanceFailure is one) or ``pytest.fail``,
    the same rule allure-pytest applies to tell *failed* from *broken*."""
    if isinstance(error, AssertionError):
        return True
    # pytest's Failed, without importing pytest here: if pytest is not loaded, error cannot be one
    pytest = sys.modules.get("pytest")
    return pytest is not None and isinstance(error, pytest.fail.Exception)


def exception_message(error: BaseException) -> str:
    """What ``ExceptionInfo.exconly()`` shows (and Allure puts in statusDetails.message)."""
    return "".join(traceback.format_exception_only(type(error), error)).rstrip()


def classify(when: str, result: str, error: BaseException | None = None, message: str | None = None,
             properties: Properties = ()) -> Outcome:
    """One phase's outcome.

    when: "setup" | "call" | "teardown" (anything else, e.g. xdist's "???" for a crashed worker,
    counts as outside the call); result: pytest's "passed" | "failed" | "skipped"; error: the
    exception, where it is known (the process that ran the test); message: the text Allure shows
    (default: from error); properties: the report's user properties (a worker's "broken" mark,
    the SHOULD warnings).
    """
    if message is None and error is not None:
        message = exception_message(error)
    warnings = len(values(properties, WARNING_PROPERTY))
    if result == PASSED:
        return Outcome(PASSED, None, warnings)
    if result == SKIPPED:
        category = categorize(SKIPPED, message)
        return Outcome(WAIVED if category == WAIVED_CATEGORY else SKIPPED, category, warnings)
    marked_broken = BROKEN in values(properties, OUTCOME_PROPERTY)
    if marked_broken or when != "call" or (error is not None and not is_assertion(error)):
        status = BROKEN
    else:
        status = FAILED
    return Outcome(status, categorize(status, message), warnings)


def report_message(report: Any) -> str | None:
    """The message Allure shows for a pytest report's failure or skip, read from its longrepr.

    (Duck-typed: a TestReport, or the copy xdist rebuilds on the controller.)
    """
    longrepr = getattr(report, "longrepr", None)
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, lineno, "Skipped: reason")
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None) is not None:
        return crash.message
    text = str(longrepr)
    # a flattened traceback (redaction gave up its structure): its "E   " lines are the exception
    error_lines = [line[4:] for line in text.splitlines() if line.startswith("E   ")]
    return "\n".join(error_lines) if error_lines else text


def classify_report(report: Any) -> Outcome:
    """:func:`classify` for a pytest report where the exception is gone (the xdist controller, after
    the run): duck-typed, reads when, outcome, longrepr and user_properties."""
    return classify(report.when, report.outcome, None, report_message(report),
                    list(getattr(report, "user_properties", ()) or ()))


@dataclass
class TestPhases:
    """Folds one test's phase outcomes into the test's outcome: a failure outside the call makes the
    test broken whatever its call did; a skip in setup is the test's result."""

    call: Outcome | None = None
    error: Outcome | None = None  # the first setup/teardown failure (or a crashed/timed-out process)
    warnings: int = 0  # user properties accumulate over the phases: the fullest count

    __test__ = False  # not a pytest test class, whatever its name

    def add(self, when: str, outcome: Outcome) -> None:
        self.warnings = max(self.warnings, outcome.warnings)
        if when == "call":
            self.call = outcome
        elif outcome.status == BROKEN:
            self.error = self.error or outcome
        elif when == "setup" and outcome.status in (SKIPPED, WAIVED):
            self.call = outcome

    @property
    def outcome(self) -> Outcome | None:
        """None until the test reached a result (an interrupted run)."""
        if self.call is not None and self.call.status == BROKEN:
            found = self.call
        else:
            found = self.error or self.call
        return None if found is None else replace(found, warnings=self.warnings)


__all__ = ["ABSENT_TEXT", "BROKEN", "CATEGORIES", "CONFORMANCE_FAILURE", "ENDPOINT_ABSENT", "FAILED", "HARNESS_ERROR",
           "LOGIN_FAILED", "PASSED",
           "SKIPPED", "STATUSES", "UNREACHABLE", "WAIVED", "WAIVED_CATEGORY", "WAIVED_PREFIX", "Outcome",
           "TestPhases", "categorize", "classify", "classify_report", "exception_message", "is_assertion",
           "report_message"]
