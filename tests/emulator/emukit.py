"""Drive the emulator in-process over httpx's ASGI transport (no sockets, no TLS).

`Emu` is a synchronous facade over one `EmulatorApp(build_store())` and a private event loop;
`Browser` keeps cookies like a browser and walks the HTML pages with plain HTTP; `authorize()`
performs the whole browser side of the OAuth dance (login, MFA, pickers, consent) and returns the
callback. Every request uses the real Datadog hostnames: the emulator routes by Host header.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pyotp

from emulator.app import EmulatorApp
from emulator.state import Grant, Store, build_store
from core.sites import Site

ANTI_FRAMING = {"x-frame-options": "DENY", "content-security-policy": "frame-ancestors 'none'"}


# ---- HTML ----------------------------------------------------------------------------------

@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden and text inputs
    buttons: list[tuple[str | None, str | None, str]] = field(default_factory=list)  # (name, value, text)

    def button(self, text: str) -> tuple[str | None, str | None, str]:
        for b in self.buttons:
            if b[2].strip() == text:
                return b
        raise AssertionError(f"no button {text!r} in {self.buttons}")


class Page(HTMLParser):
    """The parts of an emulator page a test looks at: forms, scope list, alerts, headings, labels."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.scopes: list[tuple[str, str]] = []
        self.alerts: list[str] = []
        self.h1 = ""
        self.title = ""
        self.labels: list[str] = []
        self._stack: list[str] = []
        self._form: Form | None = None
        self._button: list | None = None
        self._in_scopes = False
        self._li: list[str] | None = None
        self._capture: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "button":
            self._button = [a.get("name"), a.get("value"), ""]
        elif tag == "ul" and "scopes" in a.get("class", "").split():
            self._in_scopes = True
        elif tag == "li" and self._in_scopes:
            self._li = ["", ""]
        elif tag == "code" and self._li is not None:
            self._capture = "code"
        elif tag == "span" and self._li is not None:
            self._capture = "span"
        elif tag == "div" and a.get("role") == "alert":
            self._capture = "alert"
            self.alerts.append("")
        elif tag in ("h1", "title", "label"):
            self._capture = tag
            if tag == "label":
                self.labels.append("")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "button" and self._button is not None:
            if self._form is not None:
                self._form.buttons.append(tuple(self._button))
            self._button = None
        elif tag == "ul" and self._in_scopes:
            self._in_scopes = False
        elif tag == "li" and self._li is not None:
            self.scopes.append((self._li[0], self._li[1]))
            self._li = None
        elif tag in ("code", "span", "div", "h1", "title", "label"):
            self._capture = None

    def handle_data(self, data):
        if self._button is not None:
            self._button[2] += data
        if self._capture == "code":
            self._li[0] += data
        elif self._capture == "span":
            self._li[1] += data
        elif self._capture == "alert":
            self.alerts[-1] += data
        elif self._capture == "h1":
            self.h1 += data
        elif self._capture == "title":
            self.title += data
        elif self._capture == "label":
            self.labels[-1] += data

    @property
    def text(self) -> str:
        return " ".join(self.alerts)


# ---- PKCE ----------------------------------------------------------------------------------

def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class Pkce:
    verifier: str
    challenge: str
    method: str = "S256"

    @classmethod
    def new(cls, length: int = 64) -> "Pkce":
        verifier = (secrets.token_urlsafe(length) + "a" * length)[:length]
        return cls(verifier, s256(verifier))


# ---- the emulator ----------------------------------------------------------------------------

