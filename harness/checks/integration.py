"""Checks on the partner's integration (integration mode): how its app starts the flow, handles the
callback and uses the customer's region, as Datadog's publishing checklist asks partners to prove.

What a target cannot show (the partner's own store, who called Datadog's token endpoint) is returned as
`Unobservable(reason)`: a skipped step and a warning, never a pass."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from harness.checks._helpers import estimate_token_bits
from harness.checks.registry import SHOULD, Unobservable, check

_PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # BASE64URL(SHA256(verifier)) without padding


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _first_authorize(flow) -> str | None:
    urls = flow.authorize_urls
    return urls[0] if urls else None


@check("DD-PUBLISH-ONBOARDING", "the onboarding URL leads the browser to a Datadog authorize endpoint")
def partner_reaches_authorize(flow) -> str | None:
    if _first_authorize(flow) is not None:
        return None
    return f"the partner never sent the browser to a Datadog authorize endpoint; {flow.describe()}"


@check("DD-PUBLISH-ONBOARDING", "the onboarding URL sends the browser to Datadog's authorize endpoint on the given site")
def partner_starts_on_site(flow, web_host: str) -> str | None:
    url = _first_authorize(flow)
    if url is None:
        return f"the partner never sent the browser to a Datadog authorize endpoint; {flow.describe()}"
    host = urlsplit(url).hostname
    return None if host == web_host else f"authorize opened on {host}, expected {web_host} (from `site`/`domain`)"


@check("DD-ENDPOINTS-AUTHORIZE", "the partner's authorize request names its client, a registered redirect URI and response_type=code")
def partner_authorize_request(flow, client_ids: tuple[str, ...], redirect_uri: str) -> str | None:
    url = _first_authorize(flow)
    if url is None:
        return "no authorize request"
    q = _query(url)
    problems = []
    if q.get("client_id") not in client_ids:
        problems.append(f"client_id {q.get('client_id')!r} is not the partner's client")
    if q.get("redirect_uri") != redirect_uri:
        problems.append(f"redirect_uri {q.get('redirect_uri')!r} is not {redirect_uri!r}")
    if q.get("response_type") != "code":
        problems.append(f"response_type {q.get('response_type')!r}")
    return "; ".join(problems) or None


@check("RFC7636-4.3", "the partner uses PKCE with S256 (Datadog requires it)")
def partner_uses_pkce(flow) -> str | None:
    q = _query(_first_authorize(flow) or "")
    if "code_challenge" not in q:
        return "no code_challenge on the authorize request"
    if q.get("code_challenge_method") != "S256":
        return f"code_challenge_method {q.get('code_challenge_method')!r}, expected S256"
    if not _PKCE_CHALLENGE.match(q["code_challenge"]):
        return f"code_challenge of {len(q['code_challenge'])} chars is not a base64url SHA-256 digest"
    return None


@check("RFC6749-10.12", "the partner sends an unguessable state (CSRF protection)")
def partner_sends_state(flow) -> str | None:
    state = _query(_first_authorize(flow) or "").get("state")
    if not state:
        return "no state on the authorize request"
    return None if len(state) >= 16 else f"state of {len(state)} chars is guessable (want >= 16)"


@check("RFC6749-10.10", "the partner's state carries at least 128 bits of randomness (estimated from its alphabet "
                        "and length)", SHOULD)
def partner_state_entropy(flow) -> str | None:
    state = _query(_first_authorize(flow) or "").get("state")
    if not state:
        return "no state on the authorize request"
    bits, how = estimate_token_bits(state)
    return None if bits >= 128 else f"state carries about {bits:.0f} bits ({how}), want >= 128"


# ---- fresh per start: what only two starts of the partner's flow can show

def _per_start(flows, param: str) -> list[str | None]:
    return [_query(_first_authorize(f) or "").get(param) or None for f in flows]


def _fresh(flows, param: str) -> str | None:
    values = _per_start(flows, param)
    sent = [v for v in values if v]
    if len(sent) < 2:
        return f"only {len(sent)} of {len(values)} starts sent a {param}: freshness per start cannot be shown"
    repeats = len(sent) - len(set(sent))
    if repeats:
        return (f"{param} repeated across starts: {len(set(sent))} distinct in {len(sent)} starts "
                f"(a {len(sent[0])}-char value sent again)")
    return None


@check("RFC6749-10.12", "the partner sends a different state on every start of its flow")
def partner_state_fresh(flows) -> str | None:
    return _fresh(flows, "state")


@check("RFC7636-4.1", "the partner sends a different code_challenge (a new code_verifier) on every start of its flow")
def partner_pkce_fresh(flows) -> str | None:
    return _fresh(flows, "code_challenge")


@check("DD-PUBLISH-TEST-AUTH", "Datadog's callback reaches the partner's registered redirect URI")
def callback_reached_partner(flow, redirect_uri: str) -> str | None:
    url = flow.callback_url
    if url is None:
        consent = flow.consent
        where = (f"Datadog error page: {consent.error_text}" if consent and consent.error_text
                 else flow.describe())
        return f"no callback ({where})"
    return None if url.split("?")[0] == redirect_uri else f"callback went to {url.split('?')[0]}, not {redirect_uri}"


# ---- Datadog's callback to the partner: judged before the partner, so a wrong callback names Datadog's
# requirement, not the partner's (the partner cannot finish an install from a callback Datadog got wrong)

def _datadog_callback(flow) -> dict | None:
    """The parameters of Datadog's redirect to the partner (query, and a fragment's), or None without one."""
    consent = flow.consent
    if consent is None or consent.callback_url is None:
        return None
    return consent.callback


def _state_sent(flow) -> str | None:
    """The state of the partner's authorize request that led to the callback (the last one before it)."""
    sent = None
    for url in flow.navigations:
        if url == flow.callback_url or (flow.callback_url or "").startswith(url + "#"):
            break
        if urlsplit(url).path == flow.authorize_path:
            sent = _query(url).get("state", sent)
    return sent


