"""harness/pkce.py: RFC 7636 values, good and deliberately broken."""
from __future__ import annotations

import re

import pytest

from core.pkce import PKCE, s256

UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]+")


def test_s256_rfc7636_appendix_b():
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_generate_default():
    p = PKCE.generate()
    assert p.method == "S256" and len(p.verifier) == 64
    assert p.challenge == s256(p.verifier)
    assert len(p.challenge) == 43 and "=" not in p.challenge
    assert UNRESERVED.fullmatch(p.verifier) and UNRESERVED.fullmatch(p.challenge)
    assert PKCE.generate().verifier != p.verifier


@pytest.mark.parametrize("length", [43, 44, 100, 127, 128])
def test_generate_lengths_in_range(length):
    p = PKCE.generate(length)
    assert len(p.verifier) == length and UNRESERVED.fullmatch(p.verifier)
    assert p.challenge == s256(p.verifier)


@pytest.mark.parametrize("length", [0, 42, 129, 200])
def test_generate_lengths_out_of_range(length):
    with pytest.raises(ValueError, match="43 to 128"):
        PKCE.generate(length)


def test_plain():
    p = PKCE.plain()
    assert p.method == "plain" and p.challenge == p.verifier
    assert 43 <= len(p.verifier) <= 128 and UNRESERVED.fullmatch(p.verifier)


@pytest.mark.parametrize("n", [42, 129])
def test_out_of_range_challenge(n):
    p = PKCE.with_challenge_length(n)
    assert len(p.challenge) == n and p.method == "S256"
    assert UNRESERVED.fullmatch(p.challenge)
    assert p.challenge != s256(p.verifier)
