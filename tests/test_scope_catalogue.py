"""Unit tests for the scope catalogue (harness/scopes.py + core/data/scopes.yaml)."""
from __future__ import annotations

import copy

import pytest
import yaml

from core.errors import ConfigError
from core.scopes import Endpoint, WriteProbe, fill_placeholders, load_catalogue

READ_SCOPES = [
    "dashboards_read", "monitors_read", "monitors_downtime", "metrics_read", "timeseries_query",
    "events_read", "incident_read", "hosts_read", "user_access_read", "user_self_profile_read",
    "slos_read", "synthetics_read", "teams_read", "usage_read", "apm_service_catalog_read", "cases_read",
]
WRITE_SCOPES = [
    "dashboards_write", "monitors_write", "monitors_downtime", "incident_write", "slos_write",
    "teams_manage", "create_webhooks", "cases_write",
]
# Partner scopes without a probe (facts §6.1) that must still be described for the consent page.
DESCRIBED_ONLY = [
    "apm_read", "apm_api_catalog_read", "incident_settings_write", "incident_notification_settings_write",
    "ci_visibility_read", "synthetics_private_location_read", "synthetics_global_variable_read",
    "continuous_profiler_pgo_read", "code_analysis_read", "billing_read", "security_monitoring_signals_read",
    "security_monitoring_rules_read", "security_monitoring_suppressions_read", "security_monitoring_filters_read",
    "security_monitoring_findings_read", "workflows_read", "cloud_cost_management_read", "test_optimization_read",
    "synthetics_write", "apm_service_catalog_write", "logs_read_data", "data_scanner_read", "security_pipelines_read",
]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


# ---------------------------------------------------------------- the shipped file


def test_shipped_catalogue_loads_and_is_cached(catalogue):
    assert load_catalogue() is catalogue
    assert len(catalogue.endpoints) >= 30
    assert len(catalogue.scopes) >= 60


@pytest.mark.parametrize("scope", READ_SCOPES)
def test_read_scope_has_read_probe_allowed_by_the_scope_alone(catalogue, scope):
    probe = catalogue.probe_for(scope)
    assert probe is not None and probe.read is not None, scope
    endpoint = catalogue.endpoints[probe.read.endpoint]
    assert endpoint.method == "GET"
    assert endpoint.allows({scope})
    assert not endpoint.allows(set())
    assert set(endpoint.required_params) <= set(probe.read.params)
    assert probe.read.expect_json_key


@pytest.mark.parametrize("scope", WRITE_SCOPES)
def test_write_scope_creates_and_deletes_in_one_collection(catalogue, scope):
    probe = catalogue.probe_for(scope)
    assert probe is not None and probe.write is not None, scope
    create = catalogue.endpoints[probe.write.create_endpoint]
    delete = catalogue.endpoints[probe.write.delete_endpoint]
    assert (create.action, delete.action) == ("create", "delete")
    assert create.collection == delete.collection
    assert "{id}" in delete.path
    assert any(scope in need for need in create.required_scope_sets())
    assert "ddoauth-probe" in yaml.safe_dump(probe.write.json)


def test_every_probe_in_the_file_is_consistent(catalogue):
    for scope in catalogue.scopes.values():
        if scope.probe is None:
            continue
        if scope.probe.read:
            assert catalogue.endpoints[scope.probe.read.endpoint].allows({scope.name}), scope.name
        if scope.probe.write:
            create = catalogue.endpoints[scope.probe.write.create_endpoint]
            collection = catalogue.collections[create.collection]
            if collection.envelope == "v2":  # a JSON:API body names the collection's type
                assert scope.probe.write.json["data"]["type"] == collection.type, scope.name
                assert scope.probe.write.id_path == "data.id", scope.name


def test_v2_create_and_delete_statuses_follow_the_openapi(catalogue):
    e = catalogue.endpoints
    assert [e[i].success_status for i in ("create-team", "create-incident", "create-case-project")] == [201] * 3
    assert e["create-downtime"].success_status == 200
    assert [e[i].success_status for i in ("delete-team", "delete-incident", "delete-downtime")] == [204] * 3
    assert [e[i].success_status for i in ("create-dashboard", "create-monitor", "create-slo")] == [200] * 3
    assert e["create-webhook"].success_status == 201


