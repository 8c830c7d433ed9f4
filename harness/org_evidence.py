"""What the partner's integration left in the customer's Datadog org: its API key, its data, and
(against the emulator) the host its server called for the token exchange.

Two sources with one interface: the emulator's state (control API), and real Datadog read with an
org API key and application key (`integration.org_keys` in the targets file).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from harness.config.targets import Target
from harness.http.exchange import DatadogHTTP
from harness.config.integration import TOKEN_PATHS


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

    def delete_api_key(self, target: Target, key: OrgApiKey) -> bool: ...

    def data_points(self, target: Target, metric: str, tag: str | None, since: Since) -> int: ...

    def token_hosts(self, client_ids: tuple[str, ...], since: Since) -> list[str] | None: ...

    def partner_installations(self) -> list[dict] | None: ...  # None: the partner's own store is not visible


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

    def delete_api_key(self, target: Target, key: OrgApiKey) -> bool:
        return self.client.delete(f"{self.base}api-keys/{key.id}").status_code == 200

    def data_points(self, target: Target, metric: str, tag: str | None, since: Since) -> int:
        n = 0
        for m in self._site(target)["metrics"]:
            if m["org_id"] != target.org_id or m["metric"] != metric or (tag and tag not in m["tags"]):
                continue
            n += sum(1 for ts, _ in m["points"] if ts >= int(since.clock))  # points carry whole seconds
        return n

    def token_hosts(self, client_ids: tuple[str, ...], since: Since) -> list[str] | None:
        # by real time: a test that moved the emulator's clock forward and back leaves "future" entries
        return [r["host"] for r in self._get("requests")["requests"]
                if r["path"] in TOKEN_PATHS and r.get("client_id") in client_ids and r["wall"] >= since.wall]

    def partner_installations(self) -> list[dict] | None:
        """The reference partner app's installations (ids and orgs only; it never shows secrets)."""
        return self._get("partner")["installations"]


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

    def token_hosts(self, client_ids: tuple[str, ...], since: Since) -> list[str] | None:
        return None  # Datadog does not show who called its token endpoint

    def partner_installations(self) -> list[dict] | None:
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
