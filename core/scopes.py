"""The scope catalogue (data in core/data/scopes.yaml), shared with the emulator.

For every OAuth scope a partner client may request, the catalogue says what Datadog calls it
(shown on the consent page), which API routes it opens, and how to prove it lets data flow:
a read probe, and/or a write probe that creates something and deletes it again.
The emulator serves the same `endpoints` generically from the `collections`.

    catalogue = load_catalogue()
    endpoint = catalogue.endpoints["delete-team"]
    endpoint.allows({"teams_read", "teams_manage"})      # True: both are needed
    catalogue.endpoint_for("GET", "/api/v1/dashboard/abc-def-ghi")
    # -> (Endpoint(id="get-dashboard", ...), {"id": "abc-def-ghi"})
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote


from core.errors import ConfigError
from core.yaml_file import read_yaml

DEFAULT_PATH = Path(__file__).parent / "data" / "scopes.yaml"

ENVELOPES = ("v1", "v2")
ID_KINDS = ("int", "uuid", "dashboard", "client")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ACTIONS = ("list", "get", "create", "delete", "special")
SPECIALS = ("users_me", "timeseries_query", "metrics_list", "api_keys_marketplace")

_ENDPOINT_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SCOPE_NAME = re.compile(r"[a-z0-9_]+")
_PATH_PARAM = re.compile(r"\{(\w+)\}")
_PLACEHOLDER = re.compile(r"\{now(?:_minus_(\d+))?(?::([^{}]+))?\}")
_PLACEHOLDER_LIKE = re.compile(r"\{now[^{}]*\}")


@dataclass(frozen=True)
class Collection:
    """A kind of resource the emulator stores per org."""
    name: str
    envelope: str                # "v1" | "v2"
    id_kind: str                 # "int" | "uuid" | "dashboard" | "client"
    seed_count: int
    list_key: str | None = None  # v1 only
    type: str | None = None      # v2 only: the JSON:API type
    id_field: str = "id"         # v1 only: the item field holding the id


@dataclass(frozen=True)
class Endpoint:
    """One OAuth-enabled route. `scopes`: any entry grants access; a tuple entry needs all its scopes."""
    id: str
    method: str
    path: str
    action: str
    scopes: tuple[str | tuple[str, ...], ...]
    success_status: int
    collection: str | None = None
    special: str | None = None
    required_params: tuple[str, ...] = ()
    answer: Any = None           # Datadog's answer shape when it is not the envelope default

    def required_scope_sets(self) -> list[frozenset[str]]:
        """The ways in: each set is needed in full, any one set suffices. `[frozenset()]`: any token."""
        if not self.scopes:
            return [frozenset()]
        return [frozenset([s]) if isinstance(s, str) else frozenset(s) for s in self.scopes]

    def allows(self, granted: Iterable[str]) -> bool:
        have = set(granted)
        return any(need <= have for need in self.required_scope_sets())

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PATH_PARAM.findall(self.path))

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters if `path` (without query string) fits this endpoint's template."""
        m = _template_regex(self.path).fullmatch(path)
        return None if m is None else {k: unquote(v) for k, v in m.groupdict().items()}

    def build_path(self, **params: Any) -> str:
        """The concrete path, e.g. build_path(id="abc-def-ghi") -> "/api/v1/dashboard/abc-def-ghi"."""
        return _PATH_PARAM.sub(lambda m: str(params[m.group(1)]), self.path)


@dataclass(frozen=True)
class ReadProbe:
    endpoint: str
    expect_json_key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteProbe:
    create_endpoint: str
    delete_endpoint: str
    id_path: str                 # dotted path to the new id in the create answer ("data.id", "data.0.id")
    json: dict[str, Any] = field(default_factory=dict)

    def extract_id(self, answer: Any) -> str:
        """The id of what the create call made; KeyError naming the path if the answer lacks it."""
        value = answer
        for part in self.id_path.split("."):
            try:
                value = value[int(part)] if isinstance(value, list) else value[part]
            except (KeyError, IndexError, TypeError, ValueError):
                raise KeyError(f"create answer has no {self.id_path!r}") from None
        return str(value)


@dataclass(frozen=True)
class Probe:
    read: ReadProbe | None = None
    write: WriteProbe | None = None


@dataclass(frozen=True)
class Scope:
    name: str
    description: str
    private: bool = False
    probe: Probe | None = None

    @property
    def verifiable(self) -> bool:
        return self.probe is not None


