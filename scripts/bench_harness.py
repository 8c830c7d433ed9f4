#!/usr/bin/env python3
"""Benchmark the default conformance run (the suites against the embedded emulator).

Prints figures, asserts nothing (machines here are noisy). Targets from the suites issue, on a
2-core machine: wall time <= 90 s, peak memory (pytest + Chromium + emulator) <= 2 GiB, browser
logins == distinct (site, user) pairs, happy-path consent flows == one per target.

    .venv/bin/python scripts/bench_harness.py [extra pytest args]
"""
from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> int:
    out = Path(tempfile.mkdtemp(prefix="ddoauth-bench-"))
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "-q", "-p", "no:cacheprovider",
           "--alluredir", str(out / "allure-results"), "--verdict-path", str(out / "verdict.json"),
           "--reports-dir", str(out), *sys.argv[1:]]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.2)
    wall = time.monotonic() - start
    output = proc.stdout.read()
    events = [json.loads(line) for line in (out / "run-stats.jsonl").read_text().splitlines()] \
        if (out / "run-stats.jsonl").exists() else []
    logins = [e for e in events if e["event"] == "login"]
    flows = [e for e in events if e["event"] == "consent_flow"]
    requests = sum(e["count"] for e in events if e["event"] == "http_requests")
    verdict = json.loads((out / "verdict.json").read_text()) if (out / "verdict.json").exists() else {}
    targets = [t for t in verdict.get("targets", {}) if t != "(no target)"] if verdict else []
    per_target = collections.Counter(e["target"] for e in flows if e.get("purpose") == "shared_grant")
    print(f"exit status:            {proc.returncode}")
    print(f"wall time:              {wall:.1f} s   (target <= 90 s)")
    print(f"peak memory (tree RSS): {peak / 2**30:.2f} GiB   (target <= 2 GiB)")
    print(f"browser logins:         {len(logins)}   (sites x users: {len({(e['site']) for e in logins})} sites; "
          f"re-logins {sum(1 for e in logins if e.get('relogin'))})")
    print(f"consent flows:          {len(flows)} in all; happy-path (shared grant) per target: "
          + ", ".join(f"{k} {v}" for k, v in sorted(per_target.items())))
    print(f"targets:                {len(targets)}")
    print(f"HTTP requests (harness):{requests}")
    print(output.strip().splitlines()[-1] if output.strip() else "(no pytest output)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