def test_api_keys_write_is_the_only_private_scope_and_has_no_probe(catalogue):
    assert [s.name for s in catalogue.scopes.values() if s.private] == ["api_keys_write"]
    assert catalogue.probe_for("api_keys_write") is None
    endpoint, params = catalogue.endpoint_for("POST", "/api/v2/api_keys/marketplace")
    assert (endpoint.action, endpoint.special, endpoint.success_status) == ("special", "api_keys_marketplace", 201)
    assert endpoint.allows({"api_keys_write"}) and not endpoint.allows({"dashboards_write"})
    assert params == {}


def test_special_endpoints_and_required_params(catalogue):
    e = catalogue.endpoints
    assert (e["query-timeseries"].special, e["query-timeseries"].required_params) == (
        "timeseries_query", ("from", "to", "query"))
    assert (e["list-metrics"].special, e["list-metrics"].required_params) == ("metrics_list", ("from",))
    assert e["list-events"].required_params == ("start", "end")
    assert (e["users-me"].path, e["users-me"].special) == ("/api/v2/users/me", "users_me")
    assert catalogue.probe_for("timeseries_query").read.expect_json_key == "series"
    assert catalogue.probe_for("metrics_read").read.expect_json_key == "metrics"
    assert catalogue.probe_for("events_read").read.expect_json_key == "events"


@pytest.mark.parametrize("scope", DESCRIBED_ONLY)
def test_partner_scopes_without_probe_are_described(catalogue, scope):
    entry = catalogue.get(scope)
    assert entry is not None and entry.description.endswith(".")
    if scope not in WRITE_SCOPES + READ_SCOPES:
        assert catalogue.probe_for(scope) is None and not entry.verifiable


def test_describe_uses_datadog_wording_and_falls_back_to_the_name(catalogue):
    assert catalogue.describe("dashboards_read") == "View dashboards."
    assert catalogue.describe("timeseries_query") == "Query Timeseries data."
    assert catalogue.describe("events_read") == "Read Events data."
    assert catalogue.describe("no_such_scope") == "no_such_scope"
    assert catalogue.get("no_such_scope") is None and catalogue.probe_for("no_such_scope") is None


# ---------------------------------------------------------------- scope semantics


def test_nested_list_means_all_of(catalogue):
    delete_team = catalogue.endpoints["delete-team"]
    assert delete_team.required_scope_sets() == [frozenset({"teams_read", "teams_manage"})]
    assert delete_team.allows({"teams_read", "teams_manage", "other"})
    assert not delete_team.allows({"teams_manage"})
    assert not delete_team.allows({"teams_read"})


def test_any_of_and_all_of_mixed():
    endpoint = Endpoint("x", "GET", "/x", "special", ("a", ("b", "c")), 200, special="users_me")
    assert endpoint.required_scope_sets() == [frozenset({"a"}), frozenset({"b", "c"})]
    assert endpoint.allows({"a"})
    assert endpoint.allows(["b", "c"])
    assert not endpoint.allows({"b"})
    assert not endpoint.allows(set())


def test_empty_scopes_mean_any_token():
    endpoint = Endpoint("x", "GET", "/x", "special", (), 200, special="users_me")
    assert endpoint.required_scope_sets() == [frozenset()]
    assert endpoint.allows(set())


