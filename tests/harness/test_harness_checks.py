"""harness/checks.py: every registered check can pass and can fail; verify() applies severities."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager

import pytest
from checkcases import assert_cases_cover, assert_fails_one_line, assert_holds, case_params

from harness.checks import registry as checks
from harness.checks.registry import CHARACTERIZE, DD_DOCS, MUST, REGISTRY, SHOULD, Recorder, requirement_link, verify
from harness.browser.consent import FlowResult, PageVisit
from core.errors import ConformanceFailure
from harness.http.exchange import Exchange

CALLBACK = "https://integration.example.com/oauth/callback"


def ex(status: int = 200, body=None, headers: dict | None = None, raw: bytes | None = None) -> Exchange:
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return Exchange(method="POST", url="https://api.datadoghq.com/oauth2/v1/token",
                    request_headers={"Accept": "application/json"}, request_body=b"grant_type=x",
                    status=status, response_headers=headers or {}, response_body=content, elapsed_ms=3.0)


def case(*args, **kwargs):
    return args, kwargs


TOKEN = {"access_token": "at-123456", "token_type": "bearer", "refresh_token": "rt-123456",
         "expires_in": 3600, "scope": "metrics_read dashboards_read"}
RATE = {"x-ratelimit-limit": "100", "x-ratelimit-period": "60", "x-ratelimit-remaining": "99",
        "x-ratelimit-reset": "10"}

CASES: dict[str, dict[str, list]] = {
    "flow_reached_callback": {
        "pass": [case(FlowResult(callback_url=f"{CALLBACK}?code=c1&state=s",
                                 callback_pairs=[("code", "c1"), ("state", "s")]))],
        "fail": [case(FlowResult(error_text="invalid_client: unknown client",
                                 pages=[PageVisit("login", "u1"), PageVisit("error", "u2")])),
                 case(FlowResult(final_url="https://app.datadoghq.com/account/login")),
                 case(FlowResult(callback_url=f"{CALLBACK}?error=access_denied",
                                 callback_pairs=[("error", "access_denied")]))],
    },
    "state_echoed": {
        "pass": [case({"state": "a b&c=d"}, "a b&c=d")],
        "fail": [case({}, "s"), case({"state": "a+b"}, "a b"), case({"state": "S"}, "s")],
    },
    "callback_domain": {
        "pass": [case({"domain": "datadoghq.eu"}, "datadoghq.eu")],
        "fail": [case({}, "datadoghq.eu"), case({"domain": "datadoghq.com"}, "datadoghq.eu")],
    },
    "callback_org_params": {
        "pass": [case({"site": "https://app.datadoghq.eu", "dd_oid": "o1", "dd_org_name": "Acme"})],
        "fail": [case({"site": "x"}), case({"site": "", "dd_oid": "o", "dd_org_name": "n"})],
    },
    "no_token_in_callback": {
        "pass": [case({"code": "c", "state": "s", "domain": "datadoghq.com"})],
        "fail": [case({"code": "c", "access_token": "t"}), case({"token": "t"})],
    },
    "callback_no_duplicates": {
        "pass": [case([("code", "c"), ("state", "s")]), case([])],
        "fail": [case([("code", "a"), ("state", "s"), ("code", "b")])],
    },
    "consent_scopes_exact": {
        "pass": [case(["b", "a"], ("a", "b"))],
        "fail": [case(None, ("a",)), case(["a"], ("a", "b")), case(["a", "b", "c"], ("a", "b")), case([], ("a",))],
    },
    "redirect_not_307": {
        "pass": [case(302), case(303), case(None)],
        "fail": [case(307)],
    },
    "consent_not_frameable": {
        "pass": [case({"x-frame-options": "deny"}), case({"x-frame-options": "SAMEORIGIN"}),
                 case({"content-security-policy": "default-src 'self'; frame-ancestors 'none'"})],
        "fail": [case(None), case({}), case({"x-frame-options": "ALLOWALL"}),
                 case({"content-security-policy": "default-src 'self'"})],
    },
    "consent_no_store": {
        "pass": [case({"cache-control": "no-cache, no-store, must-revalidate"})],
        "fail": [case(None), case({}), case({"cache-control": "private, max-age=0"})],
    },
    "token_ok": {
        "pass": [case(ex(200, TOKEN, {"Content-Type": "application/json"}))],
        "fail": [case(ex(400, {"error": "invalid_grant"})),
                 case(ex(200, raw=b"<html>login</html>", headers={"Content-Type": "text/html"})),
                 case(ex(200, ["not", "an", "object"])), case(ex(500, raw=b""))],
    },
    "token_fields": {
        "pass": [case(TOKEN), case({**TOKEN, "token_type": "Bearer"})],
        "fail": [case({}), case({**TOKEN, "token_type": "mac"}), case({**TOKEN, "access_token": ""}),
                 case({k: v for k, v in TOKEN.items() if k != "refresh_token"}), case({**TOKEN, "access_token": 5})],
    },
    "token_expires_in": {
        "pass": [case({"expires_in": 3600}), case({"expires_in": 3599})],
        "fail": [case({}), case({"expires_in": "3600"}), case({"expires_in": True}), case({"expires_in": 3600.0}),
                 case({"expires_in": 7200}), case({"expires_in": 60})],
    },
    "token_no_store": {
        "pass": [case(ex(headers={"Cache-Control": "no-store"})), case(ex(headers={"cache-control": "no-store, private"}))],
        "fail": [case(ex(headers={})), case(ex(headers={"Cache-Control": "max-age=60"}))],
    },
    "token_scope": {
        "pass": [case({"scope": "b a"}, ("a", "b"))],
        "fail": [case({}, ("a",)), case({"scope": "a"}, ("a", "b")), case({"scope": "a b c"}, ("a", "b")),
                 case({"scope": ""}, ("a",))],
    },
    "oauth_error": {
        "pass": [case(ex(400, {"error": "invalid_grant", "error_description": "code expired"}), 400, ("invalid_grant",)),
                 case(ex(401, {"errors": ["invalid_client - bad secret"]}), (400, 401), ("invalid_client",),
                      text="BAD SECRET"),
                 case(ex(400, raw=b"unsupported_grant_type"), 400, ("unsupported_grant_type",)),
                 case(ex(404, {"errors": [{"detail": "nope"}]}), 404)],
        "fail": [case(ex(200, TOKEN), 400, ("invalid_grant",)),
                 case(ex(400, {"error": "invalid_request"}), 400, ("invalid_grant", "invalid_client")),
                 case(ex(400, {"error": "invalid_grant"}), 400, ("invalid_grant",), text="expired"),
                 case(ex(401, {"error": "invalid_client"}), (400,))],
    },
    "api_forbidden": {
        "pass": [case(ex(403, {"errors": ["Forbidden"]})), case(ex(401, {"errors": ["Unauthorized"]}))],
        "fail": [case(ex(200, {"data": []})), case(ex(401, {"errors": ["Unauthorized"]}), allow_401=False),
                 case(ex(403, raw=b"<html>Forbidden</html>")), case(ex(403, {"error": "Forbidden"}))],
    },
    "api_success": {
        "pass": [case(ex(200, {"data": []}), json_key="data"), case(ex(204)), case(ex(202, {"status": "ok"}), 202),
                 case(ex(200, [{"id": 1}]), json_key="data")],
        "fail": [case(ex(403, {"errors": ["Forbidden"]})), case(ex(200, {"x": 1}), 201),
                 case(ex(200, raw=b"<html>"), json_key="data"), case(ex(200, {"x": 1}), json_key="data")],
    },
    "rate_limit_headers": {
        "pass": [case(ex(headers=RATE)), case(ex(headers={k.upper(): v for k, v in RATE.items()}))],
        "fail": [case(ex(headers={})),
                 case(ex(headers={k: v for k, v in RATE.items() if k != "x-ratelimit-reset"}))],
    },
}


def test_every_registered_check_has_cases():
    assert_cases_cover(CASES, "harness.checks.registry")


@pytest.mark.parametrize("name,args,kwargs", case_params(CASES, "pass"))
def test_check_passes(name, args, kwargs):
    assert_holds(name, args, kwargs)


@pytest.mark.parametrize("name,args,kwargs", case_params(CASES, "fail"))
def test_check_fails_with_one_line(name, args, kwargs):
    assert_fails_one_line(name, args, kwargs)


def test_failure_messages_are_informative():
    flow = FlowResult(error_text="invalid_client", pages=[PageVisit("login", "u1"), PageVisit("error", "u2")])
    message = checks.flow_reached_callback(flow)
    assert "error page: invalid_client" in message and "login -> error" in message
    assert "stopped at https://x/" in checks.flow_reached_callback(FlowResult(final_url="https://x/"))
    assert checks.callback_org_params({"site": "x"}) == "missing dd_oid, dd_org_name"
    assert checks.consent_scopes_exact(["a", "c"], ("a", "b")) == "extra ['c'], missing ['b']"
    assert checks.callback_no_duplicates([("code", "a"), ("code", "b")]) == "repeated: code"
    assert "expected 'datadoghq.eu'" in checks.callback_domain({"domain": "datadoghq.com"}, "datadoghq.eu")
    # the state message tells lengths, never the state values themselves
    assert checks.state_echoed({"state": "abc"}, "abcd") == "state altered: sent 4 chars, got 3 chars"


def test_registry_metadata():
    for name, c in REGISTRY.items():
        assert c.name == name
        assert c.severity in (MUST, SHOULD, CHARACTERIZE)
        assert re.fullmatch(r"RFC\d+-[\d.]+|DD-[A-Z-]+", c.requirement), c.requirement
        assert c.link.startswith("https://")
        assert c.title


# ---- requirement links ----------------------------------------------------------------------------

@pytest.mark.parametrize("req,url", [
    ("RFC6749-4.1.2", "https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2"),
    ("RFC9700-2.1.2", "https://www.rfc-editor.org/rfc/rfc9700#section-2.1.2"),
    ("RFC7636", "https://www.rfc-editor.org/rfc/rfc7636"),
    ("DD-OAUTH-REDIRECT-DOMAIN", DD_DOCS["DD-OAUTH"]),
    ("DD-ENDPOINTS-TTL", DD_DOCS["DD-ENDPOINTS"]),
    ("DD-TROUBLESHOOT-FORBIDDEN", DD_DOCS["DD-TROUBLESHOOT"]),
    ("DD-SCOPES-DATAFLOW", DD_DOCS["DD-SCOPES"]),
    ("DD-RATELIMIT", DD_DOCS["DD-RATELIMIT"]),
    ("DD-VALIDATE", DD_DOCS["DD-VALIDATE"]),
    ("DD-SOMETHING-NEW", DD_DOCS["DD-ENDPOINTS"]),
])
def test_requirement_link(req, url):
    assert requirement_link(req) == url


# ---- verify() and severities ------------------------------------------------------------------------

class FakeRecorder(Recorder):
    def __init__(self):
        self.steps, self.links, self.warnings, self.observed = [], [], [], []

    @contextmanager
    def step(self, title):
        self.steps.append(title)
        yield

    def link(self, url, name):
        self.links.append((url, name))

    def warning(self, text):
        self.warnings.append(text)

    def observe(self, key, value):
        self.observed.append((key, value))


def test_verify_pass_returns_none_and_records_step_and_link():
    rec = FakeRecorder()
    assert verify(rec, "state_echoed", {"state": "s"}, "s") is None
    assert rec.steps == ["[RFC6749-4.1.2] state is echoed byte for byte on the callback"]
    assert rec.links == [("https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2", "RFC6749-4.1.2")]
    assert rec.warnings == [] and rec.observed == []


def test_verify_must_raises_conformance_failure_with_requirement():
    rec = FakeRecorder()
    with pytest.raises(ConformanceFailure) as info:
        verify(rec, "callback_domain", {"domain": "datadoghq.com"}, "datadoghq.eu")
    assert isinstance(info.value, AssertionError)
    message = str(info.value)
    assert message.startswith("[DD-OAUTH-REDIRECT-DOMAIN] the callback carries the site's domain: ")
    assert "'datadoghq.com'" in message
    assert rec.warnings == [] and rec.observed == []


def test_verify_should_warns():
    rec = FakeRecorder()
    assert REGISTRY["callback_org_params"].severity == SHOULD
    failure = verify(rec, "callback_org_params", {})
    assert failure == "missing site, dd_oid, dd_org_name"
    assert len(rec.warnings) == 1 and rec.warnings[0].startswith("[DD-OAUTH-REDIRECT-PARAMS] ")
    assert failure in rec.warnings[0]
    assert rec.observed == []


def test_verify_characterize_observes():
    rec = FakeRecorder()
    failure = verify(rec, "token_expires_in", {"expires_in": 7200}, severity=CHARACTERIZE)
    assert failure == "expires_in is 7200"
    assert rec.observed == [("DD-ENDPOINTS-TTL", "expires_in is 7200")]
    assert rec.warnings == []


def test_verify_severity_override():
    with pytest.raises(ConformanceFailure, match=r"\[RFC9700-4.12\]"):
        verify(FakeRecorder(), "redirect_not_307", 307, severity=MUST)
    rec = FakeRecorder()
    assert verify(rec, "token_no_store", ex(headers={}), severity=SHOULD) == "Cache-Control is ''"
    assert rec.warnings == ["[RFC6749-5.1] token response is Cache-Control: no-store: Cache-Control is ''"]


def test_verify_with_the_default_recorder():
    assert verify(Recorder(), "redirect_not_307", 302) is None
    assert verify(Recorder(), "redirect_not_307", 307) is not None  # SHOULD: no exception
    with pytest.raises(ConformanceFailure):
        verify(Recorder(), "token_fields", {})
