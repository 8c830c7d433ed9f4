"""Resource side (api.<domain>, http-intake.logs.<domain>): bearer + scope enforcement, the marketplace
API key, key validation, intake with read-back, every scope probe of the catalogue, rate limits."""
from __future__ import annotations

import re
import time

import pytest

from emukit import tokens
from core.scopes import fill_placeholders, load_catalogue

FORBIDDEN = {"errors": ["Forbidden"]}
CATALOGUE = load_catalogue()
PROBED = sorted(name for name, s in CATALOGUE.scopes.items() if s.probe is not None)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def dash(emu, site="EU1", **headers):
    return emu.get(emu.api(site, "/api/v1/dashboard"), headers=headers)


def assert_forbidden(resp, status=403):
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.json() == (FORBIDDEN if status == 403 else {"errors": ["Unauthorized"]})


# ---- bearer authentication ------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Bearer garbage", "Basic Zm9vOmJhcg==",
                                    "Token abc", "Bearer ddat_" + "x" * 43, "Bearer \u00e9\u00e9"],
                         ids=["none", "empty", "scheme only", "scheme space", "garbage", "basic", "token scheme",
                              "well-formed unknown", "latin-1"])
def test_bearer_missing_or_garbled(emu, header):
    headers = {} if header is None else {"Authorization": header}
    if header and not header.isascii():
        headers = {"Authorization": header.encode("latin-1")}
    assert_forbidden(emu.get(emu.api("EU1", "/api/v1/dashboard"), headers=headers))


def test_bearer_valid_and_case_insensitive_scheme(emu):
    access, _ = emu.mint("EU1")
    assert dash(emu, Authorization=f"Bearer {access}").status_code == 200
    assert dash(emu, Authorization=f"bearer {access}").status_code == 200


def test_revoked_token_forbidden(emu):
    t = tokens(emu)
    c = emu.client("EU1")
    emu.post("https://api.datadoghq.eu/oauth2/v1/revoke", data={"client_id": c.id, "client_secret": c.secret,
                                                                "token": t["access_token"]})
    assert_forbidden(dash(emu, **emu.bearer(t["access_token"])))


def test_expired_token_403_by_default(emu):
    access, _ = emu.mint("EU1")
    emu.advance(3601)
    assert_forbidden(dash(emu, **emu.bearer(access)))


def test_expired_token_401_switch(emu):
    access, _ = emu.mint("EU1")
    emu.behaviour(expired_token_status=401)
    assert dash(emu, **emu.bearer(access)).status_code == 200
    emu.advance(3601)
    assert_forbidden(dash(emu, **emu.bearer(access)), 401)
    # only expiry is affected: an unknown token is still 403
    assert_forbidden(dash(emu, Authorization="Bearer nope"))


def test_other_sites_token_forbidden(emu):
    access, _ = emu.mint("EU1", client="published")
    assert_forbidden(dash(emu, "US3", **emu.bearer(access)))
    assert_forbidden(dash(emu, "US1", **emu.bearer(access)))
    assert dash(emu, "EU1", **emu.bearer(access)).status_code == 200


def test_missing_scope_forbidden(emu):
    access, _ = emu.mint("EU1", scopes=["hosts_read"])
    assert_forbidden(dash(emu, **emu.bearer(access)))
    assert emu.get(emu.api("EU1", "/api/v1/hosts"), headers=emu.bearer(access)).status_code == 200


def test_disabled_client_tokens_forbidden(emu):
    access, _ = emu.mint("EU1")
    emu.control("POST", f"clients/{emu.client('EU1').id}/disable")
    assert_forbidden(dash(emu, **emu.bearer(access)))


def test_api_key_is_not_a_bearer(emu):
    key = _marketplace(emu).json()["data"]["attributes"]["key"]
    assert_forbidden(dash(emu, **{"DD-API-KEY": key}))


ENDPOINTS = sorted(CATALOGUE.endpoints.values(), key=lambda e: e.id)


