"""Continue-on-failure (harness/checks/registry.py `collecting`): inside one test, independent checks keep
running after a MUST failure, each failed check's step is red with its own message, the test fails once
with a message that lists every failed requirement (and starts with the first one's, so every red step's
text is part of it), dependent checks are skipped with the reason, and a check that cannot observe its
subject is a skipped step with a warning, never a pass."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from core.errors import ConformanceFailure
from harness.checks import integration
from harness.checks.registry import (MUST, SHOULD, Check, Recorder, StepSkipped, Unobservable, collecting,
                                     skipped_step, verify)
from harness.results.outcome import CONFORMANCE_FAILURE, FAILED, classify
from tests.harness.test_integration_mode import AUTH, REDIRECT, flow


class Steps(Recorder):
    """Records every step with how it ended: passed, failed (message) or skipped (reason)."""

    def __init__(self):
        self.steps: list[tuple[str, str, str]] = []
        self.warnings: list[str] = []

    @contextmanager
    def step(self, title):
        try:
            yield
        except StepSkipped as exc:
            self.steps.append((title, "skipped", str(exc)))
            raise
        except BaseException as exc:
            self.steps.append((title, "failed", str(exc)))
            raise
        else:
            self.steps.append((title, "passed", ""))

    def warning(self, text):
        self.warnings.append(text)

    def status(self, fragment: str) -> list[str]:
        return [status for title, status, _ in self.steps if fragment in title]


# Check objects of the test's own, not registered (the registry holds only harness.checks' checks)
first_req = Check("first_req", "TEST-1", "first requirement", MUST, lambda ok: None if ok else "first is broken")
second_req = Check("second_req", "TEST-2", "second requirement", MUST, lambda ok: None if ok else "second is broken")
third_req = Check("third_req", "TEST-3", "depends on the first", MUST, lambda: None)
hidden_req = Check("hidden_req", "TEST-4", "a subject this target cannot show", MUST,
                   lambda value: Unobservable("this target does not show it") if value is None else None)
should_req = Check("should_req", "TEST-5", "a SHOULD", SHOULD, lambda ok: None if ok else "should be better")


def test_every_failure_is_named_and_the_test_fails_once():
    rec = Steps()
    with pytest.raises(ConformanceFailure) as info:
        with collecting(rec):
            assert verify(rec, first_req, False) == "first is broken"
            verify(rec, should_req, False)
            verify(rec, second_req, False)
            verify(rec, third_req, needs=first_req)
            verify(rec, first_req, True, needs=second_req)  # a later check needing a failed one: skipped too
    message = str(info.value)
    assert message.startswith("[TEST-1] first requirement: first is broken")
    assert "2 requirements failed" in message and "[TEST-2] second requirement: second is broken" in message
    assert "depends on [TEST-1] first_req, which failed, so not checked: [TEST-3] depends on the first" in message
    assert "depends on [TEST-2] second_req, which failed, so not checked: [TEST-1] first requirement" in message
    assert "\n" not in message
    red = [(t, m) for t, s, m in rec.steps if s == "failed"]
    assert [t for t, _ in red] == ["[TEST-1] first requirement", "[TEST-2] second requirement"]
    assert all(m in message for _, m in red)  # what tests/e2e/test_verdict_matches_allure.py requires
    assert rec.status("TEST-3") == ["skipped"] and rec.status("TEST-5") == ["passed"]
    assert rec.warnings == ["[TEST-5] a SHOULD: should be better"]
    # the outcome classifier sees one conformance failure
    outcome = classify("call", "failed", info.value)
    assert (outcome.status, outcome.category) == (FAILED, CONFORMANCE_FAILURE)


def test_nothing_failed_nothing_raised_and_dependents_run():
    rec = Steps()
    with collecting(rec) as collection:
        verify(rec, first_req, True)
        verify(rec, third_req, needs=[first_req])
    assert not collection.failures and rec.status("TEST-3") == ["passed"]
    assert rec.collection is None  # the mode ends with its block


def test_outside_collecting_a_must_failure_still_stops_the_test():
    rec = Steps()
    with pytest.raises(ConformanceFailure, match=r"^\[TEST-1\] first requirement: first is broken$"):
        verify(rec, first_req, False)
        verify(rec, second_req, False)
    assert rec.status("TEST-2") == []


def test_unobservable_is_a_skipped_step_and_a_warning_never_a_pass():
    for wrap in (False, True):
        rec = Steps()
        if wrap:
            with collecting(rec):
                result = verify(rec, hidden_req, None)
                verify(rec, third_req, needs=hidden_req)
        else:
            result = verify(rec, hidden_req, None)
        assert isinstance(result, Unobservable) and result == "this target does not show it"
        assert rec.status("TEST-4") == ["skipped"]
        assert rec.warnings == ["[TEST-4] a subject this target cannot show: not observable on this target: "
                                "this target does not show it"]
        if wrap:  # a check needing it is not judged either
            assert rec.status("TEST-3") == ["skipped"]


def test_a_crash_after_failures_still_names_them():
    rec = Steps()
    with pytest.raises(ConformanceFailure) as info:
        with collecting(rec):
            verify(rec, first_req, False)
            raise RuntimeError("the browser went away")
    assert str(info.value).startswith("[TEST-1] first requirement: first is broken")
    assert "then the test stopped: RuntimeError: the browser went away" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_crash_without_failures_is_the_crash():
    rec = Steps()
    with pytest.raises(RuntimeError):
        with collecting(rec):
            verify(rec, first_req, True)
            raise RuntimeError("boom")


def test_nested_blocks_share_the_outer_one():
    rec = Steps()
    with pytest.raises(ConformanceFailure) as info:
        with collecting(rec):
            with collecting(rec):
                verify(rec, first_req, False)
            verify(rec, second_req, False)  # still runs: the inner block raised nothing
    assert "[TEST-2]" in str(info.value)


def test_skipped_step_is_shown_with_its_reason():
    rec = Steps()
    skipped_step(rec, "[X] something", "no evidence")
    assert rec.steps == [("[X] something", "skipped", "no evidence")]


def test_a_loop_on_error_still_shows_the_no_loop_check():
    """The issue's example: after Deny the partner loops back to Datadog. Both the refusal page and the
    no-loop requirement are named, in one failure."""
    looping = flow(AUTH, "https://p.example/start", AUTH, outcome="stuck")
    rec = Steps()
    with pytest.raises(ConformanceFailure) as info:
        with collecting(rec):
            verify(rec, integration.partner_refuses_after_deny, looping)
            verify(rec, integration.partner_no_loop, looping)
    message = str(info.value)
    assert "after Deny the partner shows an error page" in message and "(no loop)" in message
    assert "2 authorize requests in one flow" in message


def test_a_wrong_region_token_exchange_still_reaches_the_token_host_check():
    stuck = flow(AUTH, REDIRECT, outcome="failure")
    rec = Steps()
    with pytest.raises(ConformanceFailure) as info:
        with collecting(rec):
            verify(rec, integration.partner_reached_success, stuck)
            verify(rec, integration.token_exchange_host, ["api.datadoghq.com"], "api.datadoghq.eu")
    assert "token requests went to api.datadoghq.com, expected api.datadoghq.eu" in str(info.value)
    assert rec.status("ends on its success page") == ["failed"]


def test_no_authorize_request_skips_what_needs_one():
    nothing = flow()  # the partner never handed over to Datadog
    rec = Steps()
    with pytest.raises(ConformanceFailure) as info:
        with collecting(rec):
            verify(rec, integration.partner_reaches_authorize, nothing)
            verify(rec, integration.partner_uses_pkce, nothing, needs=integration.partner_reaches_authorize)
    assert rec.status("PKCE") == ["skipped"]
    assert "never sent the browser to a Datadog authorize endpoint" in str(info.value)
    assert "partner_reaches_authorize, which failed, so not checked: [RFC7636-4.3]" in str(info.value)


def test_severity_override_still_applies_in_collecting():
    rec = Steps()
    with collecting(rec) as collection:
        verify(rec, first_req, False, severity=SHOULD)
    assert not collection.failures and rec.warnings
    with pytest.raises(ConformanceFailure):
        with collecting(rec):
            verify(rec, should_req, False, severity=MUST)
