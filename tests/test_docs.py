"""Generated docs stay in step with the code."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_checks_doc_is_current():
    rc = subprocess.call([sys.executable, str(ROOT / "scripts" / "gen_checks_doc.py"), "--check"], cwd=ROOT)
    assert rc == 0, "docs/checks.md is stale: run .venv/bin/python scripts/gen_checks_doc.py"


def test_emulator_doc_lists_every_defect_and_switch():
    from emulator.behaviour import DEFECTS, SWITCHES

    text = (Path(__file__).resolve().parent.parent / "docs" / "emulator.md").read_text()
    missing = [name for name in list(DEFECTS) + list(SWITCHES) if f"`{name}`" not in text]
    assert not missing, f"docs/emulator.md does not list: {missing}"
