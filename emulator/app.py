"""The emulator's ASGI application: one app for every host of every site, routed by Host header."""
from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from types import SimpleNamespace
from urllib.parse import unquote

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from core.errors import ConfigError
from core.scopes import load_catalogue

from . import api, control, oauth, web
from .behaviour import ABSENT_ENDPOINTS
from .http import BodyParseError, Ctx, HTTPFailure, dd_errors, parse_params, read_body
from .partner import DNSLikeTransport, PartnerApp
from .rules import RuleSet
from .state import Store

log = logging.getLogger("ddoauth.emulator")

CONTROL_PREFIX = "/_emulator/"
DEFAULT_RATE_LIMIT = {"limit": 6000, "period": 60}

WEB_ROUTES = {
    "/": {"GET": web.home},
    "/account/login": {"GET": web.login_get, "POST": web.login_post},
    "/account/login/mfa": {"GET": web.mfa_get, "POST": web.mfa_post},
    "/account/logout": {"GET": web.logout},
    "/oauth2/v1/authorize": {"GET": web.authorize_get, "POST": web.authorize_post},
}
# behaviour face=second: the login on /signin (the classic /account/login paths are 404 there)
SECOND_FACE_WEB_ROUTES = {
    "/": {"GET": web.home},
    "/signin": {"GET": web.login_get, "POST": web.login_post},
    "/signin/verify": {"GET": web.mfa_get, "POST": web.mfa_post},
    "/account/logout": {"GET": web.logout},
    "/oauth2/v1/authorize": {"GET": web.authorize_get, "POST": web.authorize_post},
}
API_ROUTES = {
    "/oauth2/v1/token": {"POST": oauth.token},
    "/api/v2/oauth2/token": {"POST": oauth.token},  # alias seen in Datadog's newer native clients
    "/oauth2/v1/revoke": {"POST": oauth.revoke},
    "/api/v1/validate": {"GET": api.validate},
    "/api/v2/series": {"POST": api.series_v2},
    "/api/v1/check_run": {"POST": api.check_run},
    "/api/v2/logs/events": {"GET": api.logs_events},
    "/api/v2/oauth2/.well-known/sites": {"GET": api.well_known_sites},
}
LOGS_ROUTES = {
    "/api/v2/logs": {"POST": api.logs_intake},
    "/v1/input": {"POST": api.logs_intake},
}
TOKEN_PATHS = ("/oauth2/v1/token", "/api/v2/oauth2/token")
RATE_BUCKETS = {"/oauth2/v1/token": "oauth_token", "/api/v2/oauth2/token": "oauth_token",
                "/oauth2/v1/revoke": "oauth_revoke"}


