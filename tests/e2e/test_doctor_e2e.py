"""`ddoauth doctor` end to end: real sockets, real Chromium, the embedded emulator.

The default run (no --targets: the embedded emulator) must be all ok; four broken setups, made by
editing the emulator's own targets document (the targets-file form), must each print the right
failing line with its fix: a wrong client secret, a CA bundle of another CA, an unknown key, the API
host mapped to a closed port, and a recipes file whose login page matches nothing. Each target must
take under 30 s; the timings are printed. Every run's working directory is a temporary one (an
unrecognised page is saved under its reports/pages/).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from emulator import start_embedded

ROOT = Path(__file__).resolve().parents[2]
TARGET = "US1-sandbox"
PER_TARGET_S = 30.0


@dataclass
class Run:
    returncode: int
    out: str
    seconds: float

    def line(self, step: str) -> str:
        found = [l for l in self.out.splitlines() if re.match(rf"^{re.escape(TARGET)}\s+{step}\s", l)]
        assert found, f"no {step} line:\n{self.out}"
        return found[-1]


def doctor(*args: str, cwd: Path, timeout: float = 240) -> Run:
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "doctor", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - began)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("doctor-emulator")
    embedded = start_embedded(run_dir)
    yield embedded
    embedded.stop()


@pytest.fixture
def document(emulator) -> dict:
    return json.loads(emulator.targets_file.read_text())


def _entry(document: dict) -> dict:
    return next(t for t in document["targets"] if t["name"] == TARGET)


def _write(tmp_path: Path, document: dict) -> str:
    path = tmp_path / "targets.json"
    path.write_text(json.dumps(document))
    return str(path)


def _timed(name: str, run: Run) -> None:
    print(f"\ndoctor {name}: {run.seconds:.1f} s, exit {run.returncode}\n{run.out}")


def test_embedded_emulator_all_ok(tmp_path):
    run = doctor(cwd=tmp_path)
    _timed("embedded emulator", run)
    assert run.returncode == 0, run.out
    done = re.findall(r"^(\S+)\s+done\s+ok\s+([\d.]+) s$", run.out, re.M)
    assert len(done) >= 7, run.out  # every OAuth site, both client kinds on US1 and EU1
    assert all(float(seconds) < PER_TARGET_S for _, seconds in done), done
    for step in ("dns", "tls", "credentials", "login", "consent", "api"):
        assert re.search(rf"^{TARGET}\s+{step}\s+ok\s", run.out, re.M), f"{step}:\n{run.out}"
    assert "FAIL" not in run.out
    assert "certificate issued by 'ddoauth emulator local CA'" in run.out
    assert run.out.rstrip().endswith(f"doctor: {len(done)} target(s) ready")


def test_wrong_secret_fails_at_credentials_with_the_fix(document, tmp_path):
    good = _entry(document)["client"]["secret"]
    _entry(document)["client"]["secret"] = "not-the-secret-0123456789"
    run = doctor("--targets", _write(tmp_path, document), "--target", TARGET, cwd=tmp_path)
    _timed("wrong secret", run)
    assert run.returncode == 1 and run.seconds < PER_TARGET_S
    line = run.line("credentials")
    assert "FAIL" in line and "client authentication refused (401 invalid_client" in line
    assert line.endswith("check client.id / client.secret")
    assert "login" not in run.out.split(line)[1].split("done")[0]  # stopped at the first failure
    assert "not-the-secret-0123456789" not in run.out and good not in run.out


def test_endpoints_in_the_targets_file_are_where_the_doctor_goes(document, tmp_path):
    """A token path Datadog does not serve fails at credentials naming the URL and the key; the alias the
    emulator serves too (/api/v2/oauth2/token, seen in Datadog's newer clients) passes every step."""
    document["endpoints"] = {"token": "/oauth2/v9/token"}
    run = doctor("--targets", _write(tmp_path, document), "--target", TARGET, cwd=tmp_path)
    _timed("moved token endpoint", run)
    line = run.line("credentials")
    assert run.returncode == 1 and "FAIL" in line, run.out
    assert "no token endpoint at https://api.datadoghq.com/oauth2/v9/token (404)" in line
    assert line.endswith("the targets file's endpoints.token (now '/oauth2/v9/token')")
    document["endpoints"] = {"token": "/api/v2/oauth2/token"}
    run = doctor("--targets", _write(tmp_path, document), "--target", TARGET, cwd=tmp_path)
    _timed("token endpoint at its v2 alias", run)
    assert run.returncode == 0, run.out
    for step in ("credentials", "login", "consent", "api"):
        assert "ok" in run.line(step).split()[2], run.line(step)


def test_wrong_ca_fails_at_tls_naming_the_issuer(document, tmp_path):
    other = tmp_path / "other-ca.pem"
    trustme.CA(organization_name="Not the emulator CA").cert_pem.write_to_path(str(other))
    document["network"]["ca_bundle"] = str(other)
    run = doctor("--targets", _write(tmp_path, document), "--target", TARGET, cwd=tmp_path)
    _timed("wrong CA", run)
    assert run.returncode == 1 and run.seconds < PER_TARGET_S
    line = run.line("tls")
    assert "FAIL" in line and "app.datadoghq.com: certificate verification failed" in line
    assert (f"the certificate was issued by 'ddoauth emulator local CA', not trusted by network.ca_bundle "
            f"({other}): set network.ca_bundle") in line


def test_unknown_key_is_the_config_line_and_exit_4(document, tmp_path):
    document["network"]["host"] = document["network"].pop("hosts")
    path = _write(tmp_path, document)
    run = doctor("--targets", path, cwd=tmp_path)
    _timed("unknown key", run)
    assert run.returncode == 4 and run.seconds < PER_TARGET_S
    assert run.out.strip().splitlines() == [
        f"config       FAIL  {path}: network.host: unknown key; did you mean 'hosts'? "
        f"known keys here: ca_bundle, chromium_spki, hosts"]


def test_unreachable_api_host_fails_at_connect(document, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    document["network"]["hosts"]["api.datadoghq.com"] = f"127.0.0.1:{port}"
    run = doctor("--targets", _write(tmp_path, document), "--target", TARGET, cwd=tmp_path)
    _timed("unreachable host", run)
    assert run.returncode == 1 and run.seconds < PER_TARGET_S
    assert re.search(rf"^{TARGET}\s+tls\s+ok\s+app\.datadoghq\.com", run.out, re.M), run.out
    line = run.line("connect")
    assert "FAIL" in line and f"api.datadoghq.com: cannot connect to 127.0.0.1:{port}" in line
    assert "check network.hosts" in line


def test_wrong_recipe_fails_at_login_naming_the_page_and_the_recipe(document, tmp_path):
    recipes = tmp_path / "recipes.yaml"
    recipes.write_text('pages:\n  login:\n    detect: {role: heading, name: "^Sign in to Datadog HQ$"}\n')
    run = doctor("--targets", _write(tmp_path, document), "--target", TARGET, "--recipes", str(recipes),
                 cwd=tmp_path)
    _timed("wrong recipe", run)
    assert run.returncode == 1 and run.seconds < PER_TARGET_S
    assert re.search(rf"^{TARGET}\s+credentials\s+ok\s", run.out, re.M), run.out
    line = run.line("login")
    assert "FAIL" in line and "unrecognised page at https://app.datadoghq.com/" in line
    assert str(recipes) in line  # the recipes file to fix
    assert list((tmp_path / "reports" / "pages").glob("doctor-US1-sandbox-*-unrecognised.aria.yml")), line


def test_second_face_with_its_recipes_file_all_ok(tmp_path):
    """A Datadog laid out otherwise (the emulator's second face): the recipes file alone makes the doctor pass,
    and without it the login step fails naming the page."""
    embedded = start_embedded(tmp_path / "emulator", behaviour={"face": "second", "remember_consent": True})
    try:
        targets = _write(tmp_path, json.loads(embedded.targets_file.read_text()))
        run = doctor("--targets", targets, "--target", TARGET, "--recipes", str(ROOT / "recipes" / "second-face.yaml"),
                     cwd=tmp_path)
        _timed("second face", run)
        assert run.returncode == 0 and run.seconds < PER_TARGET_S, run.out
        for step in ("dns", "tls", "credentials", "login", "consent", "api"):
            assert "ok" in run.line(step).split()[2], run.line(step)
        without = doctor("--targets", targets, "--target", TARGET, cwd=tmp_path)
        _timed("second face, built-in recipes", without)
        assert without.returncode == 1 and "unrecognised page" in without.line("login"), without.out
    finally:
        embedded.stop()
