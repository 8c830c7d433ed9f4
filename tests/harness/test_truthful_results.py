"""Results that tell the truth against a Datadog that differs (issue 12, item 3), without a browser:
a remembered consent is driven again with the recipes' force_consent or skipped, never failed; a
documented endpoint answering 404 is EndpointAbsent (broken) for a test that merely uses it and a
named check for its owner; a probe is proven with a good token before it serves as evidence; a missing
token field is a prerequisite, never a KeyError."""
from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from core.errors import ConfigError, EndpointAbsent, PrerequisiteFailed
from harness.browser.consent import FlowResult, PageVisit
from harness.checks import api
from harness.config.recipes import _builtin_data, builtin_recipes, merge
from harness.grants import (CONSENT_REMEMBERED, Authorization, Grant, drive_consent, token_field,
                            with_params)
from harness.http.exchange import DatadogHTTP, Exchange, absent_error, endpoint_absent
from harness.http.oauth_client import ClientCredentials, OAuthClient
from harness.results.outcome import ENDPOINT_ABSENT, classify
from suites.probes import identity_probe, read_probe

AUTHORIZE = "https://app.datadoghq.com/oauth2/v1/authorize?client_id=c&state=s%20t"
CALLBACK = "https://partner.example/cb"


# ---- remembered consent --------------------------------------------------------------------------------

def remembered() -> FlowResult:
    return FlowResult(callback_url=f"{CALLBACK}?code=c", callback_pairs=[("code", "c")])


def consented() -> FlowResult:
    return FlowResult(callback_url=f"{CALLBACK}?error=access_denied", callback_pairs=[("error", "access_denied")],
                      pages=[PageVisit("consent", AUTHORIZE)])


class Server:
    """A fake run: remembers consent unless the URL carries every `shows_with` parameter."""

    def __init__(self, shows_with: dict | None = None, always_remembers: bool = False):
        self.shows_with, self.always, self.urls = shows_with or {}, always_remembers, []

    def __call__(self, url: str) -> FlowResult:
        self.urls.append(url)
        query = dict(parse_qsl(urlsplit(url).query))
        shown = not self.always and self.shows_with and all(query.get(k) == v for k, v in self.shows_with.items())
        return consented() if shown else remembered()


def test_a_consent_page_shown_at_once_is_kept():
    run = drive_consent(lambda url: consented(), AUTHORIZE, (("prompt", "consent"),))
    assert run.skip_reason is None and run.url == AUTHORIZE and run.flow.consent_shown


def test_remembered_consent_without_force_consent_is_a_skip_with_the_reason():
    server = Server()
    run = drive_consent(server, AUTHORIZE, ())
    assert run.skip_reason.startswith(CONSENT_REMEMBERED) and "force_consent" in run.skip_reason
    assert server.urls == [AUTHORIZE]  # no second flow without a way to ask for the page


def test_remembered_consent_is_driven_again_with_force_consent():
    server = Server(shows_with={"prompt": "consent"})
    run = drive_consent(server, AUTHORIZE, (("prompt", "consent"),))
    assert run.skip_reason is None and run.flow.consent_shown
    assert len(server.urls) == 2 and run.url == server.urls[1]
    query = dict(parse_qsl(urlsplit(run.url).query))
    assert query == {"client_id": "c", "state": "s t", "prompt": "consent"}  # the rest kept byte for byte


def test_force_consent_that_does_not_help_is_a_skip_too():
    run = drive_consent(Server(always_remembers=True), AUTHORIZE, (("prompt", "consent"),))
    assert run.skip_reason.startswith(CONSENT_REMEMBERED) and "prompt=consent" in run.skip_reason


def test_with_params_replaces_a_parameter_already_there():
    url = with_params(f"{AUTHORIZE}&prompt=none", (("prompt", "consent"),))
    assert parse_qsl(urlsplit(url).query).count(("prompt", "consent")) == 1
    assert ("prompt", "none") not in parse_qsl(urlsplit(url).query)


def test_force_consent_is_a_recipes_option_off_by_default():
    assert builtin_recipes().force_consent == ()  # Datadog documents no such parameter
    assert merge(_builtin_data(), {"force_consent": {"prompt": "consent"}}, "mine.yaml").force_consent == \
        (("prompt", "consent"),)
    assert merge(_builtin_data(), {"force_consent": None}, "mine.yaml").force_consent == ()
    for bad in (["prompt"], {"prompt": 1}, "prompt=consent"):
        with pytest.raises(ConfigError, match=r"^mine.yaml: force_consent: "):
            merge(_builtin_data(), {"force_consent": bad}, "mine.yaml")


# ---- a documented endpoint answering 404 ---------------------------------------------------------------

def answer(status: int, body=None, raw: bytes | None = None) -> Exchange:
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return Exchange("GET", "https://api.datadoghq.com/api/v1/hosts?from=1", {}, b"", status, {}, content, 1.0)


