"""`ddoauth-emulator`: serve the local Datadog until stopped, and say how to reach it.

With `--partner-host HOST --partner-port PORT` it also gets ready for your own partner app (integration
mode offline): your redirect URI `https://HOST<--partner-redirect-path>` is registered on the seed client
your app uses (`--partner-client`, every site), a certificate for HOST is issued from a local CA (unless
`--partner-ca` names yours), and it writes, under `<state-dir>/partner/`: `cert.pem` + `key.pem` (your
app's TLS), `partner.env` (the client id and secret your app uses, where Datadog's hosts are served and
the CA to trust for them) and `ca-bundle.pem`; and a targets file for `pytest suites -m integration_mode`
(`--partner-targets`, default `<state-dir>/partner-targets.yaml`) with HOST and every Datadog host in
`network.hosts`, the CA bundle, and your app's `integration` section (`--partner-config FILE` fills in
its pages' labels; without it the file says what to fill in).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

import trustme
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.errors import ConfigError
from core.pkce import PKCE

from .targets import (
    PartnerApp,
    check_partner_config,
    check_partner_host,
    check_partner_path,
    partner_targets_document,
    partner_targets_yaml,
)


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


def _write(path: Path, text: str | bytes, private: bool = False) -> Path:
    """Write a file; `private` ones (keys, credentials) are created 0600 and never readable by others."""
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    if private:
        path.chmod(0o600)
    return path


def _leaf_spki(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def partner_options(args) -> tuple[PartnerApp, dict, Path | None] | None:
    """The --partner-* options, checked before anything starts (a ConfigError is one line)."""
    if args.partner_host is None:
        others = [o for o in ("partner_port", "partner_ca", "partner_config", "partner_targets")
                  if getattr(args, o) is not None]
        if others:
            raise ConfigError(f"--{others[0].replace('_', '-')} needs --partner-host")
        return None
    if args.partner_port is None or not 0 < args.partner_port < 65536:
        raise ConfigError("--partner-host needs --partner-port (1-65535): the port your app listens on")
    from .server import EXTRA_HOSTS

    host = check_partner_host(args.partner_host, reserved=tuple(EXTRA_HOSTS))
    partner = PartnerApp(host, f"{args.partner_address}:{args.partner_port}",
                         check_partner_path(args.partner_onboarding_path, "--partner-onboarding-path"),
                         check_partner_path(args.partner_redirect_path, "--partner-redirect-path"),
                         args.partner_client)
    config = {}
    if args.partner_config:
        try:
            raw = yaml.safe_load(Path(args.partner_config).read_text())
        except OSError as exc:
            raise ConfigError(f"--partner-config {args.partner_config}: cannot read it ({exc.strerror})") from None
        except yaml.YAMLError:
            raise ConfigError(f"--partner-config {args.partner_config}: not valid YAML") from None
        config = check_partner_config(raw, f"--partner-config {args.partner_config}")
    ca = Path(args.partner_ca) if args.partner_ca else None
    if ca is not None and b"-----BEGIN CERTIFICATE-----" not in (ca.read_bytes() if ca.is_file() else b""):
        raise ConfigError(f"--partner-ca {ca}: not a readable PEM file with a certificate")
    return partner, config, ca


def setup_partner(running, state_dir: Path, partner: PartnerApp, config: dict, partner_ca: Path | None,
                  targets_path: Path) -> dict:
    """Register the partner's redirect URI (kept across a control-API reset), its TLS material, the env file
    its app reads and the integration-mode targets file. Returns what to print (paths only, no secret)."""
    clients = running.store.seed_redirect_uris(partner.client_key, [partner.redirect_uri])
    pdir = state_dir / "partner"
    pdir.mkdir(parents=True, exist_ok=True)
    spki = [running.tls.spki_sha256]
    out: dict = {}
    if partner_ca is None:  # a local CA of its own issues the partner's certificate for its hostname
        ca = trustme.CA(organization_name="ddoauth partner local CA")
        leaf = ca.issue_cert(partner.host)
        ca_pem = ca.cert_pem.bytes()
        _write(pdir / "ca.pem", ca_pem)
        _write(pdir / "cert.pem", b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        _write(pdir / "key.pem", leaf.private_key_pem.bytes(), private=True)
        spki.append(_leaf_spki(leaf.cert_chain_pems[0].bytes()))
        out.update(cert=str(pdir / "cert.pem"), key=str(pdir / "key.pem"))
    else:
        ca_pem = partner_ca.read_bytes()
    bundle = _write(pdir / "ca-bundle.pem", Path(running.tls.ca_pem).read_bytes().rstrip(b"\n") + b"\n" + ca_pem)
    client = clients[0]
    env = _write(pdir / "partner.env", "\n".join([
        "# written by ddoauth-emulator: what your app needs to talk to the local Datadog (local credentials)",
        f"DD_CLIENT_ID={client.id}", f"DD_CLIENT_SECRET={client.secret}",
        f"DD_REDIRECT_URI={partner.redirect_uri}",
        "# every Datadog host (app.<domain>, api.<domain>) is served at this address, with this CA's certificate",
        f"DATADOG_ADDRESS={running.base_address}", f"DATADOG_CA={Path(running.tls.ca_pem).resolve()}",
        *([f"PARTNER_TLS_CERT={out['cert']}", f"PARTNER_TLS_KEY={out['key']}"] if "cert" in out else []),
    ]) + "\n", private=True)
    document = partner_targets_document(running.store.snapshot(), running.base_address, str(bundle.resolve()),
                                        partner, config, spki)
    header = (f"# written by ddoauth-emulator --partner-host {partner.host}: local emulator credentials, not real "
              f"ones\n# integration mode against your app: .venv/bin/pytest suites -m integration_mode "
              f"--targets {targets_path}\n")
    _write(targets_path, partner_targets_yaml(document, header), private=True)
    ready = any((t.get("integration") or {}).get("success") for t in document["targets"])
    return {"host": partner.host, "address": partner.address, "onboarding_url": partner.onboarding_url,
            "redirect_uri": partner.redirect_uri, "client": partner.client_key, "client_id": client.id,
            **out, "ca_bundle": str(bundle), "env_file": str(env), "targets_file": str(targets_path),
            "integration_section": "complete" if ready else "FILL IN (see the top of the targets file)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ddoauth-emulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-dir", default=".ddoauth/emulator")
    parser.add_argument("--seed", help="YAML seed (default: emulator/data/seed.yaml)")
    parser.add_argument("--no-control-api", action="store_true", help="turn off /_emulator/")
    mine = parser.add_argument_group("your own partner app (integration mode against it, offline)")
    mine.add_argument("--partner-host", help="your app's hostname, as the browser and your redirect URI use it "
                                             "(e.g. app.example-partner.test); not a Datadog name")
    mine.add_argument("--partner-port", type=int, help="the port your app listens on (HTTPS)")
    mine.add_argument("--partner-address", default="127.0.0.1", help="the IP your app listens on (default 127.0.0.1)")
    mine.add_argument("--partner-onboarding-path", default="/datadog/start", help="your onboarding URL's path")
    mine.add_argument("--partner-redirect-path", default="/oauth/callback", help="your redirect URI's path")
    mine.add_argument("--partner-client", default="published",
                      help="the seed client your app uses; the redirect URI is registered on it (default: published)")
    mine.add_argument("--partner-ca", help="PEM of the CA that issued your app's certificate (default: one is "
                                           "issued for --partner-host: <state-dir>/partner/cert.pem, key.pem)")
    mine.add_argument("--partner-config", help="YAML with your app's integration keys: success, failure, login, "
                                               "data, client_name, timeout_s (the targets file says what to fill "
                                               "in without it)")
    mine.add_argument("--partner-targets", help="the targets file to write (default: <state-dir>/partner-targets.yaml)")
    args = parser.parse_args(argv)
    from .server import start

    state_dir = Path(args.state_dir).resolve()  # the targets files name their CA files absolutely
    try:
        partner = partner_options(args)
        running = start(state_dir, port=args.port, seed=args.seed, control_api=not args.no_control_api,
                        host=args.host)
    except ConfigError as exc:
        print(f"ddoauth-emulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ddoauth-emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    mine = None
    if partner is not None:
        targets_path = Path(args.partner_targets or state_dir / "partner-targets.yaml").resolve()
        try:
            mine = setup_partner(running, state_dir, *partner, targets_path)
        except (ConfigError, OSError) as exc:
            running.stop()
            print(f"ddoauth-emulator: {exc}", file=sys.stderr)
            return 2
    tfile = targets_file(running, state_dir)
    print(json.dumps({"address": running.base_address, "ca": str(running.tls.ca_pem),
                      "chromium_spki": running.tls.spki_sha256, "targets_file": str(tfile),
                      **({"partner": mine} if mine else {})}, indent=2))
    print(f"\nChromium: --host-resolver-rules=\"MAP *.datadoghq.com {running.base_address},"
          f"MAP *.datadoghq.eu {running.base_address}\" --ignore-certificate-errors-spki-list={running.tls.spki_sha256}")
    print(f"Suites:   .venv/bin/pytest suites --targets {tfile}")
    print(f"Try it:   open {playground_url(running)}")
    if mine:
        print(f"Partner:  {mine['redirect_uri']} registered on client {mine['client']!r}; the browser goes to "
              f"{mine['address']} for {mine['host']}")
        print(f"          your app reads {mine['env_file']} (client id and secret, Datadog's address and CA)")
        print(f"Integration mode: .venv/bin/pytest suites -m integration_mode --targets {mine['targets_file']} "
              f"--target US1-sandbox")
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