def _call(emu, endpoint, access, item_id="x", with_params=True, site="EU1"):
    path = endpoint.build_path(id=item_id) if endpoint.path_params else endpoint.path
    params = {p: "1" for p in endpoint.required_params} if with_params else {}
    kw = {"json": {"name": "x"}} if endpoint.method in ("POST", "PUT", "PATCH") else {}
    return emu.request(endpoint.method, emu.api(site, path), params=params, headers=emu.bearer(access), **kw)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.id for e in ENDPOINTS])
def test_every_endpoint_enforces_its_scopes(emu, endpoint):
    sets = endpoint.required_scope_sets()
    no_scope, _ = emu.mint("EU1", scopes=[])
    resp = _call(emu, endpoint, no_scope)
    if sets == [frozenset()]:
        assert resp.status_code != 403  # `AuthZ: []`: any valid token
    else:
        assert_forbidden(resp)
        # every scope but one of each way in is not enough
        for need in sets:
            for missing in need:
                partial, _ = emu.mint("EU1", scopes=sorted(need - {missing}))
                assert_forbidden(_call(emu, endpoint, partial))
    for need in sets:
        access, _ = emu.mint("EU1", scopes=sorted(need))
        resp = _call(emu, endpoint, access)
        assert resp.status_code != 403, (need, resp.text)
        assert resp.status_code < 500
    assert_forbidden(_call(emu, endpoint, "garbage"))


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.required_params],
                         ids=[e.id for e in ENDPOINTS if e.required_params])
def test_missing_required_params_is_400(emu, endpoint):
    access, _ = emu.mint("EU1", scopes=sorted(endpoint.required_scope_sets()[0]))
    resp = _call(emu, endpoint, access, with_params=False)
    assert resp.status_code == 400
    assert all(p in resp.json()["errors"][0] for p in endpoint.required_params)


def test_teams_write_needs_read_and_manage(emu):
    body = {"data": {"type": "team", "attributes": {"handle": "t", "name": "T"}}}
    only_manage, _ = emu.mint("EU1", scopes=["teams_manage"])
    assert_forbidden(emu.post(emu.api("EU1", "/api/v2/team"), json=body, headers=emu.bearer(only_manage)))
    both, _ = emu.mint("EU1", scopes=["teams_manage", "teams_read"])
    assert emu.post(emu.api("EU1", "/api/v2/team"), json=body, headers=emu.bearer(both)).status_code == 201


# ---- every probe of the scope catalogue --------------------------------------------------------------

def _probe_scopes(scope: str) -> list[str]:
    """The scope plus whatever its probe endpoints need alongside it (AND-scoped endpoints)."""
    probe = CATALOGUE.probe_for(scope)
    eps = []
    if probe.read:
        eps.append(CATALOGUE.endpoints[probe.read.endpoint])
    if probe.write:
        eps += [CATALOGUE.endpoints[probe.write.create_endpoint], CATALOGUE.endpoints[probe.write.delete_endpoint]]
    needed = {scope}
    for ep in eps:
        if not ep.allows(needed):
            needed |= next(s for s in ep.required_scope_sets() if scope in s)
    return sorted(needed)


ISSUE_SCOPES = ["dashboards_read", "dashboards_write", "monitors_read", "monitors_write", "monitors_downtime",
                "metrics_read", "timeseries_query", "events_read", "incident_read", "incident_write", "hosts_read",
                "user_access_read", "user_self_profile_read", "slos_read", "slos_write", "synthetics_read",
                "teams_read", "teams_manage", "usage_read", "create_webhooks", "apm_service_catalog_read",
                "cases_read", "cases_write"]


def test_issue_scopes_are_all_served_and_probed():
    assert set(ISSUE_SCOPES) <= set(PROBED)
    for scope in ISSUE_SCOPES:
        probe = CATALOGUE.probe_for(scope)
        if scope.endswith(("_write", "_manage")) or scope in ("create_webhooks", "monitors_downtime"):
            assert probe.write is not None, scope  # write scopes: create + delete
        if not scope.endswith(("_write", "_manage")) and scope != "create_webhooks":
            assert probe.read is not None, scope


