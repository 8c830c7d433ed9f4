"""Bad input anywhere gets a Datadog-shaped 4xx: never a 500, never a traceback.

A fuzz-ish list of bad requests is thrown at every route the emulator serves (web, API, logs intake,
every catalogue endpoint, the control API), with credentials good enough to get past authentication
so the bodies are really parsed.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from emukit import Emu, Page, Pkce, auth_params
from emulator.app import API_ROUTES, LOGS_ROUTES, WEB_ROUTES
from emulator.http import MAX_BODY
from core.scopes import load_catalogue

CATALOGUE = load_catalogue()
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Route:
    role: str
    host: str
    path: str
    methods: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.role}:{'/'.join(self.methods)}:{self.path}"


def _routes() -> list[Route]:
    out = [Route("web", "app.datadoghq.eu", p, tuple(m)) for p, m in WEB_ROUTES.items()]
    out += [Route("api", "api.datadoghq.eu", p, tuple(m)) for p, m in API_ROUTES.items()]
    out += [Route("logs", "http-intake.logs.datadoghq.eu", p, tuple(m)) for p, m in LOGS_ROUTES.items()]
    by_path: dict[str, list[str]] = {}
    for e in CATALOGUE.endpoints.values():
        by_path.setdefault(e.build_path(id="x") if e.path_params else e.path, []).append(e.method)
    out += [Route("api", "api.datadoghq.eu", p, tuple(m)) for p, m in sorted(by_path.items())]
    control = {"state": ("GET",), "reset": ("POST",), "clock": ("POST",), "behaviour": ("GET", "POST"),
               "defects": ("GET", "POST"), "rules": ("GET", "POST", "DELETE"), "requests": ("GET",),
               "codes": ("POST",), "clients/x/rotate-secret": ("POST",), "grants/revoke": ("POST",),
               "api-keys/x": ("DELETE",), "tokens/expire": ("POST",), "partner": ("GET",)}
    out += [Route("control", "api.datadoghq.eu", "/_emulator/" + p, m) for p, m in control.items()]
    # the reference partner app (integration mode) shares the emulator's server
    partner = {"/": ("GET",), "/login": ("GET", "POST"), "/datadog/start": ("GET",), "/oauth/callback": ("GET",),
               "/datadog/connected": ("GET",)}
    out += [Route("partner", "integration.example.com", p, m) for p, m in partner.items()]
    return out


ROUTES = _routes()


def _assert_sane(resp, what):
    assert resp.status_code < 500, f"{what}: {resp.status_code} {resp.text[:300]}"
    body = resp.content
    assert b"Traceback" not in body and b'File "' not in body, what
    if body:
        ctype = resp.headers.get("content-type", "")
        if "html" in ctype:
            assert body.lstrip().lower().startswith(b"<!doctype html"), what
        else:
            assert "json" in ctype, f"{what}: content-type {ctype!r}"
            json.loads(body)


def _creds(emu: Emu) -> dict[str, str]:
    """A bearer with every scope the catalogue knows, a valid API key, and a logged-in web session."""
    client = emu.client("EU1")
    client.scopes[:] = sorted(set(client.scopes) | set(CATALOGUE.scopes))
    access, _ = emu.mint("EU1", scopes=client.scopes)
    key = emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=emu.bearer(access)).json()
    br = emu.browser()
    br.login("EU1")
    return {"Authorization": f"Bearer {access}", "DD-API-KEY": key["data"]["attributes"]["key"],
            "Cookie": f"dogweb={br.http.cookies.get('dogweb')}"}


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BAD_BODIES = {
    "malformed json": (b'{"a": ', JSON),
    "json array": (b"[1, 2, 3]", JSON),
    "json string": (b'"text"', JSON),
    "json number": (b"5", JSON),
    "json null": (b"null", JSON),
    "json NaN": (b'{"advance": NaN, "series": [{"metric": "m", "points": [{"timestamp": 1, "value": NaN}]}]}', JSON),
    "json huge float": (b'{"advance": 1e400, "limit": 1e400}', JSON),
    "json huge int": (b'{"advance": 1' + b"0" * 400 + b"}", JSON),
    "json deep nesting": (b"[" * 100_000, JSON),
    "json deep object": (b'{"a":' * 50_000, JSON),
    "json wrong types": (json.dumps({"client_id": 5, "client_secret": ["x"], "grant_type": {"a": 1}, "code": None,
                                     "token": True, "series": {"x": 1}, "message": 7, "site": 3, "count": "many",
                                     "match": [], "action": 5, "enable": {"x": 1}, "advance": [], "user_id": {},
                                     "title": None, "data": "x", "name": 5}).encode(), JSON),
    "non-utf8 json": (b'{"a": "\xff\xfe"}', JSON),
    "non-utf8 form": (b"a=\xff\xfe&b=\xc3", FORM),
    "repeated form params": (b"grant_type=authorization_code&grant_type=refresh_token&token=a&token=b&"
                             b"username=a&username=b&code=1&code=2", FORM),
    "broken percent encoding": (b"a=%zz&b=%&c=%%%&=&&&", FORM),
    "many form fields": (b"&".join(b"f%d=%d" % (i, i) for i in range(20_000)), FORM),
    "garbage content type": (b"\x00\x01\x02", {"Content-Type": "application/x-\u00e9-garbage".encode("latin-1")}),
    "json content type with params": (b'{"a": 1}', {"Content-Type": "application/json; charset=latin-1; x=y"}),
    "no content type": (b"grant_type=x", {}),
}
BAD_QUERIES = ["a=%zz", "client_id=1&client_id=2&redirect_uri=x&redirect_uri=y", "%", "&&&=&", "from=abc&to=-1",
               "from=1e400&to=nan&query=avg:x{", "filter[query]=%00", "dd-api-key=&dd-api-key=x",
               "next=%0d%0aSet-Cookie:x=y", "q=" + "x" * 8000, "_site=ZZ&response_type=code&code_challenge=" + "a" * 200]


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_bad_bodies_never_500(route):
    emu = Emu()
    try:
        headers = _creds(emu)
        for method in route.methods:
            for name, (body, extra) in BAD_BODIES.items():
                resp = emu.request(method, f"https://{route.host}{route.path}", content=body,
                                   headers={**headers, **extra})
                _assert_sane(resp, f"{method} {route.path} [{name}]")
    finally:
        emu.close()


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_bad_queries_never_500(route):
    emu = Emu()
    try:
        headers = _creds(emu)
        for method in route.methods:
            for query in BAD_QUERIES:
                resp = emu.request(method, f"https://{route.host}{route.path}?{query}", headers=headers)
                _assert_sane(resp, f"{method} {route.path}?{query[:40]}")
    finally:
        emu.close()


@pytest.mark.parametrize("route", [r for r in ROUTES if r.role != "control"],
                         ids=[r.id for r in ROUTES if r.role != "control"])
def test_wrong_methods_are_405(route):
    emu = Emu()
    try:
        for method in METHODS + ("OPTIONS",):
            if method in route.methods or CATALOGUE.endpoint_for(method, route.path):
                continue  # (DELETE /api/v1/monitor/search is delete-monitor with id "search")
            resp = emu.request(method, f"https://{route.host}{route.path}")
            assert resp.status_code == 405, (method, route.path, resp.status_code)
            if route.role != "partner":  # the partner app is not Datadog: no Datadog error envelope
                assert resp.json() == {"errors": ["Method Not Allowed"]}
    finally:
        emu.close()


@pytest.mark.parametrize("route", [r for r in ROUTES if "POST" in r.methods], ids=[r.id for r in ROUTES
                                                                                    if "POST" in r.methods])
def test_huge_body_is_413(route):
    emu = Emu()
    try:
        headers = _creds(emu)
        huge = b'{"a": "' + b"x" * (MAX_BODY + 10) + b'"}'
        resp = emu.post(f"https://{route.host}{route.path}", content=huge, headers={**headers, **JSON})
        _assert_sane(resp, route.path)
        # routes that read a body refuse it; the rest fail earlier on auth or answer without reading it
        if route.path in ("/oauth2/v1/token", "/api/v2/oauth2/token", "/oauth2/v1/revoke", "/api/v2/series",
                          "/api/v1/check_run", "/api/v2/logs", "/v1/input", "/account/login",
                          "/account/login/mfa", "/oauth2/v1/authorize", "/_emulator/clock", "/_emulator/rules",
                          "/_emulator/codes", "/_emulator/behaviour"):
            assert resp.status_code == 413, (route.path, resp.status_code)
            if route.role != "web":
                assert resp.json() == {"errors": ["Request entity too large"]}

        async def chunks():
            for _ in range(MAX_BODY // 65536 + 2):
                yield b"x" * 65536

        resp = emu.post(f"https://{route.host}{route.path}", content=chunks(), headers={**headers, **JSON})
        _assert_sane(resp, route.path + " (chunked)")
    finally:
        emu.close()


def test_body_just_under_the_limit_is_read(emu):
    pad = "x" * (MAX_BODY - 200)
    c = emu.client("EU1")
    resp = emu.post(emu.token_url("EU1"), data={"grant_type": "x", "client_id": c.id, "client_secret": c.secret,
                                                "pad": pad})
    assert resp.status_code == 400 and resp.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v3/dashboard", "/api/v1/dashboard/x/y",
                                  "/oauth2/v1/authorize/x", "/%00", "/..%2F..%2Fetc%2Fpasswd", "//api/v1/dashboard",
                                  "/api/v1/dashboard/", "/_emulator", "/\u00e9"])
@pytest.mark.parametrize("host", ["app.datadoghq.eu", "api.datadoghq.eu", "http-intake.logs.datadoghq.eu",
                                  "event-management-intake.datadoghq.eu"])
def test_unknown_paths_are_404(emu, host, path):
    resp = emu.get(f"https://{host}{path}")
    assert resp.status_code == 404, resp.text
    assert resp.json() == {"errors": ["Not found"]}


@pytest.mark.parametrize("host", ["api.bigcorp.datadoghq.eu", "example.com", "datadoghq.com", "127.0.0.1",
                                  "app.datadoghq.com.evil.example", "API.DATADOGHQ.EU.", ""])
def test_unknown_host_is_421(emu, host):
    resp = emu.get("https://api.datadoghq.eu/api/v1/validate", headers={"Host": host})
    assert resp.status_code == 421
    assert resp.json()["errors"][0].startswith("Misdirected request")


def test_host_header_is_case_insensitive_and_may_carry_a_port(emu):
    assert emu.get("https://api.datadoghq.eu/api/v1/validate", headers={"Host": "API.DataDogHQ.eu:443"}).status_code == 403


def test_no_host_header_at_all(emu):
    async def call():
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)
        scope = {"type": "http", "method": "GET", "path": "/api/v1/validate", "raw_path": b"/api/v1/validate",
                 "query_string": b"", "headers": [], "scheme": "https", "http_version": "1.1"}
        await emu.app(scope, receive, send)
        return sent
    sent = emu.run(call())
    assert sent[0]["status"] == 421


def test_lifespan_and_websocket_scopes(emu):
    async def lifespan():
        events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
        sent = []

        async def receive():
            return next(events)

        async def send(message):
            sent.append(message["type"])
        await emu.app({"type": "lifespan"}, receive, send)
        return sent
    assert emu.run(lifespan()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    async def websocket():
        async def receive():
            return {"type": "websocket.connect"}

        async def send(message):
            raise AssertionError("no answer expected")
        await emu.app({"type": "websocket", "path": "/", "headers": []}, receive, send)
    emu.run(websocket())


# ---- writes that would poison later reads ---------------------------------------------------------

def test_odd_metric_payloads_never_break_the_query(emu):
    headers = _creds(emu)
    now = int(time.time())
    for body in ({"series": [{"metric": "m", "tags": 5, "points": [{"timestamp": now, "value": 1}]}]},
                 {"series": [{"metric": "m", "tags": [1, None], "points": [{"timestamp": now, "value": 1}]}]},
                 {"series": [{"metric": "m", "points": [{"timestamp": now, "value": "nan"}]}]},
                 {"series": [{"metric": "m", "points": [{"timestamp": "inf", "value": 1}]}]},
                 {"series": [{"metric": "m", "points": [{"timestamp": now, "value": 10 ** 30}]}]}):
        resp = emu.post(emu.api("EU1", "/api/v2/series"), json=body, headers=headers)
        _assert_sane(resp, json.dumps(body)[:80])
    resp = emu.post(emu.api("EU1", "/api/v2/series"), headers={**headers, **JSON},
                    content=b'{"series": [{"metric": "m", "points": [{"timestamp": 1, "value": Infinity}]}]}')
    assert resp.status_code == 400
    q = emu.get(emu.api("EU1", "/api/v1/query"), headers=headers,
                params={"from": 0, "to": now + 10, "query": "avg:m{*}"})
    _assert_sane(q, "query")
    assert q.status_code == 200


def test_odd_log_payloads_never_break_the_search(emu):
    headers = _creds(emu)
    url = "https://http-intake.logs.datadoghq.eu/api/v2/logs"
    for body in ([{"message": "a", "ddtags": 5}], [{"message": "b", "ddtags": ["x"]}], [{"message": "c", "service": 5}],
                 [{"message": "d", "ddtags": None}], [{"message": "e", "service": None}], [None], [[]]):
        _assert_sane(emu.post(url, json=body, headers=headers), json.dumps(body))
    for params in ({}, {"filter[query]": "a"}, {"filter[query]": "x"}):
        resp = emu.get(emu.api("EU1", "/api/v2/logs/events"), headers=headers, params=params)
        _assert_sane(resp, str(params))
        assert resp.status_code == 200


def test_odd_collection_bodies_never_break_listing(emu):
    headers = _creds(emu)
    for path in ("/api/v1/dashboard", "/api/v2/team", "/api/v2/incidents", "/api/v1/slo"):
        for body in ({"data": "x"}, {"data": {"attributes": 5}}, {"data": {"attributes": [1]}}, {"id": {"x": 1}},
                     {"deep": [[[[{"a": None}]]]]}):
            _assert_sane(emu.post(emu.api("EU1", path), json=body, headers=headers), path)
        resp = emu.get(emu.api("EU1", path), headers=headers)
        _assert_sane(resp, path)
        assert resp.status_code == 200


def test_odd_authorize_forms_never_500(emu):
    flow_browser = emu.browser()
    c = emu.client("EU1")
    p = auth_params(c, pkce=Pkce.new())
    page = flow_browser.follow(flow_browser.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=p))
    assert page.status_code in (200, 302, 303)
    flow_browser.login("EU1")
    consent = flow_browser.get("https://app.datadoghq.eu/oauth2/v1/authorize", params=p)
    fields = Page(consent.text).forms[0].fields
    for change in ({"decision": "maybe"}, {"decision": ""}, {"org_id": ""}, {"client_id": ""},
                   {"redirect_uri": ""}, {"code_challenge": ""}, {"response_type": ""}, {"state": "\x00"},
                   {"scope": "\u00e9"}):
        resp = flow_browser.post("https://app.datadoghq.eu/oauth2/v1/authorize", {**fields, **change})
        _assert_sane(resp, str(change))