@check("DD-ENDPOINTS-AUTHORIZE", "Datadog's callback to the partner carries a code (after Deny: an error, no code)")
def datadog_callback_result(flow, decision: str = "authorize") -> str | None:
    callback = _datadog_callback(flow)
    if callback is None:
        return None  # no callback at all: callback_reached_partner
    if decision == "deny":
        if callback.get("code"):
            return "Datadog's callback after Deny carries a code"
        return None if callback.get("error") else f"Datadog's callback after Deny has no error (keys {sorted(callback)})"
    if callback.get("error"):
        return f"Datadog's callback carries error={callback['error'][:60]!r} instead of a code"
    return None if callback.get("code") else f"Datadog's callback has no code (keys {sorted(callback)})"


@check("DD-OAUTH-REDIRECT-DOMAIN", "Datadog's callback to the partner carries the site's domain")
def datadog_callback_domain(flow, expected_domain: str) -> str | None:
    callback = _datadog_callback(flow)
    if callback is None or not callback.get("code"):
        return None  # Datadog documents `domain` on the success redirect
    got = callback.get("domain")
    if got is None:
        return "domain missing from Datadog's callback to the partner"
    return None if got == expected_domain else f"Datadog's callback names domain {got!r}, expected {expected_domain!r}"


@check("RFC6749-4.1.2", "Datadog's callback to the partner echoes the partner's state byte for byte")
def datadog_callback_state(flow) -> str | None:
    callback = _datadog_callback(flow)
    sent = _state_sent(flow)
    if callback is None or sent is None:
        return None  # no callback (callback_reached_partner) or no state sent (partner_sends_state)
    got = callback.get("state")
    if got is None:
        return "state missing from Datadog's callback to the partner"
    return None if got == sent else f"Datadog altered the state: sent {len(sent)} chars, got {len(got)} chars"


@check("DD-PUBLISH-TEST-AUTH", "the partner's app ends on its success page")
def partner_reached_success(flow) -> str | None:
    if flow.outcome == "success":
        return None
    text = " ".join(flow.final_text.split())[:200]
    return f"{flow.describe()}; page says: {text!r}"


@check("DD-OAUTH-DOMAIN", "the partner's server exchanged the code on the callback domain's API host")
def token_exchange_host(hosts: list[str] | None, api_host: str) -> str | None:
    if hosts is None:
        return Unobservable("Datadog does not show which host a token request reached (the key and data checks "
                            "stand in)")
    if not hosts:
        return f"no token request from the partner's client reached any Datadog API host (expected {api_host})"
    wrong = sorted({h for h in hosts if h != api_host})
    return f"token requests went to {', '.join(wrong)}, expected {api_host}" if wrong else None


