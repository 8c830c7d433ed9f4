"""What the partner's integration left in the customer's Datadog org: its API key, its data, and
(against the emulator) the host its server called for the token exchange.

Two sources with one interface: the emulator's state (control API), and real Datadog read with an
org API key and application key (`integration.org_keys` in the targets file).

Keys are judged by evidence, not by name: `api_keys_created` lists every API key created in the org
since a mark (by `created_at`, whatever its name), so a partner that creates a key under another
name is seen too. `api_keys` (by name prefix) is only for cleaning up the partner's own key.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

import httpx

from harness.config.targets import Target
from harness.http.exchange import DatadogHTTP
from harness.config.integration import TOKEN_PATHS
from core.network import HARNESS_USER_AGENT


@dataclass(frozen=True)
class Since:
    """A moment on both clocks: the target's (data timestamps; the emulator's may be moved by tests)
    and the real one (the emulator's request log)."""
    clock: float
    wall: float


@dataclass(frozen=True)
class OrgApiKey:
    id: str
    name: str
    created_at: str = ""


class OrgEvidence(Protocol):
    source: str

    def mark(self) -> Since: ...

    def api_keys(self, target: Target, name_prefix: str) -> list[OrgApiKey]: ...

    def api_keys_created(self, target: Target, since: Since) -> list[OrgApiKey]: ...  # any name, by created_at

    def delete_api_key(self, target: Target, key: OrgApiKey) -> bool: ...

    def data_points(self, target: Target, metric: str, tag: str | None, since: Since) -> int: ...

    def token_hosts(self, client_ids: tuple[str, ...], since: Since, org_id: str | None = None) -> list[str] | None: ...

    def partner_installations(self, org_id: str | None = None) -> list[dict] | None: ...  # None: not visible


def created_ts(created_at: str) -> float | None:
    """An API key's `created_at` (ISO 8601, as Datadog and the emulator write it) in epoch seconds, or None."""
    try:
        when = datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class EmulatorOrgEvidence:
    """Reads the emulator's state through its control API."""

    source = "emulator state"

    def __init__(self, client: httpx.Client, control_url: str):
        self.client = client
        self.base = control_url

    def _get(self, path: str) -> dict:
        resp = self.client.get(self.base + path)
        resp.raise_for_status()
        return resp.json()

    def mark(self) -> Since:
        wall = time.time()
        return Since(wall + float(self._get("state").get("clock_offset", 0.0)), wall)

    def _site(self, target: Target) -> dict:
        return self._get("state")["sites"][target.site.key]

    def api_keys(self, target: Target, name_prefix: str) -> list[OrgApiKey]:
        return [OrgApiKey(k["id"], k["name"], k.get("created_at", "")) for k in self._site(target)["api_keys"]
                if k["org_id"] == target.org_id and k["name"].startswith(name_prefix) and not k.get("disabled")]

    def api_keys_created(self, target: Target, since: Since) -> list[OrgApiKey]:
        """Every key of the target's org created on the emulator's clock at or after `since` (disabled too)."""
        out = []
        for k in self._site(target)["api_keys"]:
            ts = created_ts(k.get("created_at", ""))
            if k["org_id"] == target.org_id and (ts is None or ts >= since.clock):
                out.append(OrgApiKey(k["id"], k["name"], k.get("created_at", "")))
        return out

    def delete_api_key(self, target: Target, key: OrgApiKey) -> bool:
        return self.client.delete(f"{self.base}api-keys/{key.id}").status_code == 200

    def data_points(self, target: Target, metric: str, tag: str | None, since: Since) -> int:
        n = 0
        for m in self._site(target)["metrics"]:
            if m["org_id"] != target.org_id or m["metric"] != metric or (tag and tag not in m["tags"]):
                continue
            n += sum(1 for ts, _ in m["points"] if ts >= int(since.clock))  # points carry whole seconds
        return n

    def token_hosts(self, client_ids: tuple[str, ...], since: Since, org_id: str | None = None) -> list[str] | None:
        """Hosts of the partner's token requests since `since` (real time). Not the harness's own requests
        (its client-mode tests of a target with the same client run beside integration mode under xdist),
        and with org_id, not the exchanges of codes another org's install got (integration tests of other
        sites run beside each other): a request whose code is unknown to the emulator is kept."""
        return [r["host"] for r in self._get("requests")["requests"]
                if r["path"] in TOKEN_PATHS and r.get("client_id") in client_ids and r["wall"] >= since.wall
                and not str(r.get("user_agent", "")).startswith(HARNESS_USER_AGENT)
                and (org_id is None or r.get("code_org_id") in (None, org_id))]

    def partner_installations(self, org_id: str | None = None) -> list[dict] | None:
        """The reference partner app's installations (ids and orgs only; it never shows secrets), in one org."""
        # (an installation that names no org is kept: it cannot be told apart)
        return [i for i in self._get("partner")["installations"] if org_id is None or i.get("org_id") in (org_id, "", None)]


class DatadogOrgEvidence:
    """Reads a real org with its API key + application key (the partner's own key is never needed)."""

    source = "Datadog API (org keys)"

    def __init__(self, http: DatadogHTTP, api_key: str, app_key: str):
        self.http = http
        self.headers = {"DD-API-KEY": api_key, "DD-APPLICATION-KEY": app_key}

    def mark(self) -> Since:
        now = time.time()
        return Since(now, now)

    def _api(self, target: Target, method: str, path: str, label: str, params: dict | None = None):
        url = f"https://{target.site.api_host}{path}"
        return self.http.request(method, url, headers=self.headers, params=params, label=label)

    def api_keys(self, target: Target, name_prefix: str) -> list[OrgApiKey]:
        ex = self._api(target, "GET", "/api/v2/api_keys", "list the org's API keys",
                       {"filter": name_prefix, "page[size]": "100"})
        if ex.status != 200:
            raise RuntimeError(f"listing the org's API keys failed: {ex.brief()}")
        out = []
        for item in (ex.json or {}).get("data", []):
            attrs = item.get("attributes", {})
            if str(attrs.get("name", "")).startswith(name_prefix):
                out.append(OrgApiKey(str(item.get("id")), attrs["name"], attrs.get("created_at", "")))
        return out

    CLOCK_SLACK_S = 5.0  # this machine's clock may run a little ahead of Datadog's
    PAGE_SIZE = 100  # Datadog's maximum
    MAX_PAGES = 20

    def api_keys_created(self, target: Target, since: Since) -> list[OrgApiKey]:
        """GET /api/v2/api_keys with filter[created_at][start] (documented: "created on or after"), newest
        first, every page; filtered here by created_at too, in case a page carries older keys."""
        start = since.wall - self.CLOCK_SLACK_S
        out: list[OrgApiKey] = []
        for number in range(self.MAX_PAGES):
            ex = self._api(target, "GET", "/api/v2/api_keys", "list the API keys created in the org during the test",
                           {"filter[created_at][start]": iso(start), "sort": "-created_at",
                            "page[size]": str(self.PAGE_SIZE), "page[number]": str(number)})
            if ex.status != 200:
                raise RuntimeError(f"listing the org's API keys failed: {ex.brief()}")
            items = (ex.json or {}).get("data", [])
            for item in items:
                attrs = item.get("attributes", {})
                ts = created_ts(attrs.get("created_at", ""))
                if ts is None or ts >= start:
                    out.append(OrgApiKey(str(item.get("id")), str(attrs.get("name", "")), attrs.get("created_at", "")))
            if len(items) < self.PAGE_SIZE:
                break
        return out

    def delete_api_key(self, target: Target, key: OrgApiKey) -> bool:
        ex = self._api(target, "DELETE", f"/api/v2/api_keys/{key.id}", "delete the partner's API key")
        return ex.status in (200, 204)

    def data_points(self, target: Target, metric: str, tag: str | None, since: Since) -> int:
        query = f"sum:{metric}{{{tag or '*'}}}"
        ex = self._api(target, "GET", "/api/v1/query", f"query {metric}",
                       {"from": str(int(since.clock)), "to": str(int(time.time()) + 60), "query": query})
        if ex.status != 200:
            raise RuntimeError(f"querying {metric} failed: {ex.brief()}")
        return sum(len(s.get("pointlist") or []) for s in (ex.json or {}).get("series", []))

    def token_hosts(self, client_ids: tuple[str, ...], since: Since, org_id: str | None = None) -> list[str] | None:
        return None  # Datadog does not show who called its token endpoint

    def partner_installations(self, org_id: str | None = None) -> list[dict] | None:
        return None


def wait_for_data(evidence: OrgEvidence, target: Target, metric: str, tag: str | None, since: Since,
                  wait_s: float, poll_s: float = 1.0) -> tuple[int, float]:
    """Poll until the metric shows points since `since`; (points, seconds waited)."""
    started = time.monotonic()
    while True:
        points = evidence.data_points(target, metric, tag, since)
        waited = time.monotonic() - started
        if points or waited >= wait_s:
            return points, waited
        time.sleep(min(poll_s, max(0.0, wait_s - waited)))
