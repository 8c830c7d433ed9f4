"""Authorize: the consent flow through Datadog's real pages, and what the callback carries."""
import allure
import pytest

from fixtures.grants import authorize, oauth_client, token_field
from fixtures.keys import CONSENT_SCOPES_PROPERTY
from harness.checks import api, authorization, token
from suites.probes import identity_probe

pytestmark = [allure.feature("authorize"), allure.severity(allure.severity_level.CRITICAL), pytest.mark.browser]


@allure.story("consent page")
def test_consent_lists_exactly_the_client_scopes(target, consent_authorization, verify, request):
    flow = consent_authorization.flow  # a remembered consent: a flow that meets the page, or a skip
    verify(authorization.flow_reached_callback, flow)
    if flow.consent_scopes is not None:  # the pre-publication gate compares them with oauth_clients.json
        request.node.user_properties.append((CONSENT_SCOPES_PROPERTY, " ".join(flow.consent_scopes)))
    verify(authorization.consent_scopes_exact, flow.consent_scopes, target.client.scopes)
    verify(authorization.redirect_not_307, flow.callback_redirect_status)


@allure.story("consent page")
def test_consent_page_headers(target, consent_authorization, verify):
    headers = consent_authorization.flow.consent_headers
    verify(authorization.consent_not_frameable, headers)
    verify(authorization.consent_no_store, headers)


@allure.story("callback")
def test_callback_parameters(target, shared_grant, verify):
    auth = shared_grant.authorization
    verify(authorization.flow_reached_callback, auth.flow)
    verify(authorization.state_echoed, auth.callback, auth.state)
    verify(authorization.callback_domain, auth.callback, target.site.domain)
    verify(authorization.callback_org_params, auth.callback)
    verify(authorization.callback_org_matches, auth.callback, target.org, target.org_id)
    verify(authorization.callback_site_matches, auth.callback, target.site)
    verify(authorization.callback_at_registered_uri, auth.flow, target.redirect_uri)  # scheme, host, path
    verify(authorization.no_token_in_callback, auth.callback)
    verify(authorization.callback_no_duplicates, auth.flow.callback_pairs)
    verify(authorization.redirect_params_in_query, auth.flow)
    allure.dynamic.parameter("callback keys", ",".join(sorted(auth.callback)), excluded=True)


@allure.story("region switch")
def test_region_switch_follows_callback_domain(region_pair, browser_sessions, http, verify):
    """Start on US1 with no session, pick the other region on Datadog's site picker: the callback
    names that region and every later call goes to its API host."""
    start, other = region_pair
    auth = authorize(browser_sessions, start, logged_in=True, state_target=other, site_key=other.site.key)
    verify(authorization.site_picker_offered, auth.flow)
    verify(authorization.flow_reached_callback, auth.flow)
    verify(authorization.callback_domain, auth.callback, other.site.domain)
    verify(authorization.callback_site_matches, auth.callback, other.site)
    client = oauth_client(http, other, auth.domain)  # token and API host follow the callback's domain
    ex = client.exchange_code(auth.code, start.redirect_uri, auth.pkce.verifier)
    verify(token.token_ok, ex)
    probe = identity_probe(other)
    if probe is not None:  # the grant lives in the chosen region, not on US1 where the flow started
        access_token = token_field(ex.json, "access_token", "the region's token answer")
        verify(api.api_success, probe(client, access_token))
        verify(api.api_forbidden, probe(oauth_client(http, start, start.site.domain), access_token))
