"""Client-secret rotation regression.

Datadog: "Only one secret can be active at a time. After you regenerate your secret, the existing
secret is deleted. You do not need to re-authorize the integration." So after a rotation the new
secret works, the old one is refused at once, refresh tokens from before keep refreshing, and the
API key created before keeps working. Run `baseline` before the rotation and `verify` after it.
"""
import time

import allure
import pytest

from fixtures.grants import authorize, complete_grant, oauth_client
from harness.checks import api, token
from suites.probes import identity_probe

pytestmark = [allure.feature("secret rotation"), allure.severity(allure.severity_level.CRITICAL)]


def _shape(body: dict) -> dict:
    """The protocol behaviour a rotation must not change (no values: they are secrets)."""
    return {"fields": sorted(body), "token_type": str(body.get("token_type", "")).lower(),
            "expires_in": body.get("expires_in"), "scope": sorted(str(body.get("scope", "")).split())}


@pytest.mark.rotation_phase("baseline")
@allure.story("baseline")
def test_rotation_baseline(target, browser_sessions, http, verify, rotation_state, recorder):
    grant = complete_grant(http, authorize(browser_sessions, target))
    verify(token.token_fields, grant.tokens)
    client = oauth_client(http, target, grant.authorization.domain)
    refreshed = client.refresh(grant.refresh_token)
    verify(token.token_ok, refreshed)
    refresh_token = refreshed.json.get("refresh_token") or grant.refresh_token  # follow rotation if any
    state = {"target": target.name, "domain": grant.authorization.domain, "client_id": target.client.id,
             "refresh_token": refresh_token, "access_token": refreshed.json["access_token"],
             "behaviour": _shape(grant.tokens), "taken_at": time.time(), "api_key": None}
    if "api_keys_write" in target.client.scopes:
        made = client.api("POST", "/api/v2/api_keys/marketplace", refreshed.json["access_token"], label="create API key")
        if made.status == 201:
            data = made.json["data"]
            state["api_key"] = {"id": data["id"], "key": data["attributes"]["key"]}
        else:
            recorder.warning(f"API key not created before rotation ({made.status}): the key check will be skipped")
    rotation_state.save(state)
    allure.attach(f"baseline saved for {target.name} (private state file, not attached)", name="baseline",
                  attachment_type=allure.attachment_type.TEXT)


def _baseline(rotation_state, target):
    state = rotation_state.load()
    if state.get("client_id") != target.client.id:
        pytest.fail("the baseline was taken for another client id: take a new baseline")
    return state


@pytest.mark.rotation_phase("verify")
@allure.story("new secret")
def test_rotated_secret_new_works(target, browser_sessions, http, verify):
    grant = complete_grant(http, authorize(browser_sessions, target))  # code exchange with the new secret
    verify(token.token_fields, grant.tokens)
    refreshed = oauth_client(http, target, grant.authorization.domain).refresh(grant.refresh_token)
    verify(token.token_ok, refreshed)


@pytest.mark.rotation_phase("verify")
@allure.story("old secret")
def test_rotated_secret_old_refused(target, browser_sessions, http, verify, rotation_state):
    old = target.client.previous_secret
    if not old:
        pytest.fail("the previous secret is unknown: set <SECRET_VAR>_PREVIOUS in .env (or client.previous_secret)")
    if old == target.client.secret:  # the operator's setup, not Datadog's behaviour
        pytest.fail("the previous secret equals the current one: was the secret rotated?")
    state = _baseline(rotation_state, target)
    auth = authorize(browser_sessions, target)
    client = oauth_client(http, target, auth.domain)
    ex = client.exchange_code(auth.code, target.redirect_uri, auth.pkce.verifier, secret=old)
    verify(token.oauth_error, ex, 401, ("invalid_client",))  # SR-01: deleted at once
    verify(token.oauth_error, client.refresh(state["refresh_token"], secret=old), 401, ("invalid_client",))


@pytest.mark.rotation_phase("verify")
@allure.story("refresh token")
def test_refresh_survives_rotation(target, http, verify, rotation_state):
    """SR-02: "You do not need to re-authorize the integration"."""
    state = _baseline(rotation_state, target)
    client = oauth_client(http, target, state["domain"])
    ex = client.refresh(state["refresh_token"])
    verify(token.token_ok, ex)
    probe = identity_probe(target)
    if probe is not None:
        verify(api.api_success, probe(client, ex.json["access_token"]))
    if ex.json.get("refresh_token"):  # keep following rotation for the next verify
        rotation_state.save({**state, "refresh_token": ex.json["refresh_token"]})


@pytest.mark.rotation_phase("verify")
@allure.story("api key")
def test_api_key_survives_rotation(target, http, verify, rotation_state):
    state = _baseline(rotation_state, target)
    if not state.get("api_key"):
        pytest.skip("no API key was created at baseline")
    client = oauth_client(http, target, state["domain"])
    ex = client.api("GET", "/api/v1/validate", None, headers={"DD-API-KEY": state["api_key"]["key"]},
                    label="validate pre-rotation API key")
    verify(api.api_success, ex, 200, "valid")


@pytest.mark.rotation_phase("verify")
@allure.story("behaviour")
def test_behaviour_matches_baseline(target, browser_sessions, http, verify, rotation_state, recorder):
    state = _baseline(rotation_state, target)
    grant = complete_grant(http, authorize(browser_sessions, target))
    now = _shape(grant.tokens)
    verify(token.token_answers_unchanged, state["behaviour"], now)
    probe = identity_probe(target)
    if probe is not None:  # SR-03: do access tokens from before the rotation live on? (undocumented)
        ex = probe(oauth_client(http, target, state["domain"]), state["access_token"])
        recorder.observe("SR-03", f"pre-rotation access token answers {ex.status}")