def test_endpoints_for_scope(catalogue):
    ids = {e.id for e in catalogue.endpoints_for_scope("teams_manage")}
    assert ids == {"create-team", "delete-team"}


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize("method,path,expected,params", [
    ("GET", "/api/v1/dashboard", "list-dashboards", {}),
    ("GET", "/api/v1/dashboard/abc-def-ghi", "get-dashboard", {"id": "abc-def-ghi"}),
    ("delete", "/api/v1/dashboard/abc-def-ghi", "delete-dashboard", {"id": "abc-def-ghi"}),
    ("GET", "/api/v1/query?from=1&to=2&query=avg:x{*}", "query-timeseries", {}),
    ("GET", "/api/v2/users/me", "users-me", {}),                 # literal beats /api/v2/users/{id}
    ("GET", "/api/v2/users/0f3c", "get-user", {"id": "0f3c"}),
    ("GET", "/api/v1/monitor/search", "search-monitors", {}),    # literal beats /api/v1/monitor/{id}
    ("GET", "/api/v2/cases/projects", "list-case-projects", {}),  # literal beats /api/v2/cases/{id}
    ("DELETE", "/api/v1/integration/webhooks/configuration/webhooks/ddoauth-probe-1",
     "delete-webhook", {"id": "ddoauth-probe-1"}),
])
def test_endpoint_for_matches_templates(catalogue, method, path, expected, params):
    endpoint, found = catalogue.endpoint_for(method, path)
    assert (endpoint.id, found) == (expected, params)


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/v1/dashboard/abc-def-ghi"),   # no such method on the template
    ("GET", "/api/v1/dashboard/abc/def"),        # {id} is one segment
    ("GET", "/api/v1/dashboard/"),
    ("GET", "/api/v1/dashboards"),
    ("GET", "/api/v9/nothing"),
    ("POST", "/api/v1/events"),                  # event submission is API-key only
])
def test_endpoint_for_rejects_other_routes(catalogue, method, path):
    assert catalogue.endpoint_for(method, path) is None


def test_build_path_and_match_round_trip(catalogue):
    endpoint = catalogue.endpoints["get-dashboard"]
    path = endpoint.build_path(id="abc-def-ghi")
    assert path == "/api/v1/dashboard/abc-def-ghi"
    assert endpoint.match(path) == {"id": "abc-def-ghi"}


# ---------------------------------------------------------------- placeholders and ids


def test_fill_placeholders():
    now = 1_700_000_000.7
    filled = fill_placeholders({
        "from": "{now_minus_3600}", "to": "{now}", "query": "avg:system.load.1{*}",
        "hour": "{now_minus_86400:%Y-%m-%dT%H}", "name": "ddoauth-probe-{now}",
        "body": {"items": [{"at": "{now}"}], "n": 3},
    }, now)
    assert filled == {
        "from": 1_699_996_400, "to": 1_700_000_000, "query": "avg:system.load.1{*}",
        "hour": "2023-11-13T22", "name": "ddoauth-probe-1700000000",
        "body": {"items": [{"at": 1_700_000_000}], "n": 3},
    }
    assert fill_placeholders(None, now) == {}


def test_fill_placeholders_does_not_touch_the_catalogue(catalogue):
    params = catalogue.probe_for("events_read").read.params
    before = copy.deepcopy(params)
    fill_placeholders(params, 1_700_000_000)
    assert params == before


def test_extract_id_follows_dotted_paths(catalogue):
    slo = catalogue.probe_for("slos_write").write
    assert slo.extract_id({"data": [{"id": "abc123"}], "errors": []}) == "abc123"
    team = catalogue.probe_for("teams_manage").write
    assert team.extract_id({"data": {"id": "t-1", "type": "team"}}) == "t-1"
    assert WriteProbe("c", "d", "id").extract_id({"id": 42}) == "42"
    with pytest.raises(KeyError, match="data.id"):
        team.extract_id({"errors": ["Forbidden"]})


# ---------------------------------------------------------------- validation

