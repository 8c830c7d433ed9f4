"""The pre-publication gate on shipped example integrations (one good, each bad one breaks one rule)."""
import json
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from harness.config.targets import ClientConfig, Target, UserConfig
from harness.gate import REQUIRED_SUITES, run_gate
from core.sites import load_registry

EXAMPLES = Path(__file__).parent / "examples"
ROOT = Path(__file__).resolve().parents[2]
BROKEN = {
    "bad-app-uuid": "manifest-app-uuid",
    "bad-manifest-json": "manifest-json",
    "bad-manifest-no-uninstallation": "manifest-uninstallation",
    "bad-no-oauth-asset": "manifest-assets-oauth",
    "bad-no-uninstallation": "readme-uninstallation",
    "bad-oauth-fields": "oauth-clients-fields",
    "bad-testing-redirect-uri": "oauth-clients-no-test-urls",
    "bad-uninstallation-no-api-keys-text": "readme-uninstallation-api-keys",
    "bad-uninstallation-no-revoke-text": "readme-uninstallation-revoked",
    "bad-unknown-scope": "oauth-clients-scopes-known",
}
SCOPES = ("api_keys_write", "dashboards_read", "monitors_read", "metrics_read", "timeseries_query")


def test_every_example_is_covered():
    shipped = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    assert shipped == set(BROKEN) | {"good", "warn-uninstallation-order"}


def test_good_example_passes_static():
    result = run_gate(EXAMPLES / "good", static_only=True)
    assert result.passed, [f.line() for f in result.findings if f.level != "pass"]
    assert not [f for f in result.findings if f.level == "warn"]


@pytest.mark.parametrize("example,rule", sorted(BROKEN.items()))
def test_each_broken_example_fails_its_rule(example, rule):
    result = run_gate(EXAMPLES / example, static_only=True)
    failed = {f.rule for f in result.findings if f.level == "fail"}
    assert not result.passed
    assert rule in failed, failed
    # one broken rule, one root cause: nothing unrelated fails
    allowed = {rule, "oauth-clients-exists", "oauth-clients-https"}
    assert failed <= allowed, failed


def test_uninstallation_order_is_only_a_warning():
    result = run_gate(EXAMPLES / "warn-uninstallation-order", static_only=True)
    assert result.passed
    assert [f.rule for f in result.findings if f.level == "warn"] == ["manifest-uninstallation-order"]


def _target(name="US1-sandbox", scopes=SCOPES, kind="test"):
    return Target(name=name, site=load_registry().get("US1"), org="Sandbox",
                  client=ClientConfig("id", "secret-value", kind, tuple(scopes)), redirect_uri="https://a.io/cb",
                  user=UserConfig("u@x.io", "pw-value"))


def _ledger(tmp_path, target="US1-sandbox", when=None, outcome="passed", consent=SCOPES, flowed=SCOPES):
    when = (when or date.today()).isoformat()
    tests = {f"suites/{suite}.py::test_x[{target}]": {"last_outcome": outcome, "last_pass": when}
             for suite in REQUIRED_SUITES}
    for scope in flowed:
        if scope == "api_keys_write":
            tests[f"suites/test_api_key.py::test_marketplace_key_lifecycle[{target}]"] = {
                "last_outcome": outcome, "last_pass": when}
        else:
            tests[f"suites/test_scopes.py::test_scope_data_flow[{target}-{scope}]"] = {
                "last_outcome": outcome, "last_pass": when}
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"targets": {target: {"site": "US1", "consent_scopes": list(consent), "tests": tests}}}))
    return path


def test_dynamic_gate_passes_with_a_fresh_complete_ledger(tmp_path):
    result = run_gate(EXAMPLES / "good", [_target()], _ledger(tmp_path))
    assert result.passed, [f.line() for f in result.findings if f.level != "pass"]