class ScopeCatalogue:
    def __init__(self, collections: dict[str, Collection], endpoints: dict[str, Endpoint],
                 scopes: dict[str, Scope], source: str = "scopes.yaml"):
        self.collections = collections
        self.endpoints = endpoints
        self.scopes = scopes
        self.source = source
        # Literal templates win over parameterised ones: /api/v2/users/me before /api/v2/users/{id}.
        self._routes = sorted(endpoints.values(), key=lambda e: (len(e.path_params), e.path))

    def get(self, scope: str) -> Scope | None:
        return self.scopes.get(scope)

    def probe_for(self, scope: str) -> Probe | None:
        entry = self.scopes.get(scope)
        return entry.probe if entry else None

    def describe(self, scope: str) -> str:
        entry = self.scopes.get(scope)
        return entry.description if entry else scope

    def endpoint_for(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        method, path = method.upper(), path.split("?", 1)[0]
        for endpoint in self._routes:
            if endpoint.method == method:
                params = endpoint.match(path)
                if params is not None:
                    return endpoint, params
        return None

    def endpoints_for_scope(self, scope: str) -> list[Endpoint]:
        """Endpoints that name `scope` in one of their ways in."""
        return [e for e in self.endpoints.values() if any(scope in s for s in e.required_scope_sets())]


def fill_placeholders(params: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """Replace {now}, {now_minus_N} (epoch seconds) and {now_minus_N:<strftime>} (UTC) in values, recursively.

    A value that is exactly one unformatted placeholder becomes an int; inside a longer string it is text.
    """
    return _fill(dict(params or {}), now)


def load_catalogue(path: str | Path | None = None) -> ScopeCatalogue:
    """Load and validate a catalogue; the packaged one (cached) when `path` is None."""
    if path is None:
        return _default_catalogue()
    return _load(Path(path), str(path))


@functools.lru_cache(maxsize=1)
def _default_catalogue() -> ScopeCatalogue:
    return _load(DEFAULT_PATH, "core/data/scopes.yaml")


def _load(path: Path, source: str) -> ScopeCatalogue:
    data = read_yaml(path, source, "the scope catalogue")
    return _Parser(source).catalogue(data)


# ---------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=None)
def _template_regex(template: str) -> re.Pattern[str]:
    parts = _PATH_PARAM.split(template)  # literal, name, literal, name, ..., literal
    pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(pattern)


def _fill(value: Any, now: float) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, now) for v in value]
    if not isinstance(value, str):
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole and not whole.group(2):
        return int(now) - int(whole.group(1) or 0)
    return _PLACEHOLDER.sub(lambda m: _render(m, now), value)


def _render(m: re.Match[str], now: float) -> str:
    instant = int(now) - int(m.group(1) or 0)
    if m.group(2):
        return datetime.fromtimestamp(instant, timezone.utc).strftime(m.group(2))
    return str(instant)


def _placeholders_ok(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_placeholders_ok(v) for v in value.values())
    if isinstance(value, list):
        return all(_placeholders_ok(v) for v in value)
    if isinstance(value, str):
        return all(_PLACEHOLDER.fullmatch(t) for t in _PLACEHOLDER_LIKE.findall(value))
    return True


