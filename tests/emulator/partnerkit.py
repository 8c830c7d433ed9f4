"""Drive the reference partner app (integration.example.com) like a user with a browser would:
partner login, the onboarding URL, Datadog's pickers, login and consent, back to the partner's
callback and its connected (or failure) page.

`Agent` is any cookie-keeping HTTP user agent with get/post: `AsgiAgent` talks to an in-process
`emukit.Emu`, `SyncAgent` wraps an `httpx.Client` (real sockets, TLS). `walk()` follows redirects
across every host (Datadog's and the partner's) and answers the pages it knows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
import pyotp

from emukit import Emu, Page

PARTNER = "https://integration.example.com"
PARTNER_USER = ("demo@acme.example", "acme-partner-password-5")


class PartnerPage(Page):
    """emukit's Page, plus `<p role=alert>` alerts, links and the page's visible text."""

    def __init__(self, html: str):
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._link: list | None = None
        self.body_text = ""
        super().__init__(html)

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "p" and a.get("role") == "alert":
            self._capture = "alert"
            self.alerts.append("")
            return
        if tag == "a":
            self._link = [a.get("href", ""), ""]
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "p" and self._capture == "alert":
            self._capture = None
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], self._link[1].strip()))
            self._link = None
        super().handle_endtag(tag)

    def handle_data(self, data):
        if self._link is not None:
            self._link[1] += data
        if self.lasttag not in ("style", "script"):
            self.body_text += data
        super().handle_data(data)


class Agent:
    """A user agent: cookies, get, post. Subclasses say how requests travel."""

    store = None

    def get(self, url: str, **kw) -> httpx.Response:
        raise NotImplementedError

    def post(self, url: str, data: dict, **kw) -> httpx.Response:
        raise NotImplementedError


class AsgiAgent(Agent):
    def __init__(self, emu: Emu):
        self.emu, self.store = emu, emu.store
        self.http = emu.new_client()

    def get(self, url, **kw):
        return self.emu.request("GET", url, client=self.http, **kw)

    def post(self, url, data, **kw):
        return self.emu.request("POST", url, client=self.http, data=data, **kw)


class SyncAgent(Agent):
    def __init__(self, client: httpx.Client, store):
        self.http, self.store = client, store

    def get(self, url, **kw):
        return self.http.get(url, **kw)

    def post(self, url, data, **kw):
        return self.http.post(url, data=data, **kw)


@dataclass
class Trail:
    """What a walk saw: every URL requested, every page, and the last answer."""
    urls: list[str] = field(default_factory=list)
    pages: list[tuple[str, PartnerPage]] = field(default_factory=list)
    response: httpx.Response | None = None

    @property
    def page(self) -> PartnerPage:
        return PartnerPage(self.response.text)

    @property
    def authorize_urls(self) -> list[str]:
        return [u for u in self.urls if urlsplit(u).path == "/oauth2/v1/authorize"]

    @property
    def flows_started(self) -> int:
        """How many distinct authorization requests (states) the partner sent the browser to: 1 unless it loops."""
        return len({query(u).get("state") for u in self.authorize_urls})

    @property
    def callback_url(self) -> str | None:
        return next((u for u in self.urls if u.startswith(PARTNER + "/oauth/callback")), None)


def partner_login(agent: Agent, email: str = PARTNER_USER[0], password: str = PARTNER_USER[1],
                  next_path: str = "/") -> httpx.Response:
    return agent.post(PARTNER + "/login", {"email": email, "password": password, "next": next_path})


def start_url(site: str | None = None, domain: str | None = None, **extra) -> str:
    params = {k: v for k, v in {"site": site, "domain": domain, **extra}.items() if v is not None}
    return PARTNER + "/datadog/start" + ("?" + urlencode(params) if params else "")


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def with_query(url: str, **changes) -> str:
    """`url` with some query parameters replaced (None drops one)."""
    q = {**query(url), **changes}
    return url.split("?")[0] + "?" + urlencode({k: v for k, v in q.items() if v is not None})


def _user(store, site_key: str, key: str):
    return next(u for u in store.users.values() if u.site == site_key and u.key == key)


def _org(store, site_key: str, key: str):
    return next(o for o in store.orgs.values() if o.site == site_key and o.key == key)


def walk(agent: Agent, resp: httpx.Response, trail: Trail | None = None, pick: str | None = None,
         user: str = "developer",
         org: str = "sandbox", decision: str = "Authorize", stop_at: str | None = None, max_steps: int = 30) -> Trail:
    """Follow `resp` like a browser until a page it does not know (or `stop_at`: "callback", "consent").
    Datadog's site picker is answered with `pick`, by default the site it is shown on."""
    trail = trail or Trail()
    registry = agent.store.registry
    for _ in range(max_steps):
        here = str(resp.request.url)
        if resp.status_code in (301, 302, 303, 307) and "location" in resp.headers:
            target = urljoin(here, resp.headers["location"])
            parts = urlsplit(target)
            if stop_at == "callback" and target.startswith(PARTNER + "/oauth/callback"):
                trail.urls.append(target)
                break
            site = registry.by_host(parts.hostname or "")
            if site is not None and parts.path == "/account/login":  # Datadog's login
                u = _user(agent.store, site.key, user)
                nxt = query(target).get("next", "/")
                trail.urls.append(target)
                resp = agent.post(f"https://{site.web_host}/account/login",
                                  {"username": u.email, "password": u.password, "next": nxt})
                if resp.status_code == 303 and resp.headers["location"].startswith("/account/login/mfa"):
                    resp = agent.post(f"https://{site.web_host}/account/login/mfa",
                                      {"otp": pyotp.TOTP(u.totp_secret).now(), "next": nxt})
                continue
            if parts.hostname == "integration.example.com" and parts.path == "/login":
                trail.urls.append(target)
                resp = partner_login(agent, next_path=query(target).get("next", "/"))
                continue
            trail.urls.append(target)
            resp = agent.get(target)
            continue
        if resp.status_code != 200 or "text/html" not in resp.headers.get("content-type", ""):
            break
        page = PartnerPage(resp.text)
        trail.pages.append((here, page))
        if page.h1 == "Select your Datadog site":  # stay where we are unless told to `pick` another region
            wanted = pick or registry.by_host(urlsplit(here).hostname).key
            form = next(f for f in page.forms if any(b[1] == wanted for b in f.buttons))
            target = urljoin(here, form.action) + "?" + urlencode({**form.fields, "_site": wanted})
            trail.urls.append(target)
            resp = agent.get(target)
            continue
        if page.h1 == "Select an organization":
            site = registry.by_host(urlsplit(here).hostname)
            form = page.forms[0]
            resp = agent.post(urljoin(here, form.action), {**form.fields, "org_id": _org(agent.store, site.key, org).id})
            continue
        if page.h1.startswith("Authorize"):
            if stop_at == "consent":
                break
            form = page.forms[0]
            name, value, _ = form.button(decision)
            resp = agent.post(urljoin(here, form.action), {**form.fields, name: value})
            continue
        break
    trail.response = resp
    return trail


