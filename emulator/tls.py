"""Local TLS for the emulator: a trustme CA and one leaf naming every served host exactly.

No wildcard SANs: a host no site owns (`api.bigcorp.datadoghq.eu`) must fail the client's
name check, exactly as Datadog's certificate does for a customer subdomain in the API host.
"""
from __future__ import annotations

import base64
import hashlib
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization


@dataclass(frozen=True)
class TLSMaterial:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    spki_sha256: str  # base64 sha256 of the leaf public key, for Chromium's --ignore-certificate-errors-spki-list

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_pem), str(self.key_pem))
        return ctx


def make_tls(state_dir: Path, hosts: list[str]) -> TLSMaterial:
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="ddoauth emulator local CA")
    leaf = ca.issue_cert(*hosts)
    ca_pem = state_dir / "ca.pem"
    cert_pem = state_dir / "server.pem"
    key_pem = state_dir / "server.key"
    ca.cert_pem.write_to_path(str(ca_pem))
    leaf.private_key_pem.write_to_path(str(key_pem))
    key_pem.chmod(0o600)
    with cert_pem.open("wb") as fh:
        for blob in leaf.cert_chain_pems:
            fh.write(blob.bytes())
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TLSMaterial(ca_pem, cert_pem, key_pem, base64.b64encode(hashlib.sha256(spki).digest()).decode())
