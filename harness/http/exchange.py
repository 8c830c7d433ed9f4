"""Evidence of every HTTP exchange: what was sent, what came back, and a curl line to replay it.

Exchanges are handed to listeners (the pytest layer attaches them to the report); every
attachment passes through the one redactor before it is written.
"""
from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx

from core.errors import EndpointAbsent, TargetUnavailable
from core.redact import REDACTOR

_SECRET_JSON_FIELDS = {"access_token": "access_token", "refresh_token": "refresh_token", "key": "api_key"}


@dataclass
class Exchange:
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    elapsed_ms: float
    label: str = ""

    @property
    def json(self):
        try:
            return json.loads(self.response_body or b"null")
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.response_headers.items():
            if k.lower() == name:
                return v
        return None

    def curl(self) -> str:
        parts = ["curl", "-sS", "-X", self.method]
        for k, v in self.request_headers.items():
            if k.lower() in ("host", "content-length", "accept-encoding", "connection", "user-agent"):
                continue
            parts += ["-H", f"{k}: {v}"]
        if self.request_body:
            parts += ["--data-raw", self.request_body.decode("utf-8", "replace")]
        parts.append(self.url)
        return " ".join(shlex.quote(p) for p in parts)

    def describe(self) -> str:
        body = self.response_body.decode("utf-8", "replace")
        req = self.request_body.decode("utf-8", "replace")
        headers = "\n".join(f"{k}: {v}" for k, v in self.response_headers.items())
        return (f"{self.method} {self.url}\n{req}\n\n--> {self.status} ({self.elapsed_ms:.0f} ms)\n{headers}\n\n{body}\n\n"
                f"# reproduce:\n{self.curl()}\n")

    def brief(self) -> str:
        return f"{self.method} {self.url} -> {self.status}"


def is_datadog_error_body(ex: Exchange) -> bool:
    """Datadog's JSON error envelope ({"errors": [...]}) or an RFC 6749 error object: the service answered."""
    body = ex.json
    return isinstance(body, dict) and (isinstance(body.get("errors"), list) or isinstance(body.get("error"), str))


def endpoint_absent(ex: Exchange, names_a_resource: bool = False) -> bool:
    """A documented path that answered 404 is absent on this target. On a path that names a resource (an id
    in it) a 404 with Datadog's JSON error body ({"errors": [...]}) is the service saying that resource does
    not exist, not a missing endpoint; on a fixed path (a collection, users/me) any 404 is an absent endpoint
    (Datadog, like the emulator, answers unknown paths with {"errors": ["Not found"]})."""
    return ex.status == 404 and not (names_a_resource and is_datadog_error_body(ex))


def absent_error(ex: Exchange) -> EndpointAbsent:
    """The EndpointAbsent for an answer where endpoint_absent(ex) holds (path only: no query, no secrets)."""
    from urllib.parse import urlsplit
    parts = urlsplit(ex.url)
    snippet = " ".join(ex.response_body[:80].decode("utf-8", "replace").split())
    return EndpointAbsent.of(ex.method, f"{parts.scheme}://{parts.netloc}{parts.path}", ex.status,
                             f"body {snippet!r}" if snippet else "empty body")


Listener = Callable[[Exchange], None]

RATE_LIMIT_RETRIES = 3  # 429s retried per request, at most
RATE_LIMIT_BUDGET_S = 60.0  # and no more time than this spent waiting, per request


def retry_wait(ex: Exchange, attempt: int, now: float | None = None) -> float:
    """Seconds to wait before retrying a 429: X-RateLimit-Reset (Datadog: seconds until the
    window resets; an epoch timestamp is understood too), else Retry-After (seconds or an HTTP
    date), else 1, 2, 4... seconds."""
    for name in ("X-RateLimit-Reset", "Retry-After"):
        value = (ex.header(name) or "").strip()
        if not value:
            continue
        try:
            seconds = float(value)
        except ValueError:
            try:
                from email.utils import parsedate_to_datetime
                seconds = parsedate_to_datetime(value).timestamp() - (now if now is not None else time.time())
            except (TypeError, ValueError, IndexError, OverflowError):
                continue
        else:
            if seconds > 1e9:  # an epoch timestamp, not a delay
                seconds -= now if now is not None else time.time()
        if seconds == seconds:  # not NaN
            return max(0.0, seconds)
    return float(2 ** attempt)


