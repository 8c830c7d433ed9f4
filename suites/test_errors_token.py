"""Token, refresh and revoke endpoints under attack: every documented error and the RFC protections.

Each test that needs a code runs its own consent flow (a refused exchange may or may not consume it on
Datadog) and, where a refusal leaves the code alive, redeems it properly at the end to record
that the refusal was about the parameter under test (CHARACTERIZE: Datadog's docs are silent).
"""
from __future__ import annotations

import threading
import time

import allure
import pytest

from fixtures.grants import authorize, exchange, oauth_client, token_field
from harness.checks import api, authorization, refresh, revoke, token
from harness.checks.registry import CHARACTERIZE, MUST, SHOULD
from harness.checks.token import error_body_kind
from harness.http.exchange import DatadogHTTP
from core.network import make_client
from core.pkce import PKCE
from core.scopes import load_catalogue
from suites.probes import identity_probe, read_probe

pytestmark = [allure.feature("token errors"), allure.severity(allure.severity_level.CRITICAL)]

CODE_LIFETIME = 600  # RFC 6749 §4.1.2 recommends at most 10 minutes; the emulator uses exactly that
BOGUS_CODE = "ddoauth-not-a-real-code-0123456789abcdef"
WRONG_SECRET = "ddoauth-wrong-client-secret"


# ---- helpers -------------------------------------------------------------------------------------

def _consent(browser_sessions, target, verify):
    auth = authorize(browser_sessions, target, back_channel=True)  # the subject is the code, not the pages
    verify(authorization.flow_reached_callback, auth.flow)
    return auth


def _peer_on_site(request, target):
    """Another configured client on the same site (e.g. US1-published beside US1-sandbox), or skip."""
    for other in request.getfixturevalue("selected_targets"):
        if other.site.key == target.site.key and other.client.id != target.client.id:
            return other
    pytest.skip(f"no second client configured on {target.site.key}: cannot present a foreign client")


def _nightly(pytestconfig) -> bool:
    return "nightly" in (pytestconfig.getoption("-m") or "")


class _AnswersAsTheyCome:
    """The run's HTTP client, handing back 5xx answers instead of raising TargetUnavailable."""

    def __init__(self, http):
        self._http = http

    def request(self, method, url, label="", **kwargs):
        return self._http.request(method, url, label=label, raw=True, **kwargs)


def _negative_client(http, target, domain):
    """An OAuth client for one malformed exchange. A 5xx is normally "Datadog unreachable" (broken);
    here it is kept, and _redeem_after() decides whether it is an outage or the answer to the request."""
    return oauth_client(_AnswersAsTheyCome(http), target, domain)


def _redeem_after(http, auth, recorder, key: str):
    """Redeem the code the right way after a refused exchange and record whether it still worked.

    When the refusal was a 5xx this runs before any check: if the endpoint is down too, the
    redemption raises TargetUnavailable (broken, not a verdict); if it answers, the 5xx was the
    endpoint's answer to the malformed request, a defect the checks then report."""
    ex = exchange(http, auth)
    recorder.observe(key, "the code still redeems after the refusal" if ex.status == 200
                     else f"the code no longer redeems after the refusal ({ex.status})")
    return ex


def _refused(http, auth, ex, recorder, key: str):
    """Returns a callable that records the code's survival once the checks on `ex` are done."""
    if ex.status >= 500:
        _redeem_after(http, auth, recorder, key)
        return lambda: None
    return lambda: _redeem_after(http, auth, recorder, key)


def _attach(ex, title: str) -> None:
    allure.attach(ex.describe(), name=f"HTTP {title}: {ex.status}", attachment_type=allure.attachment_type.TEXT)


# ---- PKCE (documented: "Invalid code or code verifier") ---------------------------------------------

@allure.story("PKCE")
def test_wrong_verifier_refused(target, browser_sessions, http, verify, recorder):
    auth = _consent(browser_sessions, target, verify)
    client = _negative_client(http, target, auth.domain)
    ex = client.exchange_code(auth.code, target.redirect_uri, PKCE.generate().verifier)
    then = _refused(http, auth, ex, recorder, "DD-PKCE-CODE-AFTER-WRONG-VERIFIER")
    verify(token.pkce_verifier_refused, ex)
    verify(token.dd_invalid_code_text, ex)
    then()


@allure.story("PKCE")
def test_missing_verifier_refused(target, browser_sessions, http, verify, recorder):
    auth = _consent(browser_sessions, target, verify)
    client = _negative_client(http, target, auth.domain)
    ex = client.exchange_code(auth.code, target.redirect_uri, None)
    then = _refused(http, auth, ex, recorder, "DD-PKCE-CODE-AFTER-MISSING-VERIFIER")
    verify(token.pkce_verifier_refused, ex, missing=True)
    verify(token.dd_invalid_code_text, ex)
    then()


