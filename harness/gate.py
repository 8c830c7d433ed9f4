"""The pre-publication gate: is this integration folder (and its validation record) ready to submit?

Static rules read the integration's README.md, manifest.json and assets/oauth_clients.json as
Datadog's publishing checklist describes them; dynamic rules read the validation ledger that
every conformance run writes. Each finding is one line naming the file and what to write instead.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from core.scopes import load_catalogue
from harness.results.outcome import PASSED, SKIPPED, WAIVED

DOC = "https://docs.datadoghq.com/developers/integrations/oauth_for_integrations/"
OAUTH_FIELDS = ("id", "name", "description", "client_role", "onboarding_url", "redirect_uris", "scopes")
TEST_HOST_HINTS = ("localhost", "127.0.0.1", "0.0.0.0", "ngrok", ".local", "example.com", "staging", "test.")
REQUIRED_SUITES = ("test_authorize", "test_token", "test_refresh", "test_revoke", "test_api_key", "test_scopes")
# ledger outcomes (harness/results/outcome.py) that do not hold a suite back: a waiver is an expected deviation
NOT_FAILING = (PASSED, SKIPPED, WAIVED)


@dataclass
class Finding:
    rule: str
    level: str  # fail | warn | pass
    file: str
    message: str
    fix: str = ""

    def line(self) -> str:
        tag = {"fail": "FAIL", "warn": "WARN", "pass": "ok  "}[self.level]
        fix = f" -> {self.fix}" if self.fix and self.level != "pass" else ""
        return f"{tag} [{self.rule}] {self.file}: {self.message}{fix}"


@dataclass
class GateResult:
    integration: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, rule: str, ok: bool, file: str, message: str, fix: str = "", warn_only: bool = False) -> None:
        level = "pass" if ok else ("warn" if warn_only else "fail")
        self.findings.append(Finding(rule, level, file, message, fix))

    @property
    def passed(self) -> bool:
        return not any(f.level == "fail" for f in self.findings)

    def as_dict(self) -> dict:
        return {"integration": self.integration, "ready": self.passed,
                "failures": sum(f.level == "fail" for f in self.findings),
                "warnings": sum(f.level == "warn" for f in self.findings),
                "checklist": [asdict(f) for f in self.findings], "source": DOC}


# ---- README -------------------------------------------------------------------------------------

def _sections(text: str) -> list[tuple[int, str, int]]:
    """(level, title, line index) of every markdown heading outside code fences."""
    out, fenced = [], False
    for i, line in enumerate(text.splitlines()):
        if line.strip().startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})\s+(.+?)\s*#*\s*$", line)
        if m:
            out.append((len(m.group(1)), m.group(2).strip(), i))
    return out


def _section_body(text: str, heads, index: int) -> str:
    lines = text.splitlines()
    level, _, start = heads[index]
    end = len(lines)
    for lvl, _, i in heads[index + 1:]:
        if lvl <= level:
            end = i
            break
    return "\n".join(lines[start + 1:end])


def check_readme(folder: Path, result: GateResult) -> None:
    path = folder / "README.md"
    name = "README.md"
    if not path.is_file():
        result.add("readme-exists", False, name, "missing", "add a README.md with ## Overview, ## Setup, ## Uninstallation")
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    heads = _sections(text)
    setup = next((i for i, (lvl, t, _) in enumerate(heads) if lvl == 2 and t.lower() == "setup"), None)
    result.add("readme-setup", setup is not None, name, "has a `## Setup` section" if setup is not None
               else "no `## Setup` section", "add `## Setup` (ddev validate readmes requires it)")
    uninst = next((i for i, (lvl, t, _) in enumerate(heads) if lvl in (2, 3) and t.lower() == "uninstallation"), None)
    if uninst is None:
        result.add("readme-uninstallation", False, name, "no `## Uninstallation` section",
                   "add `## Uninstallation` under `## Setup` (publishing checklist)")
        return
    after_setup = setup is not None and uninst > setup
    result.add("readme-uninstallation-placement", after_setup, name,
               "`Uninstallation` comes after `Setup`" if after_setup else "`Uninstallation` comes before `## Setup`",
               "move the Uninstallation section under Setup")
    body = _section_body(text, heads, uninst)
    revoked = re.search(r"authori[sz]ations?\s+(are|is|will be)\s+revoked", body, re.I) is not None
    result.add("readme-uninstallation-revoked", revoked, name,
               "says previous authorizations are revoked" if revoked else
               "Uninstallation does not say previous authorizations are revoked",
               'write: "Once this integration has been uninstalled, any previous authorizations are revoked."')
    keys = re.search(r"API\s+keys?", body, re.I) and re.search(r"disabl", body, re.I) and \
        re.search(r"API\s+Keys\s+page|organization-settings/api-keys", body, re.I)
    result.add("readme-uninstallation-api-keys", bool(keys), name,
               "tells users to disable the integration's API keys on the API Keys page" if keys else
               "Uninstallation does not tell users to disable the integration's API keys on the API Keys page",
               'write: "ensure that all API keys associated with this integration have been disabled by searching '
               'for the integration name on the [API Keys page](https://app.datadoghq.com/organization-settings/api-keys)."')


# ---- manifest.json ---------------------------------------------------------------------------------

def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def check_manifest(folder: Path, result: GateResult) -> dict | None:
    name = "manifest.json"
    path = folder / name
    if not path.is_file():
        result.add("manifest-exists", False, name, "missing", "add the manifest.json exported from the Developer Platform")
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        result.add("manifest-json", False, name, f"not valid JSON ({exc})", "fix the JSON syntax")
        return None
    if not isinstance(manifest, dict):
        result.add("manifest-json", False, name, "not a JSON object", "the manifest is one JSON object")
        return None
    result.add("manifest-json", True, name, "parses")
    app_uuid = manifest.get("app_uuid")
    result.add("manifest-app-uuid", _is_uuid(app_uuid), name,
               f"app_uuid {app_uuid!r} is a UUID" if _is_uuid(app_uuid) else f"app_uuid {app_uuid!r} is not a UUID",
               "copy app_uuid from the Developer Platform Publishing tab")
    tile = manifest.get("tile") if isinstance(manifest.get("tile"), dict) else {}
    holder = tile if "uninstallation" in tile else manifest
    ref = holder.get("uninstallation")
    ok_ref = ref == "README.md#Uninstallation"
    result.add("manifest-uninstallation", ok_ref, name,
               "references README.md#Uninstallation" if ok_ref else f"uninstallation is {ref!r}",
               'add "uninstallation": "README.md#Uninstallation" directly beneath "support"')
    if ok_ref:
        keys = list(holder.keys())
        beneath = "support" in keys and keys.index("uninstallation") == keys.index("support") + 1
        # the docs say "directly beneath support"; merged manifests vary, so only a warning
        result.add("manifest-uninstallation-order", beneath, name,
                   "uninstallation sits directly beneath support" if beneath else
                   "uninstallation is not directly beneath support", "move it right after \"support\"",
                   warn_only=True)
    assets = manifest.get("assets") if isinstance(manifest.get("assets"), dict) else {}
    oauth_ref = assets.get("oauth")
    exists = isinstance(oauth_ref, str) and (folder / oauth_ref).is_file()
    result.add("manifest-assets-oauth", exists, name,
               f"assets.oauth points at {oauth_ref}" if exists else f"assets.oauth is {oauth_ref!r} (no such file)",
               'add "oauth": "assets/oauth_clients.json" under "assets" and commit that file')
    return manifest if exists else manifest | {"_no_oauth": True}


# ---- assets/oauth_clients.json ----------------------------------------------------------------------

def check_oauth_clients(folder: Path, manifest: dict | None, result: GateResult,
                        target_scopes: dict[str, tuple[str, ...]] | None) -> list[str] | None:
    ref = ((manifest or {}).get("assets") or {}).get("oauth") or "assets/oauth_clients.json"
    path = folder / ref
    name = ref
    if not path.is_file():
        result.add("oauth-clients-exists", False, name, "missing", "add the file the Developer Platform generates")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entry = data["integration"]
        assert isinstance(entry, dict)
    except (ValueError, KeyError, AssertionError, TypeError):
        result.add("oauth-clients-shape", False, name, 'not {"integration": {...}}', "regenerate it from the Developer Platform")
        return None
    missing = [f for f in OAUTH_FIELDS if f not in entry]
    result.add("oauth-clients-fields", not missing, name,
               "has id, name, description, client_role, onboarding_url, redirect_uris, scopes" if not missing
               else f"missing {', '.join(missing)}", "regenerate it from the Developer Platform")
    if "id" in entry:
        result.add("oauth-clients-id", _is_uuid(entry["id"]), name,
                   "id is a UUID" if _is_uuid(entry["id"]) else f"id {entry['id']!r} is not a UUID",
                   "use the published client id")
    urls = [entry.get("onboarding_url")] + list(entry.get("redirect_uris") or [])
    for url in urls:
        if not isinstance(url, str):
            continue
        parts = urlsplit(url)
        result.add("oauth-clients-https", parts.scheme == "https", name,
                   f"{url} is https" if parts.scheme == "https" else f"{url} is not https", "use an https URL")
        host = (parts.hostname or "").lower()
        testy = any(h in host for h in TEST_HOST_HINTS) or "/test" in parts.path.lower()
        result.add("oauth-clients-no-test-urls", not testy, name,
                   f"{url} is a production URL" if not testy else f"{url} looks like a testing URL",
                   "remove testing URLs from the Onboarding URL and Redirect URIs before submission")
    scopes = entry.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        result.add("oauth-clients-scopes", False, name, "no scopes", "list the client's scopes")
        return None
    catalogue = load_catalogue()
    unknown = [s for s in scopes if catalogue.get(s) is None]
    result.add("oauth-clients-scopes-known", not unknown, name,
               "every scope is a Datadog scope" if not unknown else f"unknown scopes: {', '.join(unknown)}",
               "use scope names from https://docs.datadoghq.com/api/latest/scopes/")
    for target, configured in (target_scopes or {}).items():
        same = set(configured) == set(scopes)
        diff = f"extra {sorted(set(scopes) - set(configured))}, missing {sorted(set(configured) - set(scopes))}"
        result.add("oauth-clients-scopes-match-targets", same, name,
                   f"scopes equal target {target}'s client" if same else f"scopes differ from target {target}: {diff}",
                   "make the Developer Platform client and oauth_clients.json list the same scopes")
    return list(scopes)


# ---- validation ledger (dynamic) ----------------------------------------------------------------------

def check_ledger(ledger_path: Path, targets, scopes: list[str] | None, result: GateResult, max_age_days: int,
                 today: date | None = None) -> None:
    name = str(ledger_path)
    if not ledger_path.is_file():
        result.add("ledger-exists", False, name, "no validation ledger: the suites never ran here",
                   "run `make conformance TARGETS=targets.yaml` first")
        return
    try:
        ledger = json.loads(ledger_path.read_text())
    except ValueError:
        result.add("ledger-exists", False, name, "unreadable", "delete it and run the suites again")
        return
    today = today or datetime.now(timezone.utc).date()
    oldest = today - timedelta(days=max_age_days)
    for target in targets:
        if target.client.kind != "test":
            continue
        record = ledger.get("targets", {}).get(target.name, {})
        tests = record.get("tests", {})
        # integration mode joins the gate when the target configures it (the partner's own app)
        suites = REQUIRED_SUITES + (("test_integration",) if getattr(target, "integration", None) else ())
        for suite in suites:
            runs = {k: v for k, v in tests.items() if k.split("::")[0].endswith(f"{suite}.py")}
            failing = [k for k, v in runs.items() if v.get("last_outcome") not in NOT_FAILING]
            fresh = [k for k, v in runs.items() if v.get("last_pass") and date.fromisoformat(v["last_pass"]) >= oldest]
            ok = bool(runs) and not failing and bool(fresh)
            why = ("never ran" if not runs else f"failing: {', '.join(sorted(failing))[:200]}" if failing
                   else f"no pass in the last {max_age_days} days")
            result.add("ledger-suite-passed", ok, name,
                       f"{target.name}: {suite} passed within {max_age_days} days" if ok else f"{target.name}: {suite} {why}",
                       f"run the suites for {target.name} and fix what fails")
        consent = record.get("consent_scopes")
        if scopes is not None:
            same = consent is not None and set(consent) == set(scopes)
            result.add("ledger-consent-scopes", same, name,
                       f"{target.name}: the consent page showed exactly the oauth_clients.json scopes" if same else
                       f"{target.name}: consent page showed {consent}, oauth_clients.json lists {scopes}",
                       "align the client's scopes in the Developer Platform")
            flowed = {k.split("[")[-1] for k, v in tests.items()
                      if "test_scope_data_flow" in k and v.get("last_outcome") == "passed"}
            missing = [s for s in scopes if s != "api_keys_write" and not any(s in f for f in flowed)]
            if "api_keys_write" in scopes and not any("test_marketplace_key_lifecycle" in k and v.get("last_outcome") ==
                                                      "passed" for k, v in tests.items()):
                missing.append("api_keys_write")
            result.add("ledger-data-flow", not missing, name,
                       f"{target.name}: data flow proven for every scope" if not missing else
                       f"{target.name}: data flow not proven for {', '.join(missing)}",
                       "Datadog's review asks to confirm data flow for all scopes")


def run_gate(folder: Path, targets=None, ledger: Path | None = None, static_only: bool = False,
             max_age_days: int = 7, today: date | None = None) -> GateResult:
    result = GateResult(str(folder))
    if not folder.is_dir():
        result.add("integration-folder", False, str(folder), "not a directory", "pass the integration's folder")
        return result
    check_readme(folder, result)
    manifest = check_manifest(folder, result)
    target_scopes = {t.name: t.client.scopes for t in targets or []}
    scopes = check_oauth_clients(folder, manifest, result, target_scopes or None)
    if not static_only:
        check_ledger(ledger or Path(".ddoauth/validation-ledger.json"), targets or [], scopes, result, max_age_days,
                     today)
    return result