@pytest.mark.parametrize("scope", PROBED)
def test_scope_probe_answers_with_the_scope(emu, scope):
    probe = CATALOGUE.probe_for(scope)
    access, _ = emu.mint("EU1", scopes=_probe_scopes(scope))
    h = emu.bearer(access)
    if probe.read:
        ep = CATALOGUE.endpoints[probe.read.endpoint]
        resp = emu.request(ep.method, emu.api("EU1", ep.path), params=fill_placeholders(probe.read.params, time.time()),
                           headers=h)
        assert resp.status_code == 200, resp.text
        assert probe.read.expect_json_key in resp.json()
    if probe.write:
        w = probe.write
        create = CATALOGUE.endpoints[w.create_endpoint]
        resp = emu.request(create.method, emu.api("EU1", create.path), json=fill_placeholders(w.json, time.time()),
                           headers=h)
        assert resp.status_code == create.success_status, resp.text
        item_id = w.extract_id(resp.json())
        delete = CATALOGUE.endpoints[w.delete_endpoint]
        resp = emu.request(delete.method, emu.api("EU1", delete.build_path(id=item_id)), headers=h)
        assert resp.status_code == delete.success_status, resp.text
        again = emu.request(delete.method, emu.api("EU1", delete.build_path(id=item_id)), headers=h)
        assert again.status_code == 404


@pytest.mark.parametrize("scope", PROBED)
def test_scope_probe_forbidden_without_the_scope(emu, scope):
    probe = CATALOGUE.probe_for(scope)
    others = sorted(set(_probe_scopes(scope)) - {scope}) or ["hosts_read" if scope != "hosts_read" else "slos_read"]
    access, _ = emu.mint("EU1", scopes=others)
    h = emu.bearer(access)
    if probe.read:
        ep = CATALOGUE.endpoints[probe.read.endpoint]
        assert_forbidden(emu.request(ep.method, emu.api("EU1", ep.path),
                                     params=fill_placeholders(probe.read.params, time.time()), headers=h))
    if probe.write:
        create = CATALOGUE.endpoints[probe.write.create_endpoint]
        assert_forbidden(emu.request(create.method, emu.api("EU1", create.path),
                                     json=fill_placeholders(probe.write.json, time.time()), headers=h))


def test_created_items_are_per_org(emu):
    a, _ = emu.mint("EU1", client="published", org="sandbox")
    b, _ = emu.mint("EU1", client="published", user="customer", org="customer")
    created = emu.post(emu.api("EU1", "/api/v1/dashboard"), json={"title": "only-a"}, headers=emu.bearer(a)).json()
    ids_a = [d["id"] for d in emu.get(emu.api("EU1", "/api/v1/dashboard"), headers=emu.bearer(a)).json()["dashboards"]]
    ids_b = [d["id"] for d in emu.get(emu.api("EU1", "/api/v1/dashboard"), headers=emu.bearer(b)).json()["dashboards"]]
    assert created["id"] in ids_a and created["id"] not in ids_b
    assert emu.get(emu.api("EU1", f"/api/v1/dashboard/{created['id']}"), headers=emu.bearer(b)).status_code == 404
    assert emu.get(emu.api("EU1", f"/api/v1/dashboard/{created['id']}"), headers=emu.bearer(a)).json()["title"] == "only-a"


def test_users_me(emu):
    access, _ = emu.mint("EU1", scopes=["user_self_profile_read"], user="multiorg")
    body = emu.get(emu.api("EU1", "/api/v2/users/me"), headers=emu.bearer(access)).json()
    assert body["data"]["attributes"]["email"] == emu.user("EU1", "multiorg").email
    assert body["data"]["type"] == "users"


