"""Targets: which Datadog (site, org, client, user) to test, from a YAML file plus `.env`.

Everything is validated before a test runs; any problem is one line naming the file and field.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
from dotenv import dotenv_values
from dotenv.parser import parse_stream

from core.errors import ConfigError
from core.yaml_file import read_yaml
from harness.config.integration import IntegrationConfig, parse_integration
from harness.config.recipes import Recipes, builtin_recipes, load_recipes
from harness.config.schema import check_known_keys
from harness.config.urls import is_loopback_http
from core.network import Network
from core.redact import REDACTOR
from core.sites import DOCUMENTED_ENDPOINTS, Endpoints, Site, SiteRegistry, load_registry

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class UserConfig:
    email: str
    password: str | None = None
    totp_secret: str | None = None
    storage_state: Path | None = None  # a browser state saved by `ddoauth login` (SSO, captcha)

    @property
    def key(self) -> str:
        return self.email.lower()


@dataclass(frozen=True)
class ClientConfig:
    id: str
    secret: str
    kind: str  # test | published
    scopes: tuple[str, ...]
    name: str | None = None  # the client's display name on the consent page, when known
    previous_secret: str | None = None  # the secret before a rotation: client.previous_secret or ${VAR}_PREVIOUS


@dataclass(frozen=True)
class Target:
    name: str
    site: Site
    org: str  # org name as Datadog shows it (org picker, consent page)
    client: ClientConfig
    redirect_uri: str
    user: UserConfig
    org_id: str | None = None  # dd_oid when known in advance (emulator)
    foreign_org: str | None = None  # another org of the same user, outside the client's sandbox (negative tests)
    emulated: bool = False
    integration: IntegrationConfig | None = None  # the partner's own app, driven from its onboarding URL
    endpoints: Endpoints = DOCUMENTED_ENDPOINTS  # the targets file's `endpoints`, for every target

    @property
    def login_key(self) -> tuple[str, str]:
        return (self.site.key, self.user.key)


@dataclass
class HarnessConfig:
    targets: list[Target]
    network: Network = field(default_factory=Network)
    source: str = "(embedded emulator)"
    emulated: bool = False
    control_url: str | None = None  # the emulator's control API, when the target is an emulator
    recipes: Recipes = field(default_factory=builtin_recipes)  # page recipes (built-in + `recipes:` file)

    def select(self, names: list[str] | None = None, sites: list[str] | None = None) -> list[Target]:
        chosen = self.targets
        if names:
            known = {t.name for t in self.targets}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ConfigError(f"{self.source}: --target {unknown[0]!r} is not a configured target; "
                                  f"known: {', '.join(sorted(known))}")
            chosen = [t for t in chosen if t.name in names]
        if sites:
            registry = load_registry()
            for key in sites:
                try:
                    registry.get(key)
                except ConfigError as exc:
                    raise ConfigError(f"--site: {exc}") from None
            wanted = {s.upper() for s in sites}
            chosen = [t for t in chosen if t.site.key in wanted]
        return chosen


def _substitute(value, env: dict[str, str], source: str, where: str):
    if isinstance(value, str):
        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name not in env or env[name] in (None, ""):
                raise ConfigError(f"{source}: {where}: environment variable {name} is not set (add it to .env)")
            return env[name]
        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env, source, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, source, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _previous(raw_secret, env: dict[str, str]) -> str | None:
    """`secret: ${DD_US1_CLIENT_SECRET}` -> the value of DD_US1_CLIENT_SECRET_PREVIOUS, if set."""
    m = _VAR.fullmatch(raw_secret.strip()) if isinstance(raw_secret, str) else None
    return (env.get(f"{m.group(1)}_PREVIOUS") or None) if m else None


def load_env(env_file: Path | None) -> dict[str, str]:
    env = {}
    if env_file is not None and env_file.exists():
        text = _read_env(env_file)
        env.update({k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None})
    # the process environment wins (CI secrets), except an empty value (a missing Actions secret)
    env.update({k: v for k, v in os.environ.items() if v != "" or k not in env})
    return env


def _read_env(env_file: Path) -> str:
    """The .env text, refused when python-dotenv cannot parse a line: it would skip that line (a log warning
    at most) and its secret would later read as 'not set'. The message names the line, never its content."""
    try:
        text = env_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise ConfigError(f"{env_file}: cannot read the env file ({reason})") from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(f"{env_file}: line {binding.original.line}: not a NAME=value line "
                              "(python-dotenv cannot parse it)")
    return text


def _req(entry: dict, key: str, source: str, where: str):
    if not isinstance(entry, dict) or key not in entry or entry[key] in (None, ""):
        raise ConfigError(f"{source}: {where}.{key} is required")
    return entry[key]


def parse_targets(data: object, source: str, env: dict[str, str], registry: SiteRegistry | None = None,
                  base_dir: Path | None = None) -> HarnessConfig:
    registry = registry or load_registry()
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list) or not data["targets"]:
        raise ConfigError(f"{source}: 'targets' must be a non-empty list")
    check_known_keys(data, source)
    endpoints = parse_endpoints(data.get("endpoints"), source)
    base_dir = base_dir or Path(".")
    targets: list[Target] = []
    for i, raw in enumerate(data["targets"]):
        where = f"targets[{i}]"
        raw_secret = ((raw or {}).get("client") or {}).get("secret") if isinstance(raw, dict) else None
        raw = _substitute(raw, env, source, where)
        name = str(_req(raw, "name", source, where))
        if not _NAME.match(name):
            raise ConfigError(f"{source}: {where}.name {name!r} may only use letters, digits, '.', '_' and '-'")
        where = f"targets[{name}]"
        try:
            site = registry.get(str(_req(raw, "site", source, where)))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {where}.site: {exc}") from None
        client_raw = _req(raw, "client", source, where)
        scopes = client_raw.get("scopes") if isinstance(client_raw, dict) else None
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
            raise ConfigError(f"{source}: {where}.client.scopes must be a non-empty list of scope names")
        kind = client_raw.get("kind", "test")
        if kind not in ("test", "published"):
            raise ConfigError(f"{source}: {where}.client.kind must be 'test' or 'published', not {kind!r}")
        client = ClientConfig(
            id=str(_req(client_raw, "id", source, f"{where}.client")),
            secret=str(_req(client_raw, "secret", source, f"{where}.client")),
            kind=kind, scopes=tuple(scopes), name=client_raw.get("name"),
            previous_secret=client_raw.get("previous_secret") or _previous(raw_secret, env),
        )
        redirect = str(_req(raw, "redirect_uri", source, where))
        parts = urlsplit(redirect)
        if not (parts.scheme == "https" and parts.hostname) and not is_loopback_http(redirect):
            raise ConfigError(f"{source}: {where}.redirect_uri must be https (or http on a loopback address), "
                              f"got {redirect!r}")
        if "#" in redirect:  # RFC 6749 §3.1.2: the redirection endpoint URI MUST NOT include a fragment
            raise ConfigError(f"{source}: {where}.redirect_uri must not contain a fragment (#...), got {redirect!r}")
        user_raw = _req(raw, "user", source, where)
        if not isinstance(user_raw, dict):
            raise ConfigError(f"{source}: {where}.user must be a mapping (email, password or storage_state)")
        state = user_raw.get("storage_state")
        user = UserConfig(
            email=str(_req(user_raw, "email", source, f"{where}.user")),
            password=user_raw.get("password"), totp_secret=user_raw.get("totp_secret"),
            storage_state=(base_dir / state) if state else None,
        )
        if not user.password and not user.storage_state:
            raise ConfigError(f"{source}: {where}.user needs a password or a storage_state from `ddoauth login`")
        if user.totp_secret and not _valid_totp(user.totp_secret):
            # checked now, not at the MFA page: the value is a secret, so the message never shows it
            raise ConfigError(f"{source}: {where}.user.totp_secret is not a usable TOTP secret (base32, at least "
                              "112 bits: the key behind the authenticator app's QR code)")
        for value, label in ((client.secret, "client_secret"), (client.previous_secret, "client_secret"),
                             (user.password, "password"),
                             (user.totp_secret, "totp_secret")):
            REDACTOR.add(value, label)
        integration = None
        if raw.get("integration") is not None:
            integration = parse_integration(raw["integration"], source, f"{where}.integration", client.id, client.name)
        targets.append(Target(name=name, site=site, org=str(_req(raw, "org", source, where)), client=client,
                              redirect_uri=redirect, user=user, org_id=raw.get("org_id"),
                              foreign_org=raw.get("foreign_org"), integration=integration, endpoints=endpoints))
    names = [t.name for t in targets]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"{source}: duplicate target name {sorted(dupes)[0]!r}")
    network = parse_network(_substitute(data.get("network") or {}, env, source, "network"), source, base_dir)
    return HarnessConfig(targets=targets, network=network, source=source,
                         control_url=data.get("emulator_control_url"), recipes=parse_recipes(data, source, base_dir))


_ENDPOINT_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


def parse_endpoints(raw, source: str) -> Endpoints:
    """`endpoints: {authorize, token, revoke}`: paths (the hosts come from the site); absent keys keep
    Datadog's documented paths."""
    if raw is None:
        return DOCUMENTED_ENDPOINTS
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: endpoints must be a mapping of paths (authorize, token, revoke)")
    for key, value in raw.items():
        if not isinstance(value, str) or not _ENDPOINT_PATH.match(value) or "//" in value:
            raise ConfigError(f"{source}: endpoints.{key} must be a path starting with '/' (no host, query or "
                              f"fragment: the host comes from the site), got {value!r}")
    return dataclasses.replace(DOCUMENTED_ENDPOINTS, **raw)


