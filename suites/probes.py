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

from core.errors import EndpointAbsent, PrerequisiteFailed
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


class IdentityProbe:
    """Evidence about a token from the first of the target's reads that exists on this target.

    A read whose documented endpoint answers 404 is set aside (recorded in `absent`) and the next
    one the scopes allow is used, so one absent endpoint breaks only the test that owns it; only
    when none is left is the test broken ("Endpoint absent on this target")."""

    def __init__(self, candidates: list[Probe]):
        self.candidates = list(candidates)
        self.absent: list[EndpointAbsent] = []
        self._first_scope = candidates[0].scope
        self._proven = False  # once a read answered 2xx with a good token, its later answers are evidence

    @property
    def scope(self) -> str:
        return self.candidates[0].scope if self.candidates else self._first_scope

    def _first_present(self, use):
        while self.candidates:
            try:
                return use(self.candidates[0])
            except EndpointAbsent as exc:
                self.absent.append(exc)
                self.candidates.pop(0)
        raise EndpointAbsent("; ".join(str(e) for e in self.absent) + ": no read of the target's scopes is left "
                             "to tell a live token from a dead one")

    def answer(self, client, token):
        return self.candidates[0].answer(client, token) if self.candidates else self(client, token)

    def __call__(self, client, token):
        if self._proven:  # the endpoint exists: a 404 now is an answer about the token, judged, not set aside
            return self.candidates[0].answer(client, token)
        return self._first_present(lambda probe: probe(client, token))

    def prove(self, client, token):
        ex = self._first_present(lambda probe: probe.prove(client, token))
        self._proven = True
        return ex


def identity_probe(target) -> IdentityProbe | None:
    """Cheap reads the target's scopes allow, to tell a live token from a dead one (prove it first)."""
    preferred = [s for s in IDENTITY_PREFERENCE if s in target.client.scopes]
    candidates, seen = [], set()
    for scope in preferred + list(target.client.scopes):
        probe = read_probe(scope) if scope not in seen else None
        seen.add(scope)
        if probe is not None:
            candidates.append(probe)
    return IdentityProbe(candidates) if candidates else None
