"""Revoke (RFC 7009): revoked tokens stop working; a refresh token takes its access tokens along."""
import allure
import pytest

from fixtures.grants import oauth_client
from harness.checks import api, revoke, token
from suites.probes import identity_probe

pytestmark = [allure.feature("revoke"), allure.severity(allure.severity_level.NORMAL)]


def _probe_or_skip(target):
    probe = identity_probe(target)
    if probe is None:
        pytest.skip("no read scope with a known probe: cannot tell a live token from a dead one")
    return probe


@allure.story("access token")
def test_revoked_access_token_is_refused(target, fresh_grant, http, verify):
    probe = _probe_or_skip(target)
    grant = fresh_grant()
    client = oauth_client(http, target, grant.authorization.domain)
    probe.prove(client, grant.access_token)  # a refusal below then means revoked, not "this probe never works"
    ex = client.revoke(grant.access_token, "access_token")
    verify(revoke.revoke_answered_200, ex)
    verify(api.api_forbidden, probe(client, grant.access_token))


@allure.story("refresh token")
def test_revoked_refresh_token_cascades(target, fresh_grant, http, verify):
    probe = _probe_or_skip(target)
    grant = fresh_grant()
    client = oauth_client(http, target, grant.authorization.domain)
    probe.prove(client, grant.access_token)  # a 404 is never taken as proof of revocation
    ex = client.revoke(grant.refresh_token, "refresh_token")
    verify(revoke.revoke_answered_200, ex)
    verify(token.oauth_error, client.refresh(grant.refresh_token), (400, 401), ("invalid_grant",))
    verify(api.api_forbidden, probe(client, grant.access_token))  # RFC 7009 §2.1: its access tokens die too


@allure.story("unknown token")
def test_revoke_unknown_token_is_200(target, http, verify):
    client = oauth_client(http, target)
    ex = client.revoke("ddoauth-not-a-real-token-0123456789")
    verify(revoke.revoke_answered_200, ex)


@allure.story("missing token")
def test_revoke_without_token_is_400(target, http, verify):
    """RFC 7009 §2.1: `token` is REQUIRED; a request without it is invalid_request (§2.2.1, RFC 6749 §5.2),
    and Datadog documents 400 for missing parameters. The client authenticates properly."""
    client = oauth_client(http, target)
    verify(revoke.revoke_missing_token_refused, client.revoke(None))
