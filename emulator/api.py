"""Resource side of the emulated Datadog: bearer-scoped endpoints from the scope catalogue,
the marketplace API key, key validation, and the metrics/logs intake with read-back."""
from __future__ import annotations

import math
import re
import secrets
import uuid
from datetime import datetime, timezone

from starlette.responses import JSONResponse, Response

from core.scopes import Endpoint, load_catalogue

from .http import Ctx, HTTPFailure, dd_errors, forbidden, json_body
from .state import ApiKey, Grant

WELL_KNOWN_SITES_ID = "prod"


# ---- authentication ------------------------------------------------------------------------

def bearer_grant(ctx: Ctx) -> Grant:
    """The grant behind `Authorization: Bearer`, or a 403 {"errors":["Forbidden"]} (Datadog troubleshooting)."""
    store = ctx.store
    auth = ctx.request.headers.get("authorization", "")
    if not auth[:7].lower() == "bearer ":
        raise HTTPFailure(forbidden())
    token = store.access_tokens.get(auth[7:].strip())
    if token is None or token.revoked:
        raise HTTPFailure(forbidden())
    grant = store.grants.get(token.grant_id)
    if grant is None or grant.revoked or grant.site != ctx.site.key:
        raise HTTPFailure(forbidden())
    client = store.client(grant.site, grant.client_id)
    if client is None or client.disabled:
        raise HTTPFailure(forbidden())
    if token.expires_at <= store.now():
        status = store.behaviour.expired_token_status
        raise HTTPFailure(dd_errors(status, "Unauthorized" if status == 401 else "Forbidden"))
    return grant


def require_scope(ctx: Ctx, grant: Grant, endpoint: Endpoint) -> None:
    if ctx.store.behaviour.has("scope_not_enforced"):
        return
    if not endpoint.allows(set(grant.scopes)):
        raise HTTPFailure(forbidden())


def api_key_org(ctx: Ctx) -> ApiKey:
    value = ctx.request.headers.get("dd-api-key") or ctx.request.query_params.get("dd-api-key")
    if not value:
        raise HTTPFailure(forbidden())
    for key in ctx.store.api_keys.values():
        if key.key == value and key.site == ctx.site.key and not key.disabled:
            return key
    raise HTTPFailure(forbidden())


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


# ---- marketplace API key ---------------------------------------------------------------------

async def marketplace_key(ctx: Ctx, endpoint: Endpoint) -> Response:
    store, behaviour = ctx.store, ctx.store.behaviour
    grant = bearer_grant(ctx)
    if "api_keys_write" not in grant.scopes and not behaviour.has("api_key_without_scope"):
        return forbidden()
    client = store.client(grant.site, grant.client_id)
    with store.lock:
        existing = [k for k in store.api_keys.values()
                    if k.org_id == grant.org_id and k.client_id == client.id and k.site == ctx.site.key]
        if existing and not behaviour.has("api_key_no_409"):
            return dd_errors(409, "An API key with this name already exists")
        value = secrets.token_hex(16)
        key = ApiKey(
            id=str(uuid.uuid4()), site=ctx.site.key, org_id=grant.org_id, client_id=client.id,
            name=f"{client.name} OAuth Client API Key {uuid.uuid4()}",
            key=secrets.token_hex(16) if behaviour.has("api_key_invalid") else value,
            created_at=_iso(store.now()), created_by=grant.user_id,
        )
        store.api_keys[key.id] = key
    rel = {"data": {"type": "users", "id": grant.user_id}}
    body = {"data": {"type": "api_keys", "id": key.id, "attributes": {
        "created_at": key.created_at, "key": value, "last4": value[-4:], "modified_at": key.created_at,
        "name": key.name}, "relationships": {"created_by": rel, "modified_by": rel}}}
    return JSONResponse(body, status_code=endpoint.success_status or 201, headers={"Cache-Control": "no-store"})


async def validate(ctx: Ctx) -> Response:
    try:
        api_key_org(ctx)
    except HTTPFailure:
        if ctx.store.behaviour.has("validate_unknown_key_200"):
            return JSONResponse({"valid": False})
        raise
    return JSONResponse({"valid": True})


# ---- intake ----------------------------------------------------------------------------------

async def series_v2(ctx: Ctx) -> Response:
    key = api_key_org(ctx)
    data = await json_body(ctx.request)
    if not isinstance(data, dict) or not isinstance(data.get("series"), list):
        return dd_errors(400, "Payload must contain a 'series' list")
    parsed = []
    for s in data["series"]:
        if not isinstance(s, dict) or not isinstance(s.get("metric"), str) or not isinstance(s.get("points"), list):
            return dd_errors(400, "Each series needs 'metric' and 'points'")
        points = []
        for p in s["points"]:
            try:
                point = (float(p["timestamp"]), float(p["value"]))
            except (TypeError, KeyError, ValueError, OverflowError):
                point = None
            if point is None or not all(map(math.isfinite, point)):  # "nan" would break every later query
                return dd_errors(400, "Each point needs numeric 'timestamp' and 'value'")
            points.append(point)
        tags = s.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return dd_errors(400, "'tags' must be a list of strings")
        parsed.append((s["metric"], points, tags))
    if not ctx.store.behaviour.has("metrics_dropped"):
        with ctx.store.lock:
            for metric, points, tags in parsed:
                ctx.store.metrics.append({"site": ctx.site.key, "org_id": key.org_id, "metric": metric,
                                          "points": points, "tags": tags})
    return JSONResponse({"errors": []}, status_code=202)


