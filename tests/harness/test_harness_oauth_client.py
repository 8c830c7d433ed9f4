"""harness/oauth_client.py and harness/evidence.py against httpx.MockTransport (no sockets)."""
from __future__ import annotations

import base64
import json
import shlex
import subprocess
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import pytest

from core.errors import TargetUnavailable
from harness.http.exchange import DatadogHTTP, Exchange
from harness.http.oauth_client import ClientCredentials, OAuthClient, api_origin, authorize_url
from core.pkce import PKCE
from core.redact import REDACTOR
from core.sites import load_registry

CLIENT_ID = "client-id-0001"
SECRET = "client-secret-hx-0001"
REDIRECT = "https://integration.example.com/oauth/callback"


class Mock:
    """A DatadogHTTP over a MockTransport that answers `reply` and keeps every request."""

    def __init__(self, reply=None):
        self.requests: list[httpx.Request] = []
        self.reply = reply or (lambda request: httpx.Response(200, json={"ok": True}))
        self.seen: list[Exchange] = []
        self.http = DatadogHTTP(httpx.Client(transport=httpx.MockTransport(self._handle)), listeners=[self.seen.append])

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.last.content.decode(), keep_blank_values=True)


@pytest.fixture
def mock():
    m = Mock()
    yield m
    m.http.client.close()


def oauth(mock: Mock, domain: str = "datadoghq.eu", client_id: str = CLIENT_ID, secret: str = SECRET) -> OAuthClient:
    return OAuthClient(mock.http, ClientCredentials(client_id, secret), domain)


# ---- authorize URL -------------------------------------------------------------------------------

def test_authorize_url_order_and_encoding():
    pkce = PKCE.generate()
    state = "a state with spaces & an ampersand=1/2?#%"
    url = authorize_url("https://app.datadoghq.com", CLIENT_ID, REDIRECT, state, pkce, scope="a b",
                        extra=[("prompt", "consent")])
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://app.datadoghq.com/oauth2/v1/authorize"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    assert pairs == [("redirect_uri", REDIRECT), ("client_id", CLIENT_ID), ("response_type", "code"),
                     ("code_challenge", pkce.challenge), ("code_challenge_method", "S256"),
                     ("state", state), ("scope", "a b"), ("prompt", "consent")]
    assert "+" not in parts.query  # spaces are %20, not '+'
    assert "redirect_uri=https%3A%2F%2Fintegration.example.com%2Foauth%2Fcallback" in parts.query
    # state survives a strict split on '&' and '=' (no raw separators leak)
    raw = dict(p.split("=", 1) for p in parts.query.split("&"))
    assert unquote(raw["state"]) == state


def test_authorize_url_minimal():
    url = authorize_url("https://app.datadoghq.eu", CLIENT_ID, REDIRECT, None, None)
    assert [k for k, _ in parse_qsl(urlsplit(url).query)] == ["redirect_uri", "client_id", "response_type"]


def test_authorize_url_plain_pkce():
    pkce = PKCE.plain()
    pairs = dict(parse_qsl(urlsplit(authorize_url("https://w", "c", REDIRECT, "s", pkce)).query))
    assert pairs["code_challenge"] == pkce.verifier and pairs["code_challenge_method"] == "plain"


# ---- token, refresh, revoke -----------------------------------------------------------------------

def test_token_url_from_the_callback_domain(mock):
    assert oauth(mock, "datadoghq.eu").token_url == "https://api.datadoghq.eu/oauth2/v1/token"
    assert oauth(mock, "us3.datadoghq.com").revoke_url == "https://api.us3.datadoghq.com/oauth2/v1/revoke"
    assert api_origin("ap1.datadoghq.com") == "https://api.ap1.datadoghq.com"
    for site in load_registry():
        assert oauth(mock, site.domain).token_url == f"{site.api_origin}/oauth2/v1/token"
        assert oauth(mock, site.domain).revoke_url == f"{site.api_origin}/oauth2/v1/revoke"


