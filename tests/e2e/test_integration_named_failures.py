"""Integration mode against the embedded emulator, from the report a person reads (Allure results):

* a configured login label the partner's page does not have: the test ends within seconds (not the 45 s
  timeout) and its message names the label, the page and the labels the page does have;
* continue-on-failure: a partner that exchanges an EU1 code on US1 (defect partner_ignores_domain) fails
  test_partner_start_follows_domain once, naming both the success-page and the token-host requirement,
  each in a red step of its own.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from emulator import start_embedded  # noqa: E402

TARGET = "EU1-sandbox"


def _run(tmp_path: Path, test: str, defects=frozenset(), edit=None) -> list[dict]:
    """Run one integration test on EU1-sandbox; its Allure results."""
    results = tmp_path / "allure-results"
    emulator = start_embedded(tmp_path / "emulator", defects=set(defects))
    try:
        document = json.loads(emulator.targets_file.read_text())
        document["targets"] = [t for t in document["targets"] if t["name"] == TARGET]
        if edit:
            edit(document["targets"][0]["integration"])
        targets = tmp_path / "targets.json"
        targets.write_text(json.dumps(document))
        args = [sys.executable, "-m", "pytest", "suites/test_integration.py", "-k", test, "-p", "no:cacheprovider",
                "-q", "--targets", str(targets), "--alluredir", str(results), "--reports-dir", str(tmp_path),
                "--state-dir", str(tmp_path), "--verdict-path", str(tmp_path / "verdict.json")]
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        emulator.stop()
    found = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    return found


def _steps(steps, status):
    for step in steps or ():
        if step.get("status") == status:
            yield step
        yield from _steps(step.get("steps"), status)


def test_a_wrong_login_label_is_named_within_seconds(tmp_path):
    def wrong_label(integration):
        fields = integration["login"]["fields"]
        fields["Username"] = fields.pop("Email")

    [result] = _run(tmp_path, "test_tile_start", edit=wrong_label)
    message = result["statusDetails"]["message"]
    assert result["status"] == "failed", message
    assert "has no input labelled 'Username' (integration.login.fields)" in message
    assert "inputs 'Email', 'Password'" in message and "buttons 'Sign in'" in message
    assert "integration.example.com/login" in message and "Acme Observability" in message
    assert "snapshot" in message and list((tmp_path / "pages").glob("*partner-unmatched.aria.yml"))
    seconds = (result["stop"] - result["start"]) / 1000
    assert seconds < 30, f"{seconds:.0f} s: a missing label is not waited for (timeout_s is 45 s)"


def test_a_wrong_region_exchange_names_every_failed_requirement(tmp_path):
    [result] = _run(tmp_path, "test_partner_start_follows_domain", defects={"partner_ignores_domain"})
    message = result["statusDetails"]["message"]
    assert result["status"] == "failed", message
    assert "[DD-PUBLISH-TEST-AUTH] the partner's app ends on its success page" in message
    assert "[DD-OAUTH-DOMAIN] the partner's server exchanged the code on the callback domain's API host: " \
           "token requests went to api.datadoghq.com, expected api.datadoghq.eu" in message
    red = [s["name"] for s in _steps(result.get("steps"), "failed")]
    assert any(n.startswith("[DD-PUBLISH-TEST-AUTH] the partner's app ends") for n in red), red
    assert any(n.startswith("[DD-OAUTH-DOMAIN]") for n in red), red


def test_what_cannot_be_observed_is_a_skipped_step_and_a_warning(tmp_path):
    """Without `integration.data` the harness cannot tell whether the partner's data arrived: the test still
    passes (nothing failed) but that step is skipped with its reason and the verdict carries a warning."""
    [result] = _run(tmp_path, "test_tile_start", edit=lambda integration: integration.pop("data"))
    assert result["status"] == "passed", result.get("statusDetails")
    skipped = [s for s in _steps(result.get("steps"), "skipped") if s["name"].startswith("[DD-PUBLISH-DATA]")]
    assert skipped and "not observable on this target" in skipped[0]["statusDetails"]["message"]
    verdict = json.loads((tmp_path / "verdict.json").read_text())["targets"][TARGET]
    assert verdict["passed"] == 1 and verdict["warnings"] >= 1, verdict