BASE = {
    "collections": {
        "dashboards": {"envelope": "v1", "list_key": "dashboards", "id_kind": "dashboard", "seed_count": 1},
        "teams": {"envelope": "v2", "type": "team", "id_kind": "uuid", "seed_count": 1},
    },
    "endpoints": [
        {"id": "list-dashboards", "method": "GET", "path": "/api/v1/dashboard", "action": "list",
         "collection": "dashboards", "scopes": ["dashboards_read"], "success_status": 200},
        {"id": "create-dashboard", "method": "POST", "path": "/api/v1/dashboard", "action": "create",
         "collection": "dashboards", "scopes": ["dashboards_write"], "success_status": 200},
        {"id": "delete-dashboard", "method": "DELETE", "path": "/api/v1/dashboard/{id}", "action": "delete",
         "collection": "dashboards", "scopes": ["dashboards_write"], "success_status": 200},
        {"id": "delete-team", "method": "DELETE", "path": "/api/v2/team/{id}", "action": "delete",
         "collection": "teams", "scopes": [["teams_read", "teams_manage"]], "success_status": 204},
        {"id": "list-metrics", "method": "GET", "path": "/api/v1/metrics", "action": "special",
         "special": "metrics_list", "scopes": ["metrics_read"], "required_params": ["from"],
         "success_status": 200},
    ],
    "scopes": {
        "dashboards_read": {"description": "View dashboards.",
                            "probe": {"read": {"endpoint": "list-dashboards", "expect_json_key": "dashboards"}}},
        "dashboards_write": {"description": "Create and change dashboards.", "probe": {"write": {
            "create": {"endpoint": "create-dashboard", "json": {"title": "ddoauth-probe"}, "id_path": "id"},
            "delete": {"endpoint": "delete-dashboard"}}}},
        "metrics_read": {"description": "View custom metrics.", "probe": {"read": {
            "endpoint": "list-metrics", "params": {"from": "{now_minus_3600}"}, "expect_json_key": "metrics"}}},
        "teams_read": {"description": "Read Teams data."},
        "teams_manage": {"description": "Manage Teams."},
    },
}


