"""Integration mode: the partner's own integration, end to end, from its onboarding URL.

What Datadog's testing checklist asks a partner to prove: "Test Authorization" opens the onboarding
URL with `site` and `domain`; the partner's app starts the OAuth flow, receives the code on its own
redirect URI, exchanges it on the customer's region, creates its API key and sends data there.
Runs for every target with an `integration` section (the embedded emulator: its reference partner app
on every OAuth site). The callback reaches the partner; nothing is intercepted.

Every test runs its checks with continue-on-failure (`collecting`, harness/checks/registry.py): a failed
MUST check's step goes red and the test goes on, so the report names every broken requirement (a loop on
error still shows the no-loop check; a token exchange on the wrong region still reaches the token-host
check); checks that depend on a failed one are skipped with that reason; the test fails once, listing all.
"""
from __future__ import annotations

import secrets

import allure
import pytest

from harness.checks import authorization, integration
from harness.checks.registry import collecting, skipped_step
from harness.config.integration import onboarding_url
from harness.browser.partner import forge_state
from harness.grants import CONSENT_REMEMBERED
from harness.org_evidence import Since, wait_for_data

pytestmark = [allure.feature("integration"), pytest.mark.integration_mode,
              allure.severity(allure.severity_level.CRITICAL)]

NO_ORG_EVIDENCE = ("Datadog-side evidence not checked: add integration.org_keys (an org API key and application "
                   "key) to the target")


def _mark(org_evidence) -> Since | None:
    return org_evidence.mark() if org_evidence is not None else None


def _front_channel(verify, flow, target, on_site: bool = True) -> None:
    integ = target.integration
    handover = integration.partner_reaches_authorize
    verify(handover, flow)
    if on_site:
        verify(integration.partner_starts_on_site, flow, target.site.web_host, needs=handover)
    verify(integration.partner_authorize_request, flow, integ.client_ids, integ.redirect_uri, needs=handover)
    verify(integration.partner_uses_pkce, flow, needs=handover)
    verify(integration.partner_sends_state, flow, needs=handover)
    verify(integration.partner_state_entropy, flow, needs=integration.partner_sends_state)


def _datadog_callback(verify, flow, target, decision: str = "authorize") -> None:
    """Datadog's own callback, judged before the partner: when Datadog got it wrong (no code, no `domain`,
    an altered `state`), the failure names Datadog's requirement, not the partner's."""
    reached = integration.callback_reached_partner
    verify(reached, flow, target.integration.redirect_uri)
    verify(integration.datadog_callback_result, flow, decision, needs=reached)
    verify(integration.datadog_callback_domain, flow, target.site.domain, needs=reached)
    verify(integration.datadog_callback_state, flow, needs=reached)


def _datadog_side(verify, recorder, target, org_evidence, since: Since | None, keys_since: Since | None = None) -> None:
    """The token exchange host, the partner's API key and its data, as the customer's org shows them.
    keys_since: where the window for created API keys starts (default: since)."""
    integ = target.integration
    if org_evidence is None:
        skipped_step(recorder, "[DD-PUBLISH-TEST-AUTH] Datadog's side: token exchange host, API key, data",
                     NO_ORG_EVIDENCE)
        recorder.warning(f"[DD-PUBLISH-TEST-AUTH] {NO_ORG_EVIDENCE}")
        return
    with allure.step(f"Datadog's side ({org_evidence.source})"):
        verify(integration.token_exchange_host, org_evidence.token_hosts(integ.client_ids, since, target.org_id),
               target.site.api_host)
        verify(integration.partner_api_key_present, org_evidence.api_keys_created(target, keys_since or since),
               integ.api_key_prefix(), target.site.key)
        points, waited = None, 0.0
        if integ.data:
            points, waited = wait_for_data(org_evidence, target, integ.data.metric, integ.data.tag, since,
                                           integ.data.wait_s)
        verify(integration.partner_data_arrived, points, integ.data.metric if integ.data else None, target.site.key,
               waited)


def _installations(org_evidence, target):
    return org_evidence.partner_installations(target.org_id) if org_evidence is not None else None


def _keys_created(org_evidence, target, since):
    return org_evidence.api_keys_created(target, since) if org_evidence is not None else None


def _token_hosts(org_evidence, target, since):
    return org_evidence.token_hosts(target.integration.client_ids, since, target.org_id) \
        if org_evidence is not None else None


def _stored_nothing(verify, target, org_evidence, since, installs) -> None:
    """What a refused flow must not leave: an API key, a token request, an installation (where each is visible)."""
    verify(integration.nothing_stored, _keys_created(org_evidence, target, since))
    verify(integration.partner_no_token_request, _token_hosts(org_evidence, target, since))
    verify(integration.partner_stored_nothing, installs, _installations(org_evidence, target))


@allure.story("tile start")
def test_tile_start(target, partner_session, partner_keys, org_evidence, verify, recorder):
    """Datadog's tile / Test Authorization: the onboarding URL with `site` and `domain`."""
    integ = target.integration
    with collecting(recorder):
        since = _mark(org_evidence)
        flow = partner_session().run(onboarding_url(integ.onboarding_url, target.site),
                                     title=f"open the onboarding URL with site={target.site.web_origin} "
                                           f"domain={target.site.domain}")
        _front_channel(verify, flow, target)
        _datadog_callback(verify, flow, target)
        verify(integration.partner_reached_success, flow)
        _datadog_side(verify, recorder, target, org_evidence, since)