def _names(keys: list) -> str:
    return ", ".join(repr(k.name) for k in keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


@check("DD-PUBLISH-APIKEY", "the install creates exactly one API key in the org, the `<client> OAuth Client API Key` "
                            "(every key created during the test, by creation time, whatever its name)")
def partner_api_key_present(created: list, prefix: str | None, site_key: str) -> str | None:
    if prefix is None:
        return Unobservable("the key's name is unknown: set integration.client_name (Datadog names the key "
                            "`<client> OAuth Client API Key`)")
    ours = [k for k in created if k.name.startswith(prefix)]
    extra = [k for k in created if not k.name.startswith(prefix)]
    problems = []
    if not ours:
        problems.append(f"no API key named {prefix!r}... was created in the org on {site_key}")
    elif len(ours) > 1:
        problems.append(f"{len(ours)} API keys named {prefix!r}... were created in the org on {site_key} "
                        f"(a reinstall must reuse its key)")
    if extra:
        problems.append(f"{len(extra)} other API key(s) created in the org during the install: {_names(extra)}")
    return "; ".join(problems) or None


@check("DD-PUBLISH-DATA", "data the partner sends arrives in the customer's site")
def partner_data_arrived(points: int | None, metric: str | None, site_key: str, waited: float) -> str | None:
    if metric is None or points is None:
        return Unobservable("which metric the partner sends is not configured: set integration.data.metric")
    if points > 0:
        return None
    return f"no {metric} points arrived on {site_key} within {waited:.0f} s of the install"


@check("RFC6749-4.1.2.1", "after Deny the partner shows an error page, not its success page")
def partner_refuses_after_deny(flow) -> str | None:
    if flow.outcome == "failure":
        return None
    return f"expected the partner's error page; {flow.describe()}"


@check("DD-PUBLISH-TEST-AUTH", "the partner does not send the user straight back to Datadog (no loop)")
def partner_no_loop(flow) -> str | None:
    n = len(flow.authorize_urls)
    return None if n <= 1 else f"{n} authorize requests in one flow: the partner loops back to Datadog"


@check("DD-PUBLISH-APIKEY", "a refused or denied flow leaves no API key behind")
def nothing_stored(created: list | None) -> str | None:
    """created: every API key created in the org during the flow (None: the org cannot be read)."""
    if created is None:
        return Unobservable("the org's API keys cannot be read: add integration.org_keys (an org API key and "
                            "application key) to the target")
    return f"{len(created)} API key(s) created by a flow that should store nothing: {_names(created)}" \
        if created else None


@check("DD-PUBLISH-TEST-AUTH", "a refused or denied flow adds no installation on the partner's side")
def partner_stored_nothing(before: list[dict] | None, after: list[dict] | None) -> str | None:
    if before is None or after is None:
        return Unobservable("the partner's own store is visible only for the emulator's reference app; what the "
                            "partner does next and Datadog's token log stand in")
    new = {i["install_id"] for i in after} - {i["install_id"] for i in before}
    changed = [i for i in after if i["install_id"] not in new and i not in before]
    if new or changed:
        return f"{len(new)} new and {len(changed)} updated installation(s) after a flow that should store nothing"
    return None


@check("DD-PUBLISH-TEST-AUTH", "a refused or denied flow makes no token request (the partner exchanges nothing)")
def partner_no_token_request(hosts: list[str] | None) -> str | None:
    if hosts is None:
        return Unobservable("Datadog does not show who called its token endpoint")
    return f"{len(hosts)} token request(s) from the partner's client ({', '.join(sorted(set(hosts)))}) after a flow " \
           f"that should store nothing" if hosts else None


@check("DD-PUBLISH-TEST-AUTH", "after a denied flow the partner's next start goes to Datadog's authorize again "
                               "(it kept no connection)")
def partner_restarts_after_refusal(flow) -> str | None:
    if flow.outcome == "at_datadog" and flow.authorize_urls:
        return None
    if flow.outcome == "success":
        return f"the next start showed the partner's success page without Datadog: the denied flow was kept as " \
               f"a connection; {flow.describe()}"
    return f"the next start did not reach Datadog's authorize endpoint; {flow.describe()}"


@check("RFC6749-10.12", "the partner refuses a callback whose state it did not issue (CSRF)")
def forged_state_refused(flow) -> str | None:
    if flow.error:  # no answer proves no refusal
        return f"the partner did not answer the forged callback: {flow.error}"
    if flow.outcome == "success":
        return "the partner completed the install from a callback with a forged state"
    return None


@check("DD-PUBLISH-TEST-AUTH", "the partner takes the genuine callback after refusing a forged one",
       severity=SHOULD)
def genuine_callback_after_forgery(flow) -> str | None:
    return None if flow.outcome == "success" else f"genuine callback not accepted: {flow.describe()}"