def test_endpoint_absent_rules():
    assert endpoint_absent(answer(404, raw=b"<h1>Not Found</h1>"))
    assert endpoint_absent(answer(404, {"errors": ["Not found"]}))  # a fixed path: any 404
    assert not endpoint_absent(answer(404, {"errors": ["Not found"]}), names_a_resource=True)  # that resource
    assert endpoint_absent(answer(404, raw=b"Not Found"), names_a_resource=True)
    assert not endpoint_absent(answer(403, {"errors": ["Forbidden"]}))
    error = absent_error(answer(404, raw=b"<h1>Not Found</h1>"))
    assert isinstance(error, EndpointAbsent) and isinstance(error, PrerequisiteFailed)
    assert str(error).startswith("endpoint absent on this target: GET https://api.datadoghq.com/api/v1/hosts "
                                 "answered 404")
    assert "from=1" not in str(error)  # no query in the message


def test_endpoint_absent_is_its_own_category_broken_or_failed():
    error = absent_error(answer(404))
    broken = classify("call", "failed", error)
    assert (broken.status, broken.category) == ("broken", ENDPOINT_ABSENT)
    failure = api.endpoint_present(answer(404))
    from core.errors import ConformanceFailure
    owned = classify("call", "failed", ConformanceFailure(f"[DD-SCOPES-ENDPOINT] exists: {failure}"))
    assert (owned.status, owned.category) == ("failed", ENDPOINT_ABSENT)


class Target:
    class client:
        scopes = ("user_self_profile_read", "hosts_read")


def client_answering(handler) -> OAuthClient:
    http = DatadogHTTP(httpx.Client(transport=httpx.MockTransport(handler)))
    return OAuthClient(http, ClientCredentials("cid", "ddoauth-test-secret-xyz"), "datadoghq.com")


def test_a_probe_answering_404_is_endpoint_absent_for_evidence_and_a_bare_answer_for_its_owner():
    probe = read_probe("hosts_read")
    client = client_answering(lambda request: httpx.Response(404, json={"errors": ["Not found"]}))
    with pytest.raises(EndpointAbsent, match=r"endpoint absent on this target: GET https://api\.datadoghq\.com/"):
        probe(client, "good-token")
    ex = probe.answer(client, "good-token")  # the owner (test_scope_data_flow) judges it with a named check
    assert ex.status == 404 and "endpoint absent on this target" in api.endpoint_present(ex)


def test_a_probe_is_proven_with_a_good_token_before_it_serves_as_evidence():
    probe = identity_probe(Target)
    assert probe.scope == "user_self_profile_read"
    ok = client_answering(lambda request: httpx.Response(200, json={"data": {"id": "u"}}))
    assert probe.prove(ok, "good-token").status == 200
    refusing = client_answering(lambda request: httpx.Response(403, json={"errors": ["Forbidden"]}))
    with pytest.raises(PrerequisiteFailed, match=r"answered 403 with a good token: it cannot tell a live token"):
        probe.prove(refusing, "good-token")
    absent = client_answering(lambda request: httpx.Response(404, text="Not Found"))
    with pytest.raises(EndpointAbsent):  # never taken as proof that a token was revoked
        probe.prove(absent, "good-token")


def test_evidence_falls_back_on_the_next_read_only_until_one_is_proven():
    """users-me absent: the next read the scopes allow serves; once proven, a 404 for a revoked token is an
    answer about the token (judged by api_forbidden, which refuses it), never set aside for another read."""
    def first_absent(request):
        return httpx.Response(404, text="Not Found") if request.url.path.endswith("/users/me") else \
            httpx.Response(200, json={"host_list": []})
    probe = identity_probe(Target)
    assert probe.prove(client_answering(first_absent), "good-token").status == 200
    assert probe.scope == "hosts_read" and len(probe.absent) == 1
    dead = probe(client_answering(lambda request: httpx.Response(404, text="Not Found")), "revoked-token")
    assert dead.status == 404 and api.api_forbidden(dead) is not None


# ---- a field missing from one answer -------------------------------------------------------------------

def test_a_missing_token_field_is_a_prerequisite_never_a_key_error():
    assert token_field({"access_token": "at"}, "access_token") == "at"
    for body in ({}, {"access_token": ""}, None, ["x"]):
        with pytest.raises(PrerequisiteFailed, match=r"has no access_token$"):
            token_field(body, "access_token")

    class T:
        name = "US1-sandbox"

    grant = Grant(Authorization(T, None, "s", AUTHORIZE, FlowResult()), answer(200), {"token_type": "bearer"})
    with pytest.raises(PrerequisiteFailed, match="the token answer for US1-sandbox has no access_token"):
        grant.access_token
    with pytest.raises(PrerequisiteFailed, match="has no refresh_token"):
        grant.refresh_token
