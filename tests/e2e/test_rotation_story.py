"""The secret-rotation story against the emulator: baseline -> rotate -> verify, and its defects."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from emulator.cli import targets_file
from emulator.server import start

ROOT = Path(__file__).resolve().parents[2]
TARGET = "EU1-sandbox"


def _run(phase, tfile, state_dir, tmp_path):
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "suites" / "rotation"), "-q", "-p", "no:cacheprovider",
           "--rotation-phase", phase, "--targets", str(tfile), "--target", TARGET, "--state-dir", str(state_dir),
           "--reports-dir", str(tmp_path), "--verdict-path", str(tmp_path / f"verdict-{phase}.json")]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _rotate(running, tfile: Path) -> None:
    """Rotate through the emulator (as Datadog support would), then write new + previous secret."""
    data = yaml.safe_load(tfile.read_text())
    target = next(t for t in data["targets"] if t["name"] == TARGET)
    client = running.store.client("EU1", target["client"]["id"])
    old = client.secret
    import ssl

    import httpx
    with httpx.Client(verify=ssl.create_default_context(cafile=str(running.tls.ca_pem))) as http:
        resp = http.post(f"https://127.0.0.1:{running.port}/_emulator/clients/{client.id}/rotate-secret",
                         headers={"Host": "api.datadoghq.eu"}, extensions={"sni_hostname": "api.datadoghq.eu"})
        resp.raise_for_status()
        new = resp.json()["client_secret"]
    assert new != old
    target["client"]["secret"] = new
    target["client"]["previous_secret"] = old
    tfile.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("defect,failing", [
    (None, None),
    ("old_secret_accepted", "test_rotated_secret_old_refused"),
    ("refresh_killed_by_rotation", "test_refresh_survives_rotation"),
])
def test_rotation_story(tmp_path, defect, failing):
    running = start(tmp_path / "emulator")
    try:
        if defect:
            running.store.behaviour.update({"defects": {defect}})
        tfile = targets_file(running, tmp_path / "emulator")
        state_dir = tmp_path / "state"
        base = _run("baseline", tfile, state_dir, tmp_path)
        assert base.returncode == 0, base.stdout[-3000:]
        state_file = state_dir / "rotation" / f"{TARGET}.json"
        assert state_file.stat().st_mode & 0o777 == 0o600
        _rotate(running, tfile)
        verify = _run("verify", tfile, state_dir, tmp_path)
    finally:
        running.stop()
    if defect is None:
        assert verify.returncode == 0, verify.stdout[-3000:]
        assert "5 passed" in verify.stdout
    else:
        assert verify.returncode == 1, verify.stdout[-3000:]
        failed = [line for line in verify.stdout.splitlines() if line.startswith("FAILED")]
        assert failed and all(failing in line for line in failed), failed
