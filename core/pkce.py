"""PKCE (RFC 7636) values, including deliberately broken ones for negative tests."""
from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class PKCE:
    verifier: str
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls, length: int = 64) -> "PKCE":
        if not 43 <= length <= 128:
            raise ValueError("RFC 7636 §4.1: a code_verifier has 43 to 128 characters")
        verifier = secrets.token_urlsafe(96)[:length]
        return cls(verifier, s256(verifier))

    @classmethod
    def plain(cls) -> "PKCE":
        verifier = secrets.token_urlsafe(48)[:64]
        return cls(verifier, verifier, "plain")

    @classmethod
    def with_challenge_length(cls, n: int) -> "PKCE":
        """An out-of-range challenge (42 or 129 characters) that a server must refuse."""
        challenge = (secrets.token_urlsafe(200))[:n]
        return cls("x" * 64, challenge)
