"""Small HTTP helpers shared by the emulator's handlers: Datadog-shaped answers and strict body parsing."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.sites import Site

MAX_BODY = 512 * 1024  # Datadog refuses huge bodies; so do we, with a 413 and no traceback

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class HTTPFailure(Exception):
    """Raised by a handler to answer with a ready response."""

    def __init__(self, response: Response):
        self.response = response


@dataclass
class Ctx:
    """What a handler knows about the request: the store, the site, and which host role it hit."""
    request: Request
    store: "object"
    site: Site
    role: str  # web | api | logs | events


def dd_errors(status: int, *messages: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"errors": list(messages)}, status_code=status, headers=headers)


def forbidden() -> JSONResponse:
    return dd_errors(403, "Forbidden")


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPFailure(dd_errors(413, "Request entity too large"))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPFailure(dd_errors(413, "Request entity too large"))
    return body


_MAX_JSON_INT = 2 ** 63


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 -> inf
        raise ValueError("number out of range")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if abs(value) >= _MAX_JSON_INT:
        raise ValueError("number out of range")
    return value


def loads(raw: bytes | str):
    """Strict JSON: no NaN/Infinity, no out-of-range numbers; every failure is a ValueError (incl. deep nesting)."""
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class BodyParseError(Exception):
    def __init__(self, kind: str, detail: str = ""):
        super().__init__(detail)
        self.kind = kind  # content_type | malformed | duplicate
        self.detail = detail


def parse_params(content_type: str, body: bytes) -> dict[str, str]:
    """Form or JSON body -> flat str dict. Duplicated parameters are refused (RFC 6749 §3.2)."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise BodyParseError("malformed", "body is not UTF-8") from None
        return pairs_to_dict(pairs)
    if ctype == "application/json":
        try:
            data = loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise BodyParseError("malformed", "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BodyParseError("malformed", "JSON body must be an object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) if not isinstance(v, (int, float)) else str(v)
                for k, v in data.items() if v is not None}
    raise BodyParseError("content_type", ctype or "(none)")


def pairs_to_dict(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in out:
            raise BodyParseError("duplicate", k)
        out[k] = v
    return out


async def json_body(request: Request) -> object:
    body = await read_body(request)
    try:
        return loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise HTTPFailure(dd_errors(400, "Invalid JSON body")) from None
