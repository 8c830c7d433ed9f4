"""The emulator's control API under /_emulator/ (JSON, local only): state, reset, clock,
client administration, behaviour switches, fault rules and named defects."""
from __future__ import annotations

import re
import secrets

from starlette.responses import JSONResponse, Response

from harness.errors import ConfigError

from .behaviour import DEFECTS, SWITCHES
from .http import Ctx, dd_errors, json_body
from .rules import Rule


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
            return JSONResponse({"reset": True})
        if path == "clock" and method == "POST":
            data = await _body(ctx)
            seconds = float(data.get("advance", 0))
            return JSONResponse({"clock_offset": store.advance(seconds), "now": store.now()})
        if path == "behaviour":
            if method == "POST":
                store.behaviour.update(await _body(ctx))
            return JSONResponse({"behaviour": store.behaviour.as_dict(),
                                 "switches": {k: list(v) for k, v in SWITCHES.items()}})
        if path == "defects":
            if method == "POST":
                data = await _body(ctx)
                enabled = set(store.behaviour.defects)
                enabled |= set(data.get("enable", []))
                enabled -= set(data.get("disable", []))
                store.behaviour.update({"defects": enabled})
            return JSONResponse({"enabled": sorted(store.behaviour.defects), "catalogue": {
                name: {"description": d, "caught_by": tests} for name, (d, tests) in DEFECTS.items()}})
        if path == "rules":
            rules = ctx.request.app.state.rules
            if method == "POST":
                data = await _body(ctx)
                rule = Rule.from_dict(data)
                rules.append(rule)
                return JSONResponse({"rules": [r.as_dict() for r in rules]}, status_code=201)
            if method == "DELETE":
                rules.clear()
            return JSONResponse({"rules": [r.as_dict() for r in rules]})
        if path == "requests" and method == "GET":
            return JSONResponse({"requests": list(store.request_log)})
        m = re.fullmatch(r"clients/([^/]+)/(rotate-secret|publish|disable|enable)", path)
        if m and method == "POST":
            return _client_action(ctx, m.group(1), m.group(2))
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
            return JSONResponse({"revoked_grants": n})
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
