"""fixtures/shared_state.py: which tests xdist must run on one worker (they share an org's marketplace key
and its evidence), computed from markers and targets; every other test is scheduled alone."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from fixtures.shared_state import resource_names, shared_state_groups


class FakeItem:
    def __init__(self, nodeid: str, site: str | None, markers: tuple[str, ...]):
        self.nodeid = nodeid
        target = SimpleNamespace(site=SimpleNamespace(key=site), org="Sandbox Org") if site else None
        self.callspec = SimpleNamespace(params={"target": target} if target else {})
        self._markers = markers

    def get_closest_marker(self, name: str):
        return pytest.mark.__getattr__(name) if name in self._markers else None


def test_groups_join_tests_that_share_an_org():
    items = [FakeItem("a::key[US1]", "US1", ("org_api_keys",)),
             FakeItem("a::key[EU1]", "EU1", ("org_api_keys",)),
             FakeItem("b::tile[US1]", "US1", ("integration_mode",)),
             FakeItem("b::tile[AP1]", "AP1", ("integration_mode",)),
             FakeItem("c::plain[US1]", "US1", ())]
    assert resource_names(items[2]) == ["org-US1-Sandbox_Org"]
    groups = shared_state_groups(items)
    assert "c::plain[US1]" not in groups  # scheduled alone, like --dist load
    assert groups["a::key[US1]"] == groups["b::tile[US1]"]  # the org's key: one worker, one after the other
    # other orgs (other sites) run beside it: integration mode's evidence is read per org
    assert len({groups["a::key[US1]"], groups["a::key[EU1]"], groups["b::tile[AP1]"]}) == 3
    assert all(g.startswith("shared:") for g in groups.values())


def test_a_test_with_two_resources_links_their_groups():
    from fixtures import shared_state
    items = [FakeItem("a::x[US1]", "US1", ("org_api_keys",)), FakeItem("a::y[EU1]", "EU1", ("org_api_keys",))]
    original = shared_state.resource_names
    try:
        shared_state.resource_names = lambda item: ["org-EU1-Sandbox_Org", "org-US1-Sandbox_Org"] if item.nodeid == "a::z" else original(item)
        items.append(FakeItem("a::z", "US1", ()))
        groups = shared_state.shared_state_groups(items)
    finally:
        shared_state.resource_names = original
    assert groups["a::x[US1]"] == groups["a::y[EU1]"] == groups["a::z"]
