"""Refresh: new access tokens from the long-lived refresh token, whatever rotation Datadog uses."""
import allure

from fixtures.grants import oauth_client
from harness.checks import api, token
from suites.probes import identity_probe

pytestmark = [allure.feature("refresh"), allure.severity(allure.severity_level.CRITICAL)]


@allure.story("refresh grant")
def test_refresh_returns_working_access_token(target, fresh_grant, http, verify, recorder):
    grant = fresh_grant()
    client = oauth_client(http, target, grant.authorization.domain)
    first = client.refresh(grant.refresh_token)
    verify(token.token_ok, first)
    body = first.json
    assert body.get("access_token") and body["access_token"] != grant.access_token, \
        "[RFC6749-6] refresh must return a new access token"
    verify(token.token_expires_in, body)
    verify(token.token_no_store, first)
    probe = identity_probe(target)
    if probe is not None:
        verify(api.api_success, probe(client, body["access_token"]))
    # Rotation is undocumented: record what Datadog does, and follow it
    rotated = "refresh_token" in body and body["refresh_token"] != grant.refresh_token
    recorder.observe("DD-REFRESH-ROTATION", "new refresh token" if rotated else
                     ("same refresh token" if "refresh_token" in body else "refresh_token omitted"))
    again = client.refresh(grant.refresh_token)
    recorder.observe("DD-REFRESH-OLD-TOKEN-AFTER-ROTATION", f"status {again.status}")
    if not rotated:
        verify(token.token_ok, again)  # an unrotated refresh token must keep working (no expiry, docs)
    else:
        nxt = client.refresh(body["refresh_token"])
        verify(token.token_ok, nxt)


@allure.story("refresh grant")
def test_refresh_after_access_token_expiry(target, expire_access_token, fresh_grant, http, verify):
    """Refresh tokens never expire (Datadog docs): refreshing after the access token died must work."""
    grant = fresh_grant()
    client = oauth_client(http, target, grant.authorization.domain)
    expire_access_token(grant.access_token)
    probe = identity_probe(target)
    if probe is not None:
        verify(api.api_forbidden, probe(client, grant.access_token))
    ex = client.refresh(grant.refresh_token)
    verify(token.token_ok, ex)
    if probe is not None:
        verify(api.api_success, probe(client, ex.json["access_token"]))