def connect(agent: Agent, site: str | None = None, domain: str | None = None, login: bool = True, **kw) -> Trail:
    """Partner login (unless already done), then the onboarding URL with `site`/`domain`, walked to the end."""
    if login:
        r = partner_login(agent)
        assert r.status_code == 302, r.text[:300]
    url = start_url(site, domain)
    trail = Trail(urls=[url])
    return walk(agent, agent.get(url), trail, **kw)


def installations(emu: Emu) -> list[dict]:
    r = emu.control("GET", "partner")
    assert r.status_code == 200, r.text
    return r.json()["installations"]


def token_requests(store) -> list[dict]:
    return [e for e in store.request_log if e["path"] == "/oauth2/v1/token" and e["method"] == "POST"]


# ---- partner defects: (emu, bad) checks in the shape of test_emulator_defects.CHECKS ------------------

def _metric_on(emu: Emu, site: str) -> list[dict]:
    return [m for m in emu.store.metrics if m["site"] == site and m["metric"] == "acme.integration.installed"]


def _eu_connect(emu: Emu, **kw) -> Trail:
    return connect(AsgiAgent(emu), "https://app.datadoghq.eu", "datadoghq.eu", **kw)


def _connected(trail: Trail) -> bool:
    return trail.response.status_code == 200 and trail.page.h1 == "Connected to Datadog"


def _check_ignores_domain(emu: Emu, bad: bool) -> None:
    trail = _eu_connect(emu)
    hosts = [e["host"] for e in token_requests(emu.store)]
    assert hosts == (["api.datadoghq.com"] if bad else ["api.datadoghq.eu"])
    assert _connected(trail) is not bad  # an EU1 code is no good on US1
    if bad:
        assert trail.response.status_code == 502 and "token exchange" in trail.page.text


def _check_subdomain_api_host(emu: Emu, bad: bool) -> None:
    trail = _eu_connect(emu)
    assert _connected(trail) is not bad
    if bad:
        assert trail.response.status_code == 502
        assert trail.page.text == "could not reach api.app.datadoghq.eu"
        assert token_requests(emu.store) == []


