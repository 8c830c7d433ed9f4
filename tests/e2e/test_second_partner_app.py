"""A partner app nobody here wrote into the emulator passes integration mode from configuration alone,
by README's own steps (issue 14: "README's integration section, followed word for word with that second
app, works").

The steps are read from README.md's "Offline: your staging app against the emulator" section, not copied:
its YAML block (the app's pages) is written to a file, and its three commands run as written, with only the
ports (8443, 9443), the state directory (.ddoauth/emulator) and the YAML file's name replaced by this
test's own, so it runs beside other sessions. The inner pytest also gets this test's report directories.

1. `ddoauth-emulator --partner-host app.second-partner.test --partner-port ...` (a subprocess): registers
   the app's redirect URI through the new option, issues its certificate, writes partner.env and the targets file;
2. `tests/apps/second_partner.py --env .../partner.env` (a subprocess, real TLS on its own socket);
3. `pytest suites -m integration_mode --targets .../partner-targets.yaml --target US1-sandbox` (real Chromium).

Required: all five integration tests pass; the flows were the second app's (its token requests in the
emulator's request log, the reference app untouched); no secret in any output; and the same run without
`network.chromium_spki` (README: the CA bundle alone is enough) passes its tile start.
"""
from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core.network import Network, make_client

SECTION = "### Offline: your staging app against the emulator"
TARGET = "US1-sandbox"
INTEGRATION_TESTS = {"test_tile_start", "test_partner_start_follows_domain", "test_repeat_install", "test_deny",
                     "test_partner_rejects_forged_state"}


@dataclass
class ReadmeSteps:
    partner_yaml: str
    emulator: str
    app: str
    pytest: str


