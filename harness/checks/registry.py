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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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


class Recorder:
    """Where verify() reports steps, warnings and observations (the pytest layer implements it)."""

    def step(self, title: str):  # context manager
        from contextlib import nullcontext
        return nullcontext()

    def link(self, url: str, name: str) -> None: ...

    def warning(self, text: str) -> None: ...

    def observe(self, key: str, value: Any) -> None: ...


def verify(recorder: Recorder, check: Check, *args, severity: str | None = None, **kwargs) -> str | None:
    """Run `check(*args, **kwargs)` as one report step and apply its severity (or `severity`, when the
    caller raises or lowers it for this use)."""
    if not isinstance(check, Check):
        hint = f"harness.checks.<endpoint>.{check}" if isinstance(check, str) else "a Check"
        raise TypeError(f"verify() takes a Check object (e.g. harness.checks.token.token_ok), not "
                        f"{type(check).__name__} {check!r}: pass {hint}")
    c = check
    level = severity or c.severity
    # Everything happens inside the step: a MUST failure raised here fails the step itself (red, with
    # the message), not only the test after a green step.
    with recorder.step(f"[{c.requirement}] {c.title}"):
        recorder.link(c.link, c.requirement)
        failure = c.func(*args, **kwargs)
        if failure is None:
            if level == CHARACTERIZE:  # recorded either way: the baseline flags a change in both directions
                recorder.observe(c.requirement, HOLDS)
            return None
        message = f"[{c.requirement}] {c.title}: {failure}"
        if level == MUST:
            raise ConformanceFailure(message)
        if level == SHOULD:
            recorder.warning(message)
        else:
            recorder.observe(c.requirement, failure)
        return failure
