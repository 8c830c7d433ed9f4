"""fixtures/shared_state.py: which tests xdist must run on one worker (they share an org's key or the
partner app), computed from markers and targets; every other test is scheduled alone."""
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


def test_groups_join_tests_that_share_any_resource():
    items = [FakeItem("a::key[US1]", "US1", ("org_api_keys",)),
             FakeItem("a::key[EU1]", "EU1", ("org_api_keys",)),
             FakeItem("b::tile[US1]", "US1", ("integration_mode",)),
             FakeItem("b::tile[AP1]", "AP1", ("integration_mode",)),
             FakeItem("c::plain[US1]", "US1", ())]
    assert resource_names(items[2]) == ["org-US1-Sandbox_Org", "partner-app"]
    groups = shared_state_groups(items)
    assert "c::plain[US1]" not in groups  # scheduled alone, like --dist load
    # the partner app links every integration test, and through each org the key tests of that org
    assert groups["a::key[US1]"] == groups["b::tile[US1]"] == groups["b::tile[AP1]"]
    assert groups["a::key[EU1]"] != groups["a::key[US1]"]  # EU1 has no integration test here: its own group
    assert all(g.startswith("shared:") for g in groups.values())
