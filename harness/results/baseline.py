"""CHARACTERIZE baselines: what each site was last seen doing where Datadog's docs are silent
(plain Python, no pytest).

One JSON file per site, ``<baseline dir>/<SITE>.json``::

    {
      "schema": 1,
      "site": "US1",
      "target_mode": "emulator",          # or "datadog": the kind of run that recorded it
      "updated_at": "2026-01-31T02:00:00Z",
      "observations": {
        "suites/test_refresh.py::test_refresh_returns_working_access_token[US1-sandbox]": {
          "DD-REFRESH-ROTATION": "new refresh token",
          "DD-REFRESH-OLD-TOKEN-AFTER-ROTATION": "status 200"
        }
      }
    }

A run compares every observation with the stored value: unchanged (nothing to say), changed
(a warning ``[CHANGED] <key>: was X, now Y``) or new (no stored value: information only).
A baseline recorded against the other kind of target (emulator vs real Datadog) is not
compared: every observation is then "new". ``--update-baseline`` rewrites the files
(:func:`write_site`): the observations of every test that ran replace its stored ones; tests
that did not run keep theirs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from core.errors import ConfigError
from core.redact import REDACTOR

SCHEMA = 1
NEW, UNCHANGED, CHANGED = "new", "unchanged", "changed"
NOT_OBSERVED = "(not observed)"


def normalise(value: Any) -> Any:
    """The JSON form of an observed value, redacted (what is stored and what is compared)."""
    try:
        value = json.loads(json.dumps(value, sort_keys=True, default=str))
    except (TypeError, ValueError):
        value = str(value)
    return REDACTOR.redact_obj(value)


def show(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def change_message(key: str, was: Any, now: Any) -> str:
    return f"[CHANGED] {key}: was {show(was)}, now {show(now)}"


@dataclass(frozen=True)
class Comparison:
    status: str  # new | unchanged | changed
    was: Any = None
    now: Any = None
    note: str = ""

    def warning(self, key: str) -> str | None:
        return change_message(key, self.was, self.now) if self.status == CHANGED else None

    def describe(self, key: str) -> str:
        if self.status == CHANGED:
            return change_message(key, self.was, self.now)
        if self.status == UNCHANGED:
            return f"{key}: unchanged from the baseline"
        return f"{key}: new (no baseline value{'; ' + self.note if self.note else ''})"


@dataclass
class Baseline:
    site: str
    path: Path
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)
    target_mode: str | None = None
    updated_at: str | None = None
    exists: bool = False

    def comparable(self, target_mode: str | None) -> bool:
        return self.exists and (self.target_mode is None or target_mode is None or self.target_mode == target_mode)

    def compare(self, test: str, key: str, value: Any, target_mode: str | None = None) -> Comparison:
        now = normalise(value)
        if not self.exists:
            return Comparison(NEW, now=now, note=f"{self.path.name} does not exist yet")
        if not self.comparable(target_mode):
            return Comparison(NEW, now=now, note=f"{self.path.name} was recorded against {self.target_mode}")
        stored = self.observations.get(test, {})
        if key not in stored:
            return Comparison(NEW, now=now)
        was = stored[key]
        return Comparison(UNCHANGED if was == now else CHANGED, was=was, now=now)

    def missing(self, test: str, observed_keys: Iterable[str], target_mode: str | None = None) -> dict[str, Any]:
        """Stored keys of the test that this run did not observe (only meaningful for a test that passed)."""
        if not self.comparable(target_mode):
            return {}
        seen = set(observed_keys)
        return {k: v for k, v in self.observations.get(test, {}).items() if k not in seen}


def baseline_path(directory: Path | str, site: str) -> Path:
    return Path(directory) / f"{site}.json"


def load_site(directory: Path | str, site: str) -> Baseline:
    """The site's baseline; an absent file is an empty baseline, a malformed one a ConfigError."""
    path = baseline_path(directory, site)
    if not path.exists():
        return Baseline(site, path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable baseline JSON file: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("observations", {}), dict):
        raise ConfigError(f"{path}: expected an object with 'observations': {{test id: {{key: value}}}}")
    if data.get("schema", SCHEMA) != SCHEMA:
        raise ConfigError(f"{path}: baseline schema {data.get('schema')!r} is not supported (expected {SCHEMA})")
    if data.get("site", site) != site:
        raise ConfigError(f"{path}: holds the baseline of {data.get('site')!r}, not {site!r}")
    observations = data.get("observations", {})
    for test, keys in observations.items():
        if not isinstance(keys, dict):
            raise ConfigError(f"{path}: observations[{test!r}] must be an object of key -> observed value")
    return Baseline(site, path, {str(t): dict(k) for t, k in observations.items()},
                    data.get("target_mode"), data.get("updated_at"), exists=True)


def load_sites(directory: Path | str, sites: Iterable[str]) -> dict[str, Baseline]:
    return {site: load_site(directory, site) for site in sorted(set(sites))}


def _iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def merge(stored: Mapping[str, Mapping[str, Any]], run: Mapping[str, Mapping[str, Any]],
          complete: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """The stored observations updated with this run's.

    For a test in ``complete`` (it passed: every observation it makes was made) the run's keys
    replace the stored ones; for the others, the run's keys are added or updated and the rest kept.
    """
    complete = set(complete)
    merged = {t: dict(k) for t, k in stored.items()}
    for test, keys in run.items():
        if test in complete:
            merged[test] = {k: normalise(v) for k, v in keys.items()}
        else:
            merged.setdefault(test, {}).update({k: normalise(v) for k, v in keys.items()})
    return {t: dict(sorted(k.items())) for t, k in sorted(merged.items()) if k}


def write_site(directory: Path | str, site: str, run: Mapping[str, Mapping[str, Any]],
               complete: Iterable[str] = (), target_mode: str | None = None) -> Path:
    """Merge this run's observations into ``<directory>/<site>.json`` (atomically) and return its path."""
    directory = Path(directory)
    current = load_site(directory, site)
    stored = current.observations if current.comparable(target_mode) else {}
    data = {
        "schema": SCHEMA,
        "site": site,
        "target_mode": target_mode,
        "updated_at": _iso_now(),
        "observations": merge(stored, run, complete),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = baseline_path(directory, site)
    tmp = path.with_name(path.name + ".tmp")
    text = REDACTOR.redact_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


__all__ = ["Baseline", "Comparison", "CHANGED", "NEW", "NOT_OBSERVED", "SCHEMA", "UNCHANGED", "baseline_path",
           "change_message", "load_site", "load_sites", "merge", "normalise", "show", "write_site"]
