"""The import graph keeps the layers (docs/ARCHITECTURE.md): suites -> fixtures -> harness -> core,
emulator -> core; only the CLI and the pytest plugin start the embedded emulator, through
``emulator``'s public start function; no import cycles between modules or between packages.

The graph is grimp's (it reads every import statement, those inside functions too).
"""
from __future__ import annotations

import graphlib
import sys
from functools import lru_cache
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "harness", "emulator", "fixtures", "suites")

# package -> the packages it may import
ALLOWED = {
    "core": set(),
    "emulator": {"core"},
    "harness": {"core", "emulator"},  # emulator: the CLI only, see EMULATOR_STARTERS
    "fixtures": {"harness", "core", "emulator"},  # emulator: the targets plugin only
    "suites": {"fixtures", "harness", "core"},
}
# the only modules that may import the emulator, and what they may import of it
EMULATOR_STARTERS = {"harness.cli", "fixtures.targets"}
EMULATOR_PUBLIC = {"emulator"}
HARNESS_SUBPACKAGES = ("config", "http", "browser", "checks", "results")


@lru_cache(maxsize=1)
def import_graph() -> grimp.ImportGraph:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def edges() -> list[tuple[str, str]]:
    graph = import_graph()
    return sorted((importer, imported) for importer in graph.modules
                  for imported in graph.find_modules_directly_imported_by(importer)
                  if imported.split(".")[0] in PACKAGES)


def _where(importer: str, imported: str) -> str:
    details = import_graph().get_import_details(importer=importer, imported=imported)
    return "; ".join(f"{importer}:{d['line_number']} {d['line_contents']}" for d in details) or f"{importer} -> {imported}"


def _first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return exc.args[1]
    return None


def test_every_package_is_in_the_graph():
    found = {m.split(".")[0] for m in import_graph().modules}
    assert found == set(PACKAGES)
    assert "harness.cli" in import_graph().modules and "fixtures.targets" in import_graph().modules


def test_packages_import_only_the_layers_below():
    wrong = [_where(a, b) for a, b in edges()
             if a.split(".")[0] != b.split(".")[0] and b.split(".")[0] not in ALLOWED[a.split(".")[0]]]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_only_the_cli_and_the_plugin_start_the_emulator_through_its_public_module():
    wrong = [_where(a, b) for a, b in edges() if b.split(".")[0] == "emulator" and a.split(".")[0] != "emulator"
             and (a not in EMULATOR_STARTERS or b not in EMULATOR_PUBLIC)]
    assert not wrong, "the emulator is reached only through emulator.start_embedded:\n" + "\n".join(wrong)


def test_no_cycle_between_modules():
    graph: dict[str, set[str]] = {m: set() for m in import_graph().modules}
    for a, b in edges():
        graph[a].add(b)
    cycle = _first_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _package(module: str) -> str:
    return module.split(".")[0]


def _harness_unit(module: str) -> str:
    """harness.config.targets -> harness.config; harness.cli -> harness.cli; core.sites -> core."""
    parts = module.split(".")
    if parts[0] != "harness" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


@pytest.mark.parametrize("unit", [_package, _harness_unit], ids=["packages", "harness-subpackages"])
def test_no_cycle_between_packages(unit):
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        graph.setdefault(unit(a), set())
        graph.setdefault(unit(b), set())
        if unit(a) != unit(b):
            graph[unit(a)].add(unit(b))
    cycle = _first_cycle(graph)
    assert cycle is None, "cycle between packages: " + " -> ".join(cycle or [])


def test_a_check_that_cannot_fail_is_not_this_one():
    """The rules above find a violation when there is one (a stand-in graph with a cycle and a wrong way)."""
    assert _first_cycle({"a": {"b"}, "b": {"a"}}) is not None
    assert _first_cycle({"a": {"b"}, "b": set()}) is None
    assert "suites" not in ALLOWED["harness"] and "fixtures" not in ALLOWED["harness"]
    assert ALLOWED["core"] == set() and ALLOWED["emulator"] == {"core"}


def test_fixtures_hold_no_library_logic():
    """Every plugin module stays thin wiring (logic lives in harness/)."""
    long = {p.name: n for p in (ROOT / "fixtures").glob("*.py") if (n := len(p.read_text().splitlines())) > 250}
    assert not long, f"fixtures/ files over 250 lines (move the logic to harness/): {long}"


def test_no_private_attributes_on_pytest_config():
    """Plugins share state through config.stash with typed keys (fixtures/keys.py), not config._ddoauth_*."""
    found = [f"{p.relative_to(ROOT)}:{i}" for d in ("fixtures", "suites", "harness")
             for p in (ROOT / d).rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1) if "._ddoauth_" in line]
    assert not found, "private attributes on pytest's config: " + ", ".join(found)