def test_webhook_create_needs_name_and_refuses_duplicates(emu):
    access, _ = emu.mint("EU1", scopes=["create_webhooks"])
    url = emu.api("EU1", "/api/v1/integration/webhooks/configuration/webhooks")
    assert emu.post(url, json={"url": "https://x"}, headers=emu.bearer(access)).status_code == 400
    assert emu.post(url, json={"name": "w1", "url": "https://x"}, headers=emu.bearer(access)).status_code == 201
    assert emu.post(url, json={"name": "w1", "url": "https://x"}, headers=emu.bearer(access)).status_code == 409


@pytest.mark.parametrize("body", [None, [], {}, "text", 5])
def test_create_with_bad_body_is_400(emu, body):
    access, _ = emu.mint("EU1")
    kw = {} if body is None else {"json": body}
    resp = emu.post(emu.api("EU1", "/api/v1/dashboard"), headers=emu.bearer(access), **kw)
    assert resp.status_code == 400 and "errors" in resp.json()


# ---- marketplace API key ----------------------------------------------------------------------

def _marketplace(emu, site="EU1", **kw):
    access, _ = emu.mint(site, **kw)
    return emu.post(emu.api(site, "/api/v2/api_keys/marketplace"), headers=emu.bearer(access))


def test_marketplace_key_lifecycle(emu):
    t = tokens(emu)
    h = emu.bearer(t["access_token"])
    resp = emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=h)
    assert resp.status_code == 201
    data = resp.json()["data"]
    assert data["type"] == "api_keys" and re.fullmatch(UUID, data["id"])
    attrs = data["attributes"]
    assert set(attrs) >= {"created_at", "key", "last4", "modified_at", "name"}
    assert re.fullmatch(r"[0-9a-f]{32}", attrs["key"]) and attrs["last4"] == attrs["key"][-4:]
    assert re.fullmatch(re.escape(emu.client("EU1").name) + r" OAuth Client API Key " + UUID, attrs["name"])
    user_id = emu.user("EU1").id
    assert data["relationships"]["created_by"]["data"] == {"type": "users", "id": user_id}
    assert data["relationships"]["modified_by"]["data"] == {"type": "users", "id": user_id}
    # the key works for intake and validation
    v = emu.get(emu.api("EU1", "/api/v1/validate"), headers={"DD-API-KEY": attrs["key"]})
    assert v.status_code == 200 and v.json() == {"valid": True}
    # a second key in the same org: 409
    again = emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=h)
    assert again.status_code == 409
    assert again.json() == {"errors": ["An API key with this name already exists"]}
    # ... also after a fresh authorization of the same org
    t2 = tokens(emu)
    assert emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=emu.bearer(t2["access_token"])).status_code == 409


def test_marketplace_key_per_org(emu):
    assert _marketplace(emu, client="published").status_code == 201
    assert _marketplace(emu, client="published", user="customer", org="customer").status_code == 201
    assert _marketplace(emu, client="published").status_code == 409


def test_marketplace_key_needs_api_keys_write(emu):
    client = emu.client("EU1")
    client.scopes.remove("api_keys_write")
    t = tokens(emu)
    assert "api_keys_write" not in t["scope"].split()
    resp = emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=emu.bearer(t["access_token"]))
    assert_forbidden(resp)
    assert not emu.store.api_keys


def test_marketplace_key_bearer_failures(emu):
    assert_forbidden(emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace")))
    assert_forbidden(emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers={"Authorization": "Bearer x"}))


def test_marketplace_key_survives_token_revocation(emu):
    t = tokens(emu)
    key = emu.post(emu.api("EU1", "/api/v2/api_keys/marketplace"), headers=emu.bearer(t["access_token"])).json()
    c = emu.client("EU1")
    emu.post("https://api.datadoghq.eu/oauth2/v1/revoke",
             data={"client_id": c.id, "client_secret": c.secret, "token": t["refresh_token"]})
    v = emu.get(emu.api("EU1", "/api/v1/validate"), headers={"DD-API-KEY": key["data"]["attributes"]["key"]})
    assert v.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"DD-API-KEY": ""}, {"DD-API-KEY": "0" * 32}, {"Authorization": "Bearer x"}],
                         ids=["none", "empty", "unknown", "bearer"])
