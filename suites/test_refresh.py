"""Refresh: new access tokens from the long-lived refresh token, whatever rotation Datadog uses."""
import allure

from fixtures.grants import oauth_client
from harness.checks import api, refresh
from suites.probes import identity_probe
from suites.token_answers import verify_token_answer

pytestmark = [allure.feature("refresh"), allure.severity(allure.severity_level.CRITICAL)]


def _granted(grant, target) -> tuple[str, ...]:
    """The grant's scope: what the code exchange answered, else (scope omitted: unchanged) the client's."""
    scope = grant.tokens.get("scope")
    return tuple(scope.split()) if isinstance(scope, str) else tuple(target.client.scopes)


def _verify_refresh_answer(verify, ex, granted: tuple[str, ...]) -> dict:
    """Every refresh answer is checked like a code answer (RFC 6749 §6 issues it "as described in
    Section 5.1"): 200 JSON, its fields and type, expires_in, the caching headers, and a scope no wider
    than the grant's. Only a new refresh_token is optional here."""
    body = verify_token_answer(verify, ex)
    verify(refresh.refresh_answer_fields, body)
    verify(refresh.refresh_scope_within_grant, body, granted)
    return body


@allure.story("refresh grant")
def test_refresh_returns_working_access_token(target, fresh_grant, http, verify, recorder):
    grant = fresh_grant()
    granted = _granted(grant, target)
    client = oauth_client(http, target, grant.authorization.domain)
    first = client.refresh(grant.refresh_token)
    body = _verify_refresh_answer(verify, first, granted)
    verify(refresh.refresh_new_access_token, body, grant.access_token)
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
        _verify_refresh_answer(verify, again, granted)  # an unrotated refresh token keeps working (no expiry, docs)
    else:
        _verify_refresh_answer(verify, client.refresh(body["refresh_token"]), granted)


@allure.story("refresh grant")
def test_refresh_after_access_token_expiry(target, expire_access_token, fresh_grant, http, verify):
    """Refresh tokens never expire (Datadog docs): refreshing after the access token died must work."""
    grant = fresh_grant()
    client = oauth_client(http, target, grant.authorization.domain)
    probe = identity_probe(target)
    if probe is not None:
        probe.prove(client, grant.access_token)  # so that a refusal after the expiry is about the expiry
    expire_access_token(grant.access_token)
    if probe is not None:
        verify(api.api_forbidden, probe(client, grant.access_token))
    ex = client.refresh(grant.refresh_token)
    _verify_refresh_answer(verify, ex, _granted(grant, target))
    if probe is not None:
        verify(api.api_success, probe(client, ex.json["access_token"]))