class Emu:
    """One emulator (store + ASGI app) and a private event loop; every call is synchronous."""

    def __init__(self, store: Store | None = None, control_api: bool = True):
        self.store = store or build_store()
        self.app = EmulatorApp(self.store, control_api=control_api)
        self.loop = asyncio.new_event_loop()
        self.http = self.new_client()

    def new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), follow_redirects=False, timeout=30)

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def request(self, method: str, url: str, *, client: httpx.AsyncClient | None = None, **kw) -> httpx.Response:
        return self.run((client or self.http).request(method, url, **kw))

    def get(self, url: str, **kw) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw) -> httpx.Response:
        return self.request("POST", url, **kw)

    def delete(self, url: str, **kw) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def gather(self, *calls: tuple[str, str, dict]) -> list[httpx.Response]:
        """Fire requests concurrently on the loop: calls are (method, url, kwargs)."""
        async def all_of():
            return await asyncio.gather(*(self.http.request(m, u, **kw) for m, u, kw in calls))
        return self.run(all_of())

    def close(self) -> None:
        self.run(self.http.aclose())
        self.loop.close()

    # ---- control API ----
    def control(self, method: str, path: str, json=None, host: str = "api.datadoghq.com") -> httpx.Response:
        kw = {} if json is None else {"json": json}
        return self.request(method, f"https://{host}/_emulator/{path}", **kw)

    def behaviour(self, **switches) -> None:
        r = self.control("POST", "behaviour", switches)
        assert r.status_code == 200, r.text

    def defects(self, *names: str) -> None:
        r = self.control("POST", "defects", {"enable": list(names)})
        assert r.status_code == 200, r.text

    def advance(self, seconds: float) -> None:
        r = self.control("POST", "clock", {"advance": seconds})
        assert r.status_code == 200, r.text

    # ---- seeded things ----
    def site(self, key: str) -> Site:
        return self.store.registry.get(key)

    def client(self, site: str, key: str = "test"):
        return next(c for c in self.store.clients.values() if c.site == site and c.key == key)

    def user(self, site: str, key: str = "developer"):
        return next(u for u in self.store.users.values() if u.site == site and u.key == key)

    def org(self, site: str, key: str = "sandbox"):
        return next(o for o in self.store.orgs.values() if o.site == site and o.key == key)

    def browser(self) -> "Browser":
        return Browser(self)

    # ---- shortcuts around OAuth ----
    def token_url(self, site: str = "EU1", alias: bool = False) -> str:
        s = self.site(site)
        return f"https://{s.api_host}" + ("/api/v2/oauth2/token" if alias else "/oauth2/v1/token")

    def api(self, site: str, path: str) -> str:
        return f"https://{self.site(site).api_host}{path}"

    def mint(self, site: str = "EU1", scopes=None, client: str = "test", user: str = "developer",
             org: str = "sandbox") -> tuple[str, str]:
        """A grant straight into the store (for API tests that are not about the OAuth dance)."""
        c = self.client(site, client)
        grant = Grant(str(uuid.uuid4()), site, c.id, self.user(site, user).id, self.org(site, org).id,
                      list(c.scopes if scopes is None else scopes))
        self.store.grants[grant.id] = grant
        access, refresh = self.store.issue_tokens(grant)
        return access.token, refresh.token

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


class Browser:
    """A cookie-keeping user agent speaking plain HTTP to the web hosts."""

    def __init__(self, emu: Emu):
        self.emu = emu
        self.http = emu.new_client()
        self.last_url = ""

    def get(self, url: str, **kw) -> httpx.Response:
        self.last_url = url
        return self.emu.request("GET", url, client=self.http, **kw)

    def post(self, url: str, data: dict, **kw) -> httpx.Response:
        self.last_url = url
        return self.emu.request("POST", url, client=self.http, data=data, **kw)

    def follow(self, resp: httpx.Response) -> httpx.Response:
        """Follow same-site redirects (relative Location) like a browser would, stopping at the client."""
        while resp.status_code in (301, 302, 303, 307) and "location" in resp.headers:
            target = urljoin(str(resp.request.url), resp.headers["location"])
            host = urlsplit(target).hostname or ""
            if self.emu.store.registry.by_host(host) is None:
                return resp  # off to the partner's redirect URI: the test inspects it
            resp = self.get(target)
        return resp

    def submit(self, page_url: str, form: Form, button: str | None = None, **overrides) -> httpx.Response:
        data = dict(form.fields)
        if button is not None:
            name, value, _ = form.button(button)
            if name:
                data[name] = value or ""
        data.update(overrides)
        target = urljoin(page_url, form.action or page_url)
        if form.method == "get":
            return self.get(target, params=data)
        return self.post(target, data)

    def login(self, site: str, user: str = "developer", next_path: str = "/") -> httpx.Response:
        s = self.emu.site(site)
        u = self.emu.user(site, user)
        r = self.post(f"https://{s.web_host}/account/login",
                      {"username": u.email, "password": u.password, "next": next_path})
        if r.status_code == 303 and r.headers["location"].startswith("/account/login/mfa"):
            r = self.post(f"https://{s.web_host}/account/login/mfa",
                          {"otp": pyotp.TOTP(u.totp_secret).now(), "next": next_path})
        return r