async def check_run(ctx: Ctx) -> Response:
    key = api_key_org(ctx)
    data = await json_body(ctx.request)
    if not isinstance(data, dict) or "check" not in data or "status" not in data:
        return dd_errors(400, "Payload must contain 'check' and 'status'")
    ctx.store.service_checks.append({"site": ctx.site.key, "org_id": key.org_id, **data})
    return JSONResponse({"status": "ok"}, status_code=202)


async def logs_intake(ctx: Ctx) -> Response:
    key = api_key_org(ctx)
    data = await json_body(ctx.request)
    entries = data if isinstance(data, list) else [data]
    if not entries or not all(isinstance(e, dict) and isinstance(e.get("message"), str) for e in entries):
        return dd_errors(400, "Each log needs a 'message'")
    if not all(isinstance(e.get("ddtags", ""), str) and isinstance(e.get("service", ""), (str, type(None)))
               for e in entries):
        return dd_errors(400, "'ddtags' and 'service' must be strings")
    if not ctx.store.behaviour.has("logs_dropped"):
        with ctx.store.lock:
            for e in entries:
                ctx.store.logs.append({"site": ctx.site.key, "org_id": key.org_id, "id": str(uuid.uuid4()),
                                       "message": e["message"], "service": e.get("service"),
                                       "ddtags": e.get("ddtags", ""), "received_at": ctx.store.now()})
    return JSONResponse({}, status_code=202)


# ---- specials --------------------------------------------------------------------------------

_QUERY_RE = re.compile(r"^\s*(?:(avg|sum|min|max):)?([A-Za-z0-9_.]+)\s*\{([^}]*)\}")


def _users_me(ctx: Ctx, grant: Grant) -> Response:
    user = ctx.store.users[grant.user_id]
    return JSONResponse({"data": {"type": "users", "id": user.id, "attributes": {
        "email": user.email, "handle": user.email, "name": user.name, "status": "Active"}}})


def _timeseries_query(ctx: Ctx, grant: Grant) -> Response:
    q = ctx.request.query_params
    try:
        start, end = int(q["from"]), int(q["to"])
    except (KeyError, ValueError):
        return dd_errors(400, "'from' and 'to' must be epoch seconds")
    m = _QUERY_RE.match(q.get("query", ""))
    if not m:
        return dd_errors(400, "Error parsing query")
    metric = m.group(2)
    wanted = {t.strip() for t in m.group(3).split(",") if t.strip() and t.strip() != "*"}
    series = []
    for entry in ctx.store.metrics:
        if entry["site"] != ctx.site.key or entry["org_id"] != grant.org_id or entry["metric"] != metric:
            continue
        if not wanted.issubset(entry["tags"]):
            continue
        pts = [[ts * 1000, v] for ts, v in entry["points"] if start <= ts <= end]
        if pts:
            series.append({"metric": metric, "pointlist": pts, "scope": ",".join(sorted(wanted)) or "*",
                           "tag_set": entry["tags"], "display_name": metric})
    return JSONResponse({"status": "ok", "res_type": "time_series", "series": series, "query": q.get("query"),
                         "from_date": start * 1000, "to_date": end * 1000})


def _metrics_list(ctx: Ctx, grant: Grant) -> Response:
    names = sorted({e["metric"] for e in ctx.store.metrics if e["site"] == ctx.site.key and e["org_id"] == grant.org_id})
    return JSONResponse({"metrics": names or ["system.cpu.user"], "from": ctx.request.query_params.get("from")})


async def logs_events(ctx: Ctx) -> Response:
    """Read back logs (logs_read_data). Not in the April-2026 public spec; OAuth-enabled since 2026-02."""
    grant = bearer_grant(ctx)
    if not ctx.store.behaviour.has("scope_not_enforced") and "logs_read_data" not in grant.scopes:
        return forbidden()
    query = ctx.request.query_params.get("filter[query]", "")
    items = [e for e in ctx.store.logs if e["site"] == ctx.site.key and e["org_id"] == grant.org_id
             and (not query or query in e["message"] or query in (e["ddtags"] or ""))]
    return JSONResponse({"data": [{"id": e["id"], "type": "log", "attributes": {
        "message": e["message"], "service": e["service"], "tags": (e["ddtags"] or "").split(","),
        "timestamp": _iso(e["received_at"])}} for e in items]})


# ---- generic collections ---------------------------------------------------------------------

