"""Keys by evidence, not by name (harness/org_evidence.py): every API key created in the org since a mark,
whatever its name, from the emulator's state and from Datadog's documented key listing
(GET /api/v2/api_keys with filter[created_at][start], newest first, every page)."""
from __future__ import annotations

from urllib.parse import parse_qsl

import httpx

from harness.checks import integration
from harness.checks.registry import Unobservable
from harness.http.exchange import DatadogHTTP
from harness.org_evidence import DatadogOrgEvidence, EmulatorOrgEvidence, OrgApiKey, Since, created_ts
from tests.harness.test_integration_mode import _Target

T0 = created_ts("2026-03-01T10:00:00+00:00")


def test_created_ts_reads_both_iso_forms():
    assert created_ts("2026-03-01T10:00:00+00:00") == created_ts("2026-03-01T10:00:00Z") == T0
    assert created_ts("2026-03-01T10:00:00.500000+00:00") == T0 + 0.5
    assert created_ts("yesterday") is None


def test_emulator_evidence_lists_keys_created_since_the_mark_whatever_their_name():
    state = {"clock_offset": 0.0, "sites": {"EU1": {"api_keys": [
        {"id": "old", "org_id": "org-1", "name": "Acme OAuth Client API Key a", "created_at": "2026-03-01T09:59:59+00:00"},
        {"id": "k1", "org_id": "org-1", "name": "Acme OAuth Client API Key b", "created_at": "2026-03-01T10:00:01+00:00"},
        {"id": "k2", "org_id": "org-1", "name": "Acme Observability (reinstall)",
         "created_at": "2026-03-01T10:00:02+00:00", "disabled": True},
        {"id": "k3", "org_id": "org-2", "name": "someone else's", "created_at": "2026-03-01T10:00:03+00:00"}]}}}
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=state)))
    ev = EmulatorOrgEvidence(client, "https://api.datadoghq.com/_emulator/")
    keys = ev.api_keys_created(_Target(), Since(T0, 0))
    assert [k.id for k in keys] == ["k1", "k2"]
    assert integration.partner_api_key_present(keys, "Acme OAuth Client API Key", "EU1") == \
        "1 other API key(s) created in the org during the install: 'Acme Observability (reinstall)'"


def test_datadog_evidence_filters_by_creation_time_and_reads_every_page():
    seen = []

    def page(number: int) -> list[dict]:
        if number == 0:
            return [{"id": f"k{i}", "attributes": {"name": f"key {i}", "created_at": "2026-03-01T10:00:05+00:00"}}
                    for i in range(100)]
        return [{"id": "late", "attributes": {"name": "Acme OAuth Client API Key z", "created_at": "2026-03-01T10:00:01Z"}},
                # a server that ignored the filter: older keys are dropped here
                {"id": "older", "attributes": {"name": "old", "created_at": "2026-03-01T09:00:00+00:00"}}]

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(parse_qsl(request.url.query.decode()))
        seen.append(query)
        return httpx.Response(200, json={"data": page(int(query["page[number]"]))})
    ev = DatadogOrgEvidence(DatadogHTTP(httpx.Client(transport=httpx.MockTransport(handler))), "k-api-1", "k-app-1")
    keys = ev.api_keys_created(_Target(), Since(T0, T0))
    assert len(keys) == 101 and keys[-1] == OrgApiKey("late", "Acme OAuth Client API Key z", "2026-03-01T10:00:01Z")
    assert [q["page[number]"] for q in seen] == ["0", "1"]
    first = seen[0]
    assert first["sort"] == "-created_at" and first["page[size]"] == "100"
    assert first["filter[created_at][start]"] == "2026-03-01T09:59:55+00:00"  # the mark, less the clock slack
    assert "filter" not in first  # not by name


def test_nothing_stored_and_keys_are_unobservable_without_org_evidence():
    assert isinstance(integration.nothing_stored(None), Unobservable)
    assert isinstance(integration.partner_api_key_present([], None, "EU1"), Unobservable)
    assert isinstance(integration.token_exchange_host(None, "api.datadoghq.eu"), Unobservable)
    assert isinstance(integration.partner_stored_nothing(None, None), Unobservable)
    assert isinstance(integration.partner_no_token_request(None), Unobservable)
    assert isinstance(integration.partner_data_arrived(None, None, "EU1", 0.0), Unobservable)


def test_token_hosts_leave_out_the_harness_own_requests():
    """Under xdist, client-mode tests of a target with the same client (US1-published) exchange codes beside
    integration mode: only the partner's software counts as the partner's token requests."""
    import httpx

    from core.network import HARNESS_USER_AGENT
    from harness.org_evidence import EmulatorOrgEvidence, Since

    log = [{"path": "/oauth2/v1/token", "client_id": "c1", "wall": 10.0, "host": "api.datadoghq.com",
            "user_agent": HARNESS_USER_AGENT},
           {"path": "/oauth2/v1/token", "client_id": "c1", "wall": 11.0, "host": "api.us5.datadoghq.com",
            "user_agent": "python-httpx/0.28.1"},
           {"path": "/oauth2/v1/token", "client_id": "c2", "wall": 12.0, "host": "api.datadoghq.eu", "user_agent": ""},
           {"path": "/oauth2/v1/token", "client_id": "c1", "wall": 1.0, "host": "api.datadoghq.eu", "user_agent": ""}]

    def handler(request):
        return httpx.Response(200, json={"requests": log})
    evidence = EmulatorOrgEvidence(httpx.Client(transport=httpx.MockTransport(handler)), "https://emu/_emulator/")
    assert evidence.token_hosts(("c1",), Since(5.0, 5.0)) == ["api.us5.datadoghq.com"]