@pytest.mark.parametrize("case,rule", [
    ("stale", "ledger-suite-passed"), ("failing", "ledger-suite-passed"), ("consent", "ledger-consent-scopes"),
    ("dataflow", "ledger-data-flow"), ("missing", "ledger-exists"), ("target-scopes", "oauth-clients-scopes-match-targets"),
])
def test_dynamic_gate_fails(tmp_path, case, rule):
    target = _target()
    ledger = _ledger(tmp_path)
    if case == "stale":
        ledger = _ledger(tmp_path, when=date.today() - timedelta(days=8))
    elif case == "failing":
        ledger = _ledger(tmp_path, outcome="failed")
    elif case == "consent":
        ledger = _ledger(tmp_path, consent=SCOPES[:-1])
    elif case == "dataflow":
        ledger = _ledger(tmp_path, flowed=SCOPES[:-1])
    elif case == "missing":
        ledger = tmp_path / "nothing.json"
    elif case == "target-scopes":
        target = _target(scopes=SCOPES + ("events_read",))
    result = run_gate(EXAMPLES / "good", [target], ledger)
    assert not result.passed
    assert rule in {f.rule for f in result.findings if f.level == "fail"}


def test_cli_exit_codes_and_checklist(tmp_path):
    out = tmp_path / "gate.json"
    good = subprocess.run([sys.executable, "-m", "harness.cli", "gate", "--integration", str(EXAMPLES / "good"),
                           "--static-only", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    assert json.loads(out.read_text())["ready"] is True
    bad = subprocess.run([sys.executable, "-m", "harness.cli", "gate", "--integration",
                          str(EXAMPLES / "bad-no-uninstallation"), "--static-only", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "FAIL [readme-uninstallation] README.md: no `## Uninstallation` section" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
    none = subprocess.run([sys.executable, "-m", "harness.cli", "gate", "--integration", str(EXAMPLES / "good")],
                          cwd=ROOT, capture_output=True, text=True)
    assert none.returncode == 2 and "--targets" in none.stderr and "Traceback" not in none.stderr


def test_gate_reads_a_real_run_ledger(tmp_path):
    """A real run against the emulator writes the ledger the gate reads."""
    ledger = tmp_path / "ledger.json"
    run = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "suites"), "-q", "-p", "no:cacheprovider",
                          "--target", "US3-sandbox", "--ledger", str(ledger), "--reports-dir", str(tmp_path),
                          "--verdict-path", str(tmp_path / "verdict.json"), "-k", "not errors"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:]
    data = json.loads(ledger.read_text())["targets"]["US3-sandbox"]
    folder = tmp_path / "integration"
    shutil.copytree(EXAMPLES / "good", folder)
    oauth = json.loads((folder / "assets/oauth_clients.json").read_text())
    oauth["integration"]["scopes"] = data["consent_scopes"]
    (folder / "assets/oauth_clients.json").write_text(json.dumps(oauth))
    target = _target("US3-sandbox", scopes=data["consent_scopes"])
    result = run_gate(folder, [target], ledger)
    assert result.passed, [f.line() for f in result.findings if f.level != "pass"]


@pytest.mark.parametrize("example,rc", [("good", 0), ("bad-unknown-scope", 1)])
def test_gate_as_pytest_selection(example, rc, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "suites"), "-m", "gate", "-q",
                           "-p", "no:cacheprovider", "--integration", str(EXAMPLES / example),
                           "--reports-dir", str(tmp_path), "--verdict-path", str(tmp_path / "v.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == rc, proc.stdout[-2000:]


def test_integration_mode_joins_the_gate_when_configured(tmp_path):
    import dataclasses

    from harness.config.integration import IntegrationConfig

    integration = IntegrationConfig("https://p.example/start", "https://p.example/cb", ("id",), success_text="ok")
    target = dataclasses.replace(_target(), integration=integration)
    ledger = _ledger(tmp_path)
    result = run_gate(EXAMPLES / "good", [target], ledger)
    assert not result.passed  # configured but never run
    assert any("test_integration never ran" in f.message for f in result.findings if f.level == "fail")
    data = json.loads(ledger.read_text())
    data["targets"]["US1-sandbox"]["tests"]["suites/test_integration.py::test_tile_start[US1-sandbox]"] = {
        "last_outcome": "passed", "last_pass": date.today().isoformat()}
    ledger.write_text(json.dumps(data))
    assert run_gate(EXAMPLES / "good", [target], ledger).passed
    assert run_gate(EXAMPLES / "good", [_target()], _ledger(tmp_path)).passed  # not configured: not required
