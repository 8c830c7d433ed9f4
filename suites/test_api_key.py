"""API key: the marketplace key is created once per org, validates, and carries data to the site."""
import time
import uuid

import allure
import pytest

from fixtures.grants import authorize, complete_grant, oauth_client
from harness.checks import api, token

pytestmark = [allure.feature("api key"), allure.severity(allure.severity_level.CRITICAL), pytest.mark.org_api_keys]
AK = "api_keys_write"


def _needs_scope(target):
    if AK not in target.client.scopes:
        pytest.skip(f"the client is not configured with {AK}")


@allure.story("marketplace key")
def test_marketplace_key_lifecycle(target, shared_grant, http, verify, recorder, emulator_control):
    _needs_scope(target)
    client = oauth_client(http, target, shared_grant.authorization.domain)
    domain = shared_grant.authorization.domain
    created = client.api("POST", "/api/v2/api_keys/marketplace", shared_grant.access_token, label="create API key")
    if created.status == 409:
        pytest.fail("[DD-ENDPOINTS-APIKEY] an OAuth API key already exists in this org (a previous run or install): "
                    "delete it on the API Keys page, then run again")
    verify(api.api_key_created, created)
    data = created.json["data"]
    attrs = data["attributes"]
    key_id, key = data["id"], attrs["key"]
    allure.dynamic.parameter("api key id", key_id, excluded=True)
    allure.dynamic.parameter("api key last4", attrs.get("last4", key[-4:]), excluded=True)
    try:
        name = attrs.get("name", "")
        if "OAuth Client API Key" not in name:
            recorder.warning(f"[DD-TROUBLESHOOT-APIKEY] key name {name!r} lacks 'OAuth Client API Key'")
        headers = {"DD-API-KEY": key, "Content-Type": "application/json"}
        valid = client.api("GET", "/api/v1/validate", None, headers=headers, label="validate API key")
        verify(api.api_success, valid, 200, "valid")
        verify(api.api_key_valid, valid)
        marker = f"ddoauth-{uuid.uuid4().hex[:12]}"
        now = int(time.time())
        series = {"series": [{"metric": "ddoauth.probe", "type": 3, "points": [{"timestamp": now, "value": 42}],
                              "tags": [f"run:{marker}"]}]}
        verify(api.api_success, client.api("POST", "/api/v2/series", None, headers=headers, json=series,
                                           label="submit metric"), 202)
        log = [{"message": f"ddoauth probe {marker}", "service": "ddoauth", "ddtags": f"run:{marker}"}]
        verify(api.api_success, client.api("POST", "/api/v2/logs", None, headers=headers, json=log,
                                           host=f"http-intake.logs.{domain}", label="submit log"), 202)
        if "timeseries_query" in target.client.scopes:
            points = _poll(lambda: client.api("GET", "/api/v1/query", shared_grant.access_token, params={
                "from": now - 600, "to": now + 600, "query": f"avg:ddoauth.probe{{run:{marker}}}"}, label="read metric"),
                lambda ex: ex.status == 200 and (ex.json or {}).get("series"))
            verify(api.submitted_data_returned, points, "metric point (through timeseries_query)")
        if "logs_read_data" in target.client.scopes:
            found = _poll(lambda: client.api("GET", "/api/v2/logs/events", shared_grant.access_token,
                                             params={"filter[query]": marker}, label="read log"),
                          lambda ex: ex.status == 200 and (ex.json or {}).get("data"))
            verify(api.submitted_data_returned, found, "log line (through the logs search)")
        elif emulator_control is not None:
            # no logs_read_data scope: the evidence is on Datadog's side (the emulator's state)
            logs = emulator_control.call("GET", "state")["sites"][target.site.key]["logs"]
            arrived = [entry for entry in logs if marker in entry["message"]]
            verify(api.submitted_data_returned, arrived, "log line (accepted by the intake with 202, absent from "
                                                         "Datadog's logs)")
        else:
            recorder.warning("log arrival not verifiable: the client lacks logs_read_data")
        second = client.api("POST", "/api/v2/api_keys/marketplace", shared_grant.access_token, label="create again")
        # "Only one API key can exist per Datadog organization" (Datadog docs)
        verify(token.oauth_error, second, 409, text="already exists")
    finally:
        if emulator_control is not None:
            emulator_control.call("DELETE", f"api-keys/{key_id}")
        else:
            recorder.warning(f"API key {key_id} (last4 {attrs.get('last4')}) stays in the org: "
                             "disable it on the API Keys page if this org is not a sandbox")


def _poll(call, done, timeout: float = 30.0, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        ex = call()
        if done(ex):
            return ex
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


@allure.story("marketplace key")
def test_marketplace_key_needs_api_keys_write(target, browser_sessions, http, verify):
    _needs_scope(target)
    narrower = [s for s in target.client.scopes if s != AK]
    if not narrower:
        pytest.skip("the client has no scope besides api_keys_write")
    from harness.http.oauth_client import target_authorize_url
    from core.pkce import PKCE
    from fixtures.grants import new_state
    pkce, state = PKCE.generate(), new_state()
    url = target_authorize_url(target, state, pkce, scope=" ".join(narrower))
    auth = authorize(browser_sessions, target, pkce=pkce, state=state, url=url, back_channel=True)
    if auth.code is None:
        pytest.skip(f"Datadog does not narrow scopes at authorize for this client: "
                    f"{auth.callback.get('error') or auth.flow.error_text}")
    grant = complete_grant(http, auth)
    client = oauth_client(http, target, auth.domain)
    ex = client.api("POST", "/api/v2/api_keys/marketplace", grant.access_token, label="create without scope")
    verify(api.api_forbidden, ex)