def test_configured_endpoints_are_where_every_call_goes(mock):
    from core.sites import Endpoints

    moved = Endpoints(authorize="/oauth2/v2/authorize", token="/api/v2/oauth2/token", revoke="/api/v2/oauth2/revoke")
    client = OAuthClient(mock.http, ClientCredentials(CLIENT_ID, SECRET), "datadoghq.eu", moved)
    client.exchange_code("code-ep-1", REDIRECT, "v" * 43)
    client.refresh("refresh-ep-1")
    client.exchange_code_with_get("code-ep-2", REDIRECT, "v" * 43)
    client.revoke("token-ep-1")
    assert [(r.method, r.url.host, r.url.path) for r in mock.requests] == [
        ("POST", "api.datadoghq.eu", "/api/v2/oauth2/token"), ("POST", "api.datadoghq.eu", "/api/v2/oauth2/token"),
        ("GET", "api.datadoghq.eu", "/api/v2/oauth2/token"), ("POST", "api.datadoghq.eu", "/api/v2/oauth2/revoke")]
    url = authorize_url("https://app.datadoghq.eu", CLIENT_ID, REDIRECT, "st", None, endpoints=moved)
    assert url.startswith("https://app.datadoghq.eu/oauth2/v2/authorize?redirect_uri=")
    # a configured target's: every flow, the login start and the doctor build theirs so
    from types import SimpleNamespace

    from harness.http.oauth_client import target_authorize_url, oauth_client
    target = SimpleNamespace(site=load_registry().get("EU1"), client=SimpleNamespace(id=CLIENT_ID, secret=SECRET,
                             kind="test"), redirect_uri=REDIRECT, endpoints=moved)
    assert target_authorize_url(target, "st", None) == url
    assert oauth_client(mock.http, target).token_url == "https://api.datadoghq.eu/api/v2/oauth2/token"


def test_client_secret_registered(mock):
    oauth(mock, secret="client-secret-registered-42")
    assert "client-secret-registered-42" in REDACTOR


def test_exchange_code_form(mock):
    ex = oauth(mock).exchange_code("code-abcdef-1", REDIRECT, "verifier-xyz")
    req = mock.last
    assert req.method == "POST" and str(req.url) == "https://api.datadoghq.eu/oauth2/v1/token"
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.headers["accept"] == "application/json"
    assert "authorization" not in req.headers
    assert mock.form() == [("grant_type", "authorization_code"), ("client_id", CLIENT_ID), ("client_secret", SECRET),
                           ("redirect_uri", REDIRECT), ("code_verifier", "verifier-xyz"), ("code", "code-abcdef-1")]
    assert ex.status == 200 and ex.label == "token: authorization_code"
    assert ex.request_body == req.content
    assert "code-abcdef-1" in REDACTOR


def test_exchange_code_json(mock):
    oauth(mock).exchange_code("code-abcdef-2", REDIRECT, None, body_format="json")
    req = mock.last
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                       "client_secret": SECRET, "redirect_uri": REDIRECT, "code": "code-abcdef-2"}


def test_exchange_code_variants(mock):
    client = oauth(mock)
    client.exchange_code("code-abcdef-3", None, "v", include_secret=False)
    assert dict(mock.form()) == {"grant_type": "authorization_code", "client_id": CLIENT_ID, "code_verifier": "v",
                                 "code": "code-abcdef-3"}
    client.exchange_code("code-abcdef-4", REDIRECT, "v", secret="wrong-secret", client_id="other-client",
                         content_type="text/plain", extra={"scope": "x"}, url="https://api.datadoghq.com/x")
    assert str(mock.last.url) == "https://api.datadoghq.com/x"
    assert mock.last.headers["content-type"] == "text/plain"
    form = dict(mock.form())
    assert form["client_secret"] == "wrong-secret" and form["client_id"] == "other-client" and form["scope"] == "x"


