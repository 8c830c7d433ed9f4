"""In-memory state of the emulated Datadog, built from a YAML seed for every site."""
from __future__ import annotations

import collections
import copy
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from core.errors import ConfigError
from core.network import is_loopback_host
from core.sites import Site, SiteRegistry, load_registry

from .behaviour import Behaviour

# Fixed namespace so ids are stable across restarts and distinct per site.
_NS = uuid.UUID("6f1d1c3e-9a57-4c1b-9d7e-da7ad0900000")

ACCESS_TOKEN_TTL = 3600
CODE_TTL = 600
MAX_REDIRECT_URI = 2000
MAX_REDIRECT_URIS = 50  # per client


def redirect_uri_problem(uri: object) -> str | None:
    """Why `uri` cannot be registered as a redirect URI (one line), or None. The rules Datadog's Developer
    Platform and RFC 6749/9700 state: an absolute https URL (plain http only on a loopback address, for
    native and local clients), no fragment (RFC 6749 §3.1.2), no user name or password in it."""
    if not isinstance(uri, str) or not uri:
        return f"redirect URI must be a non-empty string, got {uri!r}"
    if len(uri) > MAX_REDIRECT_URI or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in uri):
        return f"redirect URI {uri[:80]!r} is longer than {MAX_REDIRECT_URI} characters or holds whitespace"
    parts = urlsplit(uri)
    try:
        host, _ = parts.hostname, parts.port  # a bad port raises
    except ValueError:
        return f"redirect URI {uri!r} has an invalid port"
    if not host or parts.scheme not in ("https", "http"):
        return f"redirect URI {uri!r} must be an absolute https URL"
    if parts.scheme == "http" and not is_loopback_host(host):
        return f"redirect URI {uri!r} must be https (plain http only on a loopback address)"
    if "#" in uri:
        return f"redirect URI {uri!r} must not contain a fragment (RFC 6749 section 3.1.2)"
    if "@" in parts.netloc:
        return f"redirect URI {uri!r} must not carry a user name or password"
    return None


def check_redirect_uris(uris: object, where: str) -> list[str]:
    """A list of valid redirect URIs, or ConfigError naming `where` and the first problem."""
    if not isinstance(uris, list):
        raise ConfigError(f"{where} must be a list of redirect URIs")
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            raise ConfigError(f"{where}: {problem}")
    return list(uris)


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "/".join(parts)))


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass
class Org:
    id: str
    key: str
    site: str
    name: str
    kind: str


@dataclass
class User:
    id: str
    key: str
    site: str
    email: str
    name: str
    password: str
    org_ids: list[str]
    totp_secret: str | None = None


@dataclass
class Client:
    id: str
    key: str
    site: str
    kind: str  # test | published
    org_id: str
    name: str
    description: str
    secret: str
    redirect_uris: list[str]
    onboarding_url: str
    scopes: list[str]
    disabled: bool = False
    previous_secret: str | None = None  # kept only for the "old secret still works" defect


@dataclass
class Session:
    id: str
    site: str
    user_id: str | None = None
    mfa_pending_user: str | None = None
    org_id: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    created_at: float = 0.0


@dataclass
class AuthCode:
    code: str
    site: str
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str | None
    user_id: str
    org_id: str
    scopes: list[str]
    issued_at: float
    used: bool = False
    grant_id: str | None = None  # set on redemption, so a replay can revoke what it issued


@dataclass
class Grant:
    id: str
    site: str
    client_id: str
    user_id: str
    org_id: str
    scopes: list[str]
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    grant_id: str
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: str
    revoked: bool = False


@dataclass
class ApiKey:
    id: str
    site: str
    org_id: str
    client_id: str
    name: str
    key: str
    created_at: str
    created_by: str
    disabled: bool = False


