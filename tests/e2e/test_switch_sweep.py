"""Clean runs: the suites pass against every documented-compatible variant of the emulator.

Each switch stands in for something Datadog's docs leave open (error body shape, `site` format,
refresh rotation, 401 vs 403 for expired tokens, Basic auth, optional PKCE, ...). The harness must
tolerate all of them: a false failure here would wake a partner for nothing.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.behaviour import NOT_DOCUMENT_COMPATIBLE, SWITCHES, all_switch_variants

ROOT = Path(__file__).resolve().parents[2]

# Two runs cover every non-default value: the switches combine, except the two refresh modes.
RUNS = {
    "all-variants": {"token_error_body": "datadog", "site_param": "host", "refresh_rotation": "rotate_invalidate",
                     "expired_token_status": "401", "basic_auth": "true", "pkce": "optional",
                     "callback_client_id": "true", "revoke_foreign_token": "reject"},
    "rotate-keep-omit": {"refresh_rotation": "rotate_keep", "refresh_response_omits_refresh_token": "true"},
}


def test_runs_cover_every_compatible_variant():
    covered = {(k, v) for run in RUNS.values() for k, v in run.items()}
    for variant in all_switch_variants():
        (name, value), = variant.items()
        assert (name, str(value).lower()) in covered, f"switch {name}={value} is not swept"
    assert NOT_DOCUMENT_COMPATIBLE <= set(SWITCHES)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_suites_pass_under_switches(run, tmp_path):
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "-q", "-p", "no:cacheprovider",
           "--target", "US1-sandbox", "--target", "US1-published", "--target", "EU1-published",
           "--reports-dir", str(tmp_path), "--verdict-path", str(tmp_path / "verdict.json")]
    for key, value in RUNS[run].items():
        cmd += ["--emulator-behaviour", f"{key}={value}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"false failures under {RUNS[run]}:\n{proc.stdout[-4000:]}"
    assert " passed" in proc.stdout.splitlines()[-1]
