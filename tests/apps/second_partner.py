"""A second partner app, written for the tests apart from the reference app (emulator/partner.py):
"Northwind Telemetry" on its own hostname, with its own paths, labels and pages, over real TLS on
its own socket. It does what Datadog documents a partner integration does:

- `GET /connect/datadog[?site=&domain=]` (the onboarding URL; login first): a fresh random `state`
  (256 bits) and a fresh PKCE verifier (S256) per start, kept server-side in the user's session; the
  authorize request goes to `site`'s web host when it is a Datadog web host, else to `domain`'s, else US1.
- `GET /auth/datadog/return` (the redirect URI): `error` -> "Datadog link failed" page (400), nothing
  kept; a `state` this session did not issue -> refused (400), no token request; then, on `api.<domain>`
  of the callback's `domain`: the code exchange (form: client id + secret, redirect URI, code, verifier),
  `POST /api/v2/api_keys/marketplace` (201: the key, shown once, kept; 409: the key this app already
  holds for that org and region), one metric sent with that key; then `/integrations/datadog/done`.
- Its own login at `/signin` ("Work email", "Passphrase", button "Log me in"); session cookie HttpOnly,
  Secure, SameSite=Lax, a new id per login.

Configuration is what `ddoauth-emulator --partner-host ...` writes to `<state-dir>/partner/partner.env`
(`--env FILE`): DD_CLIENT_ID, DD_CLIENT_SECRET, DD_REDIRECT_URI (must be this app's), DATADOG_ADDRESS +
DATADOG_CA (where Datadog's hosts are served and the CA to trust for them), PARTNER_TLS_CERT/KEY (this
app's certificate for its hostname). Run it:

    .venv/bin/python tests/apps/second_partner.py --env .ddoauth/emulator/partner/partner.env --port 9443

No page or log line shows a secret, code, token or API key.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import logging
import os
import secrets
import ssl
import sys
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

HOST = "app.second-partner.test"
ORIGIN = f"https://{HOST}"
ONBOARDING_PATH = "/connect/datadog"
CALLBACK_PATH = "/auth/datadog/return"
SUCCESS_PATH = "/integrations/datadog/done"
LOGIN_PATH = "/signin"
COOKIE = "nw_sid"
METRIC = "northwind.datadog.linked"
METRIC_TAG = "source:second-partner"
# local demo credentials of this test app, never real ones
USERS = {"ops@northwind.test": "northwind-demo-passphrase-7"}
# Datadog regions this app accepts in `domain` (OAuth regions) -> the web host its authorize page is on
REGIONS = {"datadoghq.com": "app.datadoghq.com", "us3.datadoghq.com": "us3.datadoghq.com",
           "us5.datadoghq.com": "us5.datadoghq.com", "datadoghq.eu": "app.datadoghq.eu",
           "ap1.datadoghq.com": "ap1.datadoghq.com"}
DATADOG_SUFFIXES = (".datadoghq.com", ".datadoghq.eu", ".ddog-gov.com")
PENDING_TTL = 600
MAX_PENDING = 5
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
           "X-Frame-Options": "DENY"}

log = logging.getLogger("second_partner")


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


class DatadogTransport(httpx.AsyncBaseTransport):
    """Datadog's hosts to DATADOG_ADDRESS over TLS checked for the real hostname against DATADOG_CA (SNI kept);
    any other name fails as an unresolvable one would. Without an address: the real network."""

    def __init__(self, address: str | None, ca: str | None):
        ip, _, port = (address or "").rpartition(":")
        self.target = (ip, int(port)) if address else None
        self.context = ssl.create_default_context()
        if ca:
            self.context.load_verify_locations(cafile=ca)
        self.pool = httpx.AsyncHTTPTransport(verify=self.context)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if self.target is None:
            return await self.pool.handle_async_request(request)
        if not host.endswith(DATADOG_SUFFIXES):
            raise httpx.ConnectError(f"Name or service not known: {host}", request=request)
        mapped = httpx.Request(request.method, request.url.copy_with(host=self.target[0], port=self.target[1]),
                               headers=request.headers, stream=request.stream,
                               extensions={**request.extensions, "sni_hostname": host})
        return await self.pool.handle_async_request(mapped)

    async def aclose(self) -> None:
        await self.pool.aclose()


@dataclass
class Session:
    id: str
    user: str
    pending: OrderedDict[str, tuple[str, float]] = field(default_factory=OrderedDict)  # state -> (verifier, t)


@dataclass
class Link:
    id: str
    user: str
    domain: str
    org_id: str
    org_name: str
    api_key: str  # never shown
    linked_at: float


class Problem(Exception):
    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason, self.status = reason, status


# ---- pages -----------------------------------------------------------------------------------------

def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Northwind Telemetry - {escape(title)}"
            "</title><style>body{font-family:sans-serif;margin:0}nav{background:#2d3a8c;color:#fff;padding:12px 24px}"
            "section{max-width:480px;margin:40px auto}label{display:block;margin-top:12px}"
            "input{display:block;width:100%;padding:6px}button{margin-top:16px;padding:8px 18px}</style></head>"
            f"<body><nav>Northwind Telemetry</nav><section>{body}</section></body></html>")
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def signin_page(next_url: str, error: str = "") -> str:
    err = f"<p class=problem>{escape(error)}</p>" if error else ""
    return (f"<h2>Northwind sign-in</h2>{err}<form method=post action={LOGIN_PATH}>"
            f"<input type=hidden name=next value='{escape(next_url)}'>"
            "<label for=who>Work email</label><input id=who name=who type=email autocomplete=username>"
            "<label for=phrase>Passphrase</label><input id=phrase name=phrase type=password "
            "autocomplete=current-password><button type=submit>Log me in</button></form>")


def failed_page(reason: str, status: int) -> HTMLResponse:
    return page("Datadog link failed", f"<h2>Datadog link failed</h2><p>{escape(reason)}</p>"
                                       "<p><a href=/>Back to Northwind</a></p>", status)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=HEADERS)


def safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


# ---- the app -------------------------------------------------------------------------------------------

class SecondPartner:
    def __init__(self, client_id: str, client_secret: str, datadog_address: str | None, datadog_ca: str | None):
        self.client_id = client_id
        self.client_secret = client_secret
        self.transport = lambda: DatadogTransport(datadog_address, datadog_ca)
        self.sessions: dict[str, Session] = {}
        self.links: dict[tuple[str, str, str], Link] = {}  # (user, domain, org id)

    @property
    def redirect_uri(self) -> str:
        return ORIGIN + CALLBACK_PATH

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        if path == LOGIN_PATH:
            if request.method == "POST":
                return await self.signin(request)
            return page("Sign in", signin_page(safe_next(request.query_params.get("next"))))
        routes = {"/": self.home, ONBOARDING_PATH: self.connect, CALLBACK_PATH: self.callback, SUCCESS_PATH: self.done}
        handler = routes.get(path)
        if handler is None or request.method != "GET":
            return page("Not found", "<h2>Nothing here</h2>", 404)
        session = self.sessions.get(request.cookies.get(COOKIE, ""))
        if session is None:
            nxt = path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"{LOGIN_PATH}?{urlencode({'next': nxt})}")
        try:
            return await handler(request, session)
        except Problem as problem:
            return failed_page(problem.reason, problem.status)

    async def signin(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        nxt = safe_next(form.get("next"))
        who = form.get("who", "").strip().lower()
        expected = USERS.get(who)
        if expected is None or not hmac.compare_digest(expected.encode(), form.get("phrase", "").encode()):
            return page("Sign in", signin_page(nxt, "That email and passphrase do not match."), 401)
        self.sessions.pop(request.cookies.get(COOKIE, ""), None)
        session = Session(secrets.token_urlsafe(32), who)
        self.sessions[session.id] = session
        response = redirect(nxt)
        response.set_cookie(COOKIE, session.id, httponly=True, secure=True, samesite="lax", path="/")
        return response

    async def home(self, request: Request, session: Session) -> Response:
        return page("Home", f"<h2>Hello {escape(session.user)}</h2><a href={ONBOARDING_PATH}>Link Datadog</a>")

    # ---- onboarding URL ----
    @staticmethod
    def authorize_host(site: str | None, domain: str | None) -> str:
        if site:
            host = (urlsplit(site if "://" in site else "https://" + site).hostname or "").lower()
            if host in REGIONS.values():
                return host
        if domain:
            if domain.strip().lower() not in REGIONS:
                raise Problem(f"Northwind does not know the Datadog region {domain!r}")
            return REGIONS[domain.strip().lower()]
        return REGIONS["datadoghq.com"]  # started here: Datadog's US1 page lets the user pick the region

    async def connect(self, request: Request, session: Session) -> Response:
        q = request.query_params
        host = self.authorize_host(q.get("site"), q.get("domain"))
        state = secrets.token_urlsafe(32)  # fresh and unguessable per start (RFC 6749 §10.12)
        verifier = secrets.token_urlsafe(64)  # fresh per start (RFC 7636 §4.1)
        now = time.time()
        for old, (_, started) in list(session.pending.items()):
            if now - started > PENDING_TTL:
                del session.pending[old]
        session.pending[state] = (verifier, now)
        while len(session.pending) > MAX_PENDING:
            session.pending.popitem(last=False)
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                           "state": state, "code_challenge": s256(verifier), "code_challenge_method": "S256"})
        return redirect(f"https://{host}/oauth2/v1/authorize?{query}")

    # ---- redirect URI ----
    async def callback(self, request: Request, session: Session) -> Response:
        q = request.query_params
        state = q.get("state") or ""
        if q.get("error"):
            session.pending.pop(state, None)
            raise Problem(f"Datadog answered {q['error']}: nothing was linked.")
        pending = session.pending.get(state)
        if pending is None or time.time() - pending[1] > PENDING_TTL:
            raise Problem("This answer does not belong to a link started here (state mismatch).")
        domain = (q.get("domain") or "").lower()
        if domain not in REGIONS:
            raise Problem("Datadog's answer names no region Northwind knows.")
        code, org_id = q.get("code"), q.get("dd_oid")
        if not code or not org_id:
            raise Problem("Datadog's answer lacks the code or the organization.")
        del session.pending[state]  # single use
        api = f"https://api.{domain}"
        async with httpx.AsyncClient(transport=self.transport(), timeout=10.0, follow_redirects=False) as http:
            access = await self.exchange(http, api, code, pending[0])
            key = await self.api_key(http, api, access, session.user, domain, org_id)
            link = Link(str(uuid.uuid4()), session.user, domain, org_id, q.get("dd_org_name") or org_id, key,
                        time.time())
            self.links[(session.user, domain, org_id)] = link
            await self.send_metric(http, api, link)
        return redirect(f"{SUCCESS_PATH}?{urlencode({'link': link.id})}")

    async def post(self, http: httpx.AsyncClient, url: str, **kw) -> httpx.Response:
        try:
            return await http.post(url, **kw)
        except httpx.HTTPError as exc:
            log.warning("second partner: POST %s failed (%s)", urlsplit(url).hostname, exc.__class__.__name__)
            raise Problem(f"Northwind could not reach {urlsplit(url).hostname}.", 502) from None

    async def exchange(self, http, api: str, code: str, verifier: str) -> str:
        resp = await self.post(http, f"{api}/oauth2/v1/token", data={
            "grant_type": "authorization_code", "client_id": self.client_id, "client_secret": self.client_secret,
            "redirect_uri": self.redirect_uri, "code": code, "code_verifier": verifier})
        if resp.status_code != 200:
            log.warning("second partner: token exchange at %s answered %s", urlsplit(api).hostname, resp.status_code)
            raise Problem(f"Datadog refused the code exchange (HTTP {resp.status_code}).", 502)
        access = (resp.json() or {}).get("access_token")
        if not isinstance(access, str) or not access:
            raise Problem("Datadog's token answer has no access token.", 502)
        return access

    async def api_key(self, http, api: str, access: str, user: str, domain: str, org_id: str) -> str:
        resp = await self.post(http, f"{api}/api/v2/api_keys/marketplace", headers={"Authorization": f"Bearer {access}"})
        if resp.status_code == 201:
            return resp.json()["data"]["attributes"]["key"]
        if resp.status_code == 409:  # one key per org, shown once: the one this app holds for that org
            held = next((link for (u, d, o), link in self.links.items() if d == domain and o == org_id), None)
            if held is not None:
                return held.api_key
            raise Problem("Datadog already holds a Northwind key for this organization: delete it and link again.",
                          409)
        raise Problem(f"Datadog refused the API key (HTTP {resp.status_code}).", 502)

    async def send_metric(self, http, api: str, link: Link) -> None:
        body = {"series": [{"metric": METRIC, "type": 3, "points": [{"timestamp": int(time.time()), "value": 1}],
                            "tags": [METRIC_TAG, f"link:{link.id}"]}]}
        resp = await self.post(http, f"{api}/api/v2/series", json=body, headers={"DD-API-KEY": link.api_key})
        if not 200 <= resp.status_code < 300:
            raise Problem(f"Datadog refused Northwind's first metric (HTTP {resp.status_code}).", 502)

    async def done(self, request: Request, session: Session) -> Response:
        link = next((v for v in self.links.values()
                     if v.id == request.query_params.get("link") and v.user == session.user), None)
        if link is None:
            raise Problem("No such link.", 404)
        return page("Linked", f"<h2>Datadog is linked</h2><p>Northwind now reports to {escape(link.org_name)} "
                              f"({escape(link.domain)}).</p>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="partner.env written by ddoauth-emulator --partner-host")
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--listen", default="127.0.0.1")
    args = parser.parse_args(argv)
    env = {**read_env(Path(args.env)), **{k: v for k, v in os.environ.items() if k.startswith(("DD_", "DATADOG_"))}}
    missing = [k for k in ("DD_CLIENT_ID", "DD_CLIENT_SECRET", "PARTNER_TLS_CERT", "PARTNER_TLS_KEY") if not env.get(k)]
    if missing:
        print(f"second_partner: {args.env} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    if env.get("DD_REDIRECT_URI") and env["DD_REDIRECT_URI"] != ORIGIN + CALLBACK_PATH:
        print(f"second_partner: the emulator registered {env['DD_REDIRECT_URI']}, this app's redirect URI is "
              f"{ORIGIN + CALLBACK_PATH}", file=sys.stderr)
        return 2
    app = SecondPartner(env["DD_CLIENT_ID"], env["DD_CLIENT_SECRET"], env.get("DATADOG_ADDRESS"), env.get("DATADOG_CA"))
    config = uvicorn.Config(app, host=args.listen, port=args.port, ssl_certfile=env["PARTNER_TLS_CERT"],
                            ssl_keyfile=env["PARTNER_TLS_KEY"], log_level="warning", access_log=False,
                            lifespan="off")
    print(f"Northwind Telemetry on {ORIGIN} (listening on {args.listen}:{args.port})", flush=True)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