class Store:
    """Everything the emulated Datadog remembers. One lock guards all mutations."""

    def __init__(self, registry: SiteRegistry, seed: dict, behaviour: Behaviour | None = None):
        self.registry = registry
        self.seed = seed
        self.lock = threading.RLock()
        self.behaviour = behaviour or Behaviour()
        self.clock_offset = 0.0
        self._load()

    # ---- clock -------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> float:
        with self.lock:
            self.clock_offset += seconds
        return self.clock_offset

    # ---- seed --------------------------------------------------------------
    def _load(self) -> None:
        self.orgs: dict[str, Org] = {}
        self.users: dict[str, User] = {}
        self.clients: dict[tuple[str, str], Client] = {}  # (site, client id)
        self.sessions: dict[str, Session] = {}
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.api_keys: dict[str, ApiKey] = {}
        self.consents: set[tuple] = set()  # (user id, client id, org id, frozenset(scopes)): remember_consent
        self.metrics: list[dict] = []  # {site, org_id, metric, points:[(ts,value)], tags}
        self.logs: list[dict] = []  # {site, org_id, message, service, ddtags, received_at}
        self.service_checks: list[dict] = []
        self.resources: dict[tuple[str, str, str], dict[str, dict]] = {}  # (site, org_id, collection) -> id -> item
        self.seeded_collections: set[tuple[str, str, str]] = set()
        self._shared_secrets: dict[str, str] = {}
        self.request_log: collections.deque = collections.deque(maxlen=20000)
        for site in self.registry:
            self._seed_site(site)

    def _seed_site(self, site: Site) -> None:
        org_ids = {}
        for o in self.seed.get("orgs", []):
            oid = stable_uuid(site.key, "org", o["key"])
            org_ids[o["key"]] = oid
            self.orgs[oid] = Org(oid, o["key"], site.key, o["name"].format(site=site.key), o.get("kind", "customer"))
        for u in self.seed.get("users", []):
            uid = stable_uuid(site.key, "user", u["key"])
            self.users[uid] = User(
                uid, u["key"], site.key, u["email"], u.get("name", u["email"]), u["password"],
                [org_ids[k] for k in u.get("orgs", [])], u.get("totp_secret"),
            )
        for c in self.seed.get("clients", []):
            # a published client is one integration with one id and secret for every region
            # (oauth_clients.json carries a single id); test clients are per site
            shared = bool(c.get("shared_across_sites"))
            cid = c.get("id") or stable_uuid("global" if shared else site.key, "client", c["key"])
            if shared and c["key"] not in self._shared_secrets:
                self._shared_secrets[c["key"]] = c.get("secret") or new_token("ddcs_")
            extra = (self.seed.get("redirect_uris") or {}).get(c["key"], [])
            uris = list(dict.fromkeys(list(c.get("redirect_uris", [])) + list(extra)))
            self.clients[(site.key, cid)] = Client(
                cid, c["key"], site.key, c.get("kind", "test"), org_ids[c.get("org", "sandbox")],
                c["name"], c.get("description", c["name"]),
                self._shared_secrets[c["key"]] if shared else c.get("secret") or new_token("ddcs_"),
                uris, c.get("onboarding_url", ""), list(c.get("scopes", [])),
            )

    def reset(self) -> None:
        with self.lock:
            self.behaviour = Behaviour()
            self.clock_offset = 0.0
            self._load()

    # ---- redirect URIs ------------------------------------------------------
    def redirect_uris(self, client_id: str) -> list[str] | None:
        """The client's registered redirect URIs (None: no such client). A published id spans sites."""
        with self.lock:
            clients = [c for c in self.clients.values() if c.id == client_id]
            return list(clients[0].redirect_uris) if clients else None

    def change_redirect_uris(self, client_id: str, add: list[str] = (), remove: list[str] = ()) -> list[str] | None:
        """Register `add` and drop `remove` on the client (on every site, for a published id); checked first,
        nothing changes on an error (ConfigError). Lasts until `reset` (the seed's own list comes back)."""
        add = check_redirect_uris(list(add), "add")
        with self.lock:
            clients = [c for c in self.clients.values() if c.id == client_id]
            if not clients:
                return None
            current = clients[0].redirect_uris
            after = [u for u in dict.fromkeys(current + add) if u not in set(remove)]
            if not after:
                raise ConfigError("a client keeps at least one redirect URI")
            if len(after) > MAX_REDIRECT_URIS:
                raise ConfigError(f"a client has at most {MAX_REDIRECT_URIS} redirect URIs")
            for c in clients:
                c.redirect_uris = list(after)
            return list(after)

    def seed_redirect_uris(self, client_key: str, uris: list[str]) -> list[Client]:
        """Extra redirect URIs for the seed client `client_key` on every site, kept across `reset` (they go
        into the seed's `redirect_uris` section, as if the seed had named them). The clients changed."""
        uris = check_redirect_uris(list(uris), f"redirect URIs for client {client_key!r}")
        with self.lock:
            clients = [c for c in self.clients.values() if c.key == client_key]
            if not clients:
                known = sorted({c.key for c in self.clients.values()})
                raise ConfigError(f"no seed client {client_key!r} (the seed has: {', '.join(known)})")
            extra = self.seed.setdefault("redirect_uris", {}).setdefault(client_key, [])
            extra.extend(u for u in uris if u not in extra)
            for c in clients:
                c.redirect_uris = list(dict.fromkeys(c.redirect_uris + uris))
            return clients

    # ---- look-ups ----------------------------------------------------------
    def site(self, key: str) -> Site:
        return self.registry.get(key)

    def client(self, site: str, client_id: str) -> Client | None:
        return self.clients.get((site, client_id))

    def user_by_email(self, site: str, email: str) -> User | None:
        email = email.strip().lower()
        for u in self.users.values():
            if u.site == site and u.email.lower() == email:
                return u
        return None

    def org(self, org_id: str) -> Org:
        return self.orgs[org_id]

    # ---- tokens ------------------------------------------------------------
    def issue_tokens(self, grant: Grant, refresh: str | None = None) -> tuple[AccessToken, RefreshToken]:
        access = AccessToken(new_token("ddat_"), grant.id, self.now() + ACCESS_TOKEN_TTL)
        self.access_tokens[access.token] = access
        if refresh is None:
            rt = RefreshToken(new_token("ddrt_"), grant.id)
            self.refresh_tokens[rt.token] = rt
        else:
            rt = self.refresh_tokens[refresh]
        return access, rt

    def revoke_grant(self, grant_id: str) -> None:
        grant = self.grants.get(grant_id)
        if grant:
            grant.revoked = True
        for t in self.access_tokens.values():
            if t.grant_id == grant_id:
                t.revoked = True
        for t in self.refresh_tokens.values():
            if t.grant_id == grant_id:
                t.revoked = True

    def collection(self, site: str, org_id: str, name: str) -> dict[str, dict]:
        return self.resources.setdefault((site, org_id, name), {})

    # ---- views -------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data (the control API's GET state; local only)."""
        with self.lock:
            sites = {}
            for site in self.registry:
                sites[site.key] = {
                    "domain": site.domain,
                    "web_host": site.web_host,
                    "api_host": site.api_host,
                    "oauth": site.oauth,
                    "orgs": [asdict(o) for o in self.orgs.values() if o.site == site.key],
                    "users": [asdict(u) for u in self.users.values() if u.site == site.key],
                    "clients": [asdict(c) for c in self.clients.values() if c.site == site.key],
                    "api_keys": [asdict(k) for k in self.api_keys.values() if k.site == site.key],
                    "grants": [asdict(g) for g in self.grants.values() if g.site == site.key],
                    "resources": {
                        f"{org}/{coll}": list(items.values())
                        for (s, org, coll), items in self.resources.items() if s == site.key and items
                    },
                    "metrics": [m for m in self.metrics if m["site"] == site.key],
                    "logs": [entry for entry in self.logs if entry["site"] == site.key],
                }
            out = {
                "clock_offset": self.clock_offset,
                "behaviour": self.behaviour.as_dict(),
                "sites": sites,
                "request_count": len(self.request_log),
            }
            if isinstance(self.seed.get("partner"), dict):  # the reference partner app's seed (demo login)
                out["partner"] = copy.deepcopy(self.seed["partner"])
            return out


