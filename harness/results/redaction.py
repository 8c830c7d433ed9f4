"""Redacting pytest reports in place, before anyone reads them (terminal, JUnit XML, xdist's
controller, allure-pytest).

Duck-typed (no pytest import): it knows the shapes of a report's ``longrepr`` (a string, a
skip's ``(path, lineno, reason)`` tuple, or a TerminalRepr tree of dataclasses), its
``sections`` and its ``user_properties``, and nothing else of pytest.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from core.redact import REDACTOR

_MAX_DEPTH = 50


def _redact_repr_tree(obj: Any, depth: int = 0) -> Any:
    """Redact the strings of a pytest TerminalRepr tree in place (keeps its formatting)."""
    if depth > _MAX_DEPTH:
        return obj
    if isinstance(obj, str):
        return REDACTOR.redact_text(obj)
    if isinstance(obj, list):
        obj[:] = [_redact_repr_tree(v, depth + 1) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(_redact_repr_tree(v, depth + 1) for v in obj)
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _redact_repr_tree(obj[k], depth + 1)
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name, None)
            new = _redact_repr_tree(value, depth + 1)
            if new is not value:
                object.__setattr__(obj, f.name, new)
    return obj


def redact_longrepr(longrepr: Any) -> Any:
    if longrepr is None:
        return None
    if isinstance(longrepr, str):
        return REDACTOR.redact_text(longrepr)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # skip: (path, lineno, reason)
        path, lineno, reason = longrepr
        return (path, lineno, REDACTOR.redact_text(str(reason)))
    try:
        _redact_repr_tree(longrepr)
        text = str(longrepr)
    except Exception:  # unknown repr type: fall back to its text
        return REDACTOR.redact_text(str(longrepr))
    redacted = REDACTOR.redact_text(text)
    # Something the per-fragment pass could not see (a secret split across fragments):
    # give up the structure and keep the redacted text.
    return longrepr if redacted == text else redacted


def redact_collect_report(report: Any) -> None:
    report.longrepr = redact_longrepr(report.longrepr)
    report.sections = [(title, REDACTOR.redact_text(content)) for title, content in report.sections]


def redact_test_report(report: Any) -> None:
    redact_collect_report(report)
    props = getattr(report, "user_properties", None)
    if props:
        report.user_properties = [
            (name, REDACTOR.redact_text(value) if isinstance(value, str) else value) for name, value in props
        ]


__all__ = ["redact_collect_report", "redact_longrepr", "redact_test_report"]