def _new_id(kind: str) -> str | int:
    if kind == "int":
        return secrets.randbelow(9_000_000) + 1_000_000
    if kind == "dashboard":
        alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
        return "-".join("".join(secrets.choice(alphabet) for _ in range(3)) for _ in range(3))
    return str(uuid.uuid4())


def _items(ctx: Ctx, grant: Grant, coll) -> dict:
    items = ctx.store.collection(ctx.site.key, grant.org_id, coll.name)
    seeded_key = (ctx.site.key, grant.org_id, coll.name)
    if seeded_key not in ctx.store.seeded_collections:
        ctx.store.seeded_collections.add(seeded_key)
        for i in range(coll.seed_count):
            item_id = _new_id(coll.id_kind)
            items[str(item_id)] = _shape(coll, item_id, {"name": f"{coll.name} example {i + 1}"})
    return items


def _shape(coll, item_id, body: dict) -> dict:
    if coll.envelope == "v2":
        data = body.get("data") if isinstance(body.get("data"), dict) else None
        attrs = data.get("attributes", {}) if data else dict(body)
        return {"id": str(item_id), "type": coll.type, "attributes": attrs}
    return {**body, coll.id_field: item_id}


def _render(template, items=None, item=None, item_id=None):
    """Fill an endpoint's `answer` template ($items, $item, $id) with the real values."""
    if template == "$items":
        return items
    if template == "$item":
        return item
    if template == "$id":
        return item_id
    if isinstance(template, dict):
        return {k: _render(v, items, item, item_id) for k, v in template.items()}
    if isinstance(template, list):
        return [_render(v, items, item, item_id) for v in template]
    return template


def _answer(endpoint: Endpoint, coll, default, status: int, **values) -> Response:
    body = _render(endpoint.answer, **values) if endpoint.answer is not None else default
    if status == 204:
        return Response(status_code=204)
    return JSONResponse(body, status_code=status)


async def collection_endpoint(ctx: Ctx, endpoint: Endpoint, path_params: dict) -> Response:
    grant = bearer_grant(ctx)
    if not (endpoint.special == "api_keys_marketplace" and ctx.store.behaviour.has("api_key_without_scope")):
        require_scope(ctx, grant, endpoint)  # (that defect lives in the key handler; the route must let it through)
    missing = [p for p in endpoint.required_params if p not in ctx.request.query_params]
    if missing:
        return dd_errors(400, f"Missing required parameter(s): {', '.join(missing)}")
    if endpoint.action == "special":
        handler = {"users_me": _users_me, "timeseries_query": _timeseries_query, "metrics_list": _metrics_list}
        if endpoint.special == "api_keys_marketplace":
            return await marketplace_key(ctx, endpoint)
        return handler[endpoint.special](ctx, grant)
    coll = load_catalogue().collections[endpoint.collection]
    status = endpoint.success_status or 200
    body = await json_body(ctx.request) if endpoint.action == "create" else None
    with ctx.store.lock:
        items = _items(ctx, grant, coll)
        if endpoint.action == "list":
            if ctx.store.behaviour.has("read_probe_empty_body"):
                return Response(b"", status_code=200, media_type="application/json")
            values = list(items.values())
            default = {"data": values} if coll.envelope == "v2" else {coll.list_key: values}
            return _answer(endpoint, coll, default, status, items=values)
        if endpoint.action == "create":
            if not isinstance(body, dict) or not body:
                return dd_errors(400, "Invalid or empty JSON body")
            if coll.id_kind == "client":
                item_id = body.get(coll.id_field)
                if not isinstance(item_id, str) or not item_id:
                    return dd_errors(400, f"'{coll.id_field}' is required")
                if item_id in items:
                    return dd_errors(409, f"{coll.name} {item_id!r} already exists")
            else:
                item_id = _new_id(coll.id_kind)
            item = _shape(coll, item_id, body)
            items[str(item_id)] = item
            default = {"data": item} if coll.envelope == "v2" else item
            return _answer(endpoint, coll, default, status, item=item, item_id=item_id)
        item_key = str(path_params.get("id", ""))
        if item_key not in items:
            return dd_errors(404, "Not found")
        item = items[item_key]
        if endpoint.action == "get":
            default = {"data": item} if coll.envelope == "v2" else item
            return _answer(endpoint, coll, default, status, item=item, item_id=item_key)
        if endpoint.action == "delete":
            del items[item_key]
            return _answer(endpoint, coll, {}, status, item=item, item_id=item.get(coll.id_field, item_key)
                           if coll.envelope == "v1" else item_key)
    return dd_errors(405, "Method Not Allowed")


async def well_known_sites(ctx: Ctx) -> Response:
    sites = [s.web_host for s in ctx.store.registry.oauth_sites() if s.environment == ctx.site.environment]
    return JSONResponse({"data": {"id": WELL_KNOWN_SITES_ID, "type": "env", "attributes": {"sites": sites}}},
                        media_type="application/vnd.api+json")