@allure.story("PKCE")
def test_wrong_content_type_refused(target, browser_sessions, http, verify, recorder):
    """Troubleshooting: 'Invalid code or code verifier' is fixed by a correct content-type."""
    auth = _consent(browser_sessions, target, verify)
    client = _negative_client(http, target, auth.domain)
    ex = client.exchange_code(auth.code, target.redirect_uri, auth.pkce.verifier,
                              content_type="text/plain")  # the form body, labelled text/plain
    then = _refused(http, auth, ex, recorder, "DD-PKCE-CODE-AFTER-WRONG-CONTENT-TYPE")
    verify(token.dd_invalid_code_text, ex)
    then()


# ---- the authorization code ---------------------------------------------------------------------------

@allure.story("authorization code")
def test_code_is_single_use(target, browser_sessions, http, verify):
    auth = _consent(browser_sessions, target, verify)
    client = oauth_client(http, target, auth.domain)
    first = exchange(http, auth)
    verify(token.token_ok, first)
    access_token = token_field(first.json, "access_token", "the first exchange's answer")
    refresh_token = token_field(first.json, "refresh_token", "the first exchange's answer")
    probe = identity_probe(target)
    if probe is not None:
        probe.prove(client, access_token)  # the probe tells a live token from a dead one before the replay
    replay = exchange(http, auth)
    verify(token.code_replay_refused, replay)
    verify(token.dd_invalid_code_text, replay, severity=SHOULD)  # the docs quote the text for PKCE failures only
    if probe is not None:
        verify(token.replayed_code_tokens_revoked, probe(client, access_token))
    verify(token.replayed_code_tokens_revoked, client.refresh(refresh_token), "refresh token")