def readme_steps() -> ReadmeSteps:
    text = (ROOT / "README.md").read_text()
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks = re.findall(r"^[ ]*```(\w+)\n(.*?)^[ ]*```", section, re.DOTALL | re.MULTILINE)
    yaml_blocks = [body for lang, body in blocks if lang == "yaml" and "second-partner.yaml" in body.split("\n")[0]]
    commands = []
    for lang, body in blocks:
        if lang != "sh":
            continue
        lines = [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]
        commands.append(" ".join(lines).replace("\\ ", " "))
    assert len(yaml_blocks) == 1, "README: one ```yaml block starting with '# second-partner.yaml'"
    assert len(commands) == 3, f"README: three commands (emulator, app, pytest), found {commands}"
    emulator, app, run = commands
    assert "ddoauth-emulator" in emulator and "--partner-host" in emulator, emulator
    assert "tests/apps/second_partner.py" in app, app
    assert "-m integration_mode" in run and f"--target {TARGET}" in run, run
    return ReadmeSteps("\n".join(line.removeprefix("   ")
                                 for line in yaml_blocks[0].splitlines()), emulator, app, run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def localise(command: str, swaps: dict[str, str]) -> list[str]:
    """README's command with this test's ports (whole words) and paths; `.venv/bin/X` is this interpreter's X."""
    args = []
    for word in shlex.split(command):
        for old, new in swaps.items():
            if old.isdigit():
                word = new if word == old else word
            else:
                word = word.replace(old, new)
        if word.startswith(".venv/bin/"):
            word = str(Path(sys.executable).parent / word.removeprefix(".venv/bin/"))
        args.append(word)
    return args


def wait_for_line(proc: subprocess.Popen, marker: str, timeout: float) -> str:
    """Read the process's output until `marker` (a reader thread: a silent process cannot hang the test)."""
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
            if marker in line:
                return
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    out, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        out.append(line)
        if marker in line:
            return "".join(out)
    raise AssertionError(f"no {marker!r} within {timeout:.0f} s (exit {proc.poll()}):\n" + "".join(out)[-3000:])


def wait_for_tls(port: int, host: str, ca: Path, timeout: float = 20.0) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                with ctx.wrap_socket(raw, server_hostname=host):
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(proc: subprocess.Popen | None) -> str:
    if proc is None:
        return ""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.stdout.read() if proc.stdout else ""


@dataclass
class InnerRun:
    returncode: int
    output: str
    seconds: float
    verdict: dict
    results: dict  # test name -> (status, message)


def run_pytest(command: list[str], work: Path, name: str, *extra: str) -> InnerRun:
    out = work / name
    (out / "waivers").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DDOAUTH_", "PYTEST_"))}
    cmd = [*command, *extra, "-p", "no:cacheprovider", "-q", "--alluredir", str(out / "allure-results"),
           "--verdict-path", str(out / "verdict.json"), "--reports-dir", str(out / "reports"),
           "--state-dir", str(out / "state"), "--waivers", str(out / "waivers"),
           "--baseline-dir", str(out / "baselines")]
    began = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.monotonic() - began
    output = proc.stdout + proc.stderr
    (out / "pytest-output.txt").write_text(output)  # kept with the run's reports, for a failure's post-mortem
    assert (out / "verdict.json").exists(), f"the run did not complete (exit {proc.returncode}):\n{output[-4000:]}"
    verdict = json.loads((out / "verdict.json").read_text())["targets"].get(TARGET) or {}
    results = {}
    for path in (out / "allure-results").glob("*-result.json"):
        data = json.loads(path.read_text())
        results[data["name"].split("[")[0]] = (data["status"], (data.get("statusDetails") or {}).get("message", ""))
    return InnerRun(proc.returncode, output, seconds, verdict, results)


@dataclass
class Setup:
    work: Path
    state: Path
    emulator_port: int
    emulator_output: str
    app_output: str
    main: InnerRun
    without_spki: InnerRun
    env: dict  # partner.env
    control: dict  # the emulator's request log and partner listing, read before it stopped


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    steps = readme_steps()
    work = tmp_path_factory.mktemp("second-partner")
    state = work / "emulator-state"
    emulator_port, app_port = free_port(), free_port()
    (work / "second-partner.yaml").write_text(steps.partner_yaml + "\n")
    swaps = {"8443": str(emulator_port), "9443": str(app_port), ".ddoauth/emulator": str(state),
             "second-partner.yaml": str(work / "second-partner.yaml")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DDOAUTH_", "PYTEST_", "DD_", "DATADOG_"))}
    emulator = app = None
    app_output = emulator_output = ""
    try:
        emulator = subprocess.Popen(localise(steps.emulator, swaps), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        emulator_output = wait_for_line(emulator, "Serving until Ctrl-C.", 60)
        app = subprocess.Popen(localise(steps.app, swaps), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        wait_for_tls(app_port, "app.second-partner.test", state / "partner" / "ca-bundle.pem")
        command = localise(steps.pytest, swaps)
        main = run_pytest(command, work, "run")
        # README: the CA bundle alone makes Chromium trust both; the same targets without chromium_spki
        targets = Path(command[command.index("--targets") + 1])
        doc = yaml.safe_load(targets.read_text())
        assert isinstance(doc["network"]["chromium_spki"], list), "the targets file pins a YAML list"
        del doc["network"]["chromium_spki"]
        bare = work / "without-spki.yaml"
        bare.write_text(yaml.safe_dump(doc))
        without = run_pytest([*command[:command.index("--targets") + 1], str(bare),
                              *command[command.index("--targets") + 2:]], work, "run-without-spki",
                             "-k", "test_tile_start")
        env_file = dict(line.split("=", 1) for line in (state / "partner" / "partner.env").read_text().splitlines()
                        if line and not line.startswith("#"))
        network = Network(host_map={"api.datadoghq.com": f"127.0.0.1:{emulator_port}"}, ca_bundle=state / "ca.pem")
        with make_client(network) as http:
            control = {"requests": http.get("https://api.datadoghq.com/_emulator/requests").json()["requests"],
                       "partner": http.get("https://api.datadoghq.com/_emulator/partner").json()}
    finally:
        app_output = stop(app)
        emulator_output += stop(emulator)
    summary = {"main_s": round(main.seconds, 1), "without_spki_s": round(without.seconds, 1), "exit": main.returncode,
               **{k: main.verdict.get(k) for k in ("passed", "failed", "broken", "skipped")}}
    print(f"\nsecond partner app run: {json.dumps(summary)}")
    return Setup(work, state, emulator_port, emulator_output, app_output, main, without, env_file, control)


def test_readme_steps_are_the_ones_run():
    steps = readme_steps()
    assert "--partner-port 9443" in steps.emulator and "--port 9443" in steps.app
    assert "--targets .ddoauth/emulator/partner-targets.yaml" in steps.pytest
    assert "--env .ddoauth/emulator/partner/partner.env" in steps.app
    config = yaml.safe_load(steps.partner_yaml)
    assert set(config) >= {"success", "failure", "login"}


def test_integration_mode_passes_for_the_second_app(setup):
    run = setup.main
    failing = {n: r for n, r in run.results.items() if r[0] != "passed"}
    assert run.returncode == 0 and not failing, f"exit {run.returncode}: {failing}\n{run.output[-4000:]}"
    assert set(run.results) >= INTEGRATION_TESTS, sorted(run.results)  # (and any integration test added later)
    assert run.verdict.get("passed") == len(run.results) and not run.verdict.get("warnings"), run.verdict


def test_ca_bundle_alone_is_enough(setup):
    run = setup.without_spki
    statuses = {name: status for name, (status, _) in run.results.items()}
    assert run.returncode == 0 and statuses.get("test_tile_start") == "passed" and \
        set(statuses.values()) == {"passed"}, \
        f"exit {run.returncode}: {run.results}\n{run.output[-4000:]}"


def test_the_flows_were_the_second_apps(setup):
    """Its redirect URI on the authorize requests and its server's token exchanges at the emulator;
    the reference partner app (integration.example.com) installed nothing."""
    log = setup.control["requests"]
    client_id = setup.env["DD_CLIENT_ID"]
    tokens = [r for r in log if r["path"] == "/oauth2/v1/token" and r.get("status") == 200]
    assert tokens and {r.get("client_id") for r in tokens} == {client_id}, tokens
    assert {r["host"] for r in tokens} == {"api.datadoghq.com"}, tokens  # US1: the callback's domain
    authorize = [r for r in log if r["path"] == "/oauth2/v1/authorize"]
    assert authorize, "no authorize request"
    assert setup.control["partner"]["installations"] == [], setup.control["partner"]
    marketplace = [r for r in log if r["path"] == "/api/v2/api_keys/marketplace"]
    assert {r["status"] for r in marketplace} >= {201, 409}, marketplace  # a key, then the repeat install's 409


def test_no_secret_in_any_output(setup):
    secret = setup.env["DD_CLIENT_SECRET"]
    assert len(secret) > 20
    for name, text in (("emulator", setup.emulator_output), ("app", setup.app_output),
                       ("pytest", setup.main.output), ("pytest without spki", setup.without_spki.output)):
        assert secret not in text, f"the client secret is in the {name}'s output"
    for path in (setup.work / "run").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt", ".yml", ".yaml", ".html", ".properties"):
            assert secret not in path.read_text(errors="replace"), path