def test_validate_refuses_bad_keys(emu, headers):
    assert_forbidden(emu.get(emu.api("EU1", "/api/v1/validate"), headers=headers))


def test_validate_key_is_per_site(emu):
    key = _marketplace(emu, client="published").json()["data"]["attributes"]["key"]
    assert emu.get(emu.api("EU1", "/api/v1/validate"), headers={"DD-API-KEY": key}).status_code == 200
    assert_forbidden(emu.get(emu.api("US3", "/api/v1/validate"), headers={"DD-API-KEY": key}))
    # the query-string form of the key is accepted too
    assert emu.get(emu.api("EU1", "/api/v1/validate"), params={"dd-api-key": key}).status_code == 200


# ---- intake and read-back ------------------------------------------------------------------------

def _key(emu, site="EU1", **kw):
    return _marketplace(emu, site, **kw).json()["data"]["attributes"]["key"]


def test_series_then_query_reads_the_point_back(emu):
    key = _key(emu)
    now = int(time.time())
    body = {"series": [{"metric": "ddoauth.probe.roundtrip", "type": 3, "tags": ["env:test", "probe:1"],
                        "points": [{"timestamp": now - 10, "value": 42.5}]}]}
    resp = emu.post(emu.api("EU1", "/api/v2/series"), json=body, headers={"DD-API-KEY": key})
    assert resp.status_code == 202 and resp.json() == {"errors": []}
    access, _ = emu.mint("EU1", scopes=["timeseries_query", "metrics_read"])
    q = emu.get(emu.api("EU1", "/api/v1/query"), headers=emu.bearer(access),
                params={"from": now - 60, "to": now, "query": "avg:ddoauth.probe.roundtrip{env:test}"})
    assert q.status_code == 200
    series = q.json()["series"]
    assert len(series) == 1 and series[0]["pointlist"] == [[(now - 10) * 1000, 42.5]]
    # the tag filter and the time range apply
    none = emu.get(emu.api("EU1", "/api/v1/query"), headers=emu.bearer(access),
                   params={"from": now - 60, "to": now, "query": "avg:ddoauth.probe.roundtrip{env:prod}"})
    assert none.json()["series"] == []
    old = emu.get(emu.api("EU1", "/api/v1/query"), headers=emu.bearer(access),
                  params={"from": now - 7200, "to": now - 3600, "query": "ddoauth.probe.roundtrip{*}"})
    assert old.json()["series"] == []
    names = emu.get(emu.api("EU1", "/api/v1/metrics"), headers=emu.bearer(access), params={"from": now - 60})
    assert "ddoauth.probe.roundtrip" in names.json()["metrics"]
    # another org does not see it
    other, _ = emu.mint("EU1", client="published", user="customer", org="customer", scopes=["timeseries_query"])
    q = emu.get(emu.api("EU1", "/api/v1/query"), headers=emu.bearer(other),
                params={"from": now - 60, "to": now, "query": "avg:ddoauth.probe.roundtrip{*}"})
    assert q.json()["series"] == []


@pytest.mark.parametrize("body", [
    {}, {"series": "x"}, {"series": [{"metric": "m"}]}, {"series": [{"metric": "m", "points": [{"value": 1}]}]},
    {"series": [{"metric": "m", "points": [{"timestamp": "x", "value": 1}]}]}, [1, 2],
    {"series": [{"metric": "m", "points": [5]}]},
])
def test_series_bad_payloads_400(emu, body):
    key = _key(emu)
    resp = emu.post(emu.api("EU1", "/api/v2/series"), json=body, headers={"DD-API-KEY": key})
    assert resp.status_code == 400 and resp.json()["errors"]