@allure.story("authorization code")
def test_concurrent_redemption_one_wins(target, browser_sessions, network, verify):
    auth = _consent(browser_sessions, target, verify)
    # two connections of their own, warmed up, released together: the redemptions really race
    https = [DatadogHTTP(make_client(network)) for _ in range(2)]
    try:
        clients = [oauth_client(h, target, auth.domain) for h in https]
        for h in https:
            h.request("GET", f"https://api.{auth.domain}/api/v1/validate", label="warm up")
        barrier = threading.Barrier(len(clients))
        results: list = [None] * len(clients)

        def redeem(i: int) -> None:
            try:
                barrier.wait(timeout=30)
                results[i] = clients[i].exchange_code(auth.code, target.redirect_uri, auth.pkce.verifier)
            except Exception as exc:  # re-raised below, in the test's thread
                results[i] = exc

        threads = [threading.Thread(target=redeem, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for h in https:
            h.client.close()
    for r in results:
        if isinstance(r, BaseException):
            raise r
        if r is None:
            raise TimeoutError("a concurrent redemption never finished")
    for i, r in enumerate(results):
        _attach(r, f"token: concurrent redemption {i + 1}")
    verify(token.single_concurrent_winner, [r.status for r in results])
    for loser in (r for r in results if r.status != 200):
        verify(token.code_replay_refused, loser)


@allure.story("authorization code")
def test_code_bound_to_client(target, request, browser_sessions, http, verify, recorder):
    peer = _peer_on_site(request, target)
    allure.dynamic.parameter("foreign client", peer.name)
    auth = _consent(browser_sessions, target, verify)
    foreign = _negative_client(http, peer, auth.domain)
    ex = foreign.exchange_code(auth.code, target.redirect_uri, auth.pkce.verifier)
    then = _refused(http, auth, ex, recorder, "DD-CODE-AFTER-FOREIGN-CLIENT")
    verify(token.code_bound_to_client, ex)
    then()


@allure.story("authorization code")
@pytest.mark.parametrize("variant", ["different", "missing"])
def test_code_bound_to_redirect_uri(variant, target, browser_sessions, http, verify, recorder):
    auth = _consent(browser_sessions, target, verify)
    client = _negative_client(http, target, auth.domain)
    uri = None if variant == "missing" else target.redirect_uri.rstrip("/") + "/ddoauth-elsewhere"
    ex = client.exchange_code(auth.code, uri, auth.pkce.verifier)
    then = _refused(http, auth, ex, recorder, f"DD-CODE-AFTER-{variant.upper()}-REDIRECT-URI")
    verify(token.code_bound_to_redirect_uri, ex)
    # Datadog documents the text for a different URI; a missing one may read "Missing redirect URI"
    verify(token.dd_mismatching_redirect_text, ex, severity=MUST if variant == "different" else SHOULD)
    then()


# ---- client authentication ----------------------------------------------------------------------------

@allure.story("client authentication")
def test_missing_client_secret_is_401(target, browser_sessions, http, verify, recorder):
    auth = _consent(browser_sessions, target, verify)
    client = _negative_client(http, target, auth.domain)
    ex = client.exchange_code(auth.code, target.redirect_uri, auth.pkce.verifier, include_secret=False)
    then = _refused(http, auth, ex, recorder, "DD-CODE-AFTER-MISSING-SECRET")
    verify(token.missing_secret_is_401, ex)
    verify(token.client_auth_refused, ex, severity=SHOULD)  # Datadog documents the status only
    then()


@allure.story("client authentication")
def test_wrong_client_secret_is_401(target, browser_sessions, http, verify, recorder):
    auth = _consent(browser_sessions, target, verify)
    client = _negative_client(http, target, auth.domain)
    ex = client.exchange_code(auth.code, target.redirect_uri, auth.pkce.verifier, secret=WRONG_SECRET)
    then = _refused(http, auth, ex, recorder, "DD-CODE-AFTER-WRONG-SECRET")
    verify(token.client_auth_refused, ex)
    verify(token.client_auth_401, ex)
    then()


# ---- the request method --------------------------------------------------------------------------------

@allure.story("request method")
def test_token_endpoint_refuses_get(target, browser_sessions, http, verify, recorder):
    """RFC 6749 §3.2: the client MUST use POST. A complete, valid code exchange sent as a GET (parameters in
    the query) must be refused (405, or another 4xx) without tokens; a bogus code could not tell a refused
    method from a refused code, so the exchange uses a fresh one and redeems it properly afterwards."""
    auth = _consent(browser_sessions, target, verify)
    client = _negative_client(http, target, auth.domain)
    ex = client.exchange_code_with_get(auth.code, target.redirect_uri, auth.pkce.verifier)
    then = _refused(http, auth, ex, recorder, "DD-CODE-AFTER-GET")
    recorder.observe("DD-TOKEN-GET-STATUS", f"{ex.status}")
    verify(token.token_get_refused, ex)
    then()


# ---- error answers and token quality -------------------------------------------------------------------

@allure.story("error answers")
def test_error_body_shape(target, http, verify, recorder):
    """RFC 6749 §5.2 errors, in the RFC shape or Datadog's {"errors": [...]} envelope (recorded)."""
    client = oauth_client(http, target)
    verifier = PKCE.generate().verifier
    answers = {
        "unsupported_grant_type": client.exchange_code(BOGUS_CODE, target.redirect_uri, verifier,
                                                       extra={"grant_type": "urn:ddoauth:not-a-grant"}),
        "invalid_grant": client.exchange_code(BOGUS_CODE, target.redirect_uri, verifier),
        "invalid_request": client.exchange_code(BOGUS_CODE, target.redirect_uri, verifier,
                                                extra={"grant_type": None}),  # no grant_type at all
        "invalid_client": client.exchange_code(BOGUS_CODE, target.redirect_uri, verifier,
                                               secret=WRONG_SECRET),
    }
    verify(token.unsupported_grant_type_refused, answers["unsupported_grant_type"])
    kinds = {}
    for case, ex in answers.items():
        kinds[case] = error_body_kind(ex)
        recorder.observe(f"DD-TOKEN-ERROR-BODY-{case.upper().replace('_', '-')}",
                         f"{ex.status} {kinds[case]}")
        verify(token.error_body_well_formed, ex)
    verify(token.error_shape_consistent, kinds)


@allure.story("token quality")
def test_token_entropy(target, shared_grant, verify):
    verify(token.token_entropy, shared_grant.access_token, "access token")
    verify(token.token_entropy, shared_grant.refresh_token, "refresh token")
    verify(token.token_entropy, shared_grant.authorization.code, "authorization code")


# ---- refresh grant -------------------------------------------------------------------------------------

@allure.story("refresh grant")
def test_refresh_bound_to_client(target, request, fresh_grant, http, verify, recorder):
    peer = _peer_on_site(request, target)
    allure.dynamic.parameter("foreign client", peer.name)
    grant = fresh_grant()
    foreign = oauth_client(http, peer, grant.authorization.domain)
    verify(refresh.refresh_bound_to_client, foreign.refresh(grant.refresh_token))
    own = oauth_client(http, target, grant.authorization.domain).refresh(grant.refresh_token)
    recorder.observe("DD-REFRESH-AFTER-FOREIGN-CLIENT", f"its own client refreshes with status {own.status}")


@allure.story("refresh grant")
def test_refresh_without_client_auth_refused(target, fresh_grant, http, verify):
    grant = fresh_grant()
    client = oauth_client(http, target, grant.authorization.domain)
    ex = client.refresh(grant.refresh_token, include_secret=False)
    verify(refresh.refresh_needs_client_auth, ex)
    verify(token.missing_secret_is_401, ex)


def _scope_not_granted(target) -> str:
    """A real Datadog scope the client lacks, preferring one with a read probe to prove it stays shut."""
    catalogue = load_catalogue()
    candidates = sorted(s for s in catalogue.scopes if s not in target.client.scopes)
    if not candidates:
        pytest.skip("the client holds every catalogued scope: nothing to escalate to")
    probed = [s for s in candidates if read_probe(s) is not None
              and not read_probe(s).endpoint.allows(set(target.client.scopes))]
    return (probed or candidates)[0]


@allure.story("refresh grant")
def test_refresh_scope_escalation_refused(target, fresh_grant, http, verify, recorder):
    extra = _scope_not_granted(target)
    allure.dynamic.parameter("extra scope", extra)
    grant = fresh_grant()
    client = oauth_client(http, target, grant.authorization.domain)
    ex = client.refresh(grant.refresh_token, scope=" ".join([*target.client.scopes, extra]))
    verify(refresh.refresh_scope_not_escalated, ex, extra)
    recorder.observe("DD-REFRESH-SCOPE-ESCALATION",
                     "refused" if ex.status != 200 else "served with the original scope (extra ignored)")
    probe = read_probe(extra)
    if ex.status == 200 and probe is not None and isinstance(ex.json, dict) and ex.json.get("access_token"):
        verify(api.api_forbidden_documented, probe(client, ex.json["access_token"]))


# ---- revocation ----------------------------------------------------------------------------------------

@allure.story("revocation")
def test_revoke_with_bad_client_credentials_refused(target, fresh_grant, http, verify):
    grant = fresh_grant()
    client = oauth_client(http, target, grant.authorization.domain)
    probe = identity_probe(target)
    if probe is not None:
        probe.prove(client, grant.access_token)
    verify(revoke.revoke_bad_client_refused, client.revoke(grant.access_token, "access_token",
                                                           secret=WRONG_SECRET))
    verify(revoke.revoke_bad_client_refused, client.revoke(grant.access_token, "access_token", include_secret=False))
    if probe is not None:
        verify(revoke.token_still_valid, probe(client, grant.access_token))


@allure.story("revocation")
def test_revoke_foreign_token_keeps_it_valid(target, request, fresh_grant, http, verify):
    peer = _peer_on_site(request, target)
    allure.dynamic.parameter("foreign client", peer.name)
    grant = fresh_grant()
    domain = grant.authorization.domain
    foreign, own = oauth_client(http, peer, domain), oauth_client(http, target, domain)
    probe = identity_probe(target)
    if probe is not None:
        probe.prove(own, grant.access_token)
    verify(revoke.revoke_foreign_refused, foreign.revoke(grant.access_token, "access_token"))
    verify(revoke.revoke_foreign_refused, foreign.revoke(grant.refresh_token, "refresh_token"))
    if probe is not None:
        verify(revoke.token_still_valid, probe(own, grant.access_token))
    verify(revoke.token_still_valid, own.refresh(grant.refresh_token))


# ---- code expiry ----------------------------------------------------------------------------------------

@allure.story("authorization code")
@pytest.mark.nightly
@pytest.mark.timeout(CODE_LIFETIME + 60 + 300)  # real Datadog: the wait, plus the default budget of a test
def test_code_expires(target, browser_sessions, http, verify, recorder, emulator_control, pytestconfig):
    if emulator_control is None and not _nightly(pytestconfig):
        pytest.skip("against real Datadog this waits 11 minutes: nightly profile only (-m nightly)")
    auth = _consent(browser_sessions, target, verify)
    if emulator_control is not None:
        # The emulator's code lifetime is asserted: this one code is aged past it (the clock everyone
        # else reads does not move, so tests running beside this one under xdist are not affected)
        emulator_control.call("POST", "codes/age", {"code": auth.code, "seconds": CODE_LIFETIME + 1})
        verify(token.expired_code_refused, exchange(http, auth))
    else:
        time.sleep(CODE_LIFETIME + 60)
        ex = exchange(http, auth)
        recorder.observe("DD-CODE-LIFETIME", f"a code redeemed after {CODE_LIFETIME + 60} s: {ex.status}")
        verify(token.expired_code_refused, ex, severity=CHARACTERIZE)  # Datadog documents no lifetime
