"""Generated docs stay in step with the code."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_checks_doc_is_current():
    rc = subprocess.call([sys.executable, str(ROOT / "scripts" / "gen_checks_doc.py"), "--check"], cwd=ROOT)
    assert rc == 0, "docs/checks.md is stale: run .venv/bin/python scripts/gen_checks_doc.py"


def test_checks_doc_lists_every_check_under_its_module():
    from harness.checks import MODULES, REGISTRY

    text = (ROOT / "docs" / "checks.md").read_text()
    sections = {}  # module short name -> its part of the page
    for part in text.split("\n## `")[1:]:
        short, _, body = part.partition("`")
        sections[short] = body
    assert list(sections) == [m.__name__.rsplit(".", 1)[1] for m in MODULES]
    for name, c in REGISTRY.items():
        short = c.module.rsplit(".", 1)[1]
        assert f"| `{short}.{name}` | {c.requirement} | {c.severity} | {c.title} |" in sections[short], name


def test_emulator_doc_lists_every_defect_and_switch():
    from emulator.behaviour import DEFECTS, SWITCHES

    text = (Path(__file__).resolve().parent.parent / "docs" / "emulator.md").read_text()
    missing = [name for name in list(DEFECTS) + list(SWITCHES) if f"`{name}`" not in text]
    assert not missing, f"docs/emulator.md does not list: {missing}"
