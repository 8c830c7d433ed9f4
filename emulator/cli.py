"""`ddoauth-emulator`: serve the local Datadog until stopped, and say how to reach it."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

import yaml

from core.errors import ConfigError
from core.pkce import PKCE


def targets_file(running, state_dir: Path) -> Path:
    """A ready-to-use targets file for `pytest suites --targets` against this running emulator."""
    path = state_dir / "targets.yaml"
    path.write_text("# written by ddoauth-emulator: local emulator credentials, not real ones\n"
                    + yaml.safe_dump(running.targets_document(), sort_keys=False))
    path.chmod(0o600)
    return path


def playground_url(running) -> str:
    """A ready authorize URL for the EU1 test client (log in as dev@... or mfa@... from the seed)."""
    eu1 = running.store.snapshot()["sites"]["EU1"]
    client = next(c for c in eu1["clients"] if c["kind"] == "test")
    pkce = PKCE.generate()
    query = urlencode({"client_id": client["id"], "redirect_uri": client["redirect_uris"][0], "response_type": "code",
                       "state": "playground", "code_challenge": pkce.challenge, "code_challenge_method": "S256"})
    return f"https://app.datadoghq.eu/oauth2/v1/authorize?{query}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ddoauth-emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-dir", default=".ddoauth/emulator")
    parser.add_argument("--seed", help="YAML seed (default: emulator/data/seed.yaml)")
    parser.add_argument("--no-control-api", action="store_true", help="turn off /_emulator/")
    args = parser.parse_args(argv)
    from .server import start

    state_dir = Path(args.state_dir)
    try:
        running = start(state_dir, port=args.port, seed=args.seed, control_api=not args.no_control_api,
                        host=args.host)
    except ConfigError as exc:
        print(f"ddoauth-emulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ddoauth-emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    tfile = targets_file(running, state_dir)
    print(json.dumps({"address": running.base_address, "ca": str(running.tls.ca_pem),
                      "chromium_spki": running.tls.spki_sha256, "targets_file": str(tfile)}, indent=2))
    print(f"\nChromium: --host-resolver-rules=\"MAP *.datadoghq.com {running.base_address},"
          f"MAP *.datadoghq.eu {running.base_address}\" --ignore-certificate-errors-spki-list={running.tls.spki_sha256}")
    print(f"Suites:   .venv/bin/pytest suites --targets {tfile}")
    print(f"Try it:   open {playground_url(running)}")
    print("Serving until Ctrl-C.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
