#!/usr/bin/env python3
"""Benchmark the conformance suites against the emulator: serially and in parallel, in one run.

Prints figures, asserts nothing (machines here are noisy). For each mode it starts a fresh emulator,
adds `--latency-ms` to every request on every emulated host (a delay rule through the control API: a far
away Datadog), runs the suites, and reports wall time, the speedup, browser flows (rendered and posted
without rendering), logins, HTTP requests (the harness's and the emulator's), peak memory of the whole
tree (pytest, workers, Chromium, the emulator) and the verdict. With --report, the last run's
single-file Allure report is built and its size and open time in headless Chromium are measured.

    .venv/bin/python scripts/bench_harness.py                            # every target, serial vs -n 2
    .venv/bin/python scripts/bench_harness.py --latency-ms 150 -n 4 --target US1-sandbox --target EU1-sandbox
    .venv/bin/python scripts/bench_harness.py --modes parallel --report  # the default run, report measured
    (anything after `--` goes to pytest)
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.config.targets import load_targets  # noqa: E402
from core.network import make_client  # noqa: E402


def by_name(cpu: dict) -> collections.Counter:
    totals: collections.Counter = collections.Counter()
    for name, seconds in cpu.values():
        totals[name] += seconds
    return totals


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy. Chromium's short-lived renderer processes escape any
    per-process sampling and are not always reaped by a process we wait for: on an otherwise idle
    machine the machine-wide count is the honest total of what a run cost."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0) - getattr(t, "guest", 0.0) \
        - getattr(t, "guest_nice", 0.0)


def tree_memory(proc: psutil.Process, cpu: dict | None = None) -> tuple[int, int]:
    """(RSS, PSS) summed over the process and its children. RSS counts a page shared by Chromium's
    processes once per process; PSS splits it between them, so the PSS sum is what the tree really uses.
    `cpu` collects each process's CPU seconds so far (by pid): their sum is the work the run did."""
    rss = pss = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        try:
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            if cpu is not None:
                times = p.cpu_times()
                cpu[p.pid] = (p.name(), times.user + times.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return rss, pss


EMULATOR_PROCESS = """
import sys
from pathlib import Path
from emulator import start_embedded
emulator = start_embedded(Path(sys.argv[1]))
print(emulator.targets_file, flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
emulator.stop()
"""


class EmulatorProcess:
    """A fresh emulator in a process of its own (as Datadog would be: it does not share the GIL with the
    memory sampler), with `latency_ms` added to every request on every host (a control-API delay rule)."""

    def __init__(self, directory: Path, latency_ms: int):
        self.proc = subprocess.Popen([sys.executable, "-c", EMULATOR_PROCESS, str(directory / "emulator")], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.targets_file = Path(self.proc.stdout.readline().strip())
        self.config = load_targets(self.targets_file, env_file=None)
        self.client = make_client(self.config.network)
        if latency_ms:
            self.client.post(self.config.control_url + "rules", json={
                "match": {"host": "*"}, "action": {"delay_ms": latency_ms}}).raise_for_status()

    def served(self) -> int:
        return int(self.client.get(self.config.control_url + "state").json().get("request_count", 0))

    def stop(self) -> None:
        self.client.close()
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run_mode(name: str, workers: int, args, out: Path) -> dict:
    directory = out / name
    directory.mkdir(parents=True)
    before = machine_busy()
    emulator = EmulatorProcess(directory, args.latency_ms)
    try:
        cmd = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "-q", "-p", "no:cacheprovider",
               "--targets", str(emulator.targets_file), "--alluredir", str(directory / "allure-results"),
               "--verdict-path", str(directory / "verdict.json"), "--reports-dir", str(directory),
               "--junitxml", str(directory / "junit.xml"), "--state-dir", str(directory / "state"),
               *[a for t in args.target for a in ("--target", t)], *args.pytest_args]
        if workers > 1:
            cmd += ["-n", str(workers)]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ps = psutil.Process(proc.pid)
        peak = peak_pss = 0
        cpu: dict = {}  # pid -> (name, CPU seconds)
        emu_cpu: dict = {}
        while proc.poll() is None:
            rss, pss = tree_memory(ps, cpu)
            emu_rss, emu_pss = tree_memory(psutil.Process(emulator.proc.pid), emu_cpu)  # + the emulator's process
            peak, peak_pss = max(peak, rss + emu_rss), max(peak_pss, pss + emu_pss)
            time.sleep(0.5)
        wall = time.monotonic() - start
        output = proc.stdout.read()
        served = emulator.served()  # (its log keeps the last 20000)
    finally:
        emulator.stop()
    cpu_total = machine_busy() - before
    stats = directory / "run-stats.jsonl"
    events = [json.loads(line) for line in stats.read_text().splitlines()] if stats.exists() else []
    flows = [e for e in events if e["event"] == "consent_flow"]
    verdict = json.loads((directory / "verdict.json").read_text()) if (directory / "verdict.json").exists() else {}
    return {
        "name": name, "workers": workers, "exit": proc.returncode, "wall": wall, "peak": peak, "peak_pss": peak_pss,
        "cpu_total": cpu_total, "emulator_cpu": sum(v for _, v in emu_cpu.values()),
        "cpu_by_name": by_name(cpu),
        "rendered": sum(1 for f in flows if f.get("via") != "form post"),
        "warm": sum(1 for f in flows if f.get("via") == "warm tab"),
        "posted": sum(1 for f in flows if f.get("via") == "form post"),
        "fallbacks": collections.Counter(e["fallback"] for e in events if e["event"] == "form_post" and e.get("fallback")),
        "logins": sum(1 for e in events if e["event"] == "login"),
        "requests": sum(e["count"] for e in events if e["event"] == "http_requests"),
        "served": served, "totals": verdict.get("totals", {}), "directory": directory,
        "outcomes": junit_outcomes(directory / "junit.xml"),
        "summary": output.strip().splitlines()[-1] if output.strip() else "(no pytest output)",
    }


def junit_outcomes(path: Path) -> dict[str, str]:
    import xml.etree.ElementTree as ET
    if not path.exists():
        return {}
    out = {}
    for case in ET.parse(path).iter("testcase"):
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        out[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return out


def measure_report(results: Path, out: Path) -> tuple[int, float]:
    """The single-file report's size in bytes and the seconds until headless Chromium shows its tests."""
    from playwright.sync_api import sync_playwright
    from harness.browser.chromium import STABILITY_ARGS, find_chromium
    from harness.results import report

    index = report.generate_html(results, out, ROOT, history_path=out / "history.jsonl")
    size = index.stat().st_size
    with sync_playwright() as p:
        kwargs = {"args": STABILITY_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])}
        if find_chromium():
            kwargs["executable_path"] = find_chromium()
        browser = p.chromium.launch(**kwargs)
        page = browser.new_page()
        start = time.monotonic()
        page.goto(index.as_uri(), wait_until="load", timeout=120_000)
        # the summary and the tree of results are drawn: "Results <n>" and a "Sort by" control
        page.wait_for_function("() => document.body && /Results\\s*\\d+/.test(document.body.innerText)"
                               " && document.body.innerText.includes('Sort by')", timeout=120_000)
        seconds = time.monotonic() - start
        browser.close()
    return size, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every emulator request (default 0)")
    parser.add_argument("-n", dest="workers", type=int, default=2, help="workers for the parallel run (default 2)")
    parser.add_argument("--modes", default="serial,parallel", help="serial,parallel (default both)")
    parser.add_argument("--target", action="append", default=[], help="a target (repeatable; default all)")
    parser.add_argument("--repeat", type=int, default=1, help="run each mode this many times; compare every verdict")
    parser.add_argument("--report", action="store_true", help="build the last run's report; measure size, open time")
    parser.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="ddoauth-bench-"))
    runs = []
    for i in range(max(1, args.repeat)):
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            name = mode if args.repeat <= 1 else f"{mode}-{i + 1}"
            runs.append(run_mode(name, 1 if mode == "serial" else args.workers, args, out))
    print(f"latency added per request: {args.latency_ms} ms; targets: {', '.join(args.target) or 'all'}; "
          f"CPUs: {os.cpu_count()}")
    for r in runs:
        t = r["totals"]
        print(f"{r['name']:>8} ({'-n ' + str(r['workers']) if r['workers'] > 1 else 'serial'}): "
              f"wall {r['wall']:.1f} s | exit {r['exit']} | passed {t.get('passed', '-')} failed {t.get('failed', '-')} "
              f"broken {t.get('broken', '-')} skipped {t.get('skipped', '-')} | peak memory {r['peak_pss'] / 2**30:.2f} GiB PSS "
              f"({r['peak'] / 2**30:.2f} GiB summed RSS)")
        print(f"          flows: {r['rendered']} rendered ({r['warm']} in a warm tab) + {r['posted']} posted without rendering; logins {r['logins']}; "
              f"HTTP requests: harness {r['requests']}, emulator served {r['served'] or '-'}")
        print(f"          CPU: {r['cpu_total']:.0f} s machine-wide (pytest, workers, Chromium; the emulator's own: "
              f"{r['emulator_cpu']:.0f} s); the CPU-bound floor on {os.cpu_count()} CPUs is "
              f"{r['cpu_total'] / (os.cpu_count() or 1):.0f} s. Sampled by process (short-lived ones "
              "missed): " + ", ".join(f"{n} {v:.0f} s" for n, v in r["cpu_by_name"].most_common(3)))
        for reason, n in r["fallbacks"].most_common(3):
            print(f"          form post fell back {n}x: {reason}")
    if len(runs) > 2:  # --repeat: every run's verdict against the first's, and the walls per mode
        first = runs[0]
        for r in runs[1:]:
            differ = sorted(k for k in first["outcomes"].keys() | r["outcomes"].keys()
                            if first["outcomes"].get(k) != r["outcomes"].get(k))
            print(f"verdict {r['name']} vs {first['name']}: "
                  f"{'identical' if not differ else 'DIFFER: ' + ', '.join(differ[:5])}")
        print("false failures (failed or broken tests) per run: "
              + ", ".join(f"{r['name']} {r['totals'].get('failed', '?')}+{r['totals'].get('broken', '?')}" for r in runs))
    if len(runs) == 2:
        a, b = runs
        print(f"speedup: {a['wall'] / b['wall']:.2f}x ({a['name']} {a['wall']:.1f} s / {b['name']} {b['wall']:.1f} s)")
        differ = sorted(k for k in a["outcomes"].keys() | b["outcomes"].keys() if a["outcomes"].get(k) != b["outcomes"].get(k))
        print(f"verdicts: {'identical' if not differ else 'DIFFER in ' + str(len(differ)) + ' tests: ' + ', '.join(differ[:5])}"
              f" ({len(a['outcomes'])} tests)")
    if args.report and runs:
        size, seconds = measure_report(runs[-1]["directory"] / "allure-results", runs[-1]["directory"] / "report")
        print(f"report: {size / 1e6:.1f} MB single file; open in headless Chromium {seconds:.1f} s")
    print(f"runs kept under {out}")
    print(f"this script's own peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
