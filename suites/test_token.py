"""Token: code exchange with form and JSON bodies, and the answer's fields."""
import allure

from fixtures.grants import exchange
from harness.checks import authorization, token
from suites.token_answers import verify_token_answer

pytestmark = [allure.feature("token"), allure.severity(allure.severity_level.CRITICAL)]


@allure.story("code exchange")
def test_token_response_fields(target, shared_grant, verify, recorder):
    ex = shared_grant.token_exchange
    body = verify_token_answer(verify, ex)
    verify(token.token_fields, body)
    if "scope" in body:
        verify(token.token_scope, body, target.client.scopes)
    else:  # RFC 6749 §5.1 lets a server omit an unchanged scope; Datadog's docs show it, clients default it
        recorder.observe("RFC6749-5.1-SCOPE", "scope omitted from the token answer")


@allure.story("code exchange")
def test_code_exchange_with_json_body(target, browser_sessions, http, verify):
    from fixtures.grants import authorize
    auth = authorize(browser_sessions, target, back_channel=True)  # the subject is the exchange, not the pages
    verify(authorization.flow_reached_callback, auth.flow)
    ex = exchange(http, auth, body_format="json")
    verify(token.token_ok, ex)
    verify(token.token_fields, ex.json)
