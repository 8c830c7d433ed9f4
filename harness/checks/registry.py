"""The check machinery: severities, requirement links, `Check`, the `@check` decorator, `verify()`.

A check is a small function enforcing one requirement with an id, a link and a severity. It lives in
the module of its endpoint (harness/checks/<endpoint>.py); `@check(...)` turns the function into a
`Check` object (still callable like the function) and registers it in REGISTRY by name. Callers use
the object: `verify(recorder, token.token_ok, ex)`. Importing `harness.checks` registers every check.

A check returns None when the requirement holds, or a one-line failure message. `verify()`
runs it inside one report step and applies the severity:
  MUST         -> ConformanceFailure (the test fails)
  SHOULD       -> a warning recorded on the test and in the verdict
  CHARACTERIZE -> the observation is recorded (Datadog's docs are silent): the failure message, or
                  "holds"; compared with the site's baseline (fixtures/baselines.py); never fails by itself
A check that cannot observe its subject on this target returns `Unobservable(reason)`: the step is
skipped with the reason and a warning is recorded (it never counts as a pass, whatever the severity).

Continue-on-failure (as the OpenID Foundation's conformance suite runs its conditions): inside
`with collecting(recorder):` a MUST failure still fails its own step (red, with its message) but the test
goes on; every independent check runs, and the block's end raises ONE ConformanceFailure listing every
failed requirement (its text starts with the first failure's message, so each red step's message is part
of the test's). A check given `needs=` (checks it depends on) is skipped, with that reason, when one of
them failed, was skipped or could not be observed in this block.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from core.errors import ConformanceFailure

MUST, SHOULD, CHARACTERIZE = "MUST", "SHOULD", "CHARACTERIZE"
HOLDS = "holds"  # what a CHARACTERIZE check whose expectation is met records as its observation

DD_DOCS = {
    "DD-ENDPOINTS": "https://docs.datadoghq.com/extend/authorization/oauth2_endpoints/",
    "DD-OAUTH": "https://docs.datadoghq.com/extend/authorization/oauth2_in_datadog/",
    "DD-TROUBLESHOOT": "https://docs.datadoghq.com/developers/integrations/api_integration/#troubleshooting",
    "DD-PUBLISH": "https://docs.datadoghq.com/developers/integrations/oauth_for_integrations/",
    "DD-SCOPES": "https://docs.datadoghq.com/api/latest/scopes/",
    "DD-RATELIMIT": "https://docs.datadoghq.com/api/latest/rate-limits/",
    "DD-VALIDATE": "https://docs.datadoghq.com/api/latest/authentication/validate-api-key/",
}


def requirement_link(req_id: str) -> str:
    """RFC6749-4.1.2 -> the RFC section; DD-... -> the Datadog doc page it comes from."""
    if req_id.startswith("RFC"):
        number, _, section = req_id[3:].partition("-")
        anchor = f"#section-{section}" if section else ""
        return f"https://www.rfc-editor.org/rfc/rfc{number}{anchor}"
    for prefix, url in DD_DOCS.items():
        if req_id.startswith(prefix):
            return url
    return DD_DOCS["DD-ENDPOINTS"]


@dataclass(frozen=True)
class Check:
    name: str
    requirement: str
    title: str
    severity: str
    func: Callable[..., str | None]

    def __call__(self, *args, **kwargs) -> str | None:
        """The check itself, without a report step or a severity: None or the failure message."""
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Check {self.module}.{self.name} [{self.requirement}] {self.severity}>"

    @property
    def module(self) -> str:
        """The module that defines the check, e.g. harness.checks.token."""
        return self.func.__module__

    @property
    def link(self) -> str:
        return requirement_link(self.requirement)


REGISTRY: dict[str, Check] = {}


def check(requirement: str, title: str, severity: str = MUST) -> Callable[[Callable[..., str | None]], Check]:
    """Decorator: the function becomes a `Check` (returned, and registered in REGISTRY by its name).
    Check names are unique across every endpoint module: a second check of the same name is refused."""
    if severity not in (MUST, SHOULD, CHARACTERIZE):
        raise ValueError(f"severity {severity!r} is not one of {MUST}, {SHOULD}, {CHARACTERIZE}")

    def register(func: Callable[..., str | None]) -> Check:
        c = Check(func.__name__, requirement, title, severity, func)
        known = REGISTRY.get(c.name)
        # the same function defined again (its module re-imported) replaces itself; anything else is a clash
        if known is not None and (known.module, known.func.__qualname__) != (c.module, func.__qualname__):
            raise ValueError(f"duplicate check name {c.name!r}: defined in {known.module} and in {c.module}")
        REGISTRY[c.name] = c
        return c
    return register


class Unobservable(str):
    """What a check returns when it cannot see its subject on this target (the reason, one line): verify()
    records a skipped step and a warning, never a pass."""


class StepSkipped(Exception):
    """Raised inside a step to mark it skipped (the base Recorder's way; the pytest layer uses pytest's skip)."""


class Recorder:
    """Where verify() reports steps, warnings and observations (the pytest layer implements it)."""

    collection: "Collection | None" = None  # set by collecting(): continue-on-failure is on

    def step(self, title: str):  # context manager
        from contextlib import nullcontext
        return nullcontext()

    def skip_signal(self, reason: str) -> BaseException:
        """The exception that, raised inside step(), makes the report show that step as skipped with `reason`."""
        return StepSkipped(reason)

    def link(self, url: str, name: str) -> None: ...

    def warning(self, text: str) -> None: ...

    def observe(self, key: str, value: Any) -> None: ...


def skipped_step(recorder: Recorder, title: str, reason: str) -> None:
    """A step that did not run, shown as skipped with its reason."""
    signal = recorder.skip_signal(reason)
    try:
        with recorder.step(title):
            raise signal
    except BaseException as exc:
        if exc is not signal:
            raise


FAILED, SKIPPED, UNOBSERVABLE, PASSED = "failed", "skipped", "not observable", "passed"
_WHY = {FAILED: "failed", SKIPPED: "was not checked", UNOBSERVABLE: "could not be observed"}


@dataclass
class Collection:
    """What one `collecting()` block saw: every MUST failure (in order), the dependent checks it skipped,
    and the latest result of each check by name (what `needs=` consults)."""
    failures: list[str] = field(default_factory=list)  # "[REQ] title: message", as each red step says it
    skipped: dict[str, list[str]] = field(default_factory=dict)  # why -> "[REQ] title" of each check skipped so
    results: dict[str, str] = field(default_factory=dict)  # check name -> FAILED | SKIPPED | UNOBSERVABLE | PASSED

    def blocked_by(self, needs: Iterable["Check"]) -> str | None:
        """Why a check that needs `needs` cannot be judged here (None: it can)."""
        for need in needs:
            result = self.results.get(need.name)
            if result in _WHY:
                return f"not checked: it depends on [{need.requirement}] {need.name}, which {_WHY[result]}"
        return None

    def summary(self, stopped: BaseException | None = None) -> str:
        """One line: the first failure's own message first (each red step's text is part of it), then the rest."""
        text = self.failures[0]
        if len(self.failures) > 1:
            text += f" || {len(self.failures)} requirements failed; also: " + " || ".join(self.failures[1:])
        for why, titles in self.skipped.items():
            text += f" || {why.removeprefix('not checked: it ')}, so not checked: {'; '.join(titles)}"
        if stopped is not None:
            first = (str(stopped).splitlines() or [""])[0][:300]
            text += f" || then the test stopped: {type(stopped).__name__}: {first}"
        return text


@contextmanager
def collecting(recorder: Recorder) -> Iterator[Collection]:
    """Continue-on-failure for the block: MUST failures are collected, not raised, and the block's end
    raises one ConformanceFailure naming them all. Nested blocks share the outer one. When something
    else ends the block early (a crash, a skip) after failures were collected, the failures are still
    raised, naming what stopped the test."""
    if recorder.collection is not None:
        yield recorder.collection
        return
    collection = recorder.collection = Collection()
    try:
        yield collection
    except BaseException as exc:
        if not collection.failures or isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise ConformanceFailure(collection.summary(stopped=exc)) from exc
    finally:
        recorder.collection = None
    if collection.failures:
        raise ConformanceFailure(collection.summary())


def _as_tuple(needs) -> tuple:
    if needs is None:
        return ()
    return tuple(needs) if isinstance(needs, (list, tuple, set, frozenset)) else (needs,)


def verify(recorder: Recorder, check: Check, *args, severity: str | None = None, needs=None, **kwargs) -> str | None:
    """Run `check(*args, **kwargs)` as one report step and apply its severity (or `severity`, when the
    caller raises or lowers it for this use). `needs`: a Check (or several) this one depends on; inside
    collecting() it is skipped when one of them did not pass. Returns None when the requirement holds,
    else the failure message (an `Unobservable` reason when the subject could not be observed; in
    continue-on-failure mode a MUST failure's message too, after its step went red)."""
    if not isinstance(check, Check):
        hint = f"harness.checks.<endpoint>.{check}" if isinstance(check, str) else "a Check"
        raise TypeError(f"verify() takes a Check object (e.g. harness.checks.token.token_ok), not "
                        f"{type(check).__name__} {check!r}: pass {hint}")
    c = check
    level = severity or c.severity
    title = f"[{c.requirement}] {c.title}"
    collection = recorder.collection
    if collection is not None:
        blocked = collection.blocked_by(_as_tuple(needs))
        if blocked is not None:
            skipped_step(recorder, title, blocked)
            collection.skipped.setdefault(blocked, []).append(title)
            collection.results[c.name] = SKIPPED
            return Unobservable(blocked)
    try:
        failure = _run(recorder, c, level, title, args, kwargs)
    except ConformanceFailure as exc:
        if collection is None:
            raise
        collection.failures.append(str(exc))
        collection.results[c.name] = FAILED
        return str(exc).removeprefix(f"{title}: ")
    if collection is not None:
        collection.results[c.name] = UNOBSERVABLE if isinstance(failure, Unobservable) else PASSED
    return failure


def _run(recorder: Recorder, c: Check, level: str, title: str, args, kwargs) -> str | None:
    # Everything happens inside the step: a MUST failure raised here fails the step itself (red, with the
    # message), not only the test after a green step; an unobservable subject skips it.
    signal = None
    try:
        with recorder.step(title):
            recorder.link(c.link, c.requirement)
            failure = c.func(*args, **kwargs)
            if isinstance(failure, Unobservable):
                signal = recorder.skip_signal(f"not observable on this target: {failure}")
                raise signal
            if failure is None:
                if level == CHARACTERIZE:  # recorded either way: the baseline flags a change in both directions
                    recorder.observe(c.requirement, HOLDS)
                return None
            message = f"{title}: {failure}"
            if level == MUST:
                raise ConformanceFailure(message)
            if level == SHOULD:
                recorder.warning(message)
            else:
                recorder.observe(c.requirement, failure)
            return failure
    except BaseException as exc:
        if signal is None or exc is not signal:
            raise
    recorder.warning(f"{title}: not observable on this target: {failure}")
    return failure
