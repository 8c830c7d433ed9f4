"""harness/browser/form_consent.py: a code without rendering where the consent page is a plain form, and a
fall-back to a rendered flow (with the reason) on anything else."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

import httpx
import pytest

from core.errors import ConfigError, TargetUnavailable
from harness.browser.form_consent import post_consent, session_cookies
from harness.config.recipes import builtin_recipes, merge, _builtin_data

WEB = "https://app.datadoghq.com"
AUTHORIZE = WEB + "/oauth2/v1/authorize?client_id=c&state=s"
CALLBACK = "https://partner.example.com/oauth/callback"

CONSENT = """<html><head><title>Authorize Acme | Datadog</title></head><body>
<form method=post action=/oauth2/v1/authorize><input type=hidden name=csrf value=tok-1>
<input type=hidden name=client_id value=c><button type=submit name=decision value=authorize>Authorize</button>
<button type=submit name=decision value=deny>Deny</button></form></body></html>"""
ORG_PICKER = """<html><head><title>Select an organization | Datadog</title></head><body><h1>Select an organization</h1>
<form method=post action=/oauth2/v1/authorize><input type=hidden name=csrf value=tok-1>
<button type=submit name=org_id value=o1>Other Org</button><button type=submit name=org_id value=o2>Sandbox</button>
</form></body></html>"""
SPA = """<html><head><title>Datadog</title></head><body><div id=root></div><button>Authorize</button></body></html>"""


@pytest.fixture
def state_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"cookies": [
        {"name": "dogweb", "value": "sess-1", "domain": "app.datadoghq.com", "path": "/"},
        {"name": "other", "value": "x", "domain": ".datadoghq.eu", "path": "/"}]}))
    return path


def html(body: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=body, headers={"content-type": "text/html; charset=utf-8"})


def serve(pages, seen: list):
    """A server answering GET authorize with pages[0] and each POST with the next answer."""
    answers = iter(pages)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_session_cookies_for_the_host_only(state_file):
    assert session_cookies(state_file, "app.datadoghq.com") == {"dogweb": "sess-1"}
    assert session_cookies(state_file, "app.datadoghq.eu") == {"other": "x"}


def test_consent_form_posted_with_cookies_and_fields(state_file):
    seen: list = []
    client = serve([html(CONSENT), httpx.Response(302, headers={"location": CALLBACK + "?code=abc&state=s&domain=x"})],
                   seen)
    outcome = post_consent(client, AUTHORIZE, state_file, builtin_recipes())
    assert outcome.flow is not None, outcome.reason
    assert outcome.flow.callback == {"code": "abc", "state": "s", "domain": "x"}
    assert outcome.flow.via == "form post" and outcome.flow.consent_shown and not outcome.flow.consent_remembered
    assert outcome.flow.callback_redirect_status == 302 and outcome.requests == 2
    post = seen[1]
    assert post.method == "POST" and str(post.url) == WEB + "/oauth2/v1/authorize"
    assert dict(parse_qsl(post.content.decode())) == {"csrf": "tok-1", "client_id": "c", "decision": "authorize"}
    assert post.headers["cookie"] == "dogweb=sess-1" and post.headers["origin"] == WEB


def test_org_picker_then_consent(state_file):
    seen: list = []
    client = serve([html(ORG_PICKER), html(CONSENT), httpx.Response(303, headers={"location": CALLBACK + "?code=abc"})],
                   seen)
    outcome = post_consent(client, AUTHORIZE, state_file, builtin_recipes(), org="Sandbox")
    assert outcome.flow is not None, outcome.reason
    assert dict(parse_qsl(seen[1].content.decode()))["org_id"] == "o2" and outcome.requests == 3


@pytest.mark.parametrize("pages,reason", [
    ([httpx.Response(302, headers={"location": WEB + "/account/login?next=x"}), html("<title>Log in</title>")],
     "Log in"),  # the session expired: the login page (render: it logs in again)
    ([httpx.Response(302, headers={"location": CALLBACK + "?code=abc"})], "left app.datadoghq.com"),  # remembered
    ([html(SPA)], "no plain consent form"),  # a page drawn by script
    ([html(ORG_PICKER)], "no plain consent form"),  # an org picker without the target's org
    ([html(CONSENT, 500)], "HTTP 500"),
    ([html(CONSENT), html("<title>Error</title>", 400)], "not a callback with a code"),
    ([html(CONSENT), httpx.Response(302, headers={"location": CALLBACK + "?error=access_denied"})], "not a callback"),
])
def test_anything_else_falls_back_with_the_reason(state_file, pages, reason):
    outcome = post_consent(serve(pages, []), AUTHORIZE, state_file, builtin_recipes(), org="Nope")
    assert outcome.flow is None and reason in outcome.reason


def test_no_session_no_request(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"cookies": []}))
    seen: list = []
    assert post_consent(serve([], seen), AUTHORIZE, path, builtin_recipes()).flow is None and not seen


def test_a_transport_error_is_the_targets_not_a_second_try(state_file):
    seen: list = []

    def fail(request):
        seen.append(request.method)
        raise httpx.ConnectError("refused")
    with pytest.raises(TargetUnavailable, match=r"^Datadog unreachable: GET https://app.datadoghq.com/oauth2/v1/"
                                                r"authorize failed \(ConnectError"):
        post_consent(httpx.Client(transport=httpx.MockTransport(fail)), AUTHORIZE, state_file, builtin_recipes())
    assert seen == ["GET"]


@pytest.mark.parametrize("error,says", [
    (httpx.ReadTimeout("slow"), "did not arrive in time: POST https://app.datadoghq.com/oauth2/v1/authorize still "
                                "unanswered after 30 s"),
    (httpx.ConnectError("reset"), "Datadog unreachable: POST https://app.datadoghq.com/oauth2/v1/authorize failed"),
])
def test_the_approval_is_never_tried_twice(state_file, error, says):
    """A transport error on the consent form's POST is the target's (broken, Datadog unreachable), not a reason
    to render the flow and approve again: the approval may have been processed."""
    seen: list = []

    def handler(request):
        seen.append(request.method)
        if request.method == "POST":
            raise error
        return html(CONSENT)
    client = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(TargetUnavailable, match=re.escape(says)):
        post_consent(client, AUTHORIZE, state_file, builtin_recipes())
    assert seen == ["GET", "POST"]


def test_recipe_locators_name_the_button(state_file):
    recipes = merge(_builtin_data(), {"pages": {"consent": {"authorize": {"css": "button[value=authorize]"}}}}, "mine.yaml")
    client = serve([html(CONSENT), httpx.Response(302, headers={"location": CALLBACK + "?code=abc"})], [])
    assert post_consent(client, AUTHORIZE, state_file, recipes).flow is not None
    recipes = merge(_builtin_data(), {"pages": {"consent": {"authorize": {"role": "button", "name": "^Allow$"}}}},
                    "mine.yaml")
    assert post_consent(serve([html(CONSENT)], []), AUTHORIZE, state_file, recipes).flow is None


def test_consent_form_post_setting():
    assert builtin_recipes().consent_form_post is False
    assert merge(_builtin_data(), {"consent_form_post": True}, "mine.yaml").consent_form_post is True
    with pytest.raises(ConfigError, match="consent_form_post: true or false"):
        merge(_builtin_data(), {"consent_form_post": "yes"}, "mine.yaml")
