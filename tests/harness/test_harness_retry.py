"""DatadogHTTP and Datadog's own trouble: 5xx and 429 beyond the retry budget raise
TargetUnavailable (never a verdict); 429 is retried after X-RateLimit-Reset; 4xx is an answer."""
from __future__ import annotations

from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from core.errors import TargetUnavailable
from harness.http.exchange import DatadogHTTP, Exchange, retry_wait

URL = "https://api.datadoghq.com/oauth2/v1/token"


class Script:
    """A MockTransport answering the scripted responses in turn (the last one for ever)."""

    def __init__(self, *responses: httpx.Response):
        self.responses = list(responses)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.responses[min(self.calls, len(self.responses)) - 1]


def _http(script: Script, **kwargs) -> tuple[DatadogHTTP, list[float], list[Exchange]]:
    slept: list[float] = []
    seen: list[Exchange] = []
    http = DatadogHTTP(httpx.Client(transport=httpx.MockTransport(script)), listeners=[seen.append],
                       sleep=slept.append, **kwargs)
    return http, slept, seen


def _429(**headers) -> httpx.Response:
    return httpx.Response(429, json={"errors": ["Too many requests"]}, headers=headers)


def test_429_retried_after_ratelimit_reset_then_the_answer():
    script = Script(_429(**{"X-RateLimit-Reset": "2"}), _429(**{"X-RateLimit-Reset": "1"}),
                    httpx.Response(200, json={"ok": True}))
    http, slept, seen = _http(script)
    ex = http.request("POST", URL, content=b"grant_type=x")
    assert ex.status == 200 and slept == [2.0, 1.0] and script.calls == 3
    assert [e.status for e in seen] == [429, 429, 200]  # every attempt is evidence
    assert http.retries == 2 and http.count == 3


def test_429_after_max_retries_is_target_unavailable():
    script = Script(_429(**{"X-RateLimit-Reset": "1"}))
    http, slept, _ = _http(script, max_retries=3)
    with pytest.raises(TargetUnavailable, match=r"rate limited \(HTTP 429\) after 3 retries"):
        http.request("POST", URL)
    assert slept == [1.0, 1.0, 1.0] and script.calls == 4


def test_429_whose_wait_passes_the_budget_gives_up_without_waiting():
    script = Script(_429(**{"X-RateLimit-Reset": "45"}))
    http, slept, _ = _http(script, retry_budget_s=60)
    with pytest.raises(TargetUnavailable, match="would pass the 60 s budget"):
        http.request("POST", URL)
    assert slept == [45.0] and script.calls == 2  # 45 s fits once, 90 s would not


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_target_unavailable_at_once(status):
    script = Script(httpx.Response(status, text="upstream trouble"), httpx.Response(200))
    http, slept, seen = _http(script)
    with pytest.raises(TargetUnavailable) as info:
        http.request("POST", URL)
    assert f"HTTP {status}" in str(info.value) and "upstream trouble" in str(info.value)
    assert script.calls == 1 and slept == []  # never retried: the request may have been acted on
    assert [e.status for e in seen] == [status]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 421])
def test_4xx_is_an_answer_for_the_checks(status):
    http, _, _ = _http(Script(httpx.Response(status, json={"errors": ["Forbidden"]})))
    assert http.request("GET", URL).status == status


def test_raw_hands_back_5xx_and_429_as_they_came():
    http, slept, _ = _http(Script(httpx.Response(503), _429(**{"X-RateLimit-Reset": "1"})))
    assert http.request("GET", URL, raw=True).status == 503
    assert http.request("GET", URL, raw=True).status == 429
    assert slept == []


def _ex(**headers) -> Exchange:
    return Exchange("GET", URL, {}, b"", 429, headers, b"", 1.0)


def test_retry_wait_sources():
    assert retry_wait(_ex(**{"X-RateLimit-Reset": "7"}), 0) == 7.0
    assert retry_wait(_ex(**{"x-ratelimit-reset": "0"}), 0) == 0.0
    assert retry_wait(_ex(**{"X-RateLimit-Reset": "7", "Retry-After": "3"}), 0) == 7.0
    assert retry_wait(_ex(**{"Retry-After": "3"}), 0) == 3.0
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 25 <= retry_wait(_ex(**{"Retry-After": format_datetime(later, usegmt=True)}), 0) <= 31
    assert retry_wait(_ex(**{"X-RateLimit-Reset": "2000000010"}), 0, now=2000000000.0) == 10.0  # an epoch
    assert retry_wait(_ex(**{"X-RateLimit-Reset": "soon"}), 2) == 4.0  # unreadable: back off 1, 2, 4...
    assert retry_wait(_ex(), 0) == 1.0
    assert retry_wait(_ex(**{"X-RateLimit-Reset": "-5"}), 0) == 0.0