@dataclass
class Flow:
    client: object
    site: Site
    pkce: Pkce | None
    redirect_uri: str
    params: dict
    pages: list = field(default_factory=list)  # (url, Page) for every HTML page on the way
    response: httpx.Response | None = None     # the last answer (302 to the client on success)
    browser: Browser | None = None

    @property
    def location(self) -> str:
        return self.response.headers.get("location", "")

    @property
    def callback(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.location).query, keep_blank_values=True))

    @property
    def code(self) -> str:
        return self.callback["code"]

    @property
    def consent(self) -> Page:
        return next(p for _, p in reversed(self.pages) if p.h1.startswith("Authorize"))

    def token_body(self, **overrides) -> dict:
        body = {"grant_type": "authorization_code", "client_id": self.client.id, "client_secret": self.client.secret,
                "redirect_uri": self.redirect_uri, "code": self.code}
        if self.pkce is not None:
            body["code_verifier"] = self.pkce.verifier
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}


def auth_params(client, redirect_uri: str | None = None, pkce: Pkce | None = None, state: str | None = "st-123",
                **extra) -> dict:
    p = {"client_id": client.id, "redirect_uri": redirect_uri or client.redirect_uris[0], "response_type": "code"}
    if pkce is not None:
        p["code_challenge"], p["code_challenge_method"] = pkce.challenge, pkce.method
    if state is not None:
        p["state"] = state
    p.update(extra)
    return {k: v for k, v in p.items() if v is not None}


def authorize(emu: Emu, site: str = "EU1", client: str = "test", user: str = "developer", org: str | None = None,
              decision: str = "Authorize", browser: Browser | None = None, pkce: Pkce | None = "new",
              redirect_uri: str | None = None, state: str | None = "st-123", stop_at: str | None = None,
              **extra) -> Flow:
    """Walk authorize -> (site picker) -> login (+MFA) -> (org picker) -> consent -> decision.

    stop_at="consent" returns before clicking; otherwise flow.response is the final answer (normally the
    302 to the client's redirect URI). Any unexpected page ends the walk with flow.response set to it.
    """
    c = emu.client(site, client)
    s = emu.site(site)
    if pkce == "new":
        pkce = Pkce.new()
    params = auth_params(c, redirect_uri, pkce, state, **extra)
    br = browser or emu.browser()
    flow = Flow(c, s, pkce, params["redirect_uri"], params, browser=br)
    url = f"https://{s.web_host}/oauth2/v1/authorize"
    r = br.get(url, params=params)
    for _ in range(8):
        loc = r.headers.get("location", "")
        if r.status_code in (302, 303) and loc.startswith("/account/login"):
            here_site = emu.store.registry.by_host(r.request.url.host).key
            r = br.login(here_site, user, dict(parse_qsl(urlsplit(loc).query)).get("next", "/"))
            r = br.follow(r)
            continue
        if r.status_code != 200 or "text/html" not in r.headers.get("content-type", ""):
            break
        page = Page(r.text)
        here = str(r.request.url)
        flow.pages.append((here, page))
        if page.h1 == "Select an organization":
            wanted = emu.org(site, org or "sandbox")
            form = page.forms[0]
            r = br.submit(here, form, org_id=wanted.id)
            continue
        if page.h1.startswith("Authorize"):
            if stop_at == "consent":
                break
            r = br.submit(here, page.forms[0], decision)
            break
        break
    flow.response = r
    return flow


def redeem(emu: Emu, flow: Flow, json: bool = False, alias: bool = False, **overrides) -> httpx.Response:
    body = flow.token_body(**overrides)
    url = emu.token_url(flow.site.key, alias)
    return emu.post(url, json=body) if json else emu.post(url, data=body)


def tokens(emu: Emu, site: str = "EU1", **kw) -> dict:
    """The full dance and the code exchange: the token response JSON (asserting success)."""
    flow = authorize(emu, site=site, **kw)
    assert flow.response.status_code == 302, flow.response.text[:500]
    r = redeem(emu, flow)
    assert r.status_code == 200, r.text
    return r.json()


def refresh(emu: Emu, site: str, client, refresh_token: str, **extra) -> httpx.Response:
    body = {"grant_type": "refresh_token", "client_id": client.id, "client_secret": client.secret,
            "refresh_token": refresh_token, **extra}
    return emu.post(emu.token_url(site), data={k: v for k, v in body.items() if v is not None})


def revoke(emu: Emu, site: str, client, token: str | None, secret: str | None = "same", **extra) -> httpx.Response:
    body = {"client_id": client.id, "client_secret": client.secret if secret == "same" else secret, "token": token,
            **extra}
    return emu.post(f"https://{emu.site(site).api_host}/oauth2/v1/revoke",
                    data={k: v for k, v in body.items() if v is not None})
