"""What several endpoint modules share: reading an error answer (both of Datadog's shapes) and
judging a refusal, and a black-box estimate of a token's entropy. Private to harness.checks: it
defines no checks."""
from __future__ import annotations

import math
import re

# ---- error answers -------------------------------------------------------------------------------

def error_text(body) -> str:
    """Both shapes Datadog may use: RFC {"error","error_description"} and {"errors":["<error> - <desc>"]}."""
    if isinstance(body, dict):
        parts = [str(body.get("error", "")), str(body.get("error_description", ""))]
        errs = body.get("errors")
        if isinstance(errs, list):
            parts += [e if isinstance(e, str) else str(e.get("detail", e)) for e in errs]
        return " ".join(p for p in parts if p)
    return str(body)


def body_text(ex) -> str:
    body = ex.json
    return error_text(body) if body is not None else ex.response_body.decode("utf-8", "replace")


def refusal(ex, statuses: tuple[int, ...], errors: tuple[str, ...] = (), text: str | None = None) -> str | None:
    """Status in `statuses`, and (when given) one of `errors` and `text` in the error answer."""
    problems = []
    flat = body_text(ex)
    if ex.status not in statuses:
        if 200 <= ex.status < 300:  # served: the error fields are beside the point
            return f"accepted with {ex.status}, expected {'/'.join(map(str, statuses))}"
        problems.append(f"answered {ex.status}, expected {'/'.join(map(str, statuses))}")
    if errors and not any(e in flat for e in errors):
        problems.append(f"error is {flat[:120]!r}, expected {' or '.join(errors)}")
    if text and text.lower() not in flat.lower():
        problems.append(f"body lacks {text!r}: {flat[:120]!r}")
    return "; ".join(problems) or None


def error_body_kind(ex) -> str:
    """'rfc' ({"error": ...}), 'datadog' ({"errors": [...]}), 'empty', 'not json' or 'other'."""
    if not ex.response_body:
        return "empty"
    body = ex.json
    if body is None:
        return "not json"
    if isinstance(body, dict) and "error" in body:
        return "rfc"
    if isinstance(body, dict) and "errors" in body:
        return "datadog"
    return "other"


# ---- token entropy -------------------------------------------------------------------------------

_CHARSETS = (  # (name, pattern, alphabet size), narrowest first
    ("digits", re.compile(r"^[0-9]+$"), 10),
    ("hex", re.compile(r"^[0-9a-f]+$|^[0-9A-F]+$"), 16),
    ("alphanumeric", re.compile(r"^[A-Za-z0-9]+$"), 62),
    ("base64url", re.compile(r"^[A-Za-z0-9_-]+$"), 64),
    ("base64", re.compile(r"^[A-Za-z0-9+/]+={0,2}$"), 64),
)
# a fixed type prefix such as "ddat_": lower-case letters only (ddat_, ddapp_, ghp_, xoxb-). With mixed case
# about one random base64url value in ten started like one, and a 32-character state lost up to 11 of its
# characters to the "prefix": a false SHOULD warning now and then
_PREFIX = re.compile(r"^[a-z]{2,10}[_-](?=.{16})")


def estimate_token_bits(token: str) -> tuple[float, str]:
    """A black-box upper estimate of a token's entropy: characters after any type prefix times the
    bits their alphabet can carry; a JWT counts its signature only (the rest is predictable)."""
    parts = token.split(".")
    if len(parts) == 3 and all(parts):
        body, kind = parts[2], "JWT signature"
    else:
        body, kind = _PREFIX.sub("", token), ""
    body = body.rstrip("=")
    distinct = len(set(body))
    alphabet, name = max(distinct, 2), "mixed charset"
    for charset, pattern, size in _CHARSETS:
        if pattern.match(body):
            alphabet, name = size, charset
            break
    estimate = len(body) * math.log2(alphabet)
    # a long value made of a few repeated characters is not random: bound it by what they can carry
    if distinct < 2:
        estimate = 0.0
    elif distinct < min(alphabet, len(body)) / 4:
        estimate = min(estimate, len(body) * math.log2(distinct))
    return estimate, f"{kind or name}, {len(body)} chars, {distinct} distinct"