def parse_recipes(data: dict, source: str, base_dir: Path) -> Recipes:
    """`recipes: PATH` (relative to the targets file): merged over the built-in page recipes."""
    raw = data.get("recipes")
    if raw is None:
        return builtin_recipes()
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{source}: recipes must be the path of a recipes file, got {raw!r}")
    path = base_dir / raw
    if not path.is_file():
        raise ConfigError(f"{source}: recipes {raw!r} does not exist ({path})")
    return load_recipes(path)


def _valid_totp(secret) -> bool:
    """What the MFA step will do with it (harness/consent.py): pyotp must make a code from it."""
    try:
        pyotp.TOTP(str(secret)).now()
    except (binascii.Error, ValueError, TypeError):  # not base32, or shorter than pyotp's 112-bit minimum
        return False
    return True


def _is_ip_port(addr: str) -> bool:
    """`10.0.0.5:443` or `[::1]:8443`: an IP address (IPv6 in brackets) and a port 1-65535."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return False
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_network(raw: dict, source: str, base_dir: Path) -> Network:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: network must be a mapping")
    hosts = raw.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise ConfigError(f"{source}: network.hosts must map hostnames to ip:port")
    for host, addr in hosts.items():
        if not _is_ip_port(str(addr)):
            raise ConfigError(f"{source}: network.hosts[{host}] must be ip:port, got {addr!r}")
    ca = raw.get("ca_bundle")
    ca_path = (base_dir / ca) if ca else None
    if ca_path is not None and not ca_path.exists():
        raise ConfigError(f"{source}: network.ca_bundle {ca!r} does not exist")
    return Network(host_map={str(k): str(v) for k, v in hosts.items()}, ca_bundle=ca_path,
                   chromium_spki=_spki_pins(raw.get("chromium_spki"), source))


def _spki_pins(raw, source: str) -> tuple[str, ...] | None:
    """network.chromium_spki: a YAML list or a comma-joined string of base64 SHA-256 SPKI hashes."""
    if raw is None:
        return None
    if isinstance(raw, str):
        pins = raw.split(",")
    elif isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        pins = raw
    else:
        raise ConfigError(f"{source}: network.chromium_spki must be a list (or a comma-joined string) of "
                          f"base64 SHA-256 key hashes, got {type(raw).__name__}")
    pins = [p.strip() for p in pins if p.strip()]
    for pin in pins:
        try:
            ok = len(base64.b64decode(pin, validate=True)) == 32
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"{source}: network.chromium_spki entry {pin[:60]!r} is not a base64 SHA-256 "
                              "(32 bytes, as `openssl x509 -pubkey | openssl pkey -pubin -outform der | "
                              "openssl dgst -sha256 -binary | base64` prints)")
    return tuple(pins) or None


def load_targets(path: Path, env_file: Path | None = Path(".env"), registry: SiteRegistry | None = None) -> HarnessConfig:
    source = str(path)
    data = read_yaml(path, source, "targets file")
    return parse_targets(data, source, load_env(env_file), registry, base_dir=path.parent)


EMBEDDED_SOURCE = "(embedded emulator)"


def embedded_config(document: dict) -> HarnessConfig:
    """The embedded emulator's targets file (emulator.start_embedded writes it), parsed like any other."""
    parsed = parse_targets(document, EMBEDDED_SOURCE, env={})
    targets = [dataclasses.replace(t, emulated=True) for t in parsed.targets]
    return dataclasses.replace(parsed, targets=targets, emulated=True)
