"""The targets file for a running emulator: its seeded sandbox orgs, users and clients, in the
same YAML form a user writes (harness/config/targets.py parses both the same way).

Only the emulator knows its seed's layout; the harness never reads the seed.
"""
from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from core.sites import SiteRegistry, load_registry

CONTROL_URL = "https://api.datadoghq.com/_emulator/"
# (site, client kind) -> seed user key: every user kind is exercised (plain, MFA, multi-org)
USERS = {("EU1", "test"): "mfa", ("EU1", "published"): "mfa", ("US1", "test"): "multiorg",
         ("US1", "published"): "multiorg"}
PUBLISHED_SITES = ("US1", "EU1")
REDIRECT = "https://integration.example.com/oauth/callback"


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