def test_exchange_code_basic_auth(mock):
    oauth(mock).exchange_code("code-abcdef-5", REDIRECT, "v", basic=True)
    scheme, _, blob = mock.last.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(blob).decode() == f"{CLIENT_ID}:{SECRET}"
    keys = [k for k, _ in mock.form()]
    assert "client_id" not in keys and "client_secret" not in keys
    assert keys == ["grant_type", "redirect_uri", "code_verifier", "code"]


def test_basic_auth_encodes_id_and_secret(mock):
    oauth(mock, client_id="id:with colon", secret="se:cr/et+=").exchange_code("code-abcdef-6", REDIRECT, "v",
                                                                            basic=True)
    decoded = base64.b64decode(mock.last.headers["authorization"].split()[1]).decode()
    user, _, password = decoded.partition(":")  # exactly one raw ':' separates them (RFC 6749 2.3.1)
    assert ":" not in password
    assert unquote(user) == "id:with colon" and unquote(password) == "se:cr/et+="


def test_refresh(mock):
    client = oauth(mock)
    ex = client.refresh("refresh-token-hx-1")
    assert str(mock.last.url) == "https://api.datadoghq.eu/oauth2/v1/token"
    assert mock.form() == [("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("client_secret", SECRET),
                           ("refresh_token", "refresh-token-hx-1")]
    assert ex.label == "token: refresh_token"
    assert "refresh-token-hx-1" in REDACTOR
    client.refresh("refresh-token-hx-2", scope="metrics_read", include_secret=False, body_format="json")
    assert mock.last.headers["content-type"] == "application/json"
    assert json.loads(mock.last.content) == {"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                             "refresh_token": "refresh-token-hx-2", "scope": "metrics_read"}


def test_revoke(mock):
    client = oauth(mock)
    ex = client.revoke("access-token-hx-1", "access_token")
    assert str(mock.last.url) == "https://api.datadoghq.eu/oauth2/v1/revoke"
    assert mock.last.headers["content-type"] == "application/x-www-form-urlencoded"
    assert mock.form() == [("client_id", CLIENT_ID), ("client_secret", SECRET), ("token", "access-token-hx-1"),
                           ("token_type_hint", "access_token")]
    assert ex.label == "revoke"
    client.revoke("access-token-hx-2", include_secret=False)
    assert mock.form() == [("client_id", CLIENT_ID), ("token", "access-token-hx-2")]


def test_api_call(mock):
    client = oauth(mock)
    ex = client.api("GET", "/api/v1/validate", "at-hx-123456")
    assert str(mock.last.url) == "https://api.datadoghq.eu/api/v1/validate"
    assert mock.last.headers["authorization"] == "Bearer at-hx-123456"
    assert ex.label == "GET /api/v1/validate"
    client.api("POST", "/api/v2/logs", None, host="http-intake.logs.datadoghq.eu", json={"m": 1},
               headers={"DD-API-KEY": "k"}, label="logs")
    assert str(mock.last.url) == "https://http-intake.logs.datadoghq.eu/api/v2/logs"
    assert "authorization" not in mock.last.headers and mock.last.headers["dd-api-key"] == "k"


# ---- DatadogHTTP: redaction, listeners, failures -----------------------------------------------------

def test_tokens_from_answers_are_registered_and_listeners_called():
    answer = {"access_token": "hx-access-token-777", "refresh_token": "hx-refresh-token-777",
              "token_type": "bearer", "expires_in": 3600}
    m = Mock(lambda request: httpx.Response(200, json=answer, headers={"Cache-Control": "no-store"}))
    ex = oauth(m).exchange_code("code-abcdef-7", REDIRECT, "v")
    assert "hx-access-token-777" in REDACTOR and "hx-refresh-token-777" in REDACTOR
    assert REDACTOR.labels()["hx-access-token-777"] == "access_token"
    assert m.seen == [ex] and m.http.count == 1
    assert ex.json == answer and ex.header("CACHE-CONTROL") == "no-store"
    assert ex.url == "https://api.datadoghq.eu/oauth2/v1/token"


def test_api_key_values_are_registered():
    m = Mock(lambda request: httpx.Response(201, json={"data": {"id": "k1", "type": "api_keys", "attributes": {
        "key": "hx0123456789abcdef0123456789abcd", "last4": "abcd"}}}))
    oauth(m).api("POST", "/api/v2/api_keys/marketplace", "at-hx-999999")
    assert REDACTOR.labels()["hx0123456789abcdef0123456789abcd"] == "api_key"
    m2 = Mock(lambda request: httpx.Response(200, json={"key": "hx-top-level-key-55"}))
    m2.http.request("GET", "https://api.datadoghq.com/x")
    assert "hx-top-level-key-55" in REDACTOR


def test_non_json_and_list_answers_do_not_break_registration():
    for reply in (httpx.Response(200, text="<html>"), httpx.Response(200, json=[{"key": "x"}]),
                  httpx.Response(200, json={"data": [{"attributes": {"key": "y"}}]}), httpx.Response(204)):
        m = Mock(lambda request, reply=reply: reply)
        ex = m.http.request("GET", "https://api.datadoghq.com/x")
        assert ex.status == reply.status_code


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
                                 httpx.RemoteProtocolError("eof")])
