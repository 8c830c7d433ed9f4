"""The emulator's control API under /_emulator/ (JSON, local only): state, reset, clock,
client administration, behaviour switches, fault rules and named defects; `GET partner` lists the
reference partner app's installations (no secrets), and `POST reset` resets that app too.
`GET|POST clients/<id>/redirect-uris` lists or changes a client's redirect URIs (`{"add": [...], "remove": [...]}`).

`POST codes` mints authorization codes without the browser dance, as if the user had clicked
Authorize (for benchmarks and tests of the back channel):
    {"site": "EU1", "client_id": "...", "code_challenge": "<S256 challenge>",
     "code_challenge_method": "S256", "redirect_uri": (default: first registered),
     "org_id": (default: the client's org), "user_id": (default: a user of that org),
     "scopes": (default: the client's scopes), "count": 1..10000}
    -> {"codes": [...], "redirect_uri": ..., "user_id": ..., "org_id": ..., "scopes": [...], "expires_in": 600}
"""
from __future__ import annotations

import math
import re
import secrets

from starlette.responses import JSONResponse, Response

from core.errors import ConfigError

from .behaviour import DEFECTS, SWITCHES
from .http import Ctx, dd_errors, json_body
from .rules import Rule
from .state import CODE_TTL, AuthCode
from .web import _PKCE_RE

MAX_MINTED_CODES = 10000


async def _body(ctx: Ctx) -> dict:
    data = await json_body(ctx.request)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("control API body must be a JSON object")
    return data


async def dispatch(ctx: Ctx, path: str) -> Response:
    store = ctx.store
    method = ctx.request.method
    try:
        if path == "state" and method == "GET":
            return JSONResponse(store.snapshot())
        if path == "reset" and method == "POST":
            store.reset()
            ctx.request.app.state.rules.clear()
            ctx.request.app.partner.reset()
            return JSONResponse({"reset": True})
        if path == "partner" and method == "GET":
            # the reference partner app's installations, without secrets (no key values, no tokens)
            return JSONResponse(ctx.request.app.partner.listing())
        if path == "clock" and method == "POST":
            data = await _body(ctx)
            seconds = float(data.get("advance", 0))
            if not math.isfinite(seconds):  # NaN/inf would poison every later clock reading
                raise ConfigError("clock advance must be a finite number of seconds")
            return JSONResponse({"clock_offset": store.advance(seconds), "now": store.now()})
        if path == "behaviour" and method in ("GET", "POST"):
            if method == "POST":
                store.behaviour.update(await _body(ctx))
            return JSONResponse({"behaviour": store.behaviour.as_dict(),
                                 "switches": {k: list(v) for k, v in SWITCHES.items()}})
        if path == "defects" and method in ("GET", "POST"):
            if method == "POST":
                data = await _body(ctx)
                enabled = set(store.behaviour.defects)
                enabled |= set(data.get("enable", []))
                enabled -= set(data.get("disable", []))
                store.behaviour.update({"defects": enabled})
            return JSONResponse({"enabled": sorted(store.behaviour.defects), "catalogue": {
                name: {"description": d, "caught_by": tests} for name, (d, tests) in DEFECTS.items()}})
        if path == "rules" and method in ("GET", "POST", "DELETE"):
            rules = ctx.request.app.state.rules
            if method == "POST":
                data = await _body(ctx)
                rule = Rule.from_dict(data)
                rules.append(rule)
                return JSONResponse({"rules": [r.as_dict() for r in rules]}, status_code=201)
            if method == "DELETE":
                rules.clear()
            return JSONResponse({"rules": [r.as_dict() for r in rules]})
        if path == "codes" and method == "POST":
            return _mint_codes(ctx, await _body(ctx))
        if path == "requests" and method == "GET":
            return JSONResponse({"requests": list(store.request_log)})
        m = re.fullmatch(r"clients/([^/]+)/(rotate-secret|publish|disable|enable)", path)
        if m and method == "POST":
            return _client_action(ctx, m.group(1), m.group(2))
        m = re.fullmatch(r"clients/([^/]+)/redirect-uris", path)
        if m and method in ("GET", "POST"):
            return await _redirect_uris(ctx, m.group(1), method)
        m = re.fullmatch(r"grants/revoke", path)
        if m and method == "POST":
            data = await _body(ctx)
            n = 0
            with store.lock:
                for g in list(store.grants.values()):
                    if (g.user_id == data.get("user_id") or data.get("user_id") is None) and \
                            g.client_id == data.get("client_id") and not g.revoked:
                        store.revoke_grant(g.id)
                        n += 1
                # and the consent it remembered (behaviour remember_consent): the next authorize asks again
                store.consents = {k for k in store.consents if not (
                    k[1] == data.get("client_id") and (data.get("user_id") is None or k[0] == data.get("user_id")))}
            return JSONResponse({"revoked_grants": n})
        if path == "tokens/expire" and method == "POST":
            # end an access token's life now, without moving the clock for everyone else
            data = await _body(ctx)
            token = store.access_tokens.get(str(data.get("access_token", "")))
            if token is None:
                return dd_errors(404, "unknown access token")
            token.expires_at = store.now() - 1
            return JSONResponse({"expired": True})
        if path == "codes/age" and method == "POST":
            # age one code (its issue time moves back), without moving the clock for everyone else:
            # safe next to tests running in parallel
            data = await _body(ctx)
            code = store.codes.get(str(data.get("code", "")))
            if code is None:
                return dd_errors(404, "unknown authorization code")
            seconds = float(data.get("seconds", 0))
            if not math.isfinite(seconds) or seconds < 0:
                raise ConfigError("seconds must be a finite, non-negative number")
            code.issued_at -= seconds
            return JSONResponse({"aged": True, "age": store.now() - code.issued_at})
        m = re.fullmatch(r"api-keys/([^/]+)", path)
        if m and method == "DELETE":
            removed = store.api_keys.pop(m.group(1), None)
            return JSONResponse({"deleted": removed is not None}, status_code=200 if removed else 404)
        return dd_errors(404, f"unknown control endpoint {method} /_emulator/{path}")
    except (ConfigError, ValueError, TypeError) as exc:
        return dd_errors(400, str(exc))