def test_series_needs_api_key(emu):
    access, _ = emu.mint("EU1")
    assert_forbidden(emu.post(emu.api("EU1", "/api/v2/series"), json={"series": []}, headers=emu.bearer(access)))


@pytest.mark.parametrize("query", ["", "no braces", "avg:{*}"])
def test_query_parse_errors_400(emu, query):
    access, _ = emu.mint("EU1", scopes=["timeseries_query"])
    resp = emu.get(emu.api("EU1", "/api/v1/query"), headers=emu.bearer(access), params={"from": 1, "to": 2, "query": query})
    assert resp.status_code == 400


def test_service_check(emu):
    key = _key(emu)
    resp = emu.post(emu.api("EU1", "/api/v1/check_run"), json={"check": "ddoauth.ok", "status": 0},
                    headers={"DD-API-KEY": key})
    assert resp.status_code == 202
    assert emu.store.service_checks[-1]["check"] == "ddoauth.ok"
    assert emu.post(emu.api("EU1", "/api/v1/check_run"), json={"check": "x"}, headers={"DD-API-KEY": key}).status_code == 400


@pytest.mark.parametrize("path", ["/api/v2/logs", "/v1/input"])
def test_logs_intake_then_search(emu, path):
    key = _key(emu)
    resp = emu.post(f"https://http-intake.logs.datadoghq.eu{path}", headers={"DD-API-KEY": key},
                    json=[{"message": "ddoauth-probe log line 1", "service": "ddoauth", "ddtags": "env:test"},
                          {"message": "another"}])
    assert resp.status_code == 202
    reader, _ = emu.mint("EU1", scopes=["logs_read_data"])
    found = emu.get(emu.api("EU1", "/api/v2/logs/events"), headers=emu.bearer(reader),
                    params={"filter[query]": "ddoauth-probe"}).json()["data"]
    assert [e["attributes"]["message"] for e in found] == ["ddoauth-probe log line 1"]
    assert found[0]["attributes"]["service"] == "ddoauth" and found[0]["type"] == "log"
    everything = emu.get(emu.api("EU1", "/api/v2/logs/events"), headers=emu.bearer(reader)).json()["data"]
    assert len(everything) == 2
    # without logs_read_data: 403
    access, _ = emu.mint("EU1")
    assert_forbidden(emu.get(emu.api("EU1", "/api/v2/logs/events"), headers=emu.bearer(access)))


def test_logs_intake_single_object_and_errors(emu):
    key = _key(emu)
    url = "https://http-intake.logs.datadoghq.eu/api/v2/logs"
    assert emu.post(url, headers={"DD-API-KEY": key}, json={"message": "one"}).status_code == 202
    assert emu.post(url, headers={"DD-API-KEY": key}, json=[]).status_code == 400
    assert emu.post(url, headers={"DD-API-KEY": key}, json=[{"msg": "x"}]).status_code == 400
    assert_forbidden(emu.post(url, json={"message": "no key"}))
    # the logs intake lives on its own host only
    assert emu.post(emu.api("EU1", "/api/v2/logs"), headers={"DD-API-KEY": key}, json={"message": "x"}).status_code == 404


def test_well_known_sites(emu):
    resp = emu.get("https://api.datadoghq.com/api/v2/oauth2/.well-known/sites")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/vnd.api+json")
    body = resp.json()
    assert body["data"]["id"] == "prod" and body["data"]["type"] == "env"
    assert sorted(body["data"]["attributes"]["sites"]) == sorted(
        ["app.datadoghq.com", "app.datadoghq.eu", "us5.datadoghq.com", "us3.datadoghq.com", "ap1.datadoghq.com"])
    assert emu.get("https://api.datadoghq.eu/api/v2/oauth2/.well-known/sites").json() == body


# ---- rate limits ----------------------------------------------------------------------------------

