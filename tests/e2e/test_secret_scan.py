"""After a run that fails on purpose, nothing under the reports dir (nor the terminal) holds a secret.

The emulator runs here, in the test, so every secret of the run is known: seeded client secrets,
passwords and TOTP seeds, and every code, token, API key and session cookie it issued.
"""
import subprocess
import sys
from pathlib import Path


from emulator.cli import targets_file
from emulator.server import start

ROOT = Path(__file__).resolve().parents[2]
DEFECTS = ["token_scope_missing_one", "expires_in_string", "revoke_noop"]


def _secrets(store, partner=None) -> dict[str, str]:
    found: dict[str, str] = {}
    for u in (store.seed.get("partner") or {}).get("users", []):  # the reference partner app's login
        found[u["password"]] = "partner_password"
    for sid in (partner.sessions if partner is not None else {}):
        found[sid] = "partner_session_cookie"
    for c in store.clients.values():
        found[c.secret] = "client_secret"
    for u in store.users.values():
        found[u.password] = "password"
        if u.totp_secret:
            found[u.totp_secret] = "totp_secret"
    for v in store.codes:
        found[v] = "authorization_code"
    for v in store.access_tokens:
        found[v] = "access_token"
    for v in store.refresh_tokens:
        found[v] = "refresh_token"
    for k in store.api_keys.values():
        found[k.key] = "api_key"
    for sid in store.sessions:
        found[sid] = "session_cookie"
    return found


def test_failing_run_leaks_no_secret(tmp_path):
    running = start(tmp_path / "emulator")
    try:
        running.store.behaviour.update({"defects": set(DEFECTS)})
        tfile = targets_file(running, tmp_path / "emulator")
        reports = tmp_path / "reports"
        cmd = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "-p", "no:cacheprovider", "-q",
               "--targets", str(tfile), "--target", "US1-sandbox", "--target", "EU1-sandbox",
               "--alluredir", str(reports / "allure-results"), "--verdict-path", str(reports / "verdict.json"),
               "--reports-dir", str(reports), "--state-dir", str(tmp_path / "state"), "--record-pages",
               "-k", "not region_switch"]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
        secrets = _secrets(running.store, running.app.partner)
    finally:
        running.stop()
    assert proc.returncode == 1, f"the run should fail on the injected defects:\n{proc.stdout[-3000:]}"
    assert "failed" in proc.stdout
    assert len([s for s, kind in secrets.items() if kind == "access_token"]) >= 5, "the run issued too few tokens"
    # integration mode ran too (the reference partner app's login, sessions and its own tokens and key)
    assert "partner_session_cookie" in secrets.values(), "integration mode did not run"
    files = [p for p in reports.rglob("*") if p.is_file()]
    assert any(p.suffix in (".png", ".jpg") for p in files), "screenshots should have been written"
    assert len(files) > 50
    # the redactor really met secrets (a scan of files that never held any would prove nothing)
    assert any(b"[REDACTED" in p.read_bytes() for p in files if p.suffix in (".txt", ".json"))
    leaks = []
    for path in files:
        data = path.read_bytes()
        for value, kind in secrets.items():
            if len(value) >= 8 and value.encode() in data:
                leaks.append(f"{kind} in {path.relative_to(tmp_path)}")
    terminal = proc.stdout + proc.stderr
    leaks += [f"{kind} in terminal output" for value, kind in secrets.items() if len(value) >= 8 and value in terminal]
    assert not leaks, "secrets leaked:\n" + "\n".join(sorted(set(leaks))[:40])