def load_seed(path: str | Path | None = None) -> dict:
    if path is None:
        text = resources.files("emulator").joinpath("data/seed.yaml").read_text()
        source = "emulator/data/seed.yaml"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read seed ({exc.strerror})") from None
        source = str(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise ConfigError(f"{source}: seed is not valid YAML") from None
    for section in ("orgs", "users", "clients"):
        if not isinstance(data.get(section), list) or not data[section]:
            raise ConfigError(f"{source}: '{section}' must be a non-empty list")
    org_keys = {o.get("key") for o in data["orgs"]}
    for c in data["clients"]:
        for f in ("key", "name", "redirect_uris", "scopes"):
            if f not in c:
                raise ConfigError(f"{source}: client {c.get('key', '?')}: missing '{f}'")
        if c.get("org", "sandbox") not in org_keys:
            raise ConfigError(f"{source}: client {c['key']}: unknown org {c.get('org')!r}")
        if not c["redirect_uris"]:
            raise ConfigError(f"{source}: client {c['key']}: redirect_uris must name at least one redirect URI")
        check_redirect_uris(c["redirect_uris"], f"{source}: client {c['key']}: redirect_uris")
    extra = data.get("redirect_uris")
    if extra is not None:  # extra redirect URIs per client key, on top of each client's own (every site)
        client_keys = {c["key"] for c in data["clients"]}
        if not isinstance(extra, dict):
            raise ConfigError(f"{source}: 'redirect_uris' must map client keys to lists of redirect URIs")
        for key, uris in extra.items():
            if key not in client_keys:
                raise ConfigError(f"{source}: redirect_uris: unknown client {key!r} "
                                  f"(the seed's clients: {', '.join(sorted(client_keys))})")
            check_redirect_uris(uris, f"{source}: redirect_uris.{key}")
    for u in data["users"]:
        for f in ("key", "email", "password"):
            if f not in u:
                raise ConfigError(f"{source}: user {u.get('key', '?')}: missing '{f}'")
        for k in u.get("orgs", []):
            if k not in org_keys:
                raise ConfigError(f"{source}: user {u['key']}: unknown org {k!r}")
    partner = data.get("partner")
    if partner is not None:  # the reference partner app (emulator/partner.py)
        ok = isinstance(partner, dict) and isinstance(partner.get("host"), str) \
            and isinstance(partner.get("client"), str) and partner["client"] in {c["key"] for c in data["clients"]} \
            and isinstance(partner.get("users"), list) and partner["users"] \
            and all(isinstance(u, dict) and u.get("email") and u.get("password") for u in partner["users"])
        if not ok:
            raise ConfigError(f"{source}: 'partner' needs host, client (a client key) and users (email, password)")
    return copy.deepcopy(data)


def build_store(seed_path: str | Path | None = None, registry: SiteRegistry | None = None) -> Store:
    return Store(registry or load_registry(), load_seed(seed_path))