def test_rate_limit_headers_present(emu):
    access, _ = emu.mint("EU1")
    resp = dash(emu, **emu.bearer(access))
    h = resp.headers
    assert h["x-ratelimit-limit"] == "6000" and h["x-ratelimit-period"] == "60"
    assert int(h["x-ratelimit-remaining"]) == 5999
    assert 1 <= int(h["x-ratelimit-reset"]) <= 60
    assert h["x-ratelimit-name"] == "list-dashboards"
    assert int(dash(emu, **emu.bearer(access)).headers["x-ratelimit-remaining"]) == 5998
    # also on errors and on the OAuth endpoints
    assert "x-ratelimit-limit" in dash(emu).headers
    assert emu.post(emu.token_url("EU1"), data={}).headers["x-ratelimit-name"] == "oauth_token"


def test_rate_limit_429(emu):
    access, _ = emu.mint("EU1")
    emu.behaviour(rate_limits={"*": {"limit": 3, "period": 60}})
    seen = [dash(emu, **emu.bearer(access)) for _ in range(4)]
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["2", "1", "0", "0"]
    limited = seen[-1]
    assert limited.json() == {"errors": ["Too many requests"]}
    for name in ("limit", "period", "remaining", "reset", "name"):
        assert f"x-ratelimit-{name}" in limited.headers
    assert limited.headers["x-ratelimit-limit"] == "3" and limited.headers["x-ratelimit-period"] == "60"
    # other buckets and other sites have their own windows
    assert emu.get(emu.api("EU1", "/api/v1/hosts"), headers=emu.bearer(access)).status_code == 200
    us3, _ = emu.mint("US3")
    assert dash(emu, "US3", **emu.bearer(us3)).status_code == 200
    # the next calendar-aligned window lets requests through again
    emu.advance(60)
    assert dash(emu, **emu.bearer(access)).status_code == 200


def test_rate_limit_per_bucket(emu):
    emu.behaviour(rate_limits={"oauth_token": {"limit": 1, "period": 3600}})
    assert emu.post(emu.token_url("EU1"), data={"grant_type": "x"}).status_code == 401
    limited = emu.post(emu.token_url("EU1"), data={"grant_type": "x"})
    assert limited.status_code == 429 and limited.headers["x-ratelimit-name"] == "oauth_token"
    assert limited.headers["x-ratelimit-limit"] == "1"
    # the alias shares the bucket; dashboards do not
    assert emu.post(emu.token_url("EU1", alias=True), data={"grant_type": "x"}).status_code == 429
    access, _ = emu.mint("EU1")
    assert dash(emu, **emu.bearer(access)).status_code == 200


def test_rate_limits_only_on_api_hosts(emu):
    emu.behaviour(rate_limits={"*": {"limit": 1, "period": 60}})
    for _ in range(3):
        resp = emu.get("https://app.datadoghq.eu/account/login")
        assert resp.status_code == 200 and "x-ratelimit-limit" not in resp.headers
        assert emu.control("GET", "state").status_code == 200


@pytest.mark.parametrize("conf", [{"*": {"limit": 0, "period": 60}}, {"*": {"limit": 3}}, {"*": 5}, [1],
                                  {"*": {"limit": "x", "period": 60}}, '{"*": {"limit": 1e400, "period": 60}}',
                                  '{"*": {"limit": NaN, "period": 60}}', {"*": {"limit": 3, "period": -1}},
                                  {"*": {"limit": 3, "period": None}}])
def test_bad_rate_limit_config_is_400(emu, conf):
    if isinstance(conf, str):  # not expressible through json.dumps: send the raw text
        resp = emu.post("https://api.datadoghq.com/_emulator/behaviour", content='{"rate_limits": %s}' % conf,
                        headers={"Content-Type": "application/json"})
    else:
        resp = emu.control("POST", "behaviour", {"rate_limits": conf})
    assert resp.status_code == 400 and resp.json()["errors"]
    access, _ = emu.mint("EU1")
    assert dash(emu, **emu.bearer(access)).status_code == 200