class _Parser:
    """Turns the YAML document into a ScopeCatalogue; every problem is one ConfigError line."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, problem: str) -> None:
        raise ConfigError(f"{self.source}: {key}: {problem}")

    def mapping(self, value: Any, key: str, required: tuple[str, ...] = (),
                optional: tuple[str, ...] | None = None) -> dict:
        if not isinstance(value, dict):
            self.fail(key, "must be a mapping")
        for name in required:
            if name not in value:
                self.fail(f"{key}.{name}", "is missing")
        if optional is not None:
            for name in value:
                if name not in required and name not in optional:
                    self.fail(f"{key}.{name}", "unknown key")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, "must be a non-empty string")
        return value

    def choice(self, value: Any, key: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            self.fail(key, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    # -- document

    def catalogue(self, data: Any) -> ScopeCatalogue:
        top = ("collections", "endpoints", "scopes")
        doc = self.mapping(data, "(top level)", required=top, optional=top)
        collections = {name: self.collection(name, entry)
                       for name, entry in self.mapping(doc["collections"], "collections").items()}
        if not isinstance(doc["endpoints"], list):
            self.fail("endpoints", "must be a list")
        endpoints: dict[str, Endpoint] = {}
        for index, entry in enumerate(doc["endpoints"]):
            endpoint = self.endpoint(f"endpoints[{index}]", entry, collections)
            if endpoint.id in endpoints:
                self.fail(f"endpoints[{index}].id", f"duplicate endpoint id {endpoint.id!r}")
            endpoints[endpoint.id] = endpoint
        declared = self.mapping(doc["scopes"], "scopes")
        for endpoint in endpoints.values():
            for needed in endpoint.required_scope_sets():
                for name in sorted(needed - declared.keys()):
                    self.fail(f"endpoints.{endpoint.id}.scopes", f"scope {name!r} is not declared under scopes")
        scopes = {name: self.scope(name, entry, endpoints) for name, entry in declared.items()}
        return ScopeCatalogue(collections, endpoints, scopes, self.source)

    def collection(self, name: str, entry: Any) -> Collection:
        key = f"collections.{name}"
        entry = self.mapping(entry, key, required=("envelope", "id_kind", "seed_count"),
                             optional=("list_key", "type", "id_field"))
        envelope = self.choice(entry["envelope"], f"{key}.envelope", ENVELOPES)
        id_kind = self.choice(entry["id_kind"], f"{key}.id_kind", ID_KINDS)
        seed = entry["seed_count"]
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            self.fail(f"{key}.seed_count", "must be a whole number >= 0")
        if envelope == "v1":
            if "type" in entry:
                self.fail(f"{key}.type", "is for v2 collections only")
            list_key = self.text(entry.get("list_key"), f"{key}.list_key")
            id_field = self.text(entry.get("id_field", "id"), f"{key}.id_field")
            return Collection(name, envelope, id_kind, seed, list_key=list_key, id_field=id_field)
        for other in ("list_key", "id_field"):
            if other in entry:
                self.fail(f"{key}.{other}", "is for v1 collections only")
        if id_kind == "client":
            self.fail(f"{key}.id_kind", "'client' ids are for v1 collections only")
        return Collection(name, envelope, id_kind, seed, type=self.text(entry.get("type"), f"{key}.type"))

    def endpoint(self, key: str, entry: Any, collections: dict[str, Collection]) -> Endpoint:
        entry = self.mapping(entry, key, required=("id", "method", "path", "action", "scopes", "success_status"),
                             optional=("collection", "special", "required_params", "answer"))
        endpoint_id = self.text(entry["id"], f"{key}.id")
        if not _ENDPOINT_ID.fullmatch(endpoint_id):
            self.fail(f"{key}.id", f"{endpoint_id!r} is not kebab-case")
        key = f"endpoints.{endpoint_id}"
        method = self.choice(entry["method"], f"{key}.method", METHODS)
        path = self.text(entry["path"], f"{key}.path")
        if not path.startswith("/") or "?" in path:
            self.fail(f"{key}.path", "must start with / and carry no query string")
        action = self.choice(entry["action"], f"{key}.action", ACTIONS)
        collection = special = None
        if action == "special":
            if "special" not in entry:
                self.fail(f"{key}.special", f"is missing (action special needs one of {', '.join(SPECIALS)})")
            special = self.choice(entry["special"], f"{key}.special", SPECIALS)
        else:
            if "special" in entry:
                self.fail(f"{key}.special", "only allowed with action: special")
            collection = entry.get("collection")
            if collection not in collections:
                self.fail(f"{key}.collection", f"unknown collection {collection!r}")
            has_id = "{id}" in path
            if action in ("get", "delete") and not has_id:
                self.fail(f"{key}.path", f"a {action} endpoint needs {{id}} in its path")
            if action in ("list", "create") and has_id:
                self.fail(f"{key}.path", f"a {action} endpoint takes no {{id}}")
        status = entry["success_status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 299:
            self.fail(f"{key}.success_status", "must be a 2xx status code")
        params = entry.get("required_params", [])
        if not isinstance(params, list) or not all(isinstance(p, str) and p for p in params):
            self.fail(f"{key}.required_params", "must be a list of parameter names")
        return Endpoint(endpoint_id, method, path, action, self.scope_entries(entry["scopes"], f"{key}.scopes"),
                        status, collection=collection, special=special, required_params=tuple(params),
                        answer=entry.get("answer"))

    def scope_entries(self, value: Any, key: str) -> tuple[str | tuple[str, ...], ...]:
        if not isinstance(value, list):
            self.fail(key, "must be a list (any of); an entry may be a list (all of)")
        entries: list[str | tuple[str, ...]] = []
        for item in value:
            names = item if isinstance(item, list) else [item]
            if not names or not all(isinstance(n, str) and _SCOPE_NAME.fullmatch(n) for n in names):
                self.fail(key, f"bad entry {item!r}: scope names or non-empty lists of scope names")
            entries.append(item if isinstance(item, str) else tuple(item))
        return tuple(entries)

    def scope(self, name: str, entry: Any, endpoints: dict[str, Endpoint]) -> Scope:
        key = f"scopes.{name}"
        if not _SCOPE_NAME.fullmatch(str(name)):
            self.fail(key, "scope names are lower_snake_case")
        entry = self.mapping(entry, key, required=("description",), optional=("private", "probe"))
        private = entry.get("private", False)
        if not isinstance(private, bool):
            self.fail(f"{key}.private", "must be true or false")
        probe = None
        if "probe" in entry:
            raw = self.mapping(entry["probe"], f"{key}.probe", optional=("read", "write"))
            if not raw:
                self.fail(f"{key}.probe", "needs read and/or write")
            probe = Probe(
                read=self.read_probe(name, raw["read"], endpoints) if "read" in raw else None,
                write=self.write_probe(name, raw["write"], endpoints) if "write" in raw else None,
            )
        return Scope(name, self.text(entry["description"], f"{key}.description"), private, probe)

    def probe_endpoint(self, value: Any, key: str, endpoints: dict[str, Endpoint],
                       action: tuple[str, ...]) -> Endpoint:
        if value not in endpoints:
            self.fail(key, f"unknown endpoint {value!r}")
        endpoint = endpoints[value]
        if endpoint.action not in action:
            self.fail(key, f"endpoint {value!r} is a {endpoint.action} endpoint, expected {' or '.join(action)}")
        return endpoint

    def read_probe(self, scope: str, entry: Any, endpoints: dict[str, Endpoint]) -> ReadProbe:
        key = f"scopes.{scope}.probe.read"
        entry = self.mapping(entry, key, required=("endpoint", "expect_json_key"), optional=("params",))
        endpoint = self.probe_endpoint(entry["endpoint"], f"{key}.endpoint", endpoints,
                                       ("list", "special"))
        if endpoint.method != "GET":
            self.fail(f"{key}.endpoint", f"endpoint {endpoint.id!r} is not a GET")
        if not any(scope in s for s in endpoint.required_scope_sets()):
            self.fail(f"{key}.endpoint", f"endpoint {endpoint.id!r} does not take scope {scope!r}")
        params = self.mapping(entry.get("params", {}), f"{key}.params")
        for missing in [p for p in endpoint.required_params if p not in params]:
            self.fail(f"{key}.params", f"lacks {missing!r}, required by endpoint {endpoint.id!r}")
        if not _placeholders_ok(params):
            self.fail(f"{key}.params", "unknown placeholder (use {now}, {now_minus_<seconds>}[:<strftime>])")
        return ReadProbe(endpoint.id, self.text(entry["expect_json_key"], f"{key}.expect_json_key"), dict(params))

    def write_probe(self, scope: str, entry: Any, endpoints: dict[str, Endpoint]) -> WriteProbe:
        key = f"scopes.{scope}.probe.write"
        entry = self.mapping(entry, key, required=("create", "delete"), optional=())
        create = self.mapping(entry["create"], f"{key}.create", required=("endpoint", "id_path"),
                              optional=("json",))
        delete = self.mapping(entry["delete"], f"{key}.delete", required=("endpoint",), optional=())
        made = self.probe_endpoint(create["endpoint"], f"{key}.create.endpoint", endpoints, ("create",))
        gone = self.probe_endpoint(delete["endpoint"], f"{key}.delete.endpoint", endpoints, ("delete",))
        if made.collection != gone.collection:
            self.fail(f"{key}.delete.endpoint",
                      f"deletes from {gone.collection!r} but create makes {made.collection!r}")
        if not any(scope in s for s in made.required_scope_sets()):
            self.fail(f"{key}.create.endpoint", f"endpoint {made.id!r} does not take scope {scope!r}")
        body = self.mapping(create.get("json", {}), f"{key}.create.json")
        if not _placeholders_ok(body):
            self.fail(f"{key}.create.json", "unknown placeholder (use {now}, {now_minus_<seconds>}[:<strftime>])")
        id_path = self.text(create["id_path"], f"{key}.create.id_path")
        return WriteProbe(made.id, gone.id, id_path, dict(body))