def _client_action(ctx: Ctx, client_id: str, action: str) -> Response:
    store = ctx.store
    with store.lock:
        clients = [c for c in store.clients.values() if c.id == client_id]  # a published id spans sites
        if not clients:
            return dd_errors(404, f"unknown client {client_id}")
        if action == "rotate-secret":
            # Only one secret is active: the old one stops working at once; tokens and keys survive.
            new_secret = "ddcs_" + secrets.token_urlsafe(32)
            for client in clients:
                client.previous_secret, client.secret = client.secret, new_secret
            if store.behaviour.has("refresh_killed_by_rotation"):
                for g in store.grants.values():
                    if g.client_id == client_id:
                        store.revoke_grant(g.id)
            return JSONResponse({"client_id": client_id, "client_secret": new_secret})
        if action == "publish":
            for client in clients:
                client.kind = "published"
            return JSONResponse({"client_id": client_id, "kind": "published"})
        for client in clients:
            client.disabled = action == "disable"
        if action == "disable":  # disabling an app revokes access for every user in the org
            for g in store.grants.values():
                if g.client_id == client_id:
                    store.revoke_grant(g.id)
        return JSONResponse({"client_id": client_id, "disabled": action == "disable"})


async def _redirect_uris(ctx: Ctx, client_id: str, method: str) -> Response:
    """GET: the client's redirect URIs. POST {"add": [...], "remove": [...]}: register more (https only, plain
    http on a loopback address; no fragment) or drop some, on every site for a published id; until `reset`."""
    store = ctx.store
    if method == "POST":
        data = await _body(ctx)
        unknown = sorted(set(data) - {"add", "remove"})
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}: the body is {{\"add\": [URI, ...], \"remove\": [URI, ...]}}")
        lists = {}
        for key in ("add", "remove"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
                raise ConfigError(f"{key} must be a list of redirect URIs (strings)")
            lists[key] = value
        if not lists["add"] and not lists["remove"]:
            raise ConfigError("nothing to change: give add and/or remove, each a list of redirect URIs")
        uris = store.change_redirect_uris(client_id, lists["add"], lists["remove"])
    else:
        uris = store.redirect_uris(client_id)
    if uris is None:
        return dd_errors(404, f"unknown client {client_id}")
    return JSONResponse({"client_id": client_id, "redirect_uris": uris})


def _mint_codes(ctx: Ctx, data: dict) -> Response:
    store = ctx.store
    site = store.registry.get(str(data.get("site") or ctx.site.key))
    if not site.oauth:
        raise ConfigError(f"OAuth is not available on {site.key}")
    client = store.client(site.key, str(data.get("client_id", "")))
    if client is None or client.disabled:
        raise ConfigError(f"no enabled client {data.get('client_id')!r} on {site.key}")
    redirect_uri = data.get("redirect_uri") or client.redirect_uris[0]
    if redirect_uri not in client.redirect_uris:
        raise ConfigError("redirect_uri is not registered for this client")
    org_id = data.get("org_id") or client.org_id
    org = store.orgs.get(org_id)
    if org is None or org.site != site.key:
        raise ConfigError(f"unknown org {org_id!r} on {site.key}")
    if client.kind == "test" and org_id != client.org_id:
        raise ConfigError("a test client can only be authorized from its sandbox org")
    user_id = data.get("user_id") or next(
        (u.id for u in store.users.values() if u.site == site.key and org_id in u.org_ids), None)
    user = store.users.get(user_id)
    if user is None or user.site != site.key or org_id not in user.org_ids:
        raise ConfigError(f"user {user_id!r} is not a member of org {org_id} on {site.key}")
    scopes = data.get("scopes", client.scopes)
    if not isinstance(scopes, list) or not all(isinstance(x, str) and x in client.scopes for x in scopes):
        raise ConfigError("scopes must be a list of the client's scopes")
    challenge = data.get("code_challenge")
    method = data.get("code_challenge_method") or ("S256" if challenge else None)
    if challenge is not None and (not isinstance(challenge, str) or not _PKCE_RE.match(challenge)
                                  or method not in ("S256", "SHA-256")):
        raise ConfigError("code_challenge must be an S256 challenge (43-128 unreserved characters)")
    count = data.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_MINTED_CODES:
        raise ConfigError(f"count must be a whole number from 1 to {MAX_MINTED_CODES}")
    codes = []
    with store.lock:
        now = store.now()
        for _ in range(count):
            code = AuthCode(code=secrets.token_urlsafe(24), site=site.key, client_id=client.id,
                            redirect_uri=redirect_uri, code_challenge=challenge, code_challenge_method=method,
                            user_id=user.id, org_id=org_id, scopes=list(scopes), issued_at=now)
            store.codes[code.code] = code
            codes.append(code.code)
    return JSONResponse({"codes": codes, "redirect_uri": redirect_uri, "user_id": user.id, "org_id": org_id,
                         "scopes": list(scopes), "expires_in": CODE_TTL}, status_code=201)
