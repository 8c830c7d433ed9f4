"""harness/doctor.py, one failure kind at a time: each step's failing line names what broke and its fix.

DNS, connect and TLS run against real sockets (a local TLS server with a trustme CA); the token
endpoint and the API through httpx's MockTransport; the browser steps through a stand-in driver.
The whole command, with the emulator and Chromium, is tests/e2e/test_doctor.py.
"""
from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import httpx
import pytest
import trustme

from core.errors import LoginFailed, TargetUnavailable
from core.network import Network
from core.redact import REDACTOR
from core.sites import load_registry
from harness import doctor
from harness.browser.consent import FlowResult
from harness.config.targets import ClientConfig, HarnessConfig, Target, UserConfig, load_targets
from harness.http.exchange import DatadogHTTP

API = "api.datadoghq.com"
SECRET = "doctor-unit-secret-0123456789"
PASSWORD = "doctor-unit-password-42"


def make_target(**over) -> Target:
    REDACTOR.add(SECRET, "client_secret")
    REDACTOR.add(PASSWORD, "password")
    fields = dict(name="US1-sandbox", site=load_registry().get("US1"), org="Sandbox",
                  client=ClientConfig(id="cid-1", secret=SECRET, kind="test",
                                      scopes=("dashboards_read", "user_self_profile_read")),
                  redirect_uri="https://integration.example.com/oauth/callback",
                  user=UserConfig(email="dev@partner.example", password=PASSWORD))
    fields.update(over)
    return Target(**fields)


def mock_http(handler) -> DatadogHTTP:
    return DatadogHTTP(httpx.Client(transport=httpx.MockTransport(handler)), max_retries=0)


def answer(status: int, body: dict | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body or {})
    return handler


# ---- a local TLS server --------------------------------------------------------------------------

class TLSServer:
    """Accepts connections and completes TLS handshakes with a leaf for `names`, issued by `ca`."""

    def __init__(self, ca: trustme.CA, *names: str):
        self.ca = ca
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*names).configure_cert(ctx)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.ctx = ctx
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server_ca():
    return trustme.CA(organization_name="Doctor Test Issuer")


@pytest.fixture
def tls_server(server_ca):
    server = TLSServer(server_ca, API)
    yield server
    server.close()


def _pem(tmp_path: Path, ca: trustme.CA, name: str) -> Path:
    path = tmp_path / name
    ca.cert_pem.write_to_path(str(path))
    return path


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- 1. config -----------------------------------------------------------------------------------

def test_config_unknown_key_is_the_one_failing_line_and_exit_4(tmp_path):
    targets = tmp_path / "targets.yaml"
    targets.write_text("targets:\n  - name: x\n    site: US1\nnetwork:\n  host: {api.datadoghq.com: '127.0.0.1:1'}\n")
    lines: list[str] = []
    rc = doctor.run_doctor(lambda: load_targets(targets, None), out=lines.append)
    assert rc == doctor.EXIT_CONFIG == 4
    assert len(lines) == 1 and lines[0].startswith("config") and " FAIL " in lines[0]
    assert "network.host: unknown key; did you mean 'hosts'?" in lines[0]


def test_config_bad_recipes_file_is_a_config_failure(tmp_path):
    recipes = tmp_path / "recipes.yaml"
    recipes.write_text("pages:\n  login:\n    emial: {label: Email}\n")
    config = HarnessConfig(targets=[make_target()], source="t.yaml")
    step, loaded = doctor.check_config(lambda: config, recipes)
    assert loaded is None and not step.ok and str(recipes) in step.detail and "emial" in step.detail
    lines: list[str] = []
    assert doctor.run_doctor(lambda: config, out=lines.append, recipes=recipes) == 4 and len(lines) == 1


def test_config_unknown_target_name_is_a_config_failure():
    config = HarnessConfig(targets=[make_target()], source="t.yaml")
    lines: list[str] = []
    assert doctor.run_doctor(lambda: config, ["nope"], out=lines.append) == 4
    assert "FAIL" in lines[-1] and "--target 'nope' is not a configured target" in lines[-1]


# ---- 2. DNS, connect, TLS ------------------------------------------------------------------------

