#!/usr/bin/env python3
"""Write docs/checks.md from the check registry (`--check`: exit 1 when the file is stale)."""
import sys
from pathlib import Path

import harness.checks.registry  # noqa: F401
import harness.checks.back_channel  # noqa: F401
import harness.checks.front_channel  # noqa: F401
import harness.checks.integration  # noqa: F401
from harness.checks.registry import REGISTRY

DOC = Path(__file__).resolve().parent.parent / "docs" / "checks.md"


def render() -> str:
    lines = ["# Check registry (generated from harness/checks*.py by scripts/gen_checks_doc.py)", "",
             "Callers may raise or lower a severity per use (e.g. a Datadog-documented status is MUST where the "
             "RFC alone would be SHOULD); the suites say why next to each call.", "",
             "| check | requirement id | default severity | title | source |", "|---|---|---|---|---|"]
    for name, c in sorted(REGISTRY.items(), key=lambda kv: (kv[1].func.__module__, kv[1].requirement, kv[0])):
        lines.append(f"| `{name}` | {c.requirement} | {c.severity} | {c.title} | {c.link} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if DOC.read_text() == render() else 1)
    DOC.write_text(render())
