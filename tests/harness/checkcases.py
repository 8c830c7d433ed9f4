"""Shared scaffolding for the check-registry unit tests: every check has inputs where it holds and
inputs where it fails, and a failure is one non-empty line."""
from __future__ import annotations

import pytest

from harness.checks.registry import REGISTRY


def checks_of(module: str) -> set[str]:
    return {name for name, c in REGISTRY.items() if c.func.__module__ == module}


def case_params(cases: dict, kind: str) -> list:
    return [pytest.param(name, args, kwargs, id=f"{name}-{i}")
            for name, cases_ in cases.items() for i, (args, kwargs) in enumerate(cases_[kind])]


def assert_cases_cover(cases: dict, module: str) -> None:
    assert set(cases) == checks_of(module), f"add pass and fail cases for every check in {module}"
    for name, c in cases.items():
        assert c["pass"] and c["fail"], name


def assert_holds(name: str, args, kwargs) -> None:
    assert REGISTRY[name].func(*args, **kwargs) is None


def assert_fails_one_line(name: str, args, kwargs) -> str:
    message = REGISTRY[name].func(*args, **kwargs)
    assert isinstance(message, str) and message.strip(), f"{name} did not fail"
    assert "\n" not in message
    return message
