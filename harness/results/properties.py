"""The user properties a test leaves on its pytest reports (plain Python, no pytest).

A test's reports are all that crosses from an xdist worker to the controller, so what the
results layer needs to know about a test travels as ``(name, value)`` pairs in
``report.user_properties``. These are the names (fixtures/keys.py re-exports them for the
plugins and suites) and small readers of such lists.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

TARGET_PROPERTY = "ddoauth_target"  # the target's name: the verdict's and the ledger's grouping
WARNING_PROPERTY = "ddoauth_warning"  # one SHOULD warning (text)
OUTCOME_PROPERTY = "ddoauth_outcome"  # "broken": decided by the worker, which saw the exception
WAIVED_PROPERTY = "ddoauth_waived"  # the waiver (JSON) that turned a failure into a skip
UNNEEDED_WAIVER_PROPERTY = "ddoauth_waiver_unneeded"  # the waiver (JSON) of a test that passed anyway
BASELINE_PROPERTY = "ddoauth_baseline"  # one CHARACTERIZE observation compared with the baseline (JSON)
OBSERVATION_PROPERTY = "ddoauth_observation"  # one observation as text, for JUnit readers
CONSENT_SCOPES_PROPERTY = "ddoauth_consent_scopes"  # the scopes the consent page listed (space separated)

Properties = Iterable[tuple[str, Any]]


def values(props: Properties, name: str) -> list[Any]:
    return [value for key, value in props if key == name]


def last(props: Properties, name: str, default: Any = None) -> Any:
    found = values(props, name)
    return found[-1] if found else default


def json_objects(props: Properties, name: str) -> list[dict[str, Any]]:
    """The values of ``name`` that are JSON objects (or dicts), in order; anything else is skipped."""
    out = []
    for value in values(props, name):
        try:
            data = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


__all__ = ["BASELINE_PROPERTY", "CONSENT_SCOPES_PROPERTY", "OBSERVATION_PROPERTY", "OUTCOME_PROPERTY",
           "TARGET_PROPERTY", "UNNEEDED_WAIVER_PROPERTY", "WAIVED_PROPERTY", "WARNING_PROPERTY", "Properties",
           "json_objects", "last", "values"]
