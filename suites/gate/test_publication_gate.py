"""The pre-publication gate as tests: one per part of Datadog's publishing checklist."""
import allure
import pytest

from harness.gate import GateResult, check_ledger, check_manifest, check_oauth_clients, check_readme

pytestmark = [pytest.mark.gate, allure.feature("publication gate"), allure.link(
    "https://docs.datadoghq.com/developers/integrations/oauth_for_integrations/", name="DD-PUBLISH")]


def _judge(result: GateResult, recorder) -> None:
    for finding in result.findings:
        with allure.step(finding.line()):
            pass
        if finding.level == "warn":
            recorder.warning(finding.line())
    failures = [f.line() for f in result.findings if f.level == "fail"]
    assert not failures, "\n".join(failures)


@allure.story("README")
def test_readme_uninstallation(integration_dir, recorder):
    result = GateResult(str(integration_dir))
    check_readme(integration_dir, result)
    _judge(result, recorder)


@allure.story("manifest")
def test_manifest(integration_dir, recorder):
    result = GateResult(str(integration_dir))
    check_manifest(integration_dir, result)
    _judge(result, recorder)


@allure.story("oauth_clients.json")
def test_oauth_clients(integration_dir, harness_config, recorder):
    result = GateResult(str(integration_dir))
    import json
    try:
        manifest = json.loads((integration_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        manifest = None
    targets = {t.name: t.client.scopes for t in harness_config.targets if t.client.kind == "test"}
    check_oauth_clients(integration_dir, manifest, result, targets if not harness_config.emulated else None)
    _judge(result, recorder)


@allure.story("validation ledger")
def test_validation_ledger(integration_dir, harness_config, pytestconfig, recorder):
    if harness_config.emulated:
        pytest.skip("the ledger gate needs real sandbox targets (--targets)")
    from fixtures.ledger import ledger_path
    result = GateResult(str(integration_dir))
    import json
    scopes = json.loads((integration_dir / "assets/oauth_clients.json").read_text())["integration"]["scopes"]
    check_ledger(ledger_path(pytestconfig), harness_config.targets, scopes, result, max_age_days=7)
    _judge(result, recorder)
