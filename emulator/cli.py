"""`ddoauth-emulator`: serve the local Datadog until stopped, and say how to reach it."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

import yaml

from harness.errors import ConfigError


def targets_file(running, state_dir: Path) -> Path:
    """A ready-to-use targets file for `pytest suites --targets` against this running emulator."""
    from harness.config import emulator_targets
    from harness.integration import integration_as_dict

    addr = running.base_address
    snapshot = running.store.snapshot()
    data = {
        "emulator_control_url": "https://api.datadoghq.com/_emulator/",
        "network": {"hosts": {p: addr for p in ("*.datadoghq.com", "*.datadoghq.eu", "*.ddog-gov.com",
                                                "integration.example.com")},  # + the reference partner app
                    "ca_bundle": str(running.tls.ca_pem), "chromium_spki": running.tls.spki_sha256},
        "targets": [{"name": t.name, "site": t.site.key, "org": t.org, "org_id": t.org_id,
                     **({"foreign_org": t.foreign_org} if t.foreign_org else {}),
                     "client": {"id": t.client.id, "secret": t.client.secret, "kind": t.client.kind,
                                "scopes": list(t.client.scopes), "name": t.client.name},
                     "redirect_uri": t.redirect_uri,
                     "user": {k: v for k, v in {"email": t.user.email, "password": t.user.password,
                                                 "totp_secret": t.user.totp_secret}.items() if v},
                     **({"integration": integration_as_dict(t.integration)} if t.integration else {})}
                    for t in emulator_targets(snapshot)],
    }
    path = state_dir / "targets.yaml"
    path.write_text("# written by ddoauth-emulator: local emulator credentials, not real ones\n"
                    + yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path


def playground_url(running) -> str:
    """A ready authorize URL for the EU1 test client (log in as dev@... or mfa@... from the seed)."""
    from harness.oauth_client import authorize_url
    from harness.pkce import PKCE

    eu1 = running.store.snapshot()["sites"]["EU1"]
    client = next(c for c in eu1["clients"] if c["kind"] == "test")
    return authorize_url("https://app.datadoghq.eu", client["id"], client["redirect_uris"][0], "playground",
                         PKCE.generate())


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