@dataclass
class DatadogHTTP:
    """An httpx client that records every exchange and registers secrets it sees with the redactor.

    Datadog's own trouble is never a conformance verdict: a transport error (connect, TLS,
    timeout, dropped connection), a 5xx answer, or a 429 that outlasts the retry budget
    (``max_retries`` retries, ``retry_budget_s`` seconds of waiting, after ``X-RateLimit-Reset``)
    raises :class:`TargetUnavailable` (reported as broken, "Datadog unreachable or 5xx").
    A 5xx is not retried: the request may have been acted on (a code consumed). ``raw=True``
    hands back any answer as it came, for a check that is about 5xx or 429 answers themselves.
    """
    client: httpx.Client
    listeners: list[Listener] = field(default_factory=list)
    count: int = 0
    max_retries: int = RATE_LIMIT_RETRIES
    retry_budget_s: float = RATE_LIMIT_BUDGET_S
    sleep: Callable[[float], None] = time.sleep
    retries: int = 0  # 429 retries over the client's life (run statistics)

    def request(self, method: str, url: str, label: str = "", raw: bool = False, **kwargs) -> Exchange:
        waited = 0.0
        attempt = 0
        while True:
            ex = self._send(method, url, label, **kwargs)
            if raw or (ex.status < 500 and ex.status != 429):
                return ex
            if ex.status >= 500:
                snippet = ex.response_body[:200].decode("utf-8", "replace").strip()
                raise TargetUnavailable(f"{method} {url}: HTTP {ex.status} from the target (a server error is "
                                        f"not a conformance verdict): {snippet}")
            wait = retry_wait(ex, attempt)
            if attempt >= self.max_retries or waited + wait > self.retry_budget_s:
                why = (f"{attempt} retries" if attempt >= self.max_retries
                       else f"the next wait ({wait:.0f} s) would pass the {self.retry_budget_s:.0f} s budget")
                raise TargetUnavailable(f"{method} {url}: rate limited (HTTP 429) after {attempt} retries, "
                                        f"{waited:.1f} s waited; gave up: {why}")
            attempt += 1
            self.retries += 1
            self.sleep(wait)
            waited += wait

    def _send(self, method: str, url: str, label: str, **kwargs) -> Exchange:
        start = time.perf_counter()
        try:
            resp = self.client.request(method, url, **kwargs)
        except httpx.TransportError as exc:  # connect, TLS, timeout, protocol, read/write: Datadog unreachable
            raise TargetUnavailable(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
        self.count += 1
        ex = Exchange(
            method=method, url=str(resp.request.url), request_headers=dict(resp.request.headers),
            request_body=resp.request.content if hasattr(resp.request, "_content") else b"",
            status=resp.status_code, response_headers=dict(resp.headers), response_body=resp.content,
            elapsed_ms=(time.perf_counter() - start) * 1000, label=label,
        )
        _register_secrets(ex)
        for listener in self.listeners:
            listener(ex)
        return ex


def _register_secrets(ex: Exchange) -> None:
    data = ex.json
    if isinstance(data, dict):
        for key, label in _SECRET_JSON_FIELDS.items():
            if isinstance(data.get(key), str):
                REDACTOR.add(data[key], label)
        attrs = (data.get("data") or {}).get("attributes") if isinstance(data.get("data"), dict) else None
        if isinstance(attrs, dict) and isinstance(attrs.get("key"), str):
            REDACTOR.add(attrs["key"], "api_key")
