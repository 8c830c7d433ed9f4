"""Shared scaffolding for the check unit tests: every check of an endpoint module has inputs where it
holds and inputs where it fails, and a failure is one non-empty line. Case tables are keyed by the
Check objects themselves (`{token.token_ok: {"pass": [...], "fail": [...]}}`)."""
from __future__ import annotations

from types import ModuleType

import pytest

from harness.checks.registry import REGISTRY, Check


def checks_of(*modules: ModuleType | str) -> set[Check]:
    """Every registered check defined in the given endpoint modules (module objects or dotted names)."""
    names = {m if isinstance(m, str) else m.__name__ for m in modules}
    return {c for c in REGISTRY.values() if c.module in names}


def case_params(cases: dict[Check, dict], kind: str) -> list:
    return [pytest.param(check, args, kwargs, id=f"{check.name}-{i}")
            for check, cases_ in cases.items() for i, (args, kwargs) in enumerate(cases_[kind])]


def assert_cases_cover(cases: dict[Check, dict], *modules: ModuleType | str) -> None:
    expected = checks_of(*modules)
    assert expected, f"no checks registered for {modules}"
    missing = sorted(c.name for c in expected - set(cases))
    foreign = sorted(c.name for c in set(cases) - expected)
    assert not missing, f"add pass and fail cases for {missing}"
    assert not foreign, f"cases for checks outside {[getattr(m, '__name__', m) for m in modules]}: {foreign}"
    for check, c in cases.items():
        assert c["pass"] and c["fail"], check.name


def assert_holds(check: Check, args, kwargs) -> None:
    assert check(*args, **kwargs) is None


def assert_fails_one_line(check: Check, args, kwargs) -> str:
    message = check(*args, **kwargs)
    assert isinstance(message, str) and message.strip(), f"{check.name} did not fail"
    assert "\n" not in message
    return message