@allure.story("partner start")
def test_partner_start_follows_domain(target, partner_session, partner_keys, org_evidence, verify, recorder):
    """Started from the partner's product (no parameters): the user picks the region on Datadog's page
    (US1's site picker) and everything after the callback must go to the callback's `domain`."""
    integ = target.integration
    with collecting(recorder):
        since = _mark(org_evidence)
        flow = partner_session().run(integ.onboarding_url, title="open the onboarding URL without parameters")
        allure.dynamic.parameter("authorize hosts", " -> ".join(flow.datadog_authorize_hosts) or "-", excluded=True)
        _front_channel(verify, flow, target, on_site=False)
        _datadog_callback(verify, flow, target)
        verify(integration.partner_reached_success, flow)
        _datadog_side(verify, recorder, target, org_evidence, since)


@allure.story("repeat install")
def test_repeat_install(target, partner_session, partner_keys, org_evidence, verify, recorder):
    """A second install in the same org: Datadog answers 409 to the second API key (documented); the
    partner must carry on with the key it has and still reach its success page. The second install
    sends `site` as a bare host: whether Datadog includes the scheme is undocumented, so both must work.
    The two starts must not share a `state` or a `code_challenge` (fresh per authorization request).
    Keys: over both installs exactly one API key is created in the org (none by the reinstall)."""
    integ = target.integration
    with collecting(recorder):
        session = partner_session()
        keys_since = _mark(org_evidence)
        first = session.run(onboarding_url(integ.onboarding_url, target.site), title="first install")
        verify(integration.partner_reached_success, first)
        since = _mark(org_evidence)
        second = session.run(onboarding_url(integ.onboarding_url, target.site, site_as_host=True),
                             title=f"second install in the same org (Datadog answers 409 to a second API key; "
                                   f"site={target.site.web_host} without scheme)")
        verify(integration.partner_state_fresh, [first, second])
        verify(integration.partner_pkce_fresh, [first, second])
        _datadog_callback(verify, second, target)
        verify(integration.partner_reached_success, second)
        _datadog_side(verify, recorder, target, org_evidence, since, keys_since=keys_since)


@allure.story("deny")
def test_deny(target, partner_session, partner_keys, org_evidence, verify, recorder):
    """The user clicks Deny: the partner shows an error page, does not loop, and stores nothing - shown by
    Datadog's side (no API key, no token request), the reference app's store where visible, and what the
    partner does next: a second start goes to Datadog's authorize again, not to a kept connection."""
    integ = target.integration
    with collecting(recorder):
        session = partner_session()
        since, installs = _mark(org_evidence), _installations(org_evidence, target)
        flow = session.run(onboarding_url(integ.onboarding_url, target.site), decision="deny",
                           title="open the onboarding URL and deny on Datadog's consent page")
        if flow.consent is not None and flow.consent.consent_remembered:
            # the partner builds the authorize URL: no force_consent parameters can be added to it
            pytest.skip(f"{CONSENT_REMEMBERED} (Datadog went straight back to the partner with a code)")
        verify(authorization.consent_offers_deny, flow.consent)
        _datadog_callback(verify, flow, target, decision="deny")
        verify(integration.partner_refuses_after_deny, flow)
        verify(integration.partner_no_loop, flow)
        _stored_nothing(verify, target, org_evidence, since, installs)
        again = session.run(onboarding_url(integ.onboarding_url, target.site), stop_at_datadog=True,
                            title="start again after Deny: the partner must go to Datadog's authorize again")
        verify(integration.partner_restarts_after_refusal, again)


@allure.story("forged state")
def test_partner_rejects_forged_state(target, partner_session, partner_keys, org_evidence, browser_sessions, verify,
                                      recorder):
    """A callback carrying a state the partner did not issue (cross-site request forgery) must be
    refused (no token request, nothing stored); the genuine callback for the same code then completes
    the install."""
    integ = target.integration
    with collecting(recorder):
        session = partner_session()
        start = session.run(onboarding_url(integ.onboarding_url, target.site), stop_at_datadog=True,
                            title="start the partner's flow and stop where it hands over to Datadog")
        if verify(integration.partner_reaches_authorize, start):
            return  # nothing to consent to: the rest of the test cannot run
        verify(integration.partner_authorize_request, start, integ.client_ids, integ.redirect_uri)
        with allure.step("complete Datadog's consent for the partner's request in a browser that keeps the callback"):
            consent = browser_sessions.run_flow(target, start.authorize_urls[0], purpose="integration")
        if verify(authorization.flow_reached_callback, consent):
            return  # no callback to forge
        since, installs = _mark(org_evidence), _installations(org_evidence, target)
        forged = session.deliver(forge_state(consent.callback_url, secrets.token_urlsafe(24)),
                                 "deliver the callback to the partner with a forged state")
        verify(integration.forged_state_refused, forged)
        _stored_nothing(verify, target, org_evidence, since, installs)
        genuine = session.deliver(consent.callback_url, "deliver the genuine callback")
        verify(integration.genuine_callback_after_forgery, genuine)
