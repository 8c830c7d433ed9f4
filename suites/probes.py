"""Probes from the scope catalogue, run with an OAuth client (shared by several suites)."""
from __future__ import annotations

import time

from core.scopes import fill_placeholders, load_catalogue

IDENTITY_PREFERENCE = ("user_self_profile_read", "dashboards_read", "monitors_read", "metrics_read",
                       "events_read", "hosts_read", "slos_read", "incident_read")


def read_probe(scope: str):
    """A callable (client, token) -> Exchange running the scope's read probe, or None."""
    catalogue = load_catalogue()
    probe = catalogue.probe_for(scope)
    if probe is None or probe.read is None:
        return None
    endpoint = catalogue.endpoints[probe.read.endpoint]

    def run(client, token):
        params = fill_placeholders(probe.read.params, time.time())
        return client.api(endpoint.method, endpoint.path, token, params=params, label=f"probe {scope}")
    run.json_key = probe.read.expect_json_key
    run.endpoint = endpoint
    return run


def identity_probe(target):
    """A cheap read the target's scopes allow, to tell a live token from a dead one."""
    preferred = [s for s in IDENTITY_PREFERENCE if s in target.client.scopes]
    for scope in preferred + list(target.client.scopes):
        probe = read_probe(scope)
        if probe is not None:
            return probe
    return None
