#!/usr/bin/env python3
"""Benchmark the Datadog emulator over loopback TLS with real hostnames. Prints figures, asserts nothing.

    .venv/bin/python scripts/bench_emulator.py [--duration 5] [--workers 2] [--connections 16]

The emulator runs in a subprocess (one process, as it ships: uvicorn + uvloop + httptools, one event
loop). The load comes from this process's worker processes, each an asyncio loop driving keep-alive
TLS connections to 127.0.0.1:<port> with SNI and Host set to the real Datadog hostname and the
emulator's CA verified. The load generator is a minimal HTTP/1.1 client (asyncio streams), because
httpx itself costs more CPU per request than the emulator does and would measure the client.

Phases:
  1. token exchanges/s: authorization codes are minted up front through the control API
     (POST /_emulator/codes), then redeemed at POST https://api.datadoghq.eu/oauth2/v1/token
     (form body, client secret, PKCE verifier): each request is a full code exchange.
  2. scoped API reads/s: GET https://api.datadoghq.eu/api/v1/dashboard with a valid bearer token
     (bearer lookup, scope check against the catalogue, JSON answer).
Targets (issue 2): >= 500 token exchanges/s and >= 2,000 scoped reads/s from one emulator process.
The server's CPU time during each phase is read from /proc, to tell a saturated server from a
saturated load generator (this machine's cores are shared by both).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import re
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
API_HOST = "api.datadoghq.eu"
SITE = "EU1"
_CL = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)

SERVER_CODE = """
import json, pathlib, sys, time
from emulator.server import start
emu = start(pathlib.Path(sys.argv[1]))
print(json.dumps({"port": emu.port, "ca": str(emu.tls.ca_pem)}), flush=True)
while True:
    time.sleep(3600)
