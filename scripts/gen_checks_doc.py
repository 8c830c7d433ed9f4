#!/usr/bin/env python3
"""Write docs/checks.md from the checks, one table per endpoint module (`--check`: exit 1 when the file is stale)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's harness, not an installed one
from harness.checks import MODULES, REGISTRY  # noqa: E402  # importing the package registers every check

DOC = Path(__file__).resolve().parent.parent / "docs" / "checks.md"


def _summary(module) -> str:
    """The first sentence of the module's docstring, on one line."""
    text = " ".join((module.__doc__ or "").split())
    first, dot, _ = text.partition(". ")
    return first + ("." if dot or not first.endswith(".") else "")


def render() -> str:
    lines = ["# Checks (generated from harness/checks/ by scripts/gen_checks_doc.py)", "",
             "One module per endpoint; `import harness.checks` registers them all. A suite passes the check "
             "object itself: `from harness.checks import token` then `verify(token.token_ok, ex)`.", "",
             "Callers may raise or lower a severity per use (e.g. a Datadog-documented status is MUST where the "
             "RFC alone would be SHOULD); the suites say why next to each call."]
    for module in MODULES:
        checks = sorted((c for c in REGISTRY.values() if c.module == module.__name__),
                        key=lambda c: (c.requirement, c.name))
        short = module.__name__.rsplit(".", 1)[1]
        lines += ["", f"## `{short}`: {len(checks)} checks", "", _summary(module), "",
                  "| check | requirement id | default severity | title | source |", "|---|---|---|---|---|"]
        lines += [f"| `{short}.{c.name}` | {c.requirement} | {c.severity} | {c.title} | {c.link} |" for c in checks]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if DOC.read_text() == render() else 1)
    DOC.write_text(render())