def test_transport_errors_become_target_unavailable(exc):
    def boom(request):
        raise exc
    m = Mock(boom)
    seen = []
    m.http.listeners.append(seen.append)
    with pytest.raises(TargetUnavailable) as info:
        oauth(m).refresh("refresh-token-hx-3")
    assert "POST https://api.datadoghq.eu/oauth2/v1/token" in str(info.value)
    assert type(exc).__name__ in str(info.value)
    assert seen == [] and m.http.count == 0


# ---- Exchange ---------------------------------------------------------------------------------------

def test_curl_is_a_valid_shell_line(mock):
    body = "it's a \"quoted\" $HOME `body` & more\nsecond line"
    ex = mock.http.request("POST", "https://api.datadoghq.eu/api/v2/x?a=1&b=2", content=body.encode(),
                           headers={"Content-Type": "text/plain", "X-Odd": "a'b"})
    line = ex.curl()
    argv = shlex.split(line)
    assert argv[:4] == ["curl", "-sS", "-X", "POST"]
    assert argv[-1] == "https://api.datadoghq.eu/api/v2/x?a=1&b=2"
    assert argv[argv.index("--data-raw") + 1] == body
    headers = [argv[i + 1] for i, a in enumerate(argv) if a == "-H"]
    assert "content-type: text/plain" in [h.lower() for h in headers]
    assert "X-Odd: a'b" in headers or "x-odd: a'b" in headers
    # noise headers are left out
    assert not any(h.lower().startswith(("host:", "content-length:", "user-agent:", "accept-encoding:",
                                         "connection:")) for h in headers)
    # and a real shell reads the same words (curl replaced by a function printing its arguments)
    shell = subprocess.run(["sh", "-c", "curl() { for a; do printf '%s\\0' \"$a\"; done; }; " + line],
                           capture_output=True, text=True, check=True)
    assert ["curl", *shell.stdout.split("\0")[:-1]] == argv


def test_curl_without_body():
    ex = Exchange("GET", "https://api.datadoghq.com/api/v1/validate", {"Authorization": "Bearer x"}, b"", 200, {},
                  b"{}", 1.0)
    assert shlex.split(ex.curl()) == ["curl", "-sS", "-X", "GET", "-H", "Authorization: Bearer x",
                                      "https://api.datadoghq.com/api/v1/validate"]


def test_exchange_helpers():
    ex = Exchange("GET", "https://x/", {}, b"", 403, {"Content-Type": "text/html"}, b"<html>", 12.3, "lbl")
    assert ex.json is None
    assert ex.header("content-type") == "text/html" and ex.header("missing") is None
    assert ex.brief() == "GET https://x/ -> 403"
    text = ex.describe()
    assert "--> 403" in text and "# reproduce:" in text and ex.curl() in text
    assert Exchange("GET", "u", {}, b"", 204, {}, b"", 0.0).json is None
