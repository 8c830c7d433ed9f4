"""The targets file for a running emulator: its seeded sandbox orgs, users and clients, in the
same YAML form a user writes (harness/config/targets.py parses both the same way).

Only the emulator knows its seed's layout; the harness never reads the seed.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.errors import ConfigError
from core.sites import SiteRegistry, load_registry

CONTROL_URL = "https://api.datadoghq.com/_emulator/"
# (site, client kind) -> seed user key: every user kind is exercised (plain, MFA, multi-org)
USERS = {("EU1", "test"): "mfa", ("EU1", "published"): "mfa", ("US1", "test"): "multiorg",
         ("US1", "published"): "multiorg"}
PUBLISHED_SITES = ("US1", "EU1")
REDIRECT = "https://integration.example.com/oauth/callback"
_HOSTNAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


def _partner_hosts(snapshot: dict) -> tuple[str, ...]:
    partner = snapshot.get("partner")
    return (partner["host"],) if partner else ()


def host_patterns(registry: SiteRegistry | None = None) -> tuple[str, ...]:
    """Every site's hosts, and every name under each site's domain: a subdomain mistake
    (`api.bigcorp.datadoghq.eu`) must reach the emulator and fail its TLS name check, as it
    does against Datadog. Derived from the site registry, so a new site needs no change here."""
    registry = registry or load_registry()
    wildcards = {f"*.{site.domain}" for site in registry}
    # `*.datadoghq.com` already covers `*.us3.datadoghq.com` (fnmatch's * crosses dots): keep the widest
    wildcards = {w for w in wildcards if not any(o != w and fnmatch.fnmatch(w[2:], o) for o in wildcards)}
    bare = {h for h in registry.all_hosts() if not any(fnmatch.fnmatch(h, w) for w in wildcards)}
    return tuple(sorted(wildcards) + sorted(bare))


def network_section(snapshot: dict, address: str, ca_pem: str, spki: str) -> dict:
    """Every Datadog host (and the reference partner app's) to the emulator's address, over its CA."""
    hosts = {pattern: address for pattern in host_patterns() + _partner_hosts(snapshot)}
    return {"hosts": hosts, "ca_bundle": ca_pem, "chromium_spki": spki}


def integration_section(snapshot: dict) -> dict | None:
    """The reference partner app that ships with the emulator (emulator/partner.py), on every site."""
    partner = snapshot.get("partner")
    if not partner:
        return None
    any_site = next(iter(snapshot["sites"].values()))
    client = next(c for c in any_site["clients"] if c["key"] == partner["client"])
    user = partner["users"][0]
    host = partner["host"]
    section = {
        "onboarding_url": f"https://{host}/datadog/start", "redirect_uri": f"https://{host}/oauth/callback",
        "client_id": [client["id"]], "client_name": client["name"],
        "success": {"url": rf"^https://{re.escape(host)}/datadog/connected", "text": "Connected to Datadog"},
        "failure": {"text": "Could not connect to Datadog"},
        "login": {"fields": {"Email": user["email"], "Password": user["password"]}, "submit": r"^Sign in$"},
    }
    if partner.get("data"):  # the seed's data contract; 5 s: the app sends before it shows its success page
        section["data"] = {"metric": partner["data"]["metric"], "wait_s": 5.0,
                           **({"tag": partner["data"]["tag"]} if partner["data"].get("tag") else {})}
    return section


def targets_entries(snapshot: dict, registry: SiteRegistry | None = None) -> list[dict]:
    """One target per OAuth site (sandbox org, test client) plus the published client on US1 and EU1."""
    registry = registry or load_registry()
    integration = integration_section(snapshot)
    entries = []
    for site in registry.oauth_sites():
        s = snapshot["sites"][site.key]
        sandbox = next(o for o in s["orgs"] if o["key"] == "sandbox")
        for client in s["clients"]:
            if client["kind"] == "published" and site.key not in PUBLISHED_SITES:
                continue
            user = next(u for u in s["users"] if u["key"] == USERS.get((site.key, client["kind"]), "developer"))
            foreign = [o["name"] for o in s["orgs"] if o["id"] in user["org_ids"] and o["id"] != sandbox["id"]]
            entry = {
                "name": f"{site.key}-{'sandbox' if client['kind'] == 'test' else 'published'}",
                "site": site.key, "org": sandbox["name"], "org_id": sandbox["id"],
                **({"foreign_org": foreign[0]} if foreign else {}),
                "client": {"id": client["id"], "secret": client["secret"], "kind": client["kind"],
                           "scopes": list(client["scopes"]), "name": client["name"]},
                "redirect_uri": REDIRECT if REDIRECT in client["redirect_uris"] else client["redirect_uris"][0],
                "user": {k: v for k, v in {"email": user["email"], "password": user["password"],
                                            "totp_secret": user.get("totp_secret")}.items() if v},
            }
            if integration and client["kind"] == "test":
                entry["integration"] = integration
            entries.append(entry)
    return entries


# the emulator's pages as the harness's recipes see them (its consent page is a plain form)
RECIPES = Path(__file__).resolve().parent / "data" / "recipes.yaml"


def targets_document(snapshot: dict, address: str, ca_pem: str, spki: str) -> dict:
    """A complete targets file (as a mapping) for this emulator."""
    return {"emulator_control_url": CONTROL_URL, "network": network_section(snapshot, address, ca_pem, spki),
            "recipes": str(RECIPES), "targets": targets_entries(snapshot)}


# ---- bring your own partner app (ddoauth-emulator --partner-host) -----------------------------------------

# what a partner's `--partner-config` file may set in the integration section (the rest comes from the options)
PARTNER_CONFIG_KEYS = ("client_id", "client_name", "success", "failure", "login", "data", "org_keys", "timeout_s",
                       "settle_s")
FILL_IN = """\
# FILL IN before running integration mode: the `integration` section (one, shared by every target through
# the YAML anchor &partner) does not yet say how your app's pages look. Add under it:
#   success: {url: "<regex of your success page's URL>", text: "<text your success page shows>"}
#   failure: {text: "<text your error page shows (after Deny)>"}
#   login: {fields: {"<label of your email field>": you@example.com, "<label of the password field>": ...},
#           submit: "<regex of your sign-in button's name>"}     # if your app has its own login
#   data: {metric: <a metric your app sends once connected>, wait_s: 10}   # optional
# or pass them to ddoauth-emulator with --partner-config FILE. Until `success` is set, pytest stops with
# one line naming targets[...].integration.success (exit 4).
"""


@dataclass(frozen=True)
class PartnerApp:
    """A partner's own app on `host` (what the browser and the redirect URI use), served at `address`."""
    host: str
    address: str  # ip:port the browser is sent to for `host`
    onboarding_path: str = "/datadog/start"
    redirect_path: str = "/oauth/callback"
    client_key: str = "published"

    @property
    def origin(self) -> str:
        return f"https://{self.host}"

    @property
    def onboarding_url(self) -> str:
        return self.origin + self.onboarding_path

    @property
    def redirect_uri(self) -> str:
        return self.origin + self.redirect_path


def check_partner_host(host: str, reserved: tuple[str, ...] = ()) -> str:
    """A hostname the emulator does not serve itself (a Datadog name would send Datadog's traffic to the app)."""
    host = (host or "").strip().lower().rstrip(".")
    if not _HOSTNAME.fullmatch(host):
        raise ConfigError(f"--partner-host {host!r} is not a hostname (letters, digits, '-' and dots)")
    if host in reserved or any(fnmatch.fnmatch(host, p) for p in host_patterns()):
        raise ConfigError(f"--partner-host {host} is a name the emulator serves itself: pick your app's own "
                          f"hostname (e.g. app.example-partner.test)")
    return host


def check_partner_path(path: str, option: str) -> str:
    """An absolute path on the partner's host (`/oauth/callback`): no scheme, host, fragment or whitespace."""
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//") or "#" in path \
            or any(ch.isspace() for ch in path):
        raise ConfigError(f"{option} {path!r} must be a path on your app's host, starting with '/' (no '#')")
    return path


def check_partner_config(raw: object, source: str) -> dict:
    """The integration keys a partner sets for its app (its pages' labels, its data): only known keys."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping of integration keys ({', '.join(PARTNER_CONFIG_KEYS)})")
    for key in raw:
        if key not in PARTNER_CONFIG_KEYS:
            hint = (" (set by --partner-onboarding-path / --partner-redirect-path)"
                    if key in ("onboarding_url", "redirect_uri") else "")
            raise ConfigError(f"{source}: unknown key {key!r}{hint}; known: {', '.join(PARTNER_CONFIG_KEYS)}")
    return dict(raw)


def partner_integration(snapshot: dict, partner: PartnerApp, config: dict | None = None) -> dict:
    """The integration section for the partner's app: its onboarding URL and redirect URI, the client it uses,
    then what `config` (the partner's labels and paths) sets."""
    any_site = next(iter(snapshot["sites"].values()))
    client = next(c for c in any_site["clients"] if c["key"] == partner.client_key)
    section = {"onboarding_url": partner.onboarding_url, "redirect_uri": partner.redirect_uri,
               "client_id": [client["id"]], "client_name": client["name"]}
    section.update(config or {})
    return section


def partner_targets_document(snapshot: dict, address: str, ca_bundle: str, partner: PartnerApp,
                             config: dict | None = None, spki: list[str] | None = None) -> dict:
    """A targets file for integration mode against the partner's app: the emulator's targets, each sandbox
    target with the partner's integration section (one mapping, shared), the partner's host and every
    Datadog host in network.hosts, and a CA bundle trusted for both."""
    section = partner_integration(snapshot, partner, config)
    entries = targets_entries(snapshot)
    for entry in entries:
        entry.pop("integration", None)
        if entry["client"]["kind"] == "test":
            entry["integration"] = section  # the same object: written once, with a YAML anchor
    hosts = {partner.host: partner.address, **{pattern: address for pattern in host_patterns()}}
    network = {"hosts": hosts, "ca_bundle": ca_bundle}
    if spki:
        network["chromium_spki"] = list(spki)
    return {"emulator_control_url": CONTROL_URL, "network": network, "targets": entries}


def partner_targets_yaml(document: dict, header: str) -> str:
    """The document as YAML with its integration section written once (`&partner`, then `*partner`);
    a FILL IN block when the partner's success page is not described yet."""
    text = yaml.safe_dump(document, sort_keys=False, width=120)
    text = re.sub(r"&id\d+\b", "&partner", text)
    text = re.sub(r"\*id\d+\b", "*partner", text)
    targets = document.get("targets") or []
    section = next((t["integration"] for t in targets if "integration" in t), {})
    if section.get("success"):
        return header + text
    text = text.replace("integration: &partner\n", "integration: &partner\n"
                        "    # FILL IN here: success, failure, login (see the top of this file)\n", 1)
    return header + FILL_IN + text
