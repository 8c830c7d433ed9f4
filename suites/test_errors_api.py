"""The API refuses every credential problem the way Datadog documents it: 403 {"errors":["Forbidden"]},
and an org subdomain in the API host fails before any request is made (TLS hostname check)."""
from __future__ import annotations

import secrets

import allure
import pytest

from fixtures.grants import oauth_client
from harness.checks import api, revoke
from harness.checks.api import DD_SUBDOMAIN_ADVICE
from core.errors import TargetUnavailable
from core.scopes import load_catalogue
from suites.probes import identity_probe, read_probe

pytestmark = [allure.feature("api errors"), allure.severity(allure.severity_level.CRITICAL)]

ORG_SUBDOMAIN = "ddoauth-org"  # stands for a customer's subdomain (bigcorp.datadoghq.eu)

VARIANTS = ["no_token", "garbled_token", "revoked_token",
            # real Datadog waits out the access token's hour (nightly); the timeout leaves room for it
            pytest.param("expired_token", marks=[pytest.mark.nightly, pytest.mark.timeout(3660 + 300)]),
            "missing_scope", "other_site_token", "app_key_header"]


class _HeaderOnly:
    """Runs a probe with the given headers instead of `Authorization: Bearer` (application-key style)."""

    def __init__(self, client, headers: dict):
        self.client, self.headers = client, headers

    def api(self, method, path, access_token, **kwargs):
        return self.client.api(method, path, None, headers=self.headers, **kwargs)


def _garble(token: str) -> str:
    tail = "A" * 8 if not token.endswith("A" * 8) else "B" * 8
    return token[:-8] + tail


def _absent_scope_probe(target):
    """A catalogued read probe whose endpoint the target's scopes do not open."""
    granted = set(target.client.scopes)
    for scope in sorted(load_catalogue().scopes):
        run = read_probe(scope)
        if scope not in granted and run is not None and not run.endpoint.allows(granted):
            return scope, run
    pytest.skip("every catalogued read probe is open to this client: no scope to miss")


def _other_site_target(request, target):
    for other in request.getfixturevalue("selected_targets"):
        if other.site.key != target.site.key and identity_probe(other) is not None:
            return other
    pytest.skip("no target on another site is configured: cannot present a foreign site's token")


@allure.story("forbidden")
@pytest.mark.parametrize("variant", VARIANTS)
def test_forbidden_variants(variant, target, request, shared_grant, fresh_grant, http, verify):
    probe = identity_probe(target)
    if probe is None:
        pytest.skip("no read scope with a known probe: a refusal could not be told from a broken endpoint")
    client = oauth_client(http, target, shared_grant.authorization.domain)
    # control: the same call with the shared grant's token works, so a refusal below is about the credential
    # (when it does not, the probe proves nothing: broken with the reason, never a verdict)
    probe.prove(client, shared_grant.access_token)
    allow_401 = False
    if variant == "no_token":
        ex = probe(client, None)
    elif variant == "garbled_token":
        ex = probe(client, _garble(shared_grant.access_token))
    elif variant == "revoked_token":
        grant = fresh_grant()
        own = oauth_client(http, target, grant.authorization.domain)
        probe.prove(own, grant.access_token)
        revoked = own.revoke(grant.access_token, "access_token")
        verify(revoke.revoke_answered_200, revoked)
        ex = probe(own, grant.access_token)
    elif variant == "expired_token":
        allow_401 = True  # Datadog's CLIs treat 401 and 403 alike; which one Datadog sends is undocumented
        expire = request.getfixturevalue("expire_access_token")  # skips here unless it can expire a token
        grant = fresh_grant()
        own = oauth_client(http, target, grant.authorization.domain)
        probe.prove(own, grant.access_token)
        expire(grant.access_token)
        ex = probe(own, grant.access_token)
    elif variant == "missing_scope":
        scope, run = _absent_scope_probe(target)
        allure.dynamic.parameter("scope not granted", scope)
        ex = run(client, shared_grant.access_token)
    elif variant == "other_site_token":
        other = _other_site_target(request, target)
        allure.dynamic.parameter("token from", other.name)
        other_grant = request.getfixturevalue("shared_grants").of(other)
        other_probe = identity_probe(other)
        other_probe.prove(oauth_client(http, other, other_grant.authorization.domain),
                          other_grant.access_token)  # control: valid at home
        ex = other_probe(client, other_grant.access_token)
    elif variant == "app_key_header":
        token = shared_grant.access_token
        ex = probe(_HeaderOnly(client, {"DD-API-KEY": token, "DD-APPLICATION-KEY": token}), None)
    else:  # pragma: no cover  (a variant added to the parametrisation without a branch here)
        raise NotImplementedError(f"forbidden variant {variant!r} has no request")
    verify(api.api_forbidden_documented, ex, allow_401=allow_401)


@allure.story("API host")
def test_subdomain_api_host_fails_tls(target, http, verify):
    """Troubleshooting: `api.<subdomain>.<domain>` fails the certificate's name check; use `api.<domain>`."""
    host = f"api.{ORG_SUBDOMAIN}.{target.site.domain}"
    client = oauth_client(http, target)
    try:  # no token: the call must fail before any credential could travel
        outcome = client.api("GET", "/api/v2/users/me", None, host=host, label="API host with a subdomain")
    except TargetUnavailable as exc:
        outcome = exc
    verify(api.subdomain_host_tls_failure, outcome)
    allure.attach(f"GET https://{host}/api/v2/users/me\n-> {outcome}\n\n{DD_SUBDOMAIN_ADVICE}",
                  name="subdomain in the API host: documented explanation",
                  attachment_type=allure.attachment_type.TEXT)


@allure.story("API key")
def test_validate_refuses_unknown_key(target, http, verify):
    """Datadog's validate endpoint answers 403 {"errors": [...]} for a key it does not know: the check a
    partner (and the marketplace-key test) relies on to tell a good key from a bad one."""
    client = oauth_client(http, target)
    unknown = secrets.token_hex(16)  # the shape of a Datadog API key (32 hex), issued to no one
    ex = client.api("GET", "/api/v1/validate", None, headers={"DD-API-KEY": unknown}, label="validate an unknown key")
    verify(api.validate_unknown_key_refused, ex)
