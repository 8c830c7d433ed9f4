"""Probes from the scope catalogue, run with an OAuth client (shared by several suites).

A probe is a documented read. Called as evidence (`probe(client, token)`), a documented path that answers
404 (harness.http.exchange.endpoint_absent) raises EndpointAbsent: the test is broken ("Endpoint absent on this
target"), never judged on a 404; only the test that owns the endpoint (the per-scope data flow) reads the
bare answer (`probe.answer`) and fails it with a named check. A probe that tells a live token from a dead
one is first proven with a good token (`probe.prove`): when it does not answer 2xx, the test is broken
(PrerequisiteFailed) instead of taking a refusal as proof of anything.
"""
from __future__ import annotations

import time

from core.errors import PrerequisiteFailed
from core.scopes import fill_placeholders, load_catalogue
from harness.http.exchange import absent_error, endpoint_absent

IDENTITY_PREFERENCE = ("user_self_profile_read", "dashboards_read", "monitors_read", "metrics_read",
                       "events_read", "hosts_read", "slos_read", "incident_read")


class Probe:
    """The read probe of one scope: (client, token) -> Exchange."""

    def __init__(self, scope: str, endpoint, params, json_key: str | None):
        self.scope, self.endpoint, self.params, self.json_key = scope, endpoint, params, json_key

    def answer(self, client, token):
        """The exchange as it came, a 404 included (for the test that owns the endpoint)."""
        params = fill_placeholders(self.params, time.time())
        return client.api(self.endpoint.method, self.endpoint.path, token, params=params, label=f"probe {self.scope}")

    def __call__(self, client, token):
        """The exchange, as evidence about the token: EndpointAbsent when the documented path is not there."""
        ex = self.answer(client, token)
        if endpoint_absent(ex, names_a_resource="{" in self.endpoint.path):
            raise absent_error(ex)
        return ex

    def prove(self, client, token):
        """Run with a token that must work: 2xx, or the probe cannot serve as evidence (PrerequisiteFailed)."""
        ex = self(client, token)
        if not 200 <= ex.status < 300:
            raise PrerequisiteFailed(f"the probe for {self.scope} ({self.endpoint.method} {self.endpoint.path}) "
                                     f"answered {ex.status} with a good token: it cannot tell a live token "
                                     f"from a dead one")
        return ex


def read_probe(scope: str) -> Probe | None:
    """The scope's read probe, or None."""
    catalogue = load_catalogue()
    probe = catalogue.probe_for(scope)
    if probe is None or probe.read is None:
        return None
    return Probe(scope, catalogue.endpoints[probe.read.endpoint], probe.read.params, probe.read.expect_json_key)


def identity_probe(target) -> Probe | None:
    """A cheap read the target's scopes allow, to tell a live token from a dead one (prove it first)."""
    preferred = [s for s in IDENTITY_PREFERENCE if s in target.client.scopes]
    for scope in preferred + list(target.client.scopes):
        probe = read_probe(scope)
        if probe is not None:
            return probe
    return None
