"""The reference partner integration ("Acme Observability") served on integration.example.com.

It plays the partner's SaaS that a Datadog customer connects through OAuth, exactly as a real
partner would: its own login, an onboarding URL (`/datadog/start`, with the optional `site` and
`domain` Datadog's tile adds), the callback, the token exchange on `api.<domain>`, the marketplace
API key and a first metric sent with that key. Outbound calls go over HTTP to the emulator (real
TLS on a socket, or in-process ASGI in unit tests), so the emulator's request log, rules and
defects apply to them like to any other client.

Partner defects (emulator/behaviour.py DEFECTS, `partner_*`) are read from the store's behaviour
at request time. Nothing here ever shows or logs a secret, token, code or API key value.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from core.sites import Site

from .http import read_body
from .pages import _CSS
from .state import ApiKey

log = logging.getLogger("ddoauth.emulator.partner")

PARTNER_HOST = "integration.example.com"
SESSION_COOKIE = "acme_session"
SESSION_TTL = 12 * 3600
MAX_PENDING = 10  # pending OAuth flows remembered per partner session
OUTBOUND_TIMEOUT = 10.0
US1_API = "https://api.datadoghq.com"
DEFAULT_DATA = {"metric": "acme.integration.installed", "tag": "source:acme-observability"}
NO_KEY_409 = "Datadog already holds an API key for this integration in your organization"
PAGE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff"}


@dataclass
class PartnerSession:
    id: str
    user: str  # partner user email
    created_at: float
    pending: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)  # state -> {verifier, started}


@dataclass
class Installation:
    install_id: str
    partner_user: str
    domain: str
    site: str | None
    org_id: str
    org_name: str | None
    api_key: str  # never shown, never listed
    api_key_id: str | None
    refresh_token: str | None  # never shown, never listed
    installed_at: str
    unfinished: bool = False  # partner_stores_after_deny: recorded from a callback that carried no grant

    def public(self) -> dict:
        return {"install_id": self.install_id, "domain": self.domain, "site": self.site, "org_id": self.org_id,
                "org_name": self.org_name, "partner_user": self.partner_user, "api_key_id": self.api_key_id,
                "installed_at": self.installed_at}


class Failure(Exception):
    """Ends a partner flow with the failure page (or a ready response)."""

    def __init__(self, reason: str, status: int, detail: str = "", response: Response | None = None):
        super().__init__(reason)
        self.reason, self.status, self.detail, self.response = reason, status, detail, response


class DNSLikeTransport(httpx.AsyncBaseTransport):
    """Lets only served hostnames through to `inner`; any other name fails as an unresolvable one would."""

    def __init__(self, inner: httpx.AsyncBaseTransport, hosts: list[str]):
        self.inner = inner
        self.hosts = {h.lower() for h in hosts}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host.lower() not in self.hosts:
            raise httpx.ConnectError(f"[Errno -2] Name or service not known: {request.url.host}", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _safe_next(value: str | None) -> str:
    # only same-site relative paths: the login page is no open redirect
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _hostname(value: str | None) -> str:
    """`https://app.datadoghq.eu` or `app.datadoghq.eu` -> `app.datadoghq.eu` ('' when unusable)."""
    if not value:
        return ""
    value = value.strip()
    parts = urlsplit(value if "://" in value else "https://" + value)
    try:
        return (parts.hostname or "").lower()
    except ValueError:
        return ""


# ---- HTML ------------------------------------------------------------------------------------

_ACME_CSS = _CSS + "header{background:#0b5f6e}button{border-color:#0b5f6e}button.primary{background:#0b5f6e}" \
                   "a.button{display:inline-block;background:#0b5f6e;color:#fff;padding:10px 20px;border-radius:4px;" \
                   "text-decoration:none;margin-top:16px}"


def _layout(title: str, body: str, who: str = "") -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Acme Observability · {escape(title)}</title><meta name=viewport content='width=device-width'>"
        f"<style>{_ACME_CSS}</style></head><body><header><span class=logo>ACME OBSERVABILITY</span>"
        f"<span class=site>{escape(who)}</span></header><main>{body}</main>"
        "<footer>Reference partner integration of the local Datadog emulator · not a real service</footer>"
        "</body></html>"
    )


def _page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=302, headers=PAGE_HEADERS)


def login_html(next_url: str, error: str | None = None, email: str = "") -> str:
    err = f"<div class=error role=alert>{escape(error)}</div>" if error else ""
    return _layout("Sign in", f"""<div class=card><h1>Sign in to Acme Observability</h1>
