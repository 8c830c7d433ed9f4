"""Chromium's trust for a target: the CAs of `network.ca_bundle`, and no certificate error ignored.

Measured with Debian's Chromium 156 (tests/harness/test_chromium_trust.py): the only per-run way to add a
trusted CA on Linux is an NSS database at `$HOME/.pki/nssdb`; Chromium then validates chains to that CA
fully (a certificate for another name still fails with ERR_CERT_COMMON_NAME_INVALID).
`--ignore-certificate-errors-spki-list` with the CA's key does not do this: Chromium matches it only
against the certificates the server presents (the emulator, like most servers, sends its leaf without
the root), and for a match it ignores every error, the name check included. So Chromium is launched
with HOME set to a directory whose NSS database trusts exactly the bundle's CAs (on top of Chromium's
own root store, as httpx trusts them on top of the system store); `network.chromium_spki` stays an
explicit pin of leaf keys. Chromium never runs with `ignore_https_errors`.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Error as PlaywrightError

from core.errors import ConfigError

NSS_TOOLS_HINT = "install certutil (Debian/Ubuntu: apt-get install libnss3-tools; `make setup` does it)"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class BundleCA:
    subject: str
    spki_sha256: str  # base64, the form of Chromium's --ignore-certificate-errors-spki-list
    der: bytes


def spki_sha256(cert: x509.Certificate) -> str:
    """Base64 SHA-256 of the certificate's SubjectPublicKeyInfo (what Chromium's SPKI list holds)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def bundle_cas(bundle: Path) -> list[BundleCA]:
    """Every certificate in a PEM bundle; a bundle without one (or with a broken one) is a ConfigError."""
    try:
        blobs = _PEM.findall(Path(bundle).read_bytes())
    except OSError as exc:
        raise ConfigError(f"network.ca_bundle {bundle}: cannot read it ({exc.strerror})") from None
    cas = []
    for i, blob in enumerate(blobs, 1):
        try:
            cert = x509.load_pem_x509_certificate(blob)
        except ValueError:
            raise ConfigError(f"network.ca_bundle {bundle}: certificate {i} is not a valid PEM certificate") from None
        cas.append(BundleCA(cert.subject.rfc4514_string(), spki_sha256(cert),
                            cert.public_bytes(serialization.Encoding.DER)))
    if not cas:
        raise ConfigError(f"network.ca_bundle {bundle}: no PEM certificate in it")
    return cas


def nss_home(bundle: Path, root: Path | None = None) -> Path:
    """A HOME whose `.pki/nssdb` trusts exactly the bundle's CAs for TLS servers. Content-addressed (one
    per bundle content), built once and renamed into place, so xdist workers and later runs share it."""
    cas = bundle_cas(bundle)
    certutil = shutil.which("certutil")
    if certutil is None:
        raise ConfigError(f"network.ca_bundle {bundle}: Chromium trusts it through an NSS database: {NSS_TOOLS_HINT}")
    digest = hashlib.sha256(b"".join(ca.der for ca in cas)).hexdigest()[:16]
    root = root or Path(tempfile.gettempdir()) / f"ddoauth-chromium-trust-{os.getuid()}"
    home = root / digest
    if (home / ".pki" / "nssdb" / "cert9.db").exists():
        return home
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    building = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=root))
    try:
        db = building / ".pki" / "nssdb"
        db.mkdir(parents=True)
        _certutil([certutil, "-N", "-d", f"sql:{db}", "--empty-password"], bundle)
        for i, ca in enumerate(cas):
            pem = building / f"ca-{i}.der"
            pem.write_bytes(ca.der)
            _certutil([certutil, "-A", "-d", f"sql:{db}", "-n", f"ddoauth-ca-{i} {ca.subject}"[:60],
                       "-t", "C,,", "-i", str(pem)], bundle)  # C,,: a CA trusted to issue server certificates
            pem.unlink()
        try:
            building.rename(home)
        except OSError:  # another worker won the race: its database is the same
            pass
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return home


def _certutil(argv: list[str], bundle: Path) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigError(f"network.ca_bundle {bundle}: certutil failed ({detail[-1] if detail else done.returncode})")


def chromium_env(network, root: Path | None = None) -> dict[str, str] | None:
    """The environment for Chromium: HOME with the bundle's NSS database; None without a bundle."""
    if network.ca_bundle is None:
        return None
    return {**os.environ, "HOME": str(nss_home(network.ca_bundle, root))}


_CERT_ERROR = re.compile(r"net::(ERR_CERT_[A-Z_]+)(?:\s+at\s+(\S+))?")


def certificate_error(message: str, network, url: str | None = None) -> str | None:
    """One clear line for a Chromium certificate error (None when `message` is not one)."""
    match = _CERT_ERROR.search(message or "")
    if match is None:
        return None
    code, at = match.group(1), match.group(2) or url or ""
    host = re.sub(r"^[a-z]+://", "", at).split("/")[0].split(":")[0] or "the server"
    bundle = getattr(network, "ca_bundle", None)
    trust = (f"a CA in network.ca_bundle ({bundle})" if bundle is not None
             else "a CA Chromium trusts (set network.ca_bundle to your CA's PEM)")
    if code == "ERR_CERT_AUTHORITY_INVALID":
        why = f"the certificate of {host} is not issued by {trust}"
    elif code == "ERR_CERT_COMMON_NAME_INVALID":
        why = f"the certificate of {host} does not name {host}"
    elif code == "ERR_CERT_DATE_INVALID":
        why = f"the certificate of {host} is expired or not yet valid"
    else:
        why = f"the certificate of {host} was refused"
    return f"net::{code}: {why}"


@contextmanager
def certificate_errors(network, url: str | None = None):
    """Turns Chromium's certificate errors into one-line ConfigErrors naming the host and the trust."""
    try:
        yield
    except PlaywrightError as exc:
        reason = certificate_error(str(exc), network, url)
        if reason is None:
            raise
        raise ConfigError(reason) from exc
