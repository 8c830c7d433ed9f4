"""A failing run's verdict.json and its Allure results agree test by test: the same status and the
same category for every test, and every failed check's step is red and carries its message.

Real suites against a running emulator, with server defects that make some tests fail (conformance
failures) and a second target whose client secret is wrong: its shared grant is refused, so the
tests that depend on it are broken in the Configuration category, not failed: their subject is
something else, and the fault is the configuration's.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from emulator import start_embedded  # noqa: E402
from fixtures.reporting import NODEID_PARAMETER  # noqa: E402
from harness.results.outcome import CONFIGURATION, categorize  # noqa: E402

DEFECTS = {"state_dropped", "bad_verifier_500", "expires_in_string"}
SELECTION = ["suites/test_authorize.py", "suites/test_token.py", "suites/test_refresh.py"]
WRONG_SECRET_TARGET = "EU1-sandbox"


def _nodeid(result: dict) -> str | None:
    for p in result.get("parameters") or ():
        if p.get("name") == NODEID_PARAMETER:
            return json.loads(p["value"].replace("'", '"')) if p["value"].startswith("'") else p["value"]
    return None


def _failed_steps(steps: list[dict]) -> list[dict]:
    out = []
    for step in steps or ():
        if step.get("status") in ("failed", "broken"):
            out.append(step)
        out += _failed_steps(step.get("steps"))
    return out


def _targets_file(emulator, directory: Path) -> Path:
    document = json.loads(emulator.targets_file.read_text())
    document["targets"] = [t for t in document["targets"] if t["name"] in ("US1-sandbox", WRONG_SECRET_TARGET)]
    for t in document["targets"]:
        t.pop("integration", None)
        if t["name"] == WRONG_SECRET_TARGET:
            t["client"]["secret"] = "not-the-secret-" + t["client"]["secret"][::-1]
    path = directory / "targets.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_verdict_and_allure_agree_on_every_test(tmp_path):
    results, verdict_path = tmp_path / "allure-results", tmp_path / "verdict.json"
    emulator = start_embedded(tmp_path / "emulator", defects=DEFECTS)
    try:
        args = [sys.executable, "-m", "pytest", *SELECTION, "-p", "no:cacheprovider", "-q",
                "--targets", str(_targets_file(emulator, tmp_path)), "--alluredir", str(results),
                "--verdict-path", str(verdict_path), "--reports-dir", str(tmp_path), "--state-dir", str(tmp_path)]
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    finally:
        emulator.stop()
    assert verdict_path.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    targets = json.loads(verdict_path.read_text())["targets"]
    wrong = targets[WRONG_SECRET_TARGET]
    assert wrong["broken"] and set(wrong["categories"].values()) >= {CONFIGURATION}, wrong
    assert targets["US1-sandbox"]["failed"], targets["US1-sandbox"]
    for name, verdict in targets.items():
        _agree(name, verdict, results, others=[t for t in targets if t != name])


def _belongs(nodeid: str, target: str, others: list[str]) -> bool:
    if target == "(no target)":  # e.g. an empty parameter set's skip
        return not any(f"[{t}-" in nodeid for t in others)
    return f"[{target}-" in nodeid


def _agree(target: str, verdict: dict, results: Path, others: list[str]) -> None:

    listed = {t: "failed" for t in verdict["failed_tests"]} | {t: "broken" for t in verdict["broken_tests"]}
    seen: dict[str, tuple[str, str | None]] = {}
    problems = []
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text())
        nodeid = _nodeid(result)
        assert nodeid, f"{path.name}: no {NODEID_PARAMETER!r} parameter"
        if not _belongs(nodeid, target, others):
            continue
        status = result["status"]
        category = categorize(status, (result.get("statusDetails") or {}).get("message"))
        seen[nodeid] = (status, category)
        expected = listed.get(nodeid)
        if expected is None and status in ("failed", "broken"):
            problems.append(f"{nodeid}: Allure {status}, the verdict does not list it as failed or broken")
        elif expected is not None and status != expected:
            problems.append(f"{nodeid}: Allure {status}, verdict {expected}")
        elif expected is not None and category != verdict["categories"].get(nodeid):
            problems.append(f"{nodeid}: Allure category {category!r}, verdict {verdict['categories'].get(nodeid)!r}")
        if status == "failed":
            red = _failed_steps(result.get("steps"))
            message = (result.get("statusDetails") or {}).get("message", "")
            if not red:
                problems.append(f"{nodeid}: failed, but every step is green")
            elif not any((s.get("statusDetails") or {}).get("message", "") and
                         (s["statusDetails"]["message"] in message or message in s["statusDetails"]["message"])
                         for s in red):
                problems.append(f"{nodeid}: no failed step carries the test's message {message[:120]!r}")
    missing = sorted(set(listed) - set(seen))
    assert not missing, f"listed in the verdict, absent from Allure: {missing}"
    counts = {s: sum(1 for st, _ in seen.values() if st == s) for s in ("passed", "skipped")}
    assert counts["passed"] == verdict["passed"], (counts, verdict)
    assert counts["skipped"] == verdict["skipped"] + verdict["waived"], (counts, verdict)
    assert not problems, "\n".join(problems)