<p class=sub>Use your Acme Observability account.</p>{err}
<form method=post action=/login><input type=hidden name=next value='{escape(next_url)}'>
<label for=email>Email</label><input id=email name=email type=email autocomplete=username value='{escape(email)}' required>
<label for=password>Password</label><input id=password name=password type=password autocomplete=current-password required>
<div class=actions><button class=primary type=submit>Sign in</button></div></form></div>""")


def failure_html(reason: str, detail: str = "", who: str = "") -> str:
    more = f"<p class=sub>{escape(detail)}</p>" if detail else ""
    return _layout("Could not connect", f"""<div class=card><h1>Could not connect to Datadog</h1>
<p role="alert" class=error>{escape(reason)}</p>{more}
<p class=sub>Start again from Acme Observability or from the Datadog integration tile.</p>
<a href=/>Back to Acme Observability</a></div>""", who)


# ---- the app -------------------------------------------------------------------------------------

class PartnerApp:
    """Acme Observability: partner sessions and installations in memory; the rest read from the store."""

    def __init__(self, store, transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None):
        self.store = store
        # a fresh transport per outbound conversation (closed after it): works on any event loop
        self.transport_factory = transport_factory
        self.sessions: dict[str, PartnerSession] = {}
        self.installations: dict[tuple[str, str, str], Installation] = {}
        # what the partner_static_* defects send on every start: random-looking, but drawn once per app
        self._static_state = secrets.token_urlsafe(24)
        self._static_verifier = secrets.token_urlsafe(48)

    # ---- configuration (seed `partner:` section) ----
    @property
    def config(self) -> dict:
        conf = self.store.seed.get("partner")
        return conf if isinstance(conf, dict) else {}

    @property
    def host(self) -> str:
        return str(self.config.get("host") or PARTNER_HOST).lower()

    @property
    def redirect_uri(self) -> str:
        return f"https://{self.host}/oauth/callback"

    def client(self, site: Site | None = None):
        """The partner's OAuth client, read now (secret rotation and reset are followed)."""
        key = self.config.get("client", "published")
        clients = [c for c in self.store.clients.values() if c.key == key]
        if site is not None:
            clients = [c for c in clients if c.site == site.key] or clients
        return clients[0] if clients else None

    def _check_user(self, email: str, password: str) -> str | None:
        for u in self.config.get("users") or []:
            if not isinstance(u, dict):
                continue
            if str(u.get("email", "")).lower() == email.strip().lower() and hmac.compare_digest(
                    str(u.get("password", "")).encode(), password.encode()):
                return str(u["email"])
        return None

    def reset(self) -> None:
        self.sessions.clear()
        self.installations.clear()

    def listing(self) -> dict:
        return {"installations": [i.public() for i in self.installations.values()], "host": self.host}

    def _defect(self, name: str) -> bool:
        return self.store.behaviour.has(name)

    # ---- sessions ----
    def _session(self, request: Request) -> PartnerSession | None:
        sid = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.get(sid) if sid else None
        if session is not None and self.store.now() - session.created_at > SESSION_TTL:
            self.sessions.pop(session.id, None)
            return None
        return session

    # ---- dispatch ----
    async def __call__(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        if path == "/login":
            if method == "GET":
                return _page(login_html(_safe_next(request.query_params.get("next"))))
            if method == "POST":
                return await self._login(request)
            return PlainTextResponse("Method Not Allowed", 405)
        routes = {"/": self._home, "/datadog/start": self._start, "/oauth/callback": self._callback,
                  "/datadog/connected": self._connected}
        handler = routes.get(path)
        if handler is None:
            return _page(_layout("Not found", "<div class=card><h1>Page not found</h1>"
                                              "<a href=/>Back to Acme Observability</a></div>"), 404)
        if method != "GET":
            return PlainTextResponse("Method Not Allowed", 405)
        session = self._session(request)
        if session is None:
            nxt = path + ("?" + request.url.query if request.url.query else "")
            return _redirect("/login?" + urlencode({"next": nxt}))
        try:
            return await handler(request, session)
        except Failure as failure:
            if failure.response is not None:
                return failure.response
            return _page(failure_html(failure.reason, failure.detail, session.user), failure.status)

    async def _login(self, request: Request) -> Response:
        try:
            form = dict(parse_qsl((await read_body(request)).decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            form = {}
        nxt = _safe_next(form.get("next"))
        email = form.get("email", "")
        user = self._check_user(email, form.get("password", ""))
        if user is None:
            return _page(login_html(nxt, "Wrong email or password", email), 401)
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            self.sessions.pop(old, None)  # a new session id at every login (no fixation)
        session = PartnerSession(secrets.token_urlsafe(32), user, self.store.now())
        self.sessions[session.id] = session
        resp = _redirect(nxt)
        resp.set_cookie(SESSION_COOKIE, session.id, httponly=True, secure=True, samesite="lax", path="/")
        return resp

    async def _home(self, request: Request, session: PartnerSession) -> Response:
        mine = [i for i in self.installations.values() if i.partner_user == session.user]
        items = "".join(f"<li><a href='/datadog/connected?install={escape(i.install_id)}'>{escape(i.org_name or i.org_id)}"
                        f"</a> · {escape(i.domain)}</li>" for i in mine)
        listing = f"<h2>Your Datadog connections</h2><ul>{items}</ul>" if mine else ""
        return _page(_layout("Home", f"""<div class=card><h1>Acme Observability</h1>
<p class=sub>Send your Acme metrics to Datadog.</p>{listing}
<a class=button href=/datadog/start>Connect Datadog</a></div>""", session.user))

    # ---- onboarding URL ----
    def _oauth_site_by_host(self, host: str) -> Site | None:
        return next((s for s in self.store.registry.oauth_sites() if s.web_host == host), None)

    def _oauth_site_by_domain(self, domain: str | None) -> Site | None:
        site = self.store.registry.by_domain((domain or "").strip().lower()) if domain else None
        return site if site is not None and site.oauth else None

    async def _start(self, request: Request, session: PartnerSession) -> Response:
        q = request.query_params
        domain = q.get("domain")
        by_domain = self._oauth_site_by_domain(domain) if domain else None
        if domain and by_domain is None:
            raise Failure(f"Unknown Datadog region: {domain}", 400)
        chosen = self._oauth_site_by_host(_hostname(q.get("site"))) or by_domain or self.store.registry.get("US1")
        client = self.client(chosen)
        if client is None:
            raise Failure("Acme Observability has no Datadog OAuth client configured", 500)
        state = (self._static_state if self._defect("partner_static_state")
                 else secrets.token_hex(8) if self._defect("partner_weak_state") else secrets.token_urlsafe(24))
        pkce = not self._defect("partner_no_pkce")
        verifier = (self._static_verifier if self._defect("partner_static_pkce") else secrets.token_urlsafe(48)) \
            if pkce else None
        if self._defect("partner_stores_after_deny"):
            kept = next((i for i in self.installations.values() if i.partner_user == session.user and i.unfinished
                         and i.domain == chosen.domain), None)
            if kept is not None:  # the defect: the record of a denied flow counts as a connection
                return _redirect("/datadog/connected?" + urlencode({"install": kept.install_id}))
        session.pending[state] = {"verifier": verifier, "started": self.store.now(), "domain": chosen.domain}
        while len(session.pending) > MAX_PENDING:
            session.pending.popitem(last=False)
        params = {"response_type": "code", "client_id": client.id, "redirect_uri": self.redirect_uri, "state": state}
        if pkce:
            params.update(code_challenge=_s256(verifier), code_challenge_method="S256")
        return _redirect(f"{chosen.web_origin}/oauth2/v1/authorize?{urlencode(params)}")

    # ---- callback ----
    def _take_pending(self, session: PartnerSession, state: str | None) -> dict:
        if self._defect("partner_no_state_check"):
            if state in session.pending:
                return session.pending.pop(state)
            if session.pending:
                return session.pending.popitem(last=True)[1]  # the most recent flow, whatever came back
            return {"verifier": None}
        if not state or state not in session.pending:
            raise Failure("state does not match", 400,
                          "This answer does not belong to a connection started here. Start again.")
        return session.pending.pop(state)  # single use

    def _api_base(self, site: Site, callback_site: str | None) -> str:
        if self._defect("partner_ignores_domain"):
            return US1_API
        if self._defect("partner_subdomain_api_host") and _hostname(callback_site):
            return "https://api." + _hostname(callback_site)
        return site.api_origin

    async def _callback(self, request: Request, session: PartnerSession) -> Response:
        q = request.query_params
        state = q.get("state")
        if q.get("error"):
            pending = session.pending.pop(state or "", None)
            if pending is not None and self._defect("partner_stores_after_deny"):
                # the defect: the connection is recorded before Datadog's answer is read
                self._remember(session, pending["domain"], q.get("site"), q.get("dd_oid") or "", None, "", None,
                               None, unfinished=True)
            desc = q.get("error_description") or ""
            raise Failure(f"Datadog did not authorize the connection: {q['error']}", 400, desc[:300])
        pending = self._take_pending(session, state)
        domain = q.get("domain")
        site = self._oauth_site_by_domain(domain)
        if site is None:
            raise Failure(f"Unknown Datadog region: {domain}" if domain else
                          "Datadog's answer does not say which region your organization lives in", 400)
        code, org_id = q.get("code"), q.get("dd_oid")
        if not code:
            raise Failure("Datadog's answer carries no authorization code", 400)
        if not org_id:
            raise Failure("Datadog's answer does not name your organization", 400)
        client = self.client(site)
        if client is None:
            raise Failure("Acme Observability has no Datadog OAuth client configured", 500)
        api = self._api_base(site, q.get("site"))
        transport = self.transport_factory() if self.transport_factory else None
        if transport is None:
            raise Failure("Acme Observability cannot reach the network", 502)
        async with httpx.AsyncClient(transport=transport, timeout=OUTBOUND_TIMEOUT, follow_redirects=False) as http:
            tokens = await self._exchange(http, api, client, code, pending.get("verifier"))
            key_value, key_id = await self._api_key(http, api, tokens["access_token"], domain, org_id)
            inst = self._remember(session, domain, q.get("site"), org_id, q.get("dd_org_name"), key_value, key_id,
                                  tokens.get("refresh_token"))
            await self._send_data(http, api, inst)
        return _redirect("/datadog/connected?" + urlencode({"install": inst.install_id}))

    async def _call(self, http: httpx.AsyncClient, method: str, url: str, **kw) -> httpx.Response:
        try:
            return await http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            host = urlsplit(url).hostname or url
            log.warning("partner: %s %s failed: %s", method, host, exc.__class__.__name__)
            raise Failure(f"could not reach {host}", 502) from None

    @staticmethod
    def _dd_error(resp: httpx.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            return ""
        if isinstance(body, dict):
            if isinstance(body.get("error"), str):
                return body["error"] + (f" - {body['error_description']}"
                                        if isinstance(body.get("error_description"), str) else "")
            errors = body.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], str):
                return errors[0]
        return ""

    async def _exchange(self, http, api: str, client, code: str, verifier: str | None) -> dict:
        form = {"grant_type": "authorization_code", "client_id": client.id, "client_secret": client.secret,
                "redirect_uri": self.redirect_uri, "code": code}
        if verifier and not self._defect("partner_no_pkce"):
            form["code_verifier"] = verifier
        resp = await self._call(http, "POST", f"{api}/oauth2/v1/token", data=form)
        if resp.status_code != 200:
            err = self._dd_error(resp)[:200]
            log.warning("partner: token exchange at %s answered %s", urlsplit(api).hostname, resp.status_code)
            raise Failure(f"Datadog refused the token exchange (HTTP {resp.status_code}"
                          + (f": {err})" if err else ")"), 502)
        try:
            body = resp.json()
            if not isinstance(body.get("access_token"), str) or not body["access_token"]:
                raise ValueError
        except (ValueError, AttributeError):
            raise Failure("Datadog's token answer is unreadable", 502) from None
        return body

    async def _api_key(self, http, api: str, access: str, domain: str, org_id: str) -> tuple[str, str | None]:
        resp = await self._call(http, "POST", f"{api}/api/v2/api_keys/marketplace",
                                headers={"Authorization": f"Bearer {access}"})
        if resp.status_code == 201:
            try:
                data = resp.json()["data"]
                value, key_id = data["attributes"]["key"], data.get("id")
                if not isinstance(value, str) or not value:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise Failure("Datadog's API key answer is unreadable", 502) from None
            return value, key_id
        if resp.status_code == 409:
            if self._defect("partner_crashes_on_409"):
                raise Failure("", 500, response=PlainTextResponse("Internal Server Error", status_code=500,
                                                                  headers=PAGE_HEADERS))
            # documented: one key per org and integration, shown once; a second install reuses ours
            held = next((i for i in self.installations.values() if i.domain == domain and i.org_id == org_id), None)
            if held is None:
                raise Failure(NO_KEY_409, 409, "Delete the key named “OAuth Client API Key” in Datadog "
                                               "(Organization Settings › API Keys) and connect again.")
            if self._defect("partner_extra_key"):
                self._extra_key(domain, org_id)
            return held.api_key, held.api_key_id
        err = self._dd_error(resp)[:200]
        raise Failure(f"Datadog refused to create an API key (HTTP {resp.status_code}"
                      + (f": {err})" if err else ")"), 502)

    def _extra_key(self, domain: str, org_id: str) -> None:
        """partner_extra_key: on a reinstall's 409 the partner makes itself another key under a name of its own
        (what `POST /api/v2/api_keys` with the org's key would do; the emulator does not serve that route, so
        the key is written into its store directly, as Datadog would hold it)."""
        site = self._oauth_site_by_domain(domain)
        client = self.client(site) if site is not None else None
        if site is None or client is None:
            return
        with self.store.lock:
            key = ApiKey(id=str(uuid.uuid4()), site=site.key, org_id=org_id, client_id=client.id,
                         name="Acme Observability (reinstall)", key=secrets.token_hex(16),
                         created_at=_iso(self.store.now()), created_by="acme-observability")
            self.store.api_keys[key.id] = key

    def _remember(self, session: PartnerSession, domain: str, site: str | None, org_id: str, org_name: str | None,
                  key_value: str, key_id: str | None, refresh_token: str | None,
                  unfinished: bool = False) -> Installation:
        ident = (session.user, domain, org_id)
        old = self.installations.get(ident)
        inst = Installation(old.install_id if old else str(uuid.uuid4()), session.user, domain, site, org_id,
                            org_name, key_value, key_id, refresh_token, _iso(self.store.now()), unfinished)
        self.installations[ident] = inst
        return inst

    async def _send_data(self, http, api: str, inst: Installation) -> None:
        if self._defect("partner_sends_no_data"):
            return
        data = {**DEFAULT_DATA, **(self.config.get("data") or {})}  # seed `partner.data`: one contract
        body = {"series": [{"metric": data["metric"], "type": 3,
                            "points": [{"timestamp": int(self.store.now()), "value": 1}],
                            "tags": [data["tag"], f"install:{inst.install_id}"]}]}
        headers = {"DD-API-KEY": inst.api_key}
        if self._defect("partner_wrong_site_key"):
            try:
                await http.post(f"{US1_API}/api/v2/series", json=body, headers=headers)
            except httpx.HTTPError:
                pass
            return
        resp = await self._call(http, "POST", f"{api}/api/v2/series", json=body, headers=headers)
        if not 200 <= resp.status_code < 300:
            log.warning("partner: series at %s answered %s", urlsplit(api).hostname, resp.status_code)
            raise Failure("Datadog refused our data", 502, f"HTTP {resp.status_code}")

    # ---- success page ----
    async def _connected(self, request: Request, session: PartnerSession) -> Response:
        wanted = request.query_params.get("install", "")
        inst = next((i for i in self.installations.values()
                     if i.install_id == wanted and i.partner_user == session.user), None)
        if inst is None:
            raise Failure("No such Datadog connection", 404)
        return _page(_layout("Connected", f"""<div class=card><h1>Connected to Datadog</h1>
<p class=sub>Acme Observability now sends its data to your Datadog organization.</p>
<p>Region: {escape(inst.domain)}</p>
<p>Organization: {escape(inst.org_name or inst.org_id)}</p>
<p>You may now close this tab.</p></div>""", session.user))