def _check_no_pkce(emu: Emu, bad: bool) -> None:
    trail = _eu_connect(emu)
    q = query(trail.authorize_urls[0])
    assert ("code_challenge" in q and q.get("code_challenge_method") == "S256") is not bad
    assert _connected(trail) is not bad  # Datadog requires PKCE: its error comes back on the callback
    if bad:
        assert "invalid_request" in trail.page.text


def _check_no_state_check(emu: Emu, bad: bool) -> None:
    agent = AsgiAgent(emu)
    trail = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", stop_at="callback")
    forged = with_query(trail.urls[-1], state="forged-by-someone-else")
    resp = walk(agent, agent.get(forged)).response
    assert (resp.status_code == 200 and PartnerPage(resp.text).h1 == "Connected to Datadog") is bad
    if not bad:
        assert PartnerPage(resp.text).text == "state does not match" and token_requests(emu.store) == []


def _check_crashes_on_409(emu: Emu, bad: bool) -> None:
    agent = AsgiAgent(emu)
    assert _connected(connect(agent, "https://app.datadoghq.eu", "datadoghq.eu"))
    again = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", login=False)
    assert _connected(again) is not bad
    if bad:
        assert again.response.status_code == 500 and again.response.text == "Internal Server Error"


def _check_sends_no_data(emu: Emu, bad: bool) -> None:
    assert _connected(_eu_connect(emu))
    assert bool(_metric_on(emu, "EU1")) is not bad


def _check_wrong_site_key(emu: Emu, bad: bool) -> None:
    assert _connected(_eu_connect(emu))
    series = [e["host"] for e in emu.store.request_log if e["path"] == "/api/v2/series"]
    assert series == (["api.datadoghq.com"] if bad else ["api.datadoghq.eu"])
    assert bool(_metric_on(emu, "EU1")) is not bad and not _metric_on(emu, "US1")


def _two_starts(emu: Emu) -> tuple[dict, dict, Trail]:
    """Two installs in one partner session: the two authorize requests' parameters, and the second trail."""
    agent = AsgiAgent(emu)
    first = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu")
    assert _connected(first)
    second = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", login=False)
    return query(first.authorize_urls[0]), query(second.authorize_urls[0]), second


def _check_static_state(emu: Emu, bad: bool) -> None:
    one, two, second = _two_starts(emu)
    assert (one["state"] == two["state"]) is bad
    assert one["code_challenge"] != two["code_challenge"]
    assert len(one["state"]) >= 32  # random-looking: only a second start shows the defect
    assert _connected(second)  # the install itself still works


def _check_static_pkce(emu: Emu, bad: bool) -> None:
    one, two, second = _two_starts(emu)
    assert (one["code_challenge"] == two["code_challenge"]) is bad
    assert one["state"] != two["state"]
    assert one["code_challenge_method"] == "S256" and len(one["code_challenge"]) == 43
    assert _connected(second)


def _check_weak_state(emu: Emu, bad: bool) -> None:
    one, two, second = _two_starts(emu)
    assert one["state"] != two["state"] and _connected(second)
    assert (len(one["state"]) == 16 and all(c in "0123456789abcdef" for c in one["state"])) is bad
    assert len(one["state"]) >= (16 if bad else 32)


def _check_extra_key(emu: Emu, bad: bool) -> None:
    one, two, second = _two_starts(emu)  # the second install meets Datadog's 409 on the marketplace key
    assert _connected(second)
    names = sorted(k.name for k in emu.store.api_keys.values() if k.site == "EU1" and not k.disabled)
    assert ("Acme Observability (reinstall)" in names) is bad, names


def _check_stores_after_deny(emu: Emu, bad: bool) -> None:
    agent = AsgiAgent(emu)
    denied = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", decision="Deny")
    assert not _connected(denied)
    again = connect(agent, "https://app.datadoghq.eu", "datadoghq.eu", login=False, stop_at="consent")
    # a sound partner sends the next start through Datadog's authorize again; the defect shows "connected"
    assert (not again.authorize_urls) is bad, again.urls


DEFECT_CHECKS = {
    "partner_ignores_domain": _check_ignores_domain,
    "partner_subdomain_api_host": _check_subdomain_api_host,
    "partner_no_pkce": _check_no_pkce,
    "partner_no_state_check": _check_no_state_check,
    "partner_crashes_on_409": _check_crashes_on_409,
    "partner_sends_no_data": _check_sends_no_data,
    "partner_wrong_site_key": _check_wrong_site_key,
    "partner_static_state": _check_static_state,
    "partner_static_pkce": _check_static_pkce,
    "partner_weak_state": _check_weak_state,
    "partner_extra_key": _check_extra_key,
    "partner_stores_after_deny": _check_stores_after_deny,
}