def test_dns_failure_names_dns_and_the_fix():
    def resolver(*a, **k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    step, addr = doctor.check_dns(API, Network(), resolver)
    assert addr is None and not step.ok and step.name == "dns"
    assert "DNS lookup failed (Name or service not known)" in step.detail and "network.hosts" in step.detail


def test_dns_from_the_network_map_and_from_real_dns():
    step, addr = doctor.check_dns(API, Network(host_map={"*.datadoghq.com": "127.0.0.1:8443"}))
    assert step.ok and addr == ("127.0.0.1", 8443) and "(network.hosts)" in step.detail
    step, addr = doctor.check_dns(API, Network(), lambda *a, **k: [(2, 1, 6, "", ("192.0.2.7", 443))])
    assert step.ok and addr == ("192.0.2.7", 443) and "(DNS)" in step.detail


def test_connect_refused_names_the_address():
    port = closed_port()
    step = doctor.check_tls(API, ("127.0.0.1", port), Network())
    assert not step.ok and step.name == "connect"
    assert f"cannot connect to 127.0.0.1:{port}" in step.detail and "network.hosts" in step.detail


def test_tls_ok_names_the_ca_that_answered(tls_server, server_ca, tmp_path):
    net = Network(ca_bundle=_pem(tmp_path, server_ca, "right.pem"))
    step = doctor.check_tls(API, ("127.0.0.1", tls_server.port), net)
    assert step.ok, step.detail
    assert "issued by 'Doctor Test Issuer'" in step.detail and "trusted by network.ca_bundle" in step.detail


def test_tls_wrong_ca_names_the_issuer_and_the_bundle(tls_server, tmp_path):
    other = _pem(tmp_path, trustme.CA(organization_name="Some Other CA"), "other.pem")
    step = doctor.check_tls(API, ("127.0.0.1", tls_server.port), Network(ca_bundle=other))
    assert not step.ok and step.name == "tls"
    assert "certificate verification failed" in step.detail
    assert (f"the certificate was issued by 'Doctor Test Issuer', not trusted by network.ca_bundle ({other}): "
            "set network.ca_bundle") in step.detail


def test_tls_unknown_ca_without_a_bundle_names_the_system_store(tls_server):
    step = doctor.check_tls(API, ("127.0.0.1", tls_server.port), Network())
    assert not step.ok and "issued by 'Doctor Test Issuer', not trusted by the system store" in step.detail


def test_tls_name_mismatch_says_so(tls_server, server_ca, tmp_path):
    net = Network(ca_bundle=_pem(tmp_path, server_ca, "right.pem"))
    step = doctor.check_tls("api.bigcorp.datadoghq.com", ("127.0.0.1", tls_server.port), net)
    assert not step.ok and "does not name api.bigcorp.datadoghq.com" in step.detail


def test_tls_against_a_plain_tcp_server_is_a_handshake_failure():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        step = doctor.check_tls(API, ("127.0.0.1", srv.getsockname()[1]), Network())
    finally:
        srv.close()
    assert not step.ok and step.name == "tls" and "TLS handshake" in step.detail


# ---- 3. client credentials -----------------------------------------------------------------------

def test_credentials_refused_says_which_fields_to_check():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(401, json={"error": "invalid_client", "error_description": "Client authentication failed"})
    step = doctor.check_credentials(mock_http(handler), make_target())
    assert not step.ok and step.name == "credentials"
    assert "client authentication refused (401 invalid_client" in step.detail
    assert step.detail.endswith("check client.id / client.secret")
    body = dict(httpx.QueryParams(seen[0].content.decode()))
    assert seen[0].url == "https://api.datadoghq.com/oauth2/v1/token"
    assert body["grant_type"] == "authorization_code" and body["client_secret"] == SECRET
    assert body["redirect_uri"] == make_target().redirect_uri and body["code"] == doctor.BOGUS_CODE
    assert SECRET not in step.line("US1-sandbox")


def test_credentials_accepted_when_only_the_code_is_refused():
    step = doctor.check_credentials(mock_http(answer(400, {"error": "invalid_grant"})), make_target())
    assert step.ok and step.detail == "client accepted (the bogus code was refused as expected: 400 invalid_grant)"
    step = doctor.check_credentials(mock_http(answer(400, {"error": "invalid_request"})), make_target())
    assert step.ok


@pytest.mark.parametrize("status,body,words", [
    (400, {"error": "invalid_client"}, "client authentication refused"),
    (400, {"error": "unauthorized_client"}, "may not use the authorization_code grant"),
    (404, {}, "no token endpoint at https://api.datadoghq.com/oauth2/v1/token"),
    (200, {"access_token": "x" * 20}, "accepted a bogus code"),
    (503, {}, "token endpoint unreachable"),
])
def test_credentials_other_answers_fail_with_a_reason(status, body, words):
    step = doctor.check_credentials(mock_http(answer(status, body)), make_target())
    assert not step.ok and words in step.detail


def test_credentials_transport_error_is_unreachable():
    def handler(request):
        raise httpx.ConnectError("connection refused")
    step = doctor.check_credentials(mock_http(handler), make_target())
    assert not step.ok and "token endpoint unreachable" in step.detail


# ---- 4/5. login and consent (a stand-in browser and driver) --------------------------------------

class FakeContext:
    def new_page(self):
        return object()

    def storage_state(self):
        return {"cookies": [], "origins": []}

    def close(self):
        pass


class FakeBrowser(doctor.DoctorBrowser):
    def __init__(self, driver=None):
        super().__init__(Network(), [])
        self.fake_driver = driver

    def new_context(self, storage_state=None):
        return FakeContext()

    def driver(self, target):
        return self.fake_driver

    def login_start(self, target):
        return target.site.web_origin + "/account/login"


class FakeDriver:
    def __init__(self, login_error=None, flow=None):
        self.login_error, self.flow = login_error, flow

    def login(self, page, origin, start_url=None):
        if self.login_error:
            raise self.login_error
        return FlowResult()

    def run(self, page, url):
        if callable(self.flow):
            return self.flow(url)
        return self.flow


def test_login_failure_is_the_login_failed_message():
    browser = FakeBrowser(FakeDriver(LoginFailed("login failed for US1: Wrong password")))
    step = doctor.check_login(browser, make_target())
    assert not step.ok and step.name == "login"
    assert step.detail.startswith("login failed for US1: Wrong password: check the user's email/password")


def test_login_ok_then_reused_for_the_same_user():
    browser = FakeBrowser(FakeDriver())
    assert doctor.check_login(browser, make_target()).ok
    again = doctor.check_login(browser, make_target(name="US1-published"))
    assert again.ok and "session of an earlier target reused" in again.detail


def test_login_datadog_unreachable():
    browser = FakeBrowser(FakeDriver(TargetUnavailable("page did not arrive in time")))
    step = doctor.check_login(browser, make_target())
    assert not step.ok and "Datadog unreachable: page did not arrive in time" in step.detail


def _callback(pairs_of):
    """A flow that ends on the redirect URI with the pairs pairs_of(sent state) builds."""
    def flow(url):
        state = dict(httpx.URL(url).params)["state"]
        pairs = pairs_of(state)
        query = str(httpx.QueryParams(pairs))
        return FlowResult(callback_url=f"https://integration.example.com/oauth/callback?{query}", callback_pairs=pairs)
    return flow


@pytest.mark.parametrize("flow,words", [
    (FlowResult(error_text="Invalid redirect_uri"), "Datadog showed an error page: Invalid redirect_uri: check that"),
    (FlowResult(final_url="https://app.datadoghq.com/somewhere?x=1"), "no callback: the flow stopped at "
                                                                       "https://app.datadoghq.com/somewhere"),
    (_callback(lambda s: [("error", "invalid_scope"), ("state", s)]), "the callback carried error=invalid_scope"),
    (_callback(lambda s: [("code", "abc-code-123"), ("state", "not-" + s)]), "state is not the one sent"),
])
def test_consent_failures_say_where_the_flow_ended(flow, words):
    step, tokens = doctor.check_consent(FakeBrowser(FakeDriver(flow=flow)), mock_http(answer(500)), make_target())
    assert tokens is None and not step.ok and words in step.detail, step.detail


def test_consent_code_exchanged_and_a_refused_exchange():
    flow = _callback(lambda s: [("code", "a-real-code-123456"), ("state", s), ("domain", "datadoghq.com")])
    tokens_answer = {"access_token": "at-123456789", "refresh_token": "rt-123456789",
                     "scope": "dashboards_read user_self_profile_read"}
    browser = FakeBrowser(FakeDriver(flow=flow))
    step, tokens = doctor.check_consent(browser, mock_http(answer(200, tokens_answer)), make_target())
    assert step.ok and tokens.access_token == "at-123456789" and tokens.domain == "datadoghq.com"
    assert "2 scope(s) granted" in step.detail
    step, tokens = doctor.check_consent(browser, mock_http(answer(401, {"error": "invalid_client"})), make_target())
    assert not step.ok and "check client.id / client.secret" in step.detail


# ---- 6. one API call -----------------------------------------------------------------------------

def test_identity_read_prefers_the_own_profile():
    method, path, _, scope = doctor.identity_read(["dashboards_read", "user_self_profile_read"])
    assert (method, path, scope) == ("GET", "/api/v2/users/me", "user_self_profile_read")
    assert doctor.identity_read(["api_keys_write"]) is None


@pytest.mark.parametrize("status,ok,words", [(200, True, "-> 200"), (403, False, "the access token was refused"),
                                             (404, False, "absent on this target")])
def test_api_call_status(status, ok, words):
    calls = []

    def handler(request):
        calls.append((request.method, request.url.path))
        return httpx.Response(status if request.url.path.startswith("/api/") else 200, json={"data": {}})
    tokens = doctor.Tokens("at-123456789", "rt-123456789", "datadoghq.com")
    step = doctor.check_api(mock_http(handler), make_target(), tokens)
    assert step.ok is ok and words in step.detail
    assert calls[0] == ("GET", "/api/v2/users/me")
    assert calls[1:] == [("POST", "/oauth2/v1/revoke")] * 2  # the doctor's grant is revoked afterwards


# ---- a target stops at its first failure ---------------------------------------------------------

def test_a_target_stops_at_its_first_failing_step():
    def resolver(*a, **k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    lines: list[str] = []
    passed = doctor.check_target(make_target(), Network(), mock_http(answer(500)), FakeBrowser(), lines.append,
                                 resolver)
    assert passed is False and len(lines) == 1
    assert lines[0].split()[:3] == ["US1-sandbox", "dns", "FAIL"]


def test_lines_never_show_a_registered_secret():
    line = doctor.fail("credentials", f"echo {SECRET} and {PASSWORD}").line("x")
    assert SECRET not in line and PASSWORD not in line and "[REDACTED" in line