class EmulatorApp:
    def __init__(self, store: Store, control_api: bool = True):
        self.store = store
        self.control_api = control_api
        self.state = SimpleNamespace(rules=RuleSet())
        self._windows: dict[tuple, list] = {}  # (site, bucket) -> [window index, count]
        self._endpoints: dict[tuple, tuple | None] = {}  # (method, path) -> catalogue match (hot path cache)
        load_catalogue()  # fail at start, not on the first request
        # The reference partner app (integration.example.com). In process its outbound HTTP comes straight
        # back here over ASGI; emulator.server.start swaps in real TLS to the emulator's own socket.
        served = store.registry.all_hosts()
        self.partner = PartnerApp(store, lambda: DNSLikeTransport(httpx.ASGITransport(app=self), served))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        scope["app"] = self
        request = Request(scope, receive)
        host = (request.headers.get("host") or "").split(":")[0].lower()
        path = scope["path"]
        response = await self._handle(request, host, path, send)
        if response is None:  # connection dropped on purpose
            return
        # ts: the emulator's clock (tests move it); wall: real time, for "what happened since" questions
        entry = {"ts": self.store.now(), "wall": time.time(), "host": host, "method": request.method, "path": path,
                 "status": response.status_code}
        if _logs_client(self.store.registry.by_host(host), host, path):
            entry["client_id"] = _client_id_of(request)  # which client called which host (token, revoke)
            entry["user_agent"] = (request.headers.get("user-agent") or "")[:200]  # whose software called
            entry["code_org_id"] = _code_org_of(self.store, request)  # whose install a code exchange was for
        self.store.request_log.append(entry)
        await response(scope, receive, send)

    async def _handle(self, request: Request, host: str, path: str, send) -> Response | None:
        if path.startswith(CONTROL_PREFIX):
            if not self.control_api:
                return dd_errors(404, "Not found")
            site = self.store.registry.by_host(host) or next(iter(self.store.registry))
            return await self._guarded(request, host, path, control.dispatch(
                Ctx(request, self.store, site, "control"), path[len(CONTROL_PREFIX):]))
        site = self.store.registry.by_host(host)
        partner = site is None and host == self.partner.host
        if site is None and not partner:
            return dd_errors(421, f"Misdirected request: {host or '(no host)'} is not a Datadog host")
        if _logs_client(site, host, path):
            # keep the (bounded) body on the request: the handler reads it from there, the request log too
            try:
                request._body = await read_body(request)
            except HTTPFailure as failure:
                return failure.response
            except ClientDisconnect:
                return None
        rule = self.state.rules.first_match(host, request.method, path)
        if rule is not None:
            if rule.delay_ms:
                await asyncio.sleep(rule.delay_ms / 1000)
            if rule.drop:
                # Start an answer that never finishes: the client sees the connection cut mid-response.
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": b'{"partial"', "more_body": True})
                return None
            if rule.status is not None:
                body = rule.body if rule.body is not None else {"errors": ["Injected by emulator rule"]}
                resp = JSONResponse(body, status_code=int(rule.status), headers=rule.headers)
                return resp
        if partner:
            return await self._guarded(request, host, path, self.partner(request))
        role = self._role(site, host)
        ctx = Ctx(request, self.store, site, role)
        rate = self._rate(site, path) if role == "api" else None
        if rate is not None and rate[0]:
            return self._apply(dd_errors(429, "Too many requests"), rate[1])
        resp = await self._guarded(request, host, path, self._route(ctx, path))
        return self._apply(resp, rate[1]) if rate is not None else resp

    @staticmethod
    async def _guarded(request: Request, host: str, path: str, handler) -> Response:
        try:
            return await handler
        except HTTPFailure as failure:
            return failure.response
        except ConfigError as exc:
            return dd_errors(400, str(exc))
        except Exception:  # never a traceback on the wire; the log keeps it
            log.exception("emulator handler failed for %s %s%s", request.method, host, path)
            return dd_errors(500, "Internal Server Error")

    @staticmethod
    def _role(site, host: str) -> str:
        if host == site.web_host:
            return "web"
        if host == site.api_host:
            return "api"
        if host == site.logs_intake_host:
            return "logs"
        return "events"

    async def _route(self, ctx: Ctx, path: str) -> Response:
        method = ctx.request.method
        web_routes = SECOND_FACE_WEB_ROUTES if ctx.store.behaviour.face == "second" else WEB_ROUTES
        table = {"web": web_routes, "api": API_ROUTES, "logs": LOGS_ROUTES}.get(ctx.role, {})
        if path in table:
            handler = table[path].get(method)
            if handler is None and method == "GET" and path in TOKEN_PATHS \
                    and ctx.store.behaviour.has("token_get_accepted"):
                handler = oauth.token  # the defect: a GET token request, its parameters read from the query
            if handler is None:
                return dd_errors(405, "Method Not Allowed")
            return await handler(ctx)
        if ctx.role == "api":
            match = self._endpoint(method, path)
            if match is not None:
                endpoint, params = match
                if endpoint.id in ABSENT_ENDPOINTS and ctx.store.behaviour.absent_endpoints == "some":
                    return dd_errors(404, "Not found")  # as any path this target does not serve
                return await api.collection_endpoint(ctx, endpoint, dict(params))
            if any(self._served(ctx, m, path) for m in ("GET", "POST", "DELETE", "PUT", "PATCH") if m != method):
                return dd_errors(405, "Method Not Allowed")
        return dd_errors(404, "Not found")

    def _served(self, ctx: Ctx, method: str, path: str) -> bool:
        match = self._endpoint(method, path)
        if match is None:
            return False
        return not (match[0].id in ABSENT_ENDPOINTS and ctx.store.behaviour.absent_endpoints == "some")

    # ---- rate limits -------------------------------------------------------------------------
    def _endpoint(self, method: str, path: str):
        """The catalogue's endpoint for (method, path), memoised: matching walks every route's regex."""
        key = (method, path)
        try:
            return self._endpoints[key]
        except KeyError:
            pass
        match = load_catalogue().endpoint_for(method, path)
        if len(self._endpoints) >= 4096:  # paths carry ids: keep the memo bounded
            self._endpoints.clear()
        self._endpoints[key] = match
        return match

    def _bucket(self, path: str) -> str:
        if path in RATE_BUCKETS:
            return RATE_BUCKETS[path]
        match = self._endpoint("GET", path) or self._endpoint("POST", path)
        return match[0].id if match else "api"

    def _rate(self, site, path: str) -> tuple[bool, dict]:
        """Count this request in its calendar-aligned window; (over the limit?, headers)."""
        store = self.store
        bucket = self._bucket(path)
        conf = store.behaviour.rate_limits.get(bucket) or store.behaviour.rate_limits.get("*") or DEFAULT_RATE_LIMIT
        limit, period = int(conf["limit"]), int(conf["period"])
        now = store.now()
        window = math.floor(now / period)
        key = (site.key, bucket)
        state = self._windows.get(key)
        if state is None or state[0] != window:
            state = self._windows[key] = [window, 0]
        state[1] += 1
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Period": str(period),
                   "X-RateLimit-Remaining": str(max(0, limit - state[1])),
                   "X-RateLimit-Reset": str(max(1, int(period - (now % period)))), "X-RateLimit-Name": bucket}
        if store.behaviour.has("rate_limit_headers_missing"):
            headers = {}
        return state[1] > limit, headers

    @staticmethod
    def _apply(resp: Response, headers: dict) -> Response:
        # handlers never set X-RateLimit-*: append to the raw list instead of MutableHeaders' scan-and-replace
        resp.raw_headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
        return resp


def _logs_client(site, host: str, path: str) -> bool:
    return site is not None and host == site.api_host and path in RATE_BUCKETS


def _body_param(request: Request, name: str) -> str | None:
    """One parameter of a request's form or JSON body (already read by the handler), or None."""
    body = getattr(request, "_body", None)
    if not body:
        return None
    try:
        value = parse_params(request.headers.get("content-type", ""), body).get(name)
    except BodyParseError:
        return None
    return value if isinstance(value, str) and value else None


def _code_org_of(store, request: Request) -> str | None:
    """The org an authorization code presented to the token endpoint was issued for (None: no such code)."""
    code = _body_param(request, "code")
    issued = store.codes.get(code) if code else None
    return issued.org_id if issued is not None else None


def _client_id_of(request: Request) -> str | None:
    """The client_id of a token or revoke request: HTTP Basic first, else the form or JSON body."""
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            return unquote(base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")[0]) or None
        except (ValueError, UnicodeDecodeError):
            pass
    return _body_param(request, "client_id")
