"""The defect campaign, fast: the catalogue is consistent, and a sample of defects from every area
(front channel, back channel, API, integration mode) is caught by its expected test while clean runs
of the same selection agree and pass. The full campaign is `ddoauth campaign` (README). That every
expected catcher is a real suite test is checked statically in tests/harness/test_check_names.py."""
from __future__ import annotations

import re
from pathlib import Path

from emulator.behaviour import DEFECTS
from harness.campaign import ROTATION_DEFECTS, campaign

ROOT = Path(__file__).resolve().parents[2]

# one or two per area; each runs only its expected catchers, on US1 (plus EU1 where the defect needs it)
SAMPLE = ["state_dropped", "callback_wrong_org", "pkce_verifier_ignored", "refresh_scope_widened",
          "scope_not_enforced", "api_key_no_409", "validate_unknown_key_200",
          "partner_crashes_on_409", "partner_no_state_check"]


def test_every_defect_has_an_emulator_test():
    text = "".join(p.read_text() for p in (ROOT / "tests" / "emulator").glob("test_*.py"))
    untested = [name for name in DEFECTS if not re.search(rf"[\"']{re.escape(name)}[\"']", text)]
    assert not untested, f"defects without an emulator test: {untested}"


def test_sample_campaign_catches_every_defect_and_clean_runs_agree():
    assert set(SAMPLE) <= set(DEFECTS) and not set(SAMPLE) & ROTATION_DEFECTS
    chosen = {name: DEFECTS[name] for name in SAMPLE}
    selection = " or ".join(sorted({c for _, catchers in chosen.values() for c in catchers}))
    lines: list[str] = []
    outcomes, false_failures = campaign(chosen, ["US1-sandbox"], repeat=2, clean_select=selection, echo=lines.append)
    report = "\n".join(lines)
    assert [o.verdict for o in outcomes] == ["caught"] * len(SAMPLE), report
    assert false_failures == 0, report
    assert lines[-1] == f"caught {len(SAMPLE)}/{len(SAMPLE)} defects, false failures 0"
