"""Generated docs stay in step with the code."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_checks_doc_is_current():
    rc = subprocess.call([sys.executable, str(ROOT / "scripts" / "gen_checks_doc.py"), "--check"], cwd=ROOT)
    assert rc == 0, "docs/checks.md is stale: run .venv/bin/python scripts/gen_checks_doc.py"
