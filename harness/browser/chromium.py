"""Chromium for the harness: the system binary when Playwright has none, the flags that keep it quiet
on a closed network, the target's host mapping, and its trust (network.ca_bundle: harness/browser/trust.py)."""
from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from harness.browser.trust import chromium_env

STABILITY_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  # memory: two browsers run at once (client mode and integration mode); contexts are
                  # sequential, so one renderer and an in-process GPU thread are enough (~140 MB less each)
                  "--in-process-gpu", "--renderer-process-limit=1",
                  # Chromium reloads a network error page by itself (after 1 s, 5 s, ...): the callback's
                  # error page left in a warm tab re-requested the callback URL while the next flow ran,
                  # and that flow took it for its own callback
                  "--disable-auto-reload"]
# no --disable-features here: Chromium keeps only the last one, and Playwright's own list (Translate,
# OptimizationHints, MediaRouter, PaintHolding, ...) comes first
SYSTEM_CHROMIUM = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def find_chromium() -> str | None:
    """None when Playwright's own Chromium is installed (use it); else a system binary."""
    explicit = os.environ.get("DDOAUTH_CHROMIUM")
    if explicit:
        return explicit
    cache = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH", Path.home() / ".cache/ms-playwright"))
    if any(cache.glob("chromium-*/chrome-linux*/chrome")):
        return None
    for candidate in SYSTEM_CHROMIUM:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def launch_args(base: dict, network, blocked_rules: list[str]) -> dict:
    """Chromium launch arguments: the system binary when needed, the target's host mapping, resolver
    rules that make some hosts unreachable (checked first), and a HOME whose NSS database trusts the
    CAs of network.ca_bundle (never ignore_https_errors)."""
    args = dict(base)
    executable = find_chromium()
    if executable:
        args["executable_path"] = executable
    extra = list(args.get("args", [])) + STABILITY_ARGS + network.chromium_args(blocked_rules) \
        + shlex.split(os.environ.get("DDOAUTH_CHROMIUM_ARGS", ""))  # the user's own, last: they win
    if os.geteuid() == 0:
        extra.append("--no-sandbox")
    args["args"] = extra
    env = chromium_env(network)
    if env is not None:
        args["env"] = {**env, **(args.get("env") or {}), "HOME": env["HOME"]}
    return args