def _write(tmp_path, data, name="scopes.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def test_minimal_valid_file_loads(tmp_path):
    catalogue = load_catalogue(_write(tmp_path, BASE))
    assert set(catalogue.endpoints) == {e["id"] for e in BASE["endpoints"]}
    assert catalogue.probe_for("dashboards_write").write.delete_endpoint == "delete-dashboard"
    assert load_catalogue(_write(tmp_path, BASE)) is not catalogue  # explicit paths are not cached


def _edit(fn):
    data = copy.deepcopy(BASE)
    fn(data)
    return data


def _endpoint(data, endpoint_id):
    return next(e for e in data["endpoints"] if e["id"] == endpoint_id)


BAD = {
    "probe names an unknown endpoint": (
        lambda d: d["scopes"]["dashboards_read"]["probe"]["read"].update(endpoint="list-dashbords"),
        "scopes.dashboards_read.probe.read.endpoint", "unknown endpoint 'list-dashbords'"),
    "unknown collection": (
        lambda d: _endpoint(d, "list-dashboards").update(collection="dashbords"),
        "endpoints.list-dashboards.collection", "unknown collection 'dashbords'"),
    "duplicate endpoint id": (
        lambda d: d["endpoints"].append(copy.deepcopy(d["endpoints"][0])),
        "endpoints[5].id", "duplicate endpoint id 'list-dashboards'"),
    "special without a name": (
        lambda d: _endpoint(d, "list-metrics").pop("special"),
        "endpoints.list-metrics.special", "is missing"),
    "unknown special": (
        lambda d: _endpoint(d, "list-metrics").update(special="metrics"),
        "endpoints.list-metrics.special", "'metrics' is not one of"),
    "bad method": (
        lambda d: _endpoint(d, "list-dashboards").update(method="FETCH"),
        "endpoints.list-dashboards.method", "'FETCH' is not one of"),
    "bad action": (
        lambda d: _endpoint(d, "list-dashboards").update(action="read"),
        "endpoints.list-dashboards.action", "'read' is not one of"),
    "endpoint id not kebab-case": (
        lambda d: _endpoint(d, "list-dashboards").update(id="List_Dashboards"),
        "endpoints[0].id", "not kebab-case"),
    "non-2xx success status": (
        lambda d: _endpoint(d, "list-dashboards").update(success_status=302),
        "endpoints.list-dashboards.success_status", "2xx"),
    "delete without {id}": (
        lambda d: _endpoint(d, "delete-dashboard").update(path="/api/v1/dashboard"),
        "endpoints.delete-dashboard.path", "needs {id}"),
    "undeclared scope on an endpoint": (
        lambda d: _endpoint(d, "list-dashboards").update(scopes=["dashboards_raed"]),
        "endpoints.list-dashboards.scopes", "'dashboards_raed' is not declared"),
    "scopes not a list": (
        lambda d: _endpoint(d, "list-dashboards").update(scopes="dashboards_read"),
        "endpoints.list-dashboards.scopes", "must be a list"),
    "unknown endpoint key": (
        lambda d: _endpoint(d, "list-dashboards").update(scope=["dashboards_read"]),
        "endpoints[0].scope", "unknown key"),
    "bad envelope": (
        lambda d: d["collections"]["dashboards"].update(envelope="v3"),
        "collections.dashboards.envelope", "'v3' is not one of"),
    "v1 collection without list_key": (
        lambda d: d["collections"]["dashboards"].pop("list_key"),
        "collections.dashboards.list_key", "non-empty string"),
    "v2 collection without type": (
        lambda d: d["collections"]["teams"].pop("type"),
        "collections.teams.type", "non-empty string"),
    "bad id kind": (
        lambda d: d["collections"]["dashboards"].update(id_kind="serial"),
        "collections.dashboards.id_kind", "'serial' is not one of"),
    "missing description": (
        lambda d: d["scopes"]["teams_read"].pop("description"),
        "scopes.teams_read.description", "is missing"),
    "private not a boolean": (
        lambda d: d["scopes"]["teams_read"].update(private="yes please"),
        "scopes.teams_read.private", "true or false"),
    "read probe on an endpoint without its scope": (
        lambda d: d["scopes"]["dashboards_read"]["probe"]["read"].update(endpoint="list-metrics", params={"from": 1}),
        "scopes.dashboards_read.probe.read.endpoint", "does not take scope 'dashboards_read'"),
    "read probe lacks a required param": (
        lambda d: d["scopes"]["metrics_read"]["probe"]["read"].pop("params"),
        "scopes.metrics_read.probe.read.params", "lacks 'from'"),
    "unknown placeholder": (
        lambda d: d["scopes"]["metrics_read"]["probe"]["read"].update(params={"from": "{now_minus_an_hour}"}),
        "scopes.metrics_read.probe.read.params", "unknown placeholder"),
    "write probe deletes from another collection": (
        lambda d: d["scopes"]["dashboards_write"]["probe"]["write"]["delete"].update(endpoint="delete-team"),
        "scopes.dashboards_write.probe.write.delete.endpoint", "deletes from 'teams'"),
    "write probe create is not a create endpoint": (
        lambda d: d["scopes"]["dashboards_write"]["probe"]["write"]["create"].update(endpoint="list-dashboards"),
        "scopes.dashboards_write.probe.write.create.endpoint", "is a list endpoint"),
    "write probe without delete": (
        lambda d: d["scopes"]["dashboards_write"]["probe"]["write"].pop("delete"),
        "scopes.dashboards_write.probe.write.delete", "is missing"),
    "unknown top-level key": (
        lambda d: d.update(scope={}),
        "(top level).scope", "unknown key"),
    "missing top-level key": (
        lambda d: d.pop("endpoints"),
        "(top level).endpoints", "is missing"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_validation_error_is_one_line_naming_file_and_key(tmp_path, case):
    edit, key, problem = BAD[case]
    path = _write(tmp_path, _edit(edit))
    with pytest.raises(ConfigError) as info:
        load_catalogue(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message, message


def test_invalid_yaml_is_one_line(tmp_path):
    path = _write(tmp_path, "collections: {dashboards: [\nendpoints: -\n")
    with pytest.raises(ConfigError) as info:
        load_catalogue(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{path}: not valid YAML")


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalogue(tmp_path / "absent.yaml")


def test_empty_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match=r"\(top level\): must be a mapping"):
        load_catalogue(_write(tmp_path, ""))