"""


# ---- a minimal keep-alive HTTP/1.1 client ------------------------------------------------------

class Conn:
    def __init__(self, port: int, ctx: ssl.SSLContext, host: str = API_HOST):
        self.port, self.ctx, self.host = port, ctx, host
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, ssl=self.ctx,
                                                                 server_hostname=self.host)

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        if self.writer is None:
            await self.open()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        m = _CL.search(head)
        data = await self.reader.readexactly(int(m.group(1))) if m else b""
        if b"\r\nconnection: close" in head.lower():
            self.writer.close()
            self.writer = None
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def client_ctx(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


# ---- load workers (separate processes) ------------------------------------------------------------

def _worker(args) -> dict:
    kind, port, ca, connections, duration, payloads, start_at, nice = args
    if nice:
        os.nice(nice)  # on a shared machine, let the server win CPU contention against its own load
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_drive(kind, port, ca, connections, duration, payloads, start_at))


async def _drive(kind, port, ca, connections, duration, payloads, start_at) -> dict:
    ctx = client_ctx(ca)
    conns = [Conn(port, ctx) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))
    while time.time() < start_at:  # all workers start together
        await asyncio.sleep(0.005)
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    queue = list(reversed(payloads)) if kind == "token" else None
    began = time.monotonic()

    async def loop(conn: Conn):
        while time.monotonic() < deadline:
            if kind == "token":
                if not queue:
                    return
                method, path, body, headers = queue.pop()
            else:
                method, path, body, headers = payloads[0]
            t0 = time.perf_counter()
            try:
                status, _ = await conn.request(method, path, body, headers)
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                conn.close()
                conn.writer = None
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(loop(c) for c in conns))
    elapsed = time.monotonic() - began
    for c in conns:
        c.close()
    return {"latencies": latencies, "statuses": statuses, "errors": errors, "elapsed": elapsed,
            "exhausted": kind == "token" and not queue}


# ---- the emulator subprocess ---------------------------------------------------------------------

def start_server(state_dir: str) -> tuple[subprocess.Popen, int, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", SERVER_CODE, state_dir], stdout=subprocess.PIPE, cwd=ROOT, env=env,
                            text=True)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the emulator subprocess did not start")
    info = json.loads(line)
    return proc, info["port"], info["ca"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _control(port: int, ca: str, method: str, path: str, payload=None):
    conn = Conn(port, client_ctx(ca))
    body = json.dumps(payload).encode() if payload is not None else b""
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    status, data = await conn.request(method, path, body, headers)
    conn.close()
    return status, (json.loads(data) if data else None)


def control(port, ca, method, path, payload=None):
    status, data = asyncio.run(_control(port, ca, method, path, payload))
    if status >= 300:
        raise SystemExit(f"control {method} {path}: {status} {data}")
    return data


# ---- phases ------------------------------------------------------------------------------------

def run_phase(name, kind, port, ca, pid, workers, connections, duration, payload_sets, nice=0) -> dict:
    start_at = time.time() + 1.0
    cpu0, wall0 = cpu_seconds(pid), None
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        jobs = [(kind, port, ca, connections, duration, payload_sets[i], start_at, nice) for i in range(workers)]
        async_result = pool.map_async(_worker, jobs)
        while time.time() < start_at:
            time.sleep(0.001)
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        results = async_result.get()
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
    lat = sorted(x for r in results for x in r["latencies"])
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    elapsed = max(r["elapsed"] for r in results)
    ok = statuses.get(200, 0)
    bad = sum(v for k, v in statuses.items() if k != 200) + sum(errors.values())
    out = {
        "phase": name, "workers": workers, "connections": workers * connections, "seconds": round(elapsed, 2),
        "requests": len(lat), "ok": ok, "errors": bad, "statuses": statuses, "transport_errors": errors,
        "rps": round(ok / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2) if lat else None,
        "server_cpu": round((cpu1 - cpu0) / (wall1 - wall0), 2),
        # what one emulator process would do with a whole core to itself: successes per server CPU-second
        "per_server_core": round(ok / (cpu1 - cpu0), 1) if cpu1 > cpu0 else None,
        "codes_exhausted": any(r["exhausted"] for r in results),
    }
    return out


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per phase (default 5)")
    ap.add_argument("--workers", type=int, default=2, help="load-generator processes (default 2)")
    ap.add_argument("--connections", type=int, default=16, help="keep-alive connections per worker (default 16)")
    ap.add_argument("--codes", type=int, default=0, help="codes to mint (default: enough for 4000/s)")
    ap.add_argument("--nice", type=int, default=0, help="niceness for the load workers (e.g. 10 on a busy machine)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="ddoauth-bench-") as state_dir:
        proc, port, ca = start_server(state_dir)
        try:
            print(f"emulator: pid {proc.pid}, https://127.0.0.1:{port} (SNI/Host {API_HOST}), CA {ca}")
            print(f"load: {args.workers} worker process(es) x {args.connections} keep-alive TLS connections, "
                  f"{args.duration:.0f} s per phase, {os.cpu_count()} CPU(s) shared with the server")
            state = control(port, ca, "GET", "/_emulator/state")
            client = next(c for c in state["sites"][SITE]["clients"] if c["key"] == "test")
            # the default limit (6000/min per bucket) would turn a benchmark into a 429 test
            control(port, ca, "POST", "/_emulator/behaviour", {"rate_limits": {"*": {"limit": 10 ** 9, "period": 60}}})

            verifier = secrets.token_urlsafe(48)
            wanted = args.codes or int(4000 * args.duration) + 2000
            codes: list[str] = []
            t0 = time.monotonic()
            while len(codes) < wanted:
                n = min(10000, wanted - len(codes))
                codes += control(port, ca, "POST", "/_emulator/codes", {
                    "site": SITE, "client_id": client["id"], "code_challenge": s256(verifier), "count": n})["codes"]
            print(f"minted {len(codes)} authorization codes in {time.monotonic() - t0:.2f} s (POST /_emulator/codes)")

            def token_req(code):
                body = urlencode({"grant_type": "authorization_code", "client_id": client["id"],
                                  "client_secret": client["secret"], "code": code,
                                  "redirect_uri": client["redirect_uris"][0], "code_verifier": verifier}).encode()
                return ("POST", "/oauth2/v1/token", body, {"Content-Type": "application/x-www-form-urlencoded"})

            # one exchange by hand: the bearer for phase 2 (and a check that exchanges work at all)
            status, data = asyncio.run(Conn(port, client_ctx(ca)).request(*token_req(codes.pop())))
            if status != 200:
                raise SystemExit(f"token exchange failed: {status} {data[:200]!r}")
            access = json.loads(data)["access_token"]

            shards = [[token_req(c) for c in codes[i::args.workers]] for i in range(args.workers)]
            results = [run_phase("token exchanges", "token", port, ca, proc.pid, args.workers, args.connections,
                                 args.duration, shards, args.nice)]
            read = [("GET", "/api/v1/dashboard", b"", {"Authorization": f"Bearer {access}"})]
            results.append(run_phase("scoped reads (GET /api/v1/dashboard)", "read", port, ca, proc.pid,
                                     args.workers, args.connections, args.duration, [read] * args.workers,
                                     args.nice))
        finally:
            proc.terminate()
            proc.wait(10)

    targets = {"token exchanges": 500, "scoped reads (GET /api/v1/dashboard)": 2000}
    print()
    print(f"{'phase':38} {'req/s':>8} {'target':>6} {'p50 ms':>7} {'p99 ms':>7} {'requests':>8} {'errors':>6} "
          f"{'server CPU':>10} {'req/s per server core':>22}")
    for r in results:
        print(f"{r['phase']:38} {r['rps']:>8.1f} {targets[r['phase']]:>6} {r['p50_ms']:>7} {r['p99_ms']:>7} "
              f"{r['requests']:>8} {r['errors']:>6} {r['server_cpu']:>10.0%} {r['per_server_core']:>22}")
        if r["errors"]:
            print(f"    statuses {r['statuses']} transport errors {r['transport_errors']}")
        if r["codes_exhausted"]:
            print("    (ran out of minted codes before the phase ended: raise --codes)")
    print("server CPU = the emulator process's CPU time / wall time (100% = one core busy);")
    print("req/s per server core = successful requests / emulator CPU-seconds (its rate with a core to itself)")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"note: load average {load:.1f} on {os.cpu_count()} CPU(s): other processes competed for the CPU")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
