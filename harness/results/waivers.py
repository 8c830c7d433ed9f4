"""Waivers: expected deviations as data, one YAML file per Datadog site (plain Python, no pytest).

``waivers/<SITE>.yaml`` (the directory is ``--waivers DIR``)::

    waivers:
      - test: "suites/test_errors_token.py::test_code_expires[US1-*]"
        reason: "DDOAUTH-12: the US1 sandbox keeps codes for 15 minutes"
        owner: "jane@partner.example"
        expires: 2026-03-31

A bare list of entries is accepted too. Each entry has exactly ``test``, ``reason``, ``owner``
and ``expires`` (YYYY-MM-DD; the waiver holds through that day, UTC).

``test`` is a pytest node id glob: ``*`` matches any run of characters and ``?`` one character;
everything else is literal, brackets included (``[US1-*]`` is the parameter part, not a
character class). A pattern without ``[`` also matches every parametrisation of the test:
``suites/test_token.py::test_token_response_fields`` waives ``...::test_token_response_fields[US1-sandbox]``.
A file only waives tests whose target is on that file's site.

Files that are not ``*.yaml``/``*.yml`` (this README, ``*.example``) are ignored; a YAML file
whose name is not a known site key is an error (a typo would silently waive nothing).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterable

import yaml

from core.errors import ConfigError
from harness.results.outcome import WAIVED_PREFIX  # what the classifier and the "Waived" category look for

FIELDS = ("test", "reason", "owner", "expires")


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class Waiver:
    site: str
    test: str
    reason: str
    owner: str
    expires: date
    file: str  # where it came from, for messages
    index: int  # 1-based entry number in that file
    _regex: re.Pattern[str] = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _glob_regex(self.test))

    @property
    def where(self) -> str:
        return f"{self.file} entry {self.index} ({self.test})"

    def matches(self, nodeid: str) -> bool:
        if self._regex.fullmatch(nodeid):
            return True
        if "[" not in self.test and "[" in nodeid:
            return self._regex.fullmatch(nodeid.split("[", 1)[0]) is not None
        return False

    def expired(self, today: date) -> bool:
        return today > self.expires

    def label(self) -> str:
        """The skip message: starts with WAIVED, which the "Waived" report category matches."""
        return f"{WAIVED_PREFIX}: {self.reason} ({self.owner}, until {self.expires.isoformat()})"

    def as_dict(self) -> dict:
        return {"site": self.site, "pattern": self.test, "reason": self.reason, "owner": self.owner,
                "expires": self.expires.isoformat(), "file": self.file, "entry": self.index}


@dataclass
class WaiverSet:
    directory: Path | None = None
    by_site: dict[str, list[Waiver]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_site.values())

    def for_site(self, site: str | None) -> list[Waiver]:
        return list(self.by_site.get(site or "", ()))

    def find(self, site: str | None, nodeid: str) -> Waiver | None:
        """The first waiver of the site's file that matches the test id."""
        for waiver in self.by_site.get(site or "", ()):
            if waiver.matches(nodeid):
                return waiver
        return None

    def expired(self, today: date | None = None, sites: Iterable[str] | None = None) -> list[Waiver]:
        today = today or utc_today()
        wanted = None if sites is None else set(sites)
        return [w for site, ws in sorted(self.by_site.items()) if wanted is None or site in wanted
                for w in ws if w.expired(today)]

    def check_not_expired(self, today: date | None = None, sites: Iterable[str] | None = None) -> None:
        """ConfigError naming the first expired waiver (and how many there are)."""
        today = today or utc_today()
        gone = self.expired(today, sites)
        if gone:
            w = gone[0]
            more = f" (and {len(gone) - 1} more expired)" if len(gone) > 1 else ""
            raise ConfigError(f"{w.where}: waiver owned by {w.owner} expired on {w.expires.isoformat()}"
                              f" (today is {today.isoformat()}): renew its expiry date or remove it{more}")


def _parse_date(value, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}: expires must be a date YYYY-MM-DD, got {value!r}")


def parse_waivers(data, site: str, file: str) -> list[Waiver]:
    """Validate one file's parsed YAML; every problem is one ConfigError line naming file and entry."""
    if data is None:
        return []
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"waivers"})
        if unknown:
            raise ConfigError(f"{file}: unknown top-level key(s) {', '.join(map(str, unknown))}; expected 'waivers'")
        data = data.get("waivers") or []
    if not isinstance(data, list):
        raise ConfigError(f"{file}: expected a list of waivers (or 'waivers:' with a list)")
    waivers: list[Waiver] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(data, 1):
        where = f"{file} entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with {', '.join(FIELDS)}")
        if isinstance(entry.get("test"), str) and entry["test"].strip():
            where = f"{file} entry {i} ({entry['test'].strip()})"
        unknown = sorted(set(map(str, entry)) - set(FIELDS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(FIELDS)}")
        missing = [k for k in FIELDS if entry.get(k) in (None, "")]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}")
        for key in ("test", "reason", "owner"):
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise ConfigError(f"{where}: {key} must be a non-empty string")
        test = entry["test"].strip()
        where = f"{file} entry {i} ({test})"
        if "::" not in test:
            raise ConfigError(f"{where}: test must be a pytest test id (glob), e.g. 'suites/test_token.py::test_x[US1-*]'")
        if "\n" in entry["reason"] or "\n" in entry["owner"]:
            raise ConfigError(f"{where}: reason and owner must be one line each")
        if test in seen:
            raise ConfigError(f"{where}: the same test pattern is already waived by entry {seen[test]}")
        seen[test] = i
        expires = _parse_date(entry["expires"], where)
        waivers.append(Waiver(site, test, entry["reason"].strip(), entry["owner"].strip(), expires, file, i))
    return waivers


def load_waivers(directory: Path | str | None, known_sites: Iterable[str], required: bool = False) -> WaiverSet:
    """Every ``<SITE>.yaml`` in directory, validated. A missing directory is an empty set unless required."""
    known = set(known_sites)
    result = WaiverSet(Path(directory) if directory is not None else None)
    if directory is None:
        return result
    directory = Path(directory)
    if not directory.is_dir():
        if required:
            raise ConfigError(f"--waivers {directory}: no such directory")
        return result
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix not in (".yaml", ".yml"):
            continue
        shown = str(path)
        site = path.stem
        if site not in known:
            raise ConfigError(f"{shown}: {site!r} is not a site key (known: {', '.join(sorted(known))});"
                              " name waiver files <SITE>.yaml")
        if site in result.by_site:
            raise ConfigError(f"{shown}: a second waiver file for {site}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{shown}: not valid YAML: {first}") from None
        result.by_site[site] = parse_waivers(data, site, shown)
        result.files.append(shown)
    return result


__all__ = ["Waiver", "WaiverSet", "WAIVED_PREFIX", "load_waivers", "parse_waivers", "utc_today"]
