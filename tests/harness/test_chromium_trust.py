"""Chromium's trust with network.ca_bundle (harness/browser/trust.py): the bundle's CAs are read and
their keys hashed as Chromium does; a real Chromium, launched as the harness launches it, loads a page
whose certificate comes from the bundle's CA, and refuses, with one clear line, a certificate from
another CA or for another name. Nothing ignores certificate errors."""
from __future__ import annotations

import base64
import hashlib
import http.server
import os
import re
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from core.errors import ConfigError
from core.network import Network
from harness.browser import trust
from harness.browser.chromium import launch_args
from harness.browser.consent import ConsentDriver, Credentials


def _pem(tmp_path: Path, name: str, *cas: trustme.CA) -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(ca.cert_pem.bytes() for ca in cas))
    return path


def _openssl_spki(pem: bytes) -> str:
    """The recipe Chromium documents for --ignore-certificate-errors-spki-list, with openssl."""
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem, capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True,
                         check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


# ---- the bundle -------------------------------------------------------------------------------------

def test_bundle_cas_reads_every_certificate_and_hashes_its_key(tmp_path):
    one, two = trustme.CA(organization_name="Bundle One"), trustme.CA(organization_name="Bundle Two")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"# corporate roots\n" + one.cert_pem.bytes() + b"\n" + two.cert_pem.bytes())
    cas = trust.bundle_cas(bundle)
    assert [ca.subject for ca in cas] == [x509.load_pem_x509_certificate(c.cert_pem.bytes()).subject.rfc4514_string()
                                          for c in (one, two)]
    assert "O=Bundle One" in cas[0].subject
    assert [ca.spki_sha256 for ca in cas] == [_openssl_spki(c.cert_pem.bytes()) for c in (one, two)]
    assert len(base64.b64decode(cas[0].spki_sha256)) == 32


@pytest.mark.parametrize("content, fragment", [
    (b"", "no PEM certificate in it"),
    (b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "certificate 1 is not a valid PEM"),
])
def test_bundle_cas_refuses_a_bundle_without_certificates(tmp_path, content, fragment):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment) as info:
        trust.bundle_cas(bundle)
    assert "\n" not in str(info.value) and str(bundle) in str(info.value)


def test_nss_home_is_built_once_per_bundle_content(tmp_path):
    one, two = trustme.CA(), trustme.CA()
    first = trust.nss_home(_pem(tmp_path, "a.pem", one), tmp_path / "trust")
    assert (first / ".pki" / "nssdb" / "cert9.db").exists()
    assert trust.nss_home(_pem(tmp_path, "a-again.pem", one), tmp_path / "trust") == first
    assert trust.nss_home(_pem(tmp_path, "b.pem", two), tmp_path / "trust") != first
    listed = subprocess.run(["certutil", "-L", "-d", f"sql:{first / '.pki' / 'nssdb'}"], capture_output=True,
                            text=True, check=True).stdout
    assert "ddoauth-ca-0" in listed and "C,," in listed
    assert [p.name for p in (tmp_path / "trust").iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_nss_home_without_certutil_is_one_line_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(trust.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="apt-get install libnss3-tools") as info:
        trust.nss_home(_pem(tmp_path, "a.pem", trustme.CA()), tmp_path / "trust")
    assert "\n" not in str(info.value)


def test_launch_args_set_home_only_with_a_bundle(tmp_path):
    assert "env" not in launch_args({}, Network(), [])
    args = launch_args({"env": {"TZ": "UTC"}}, Network(ca_bundle=_pem(tmp_path, "a.pem", trustme.CA())), [])
    assert args["env"]["TZ"] == "UTC" and (Path(args["env"]["HOME"]) / ".pki" / "nssdb").is_dir()
    assert not any("ignore-certificate-errors" in a for a in args["args"])


@pytest.mark.parametrize("message, expected", [
    ("Page.goto: net::ERR_CERT_AUTHORITY_INVALID at https://app.datadoghq.com/oauth2/v1/authorize?x=1\nCall log:",
     "net::ERR_CERT_AUTHORITY_INVALID: the certificate of app.datadoghq.com is not issued by a CA in "
     "network.ca_bundle (/b/ca.pem)"),
    ("net::ERR_CERT_COMMON_NAME_INVALID at https://api.bigcorp.datadoghq.eu:8443/x",
     "net::ERR_CERT_COMMON_NAME_INVALID: the certificate of api.bigcorp.datadoghq.eu does not name "
     "api.bigcorp.datadoghq.eu"),
    ("net::ERR_CERT_DATE_INVALID at https://a.example/", "net::ERR_CERT_DATE_INVALID: the certificate of a.example "
                                                          "is expired or not yet valid"),
    ("net::ERR_CONNECTION_REFUSED at https://a.example/", None),
])
def test_certificate_error_message(message, expected):
    assert trust.certificate_error(message, Network(ca_bundle=Path("/b/ca.pem"))) == expected


def test_certificate_error_without_a_bundle_says_to_set_one():
    assert trust.certificate_error("net::ERR_CERT_AUTHORITY_INVALID at https://h.example/", Network()) == (
        "net::ERR_CERT_AUTHORITY_INVALID: the certificate of h.example is not issued by a CA Chromium trusts "
        "(set network.ca_bundle to your CA's PEM)")


# ---- a real Chromium --------------------------------------------------------------------------------

def _serve(tmp_path: Path, ca: trustme.CA, *names: str) -> int:
    leaf = ca.issue_cert(*names)
    cert, key = tmp_path / f"{names[0]}.pem", tmp_path / f"{names[0]}.key"
    cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))  # the leaf alone, as the emulator sends
    leaf.private_key_pem.write_to_path(str(key))

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<title>trusted</title><p>served over the bundle's CA</p>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


@pytest.fixture(scope="module")
def two_cas(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two-cas")
    bundle_ca, other_ca = trustme.CA(organization_name="Bundle CA"), trustme.CA(organization_name="Other CA")
    good = _serve(tmp, bundle_ca, "app.datadoghq.com")
    other = _serve(tmp, other_ca, "app.datadoghq.eu")
    misnamed = _serve(tmp, bundle_ca, "somewhere.example")
    network = Network(host_map={"app.datadoghq.com": f"127.0.0.1:{good}", "app.datadoghq.eu": f"127.0.0.1:{other}",
                                "api.bigcorp.datadoghq.eu": f"127.0.0.1:{misnamed}"},
                      ca_bundle=_pem(tmp, "bundle.pem", bundle_ca))
    args = launch_args({"headless": True}, network, [])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**args)
        yield network, browser, pw
        browser.close()


@pytest.fixture
def page(two_cas):
    context = two_cas[1].new_context()  # the harness's contexts: no ignore_https_errors
    yield context.new_page()
    context.close()


def test_a_certificate_from_the_bundles_ca_loads(page):
    response = page.goto("https://app.datadoghq.com/account/login")
    assert response.status == 200 and page.title() == "trusted"


def test_a_certificate_from_another_ca_fails_the_flow_with_one_clear_line(two_cas, page):
    network = two_cas[0]
    url = "https://app.datadoghq.eu/oauth2/v1/authorize?response_type=code&client_id=x"
    driver = ConsentDriver(Credentials("dev@example.com", "pw"), "Acme", "EU1", screenshots=False, timeout_s=10)
    with pytest.raises(ConfigError) as info, trust.certificate_errors(network, url):
        driver.run(page, url)
    assert str(info.value) == ("net::ERR_CERT_AUTHORITY_INVALID: the certificate of app.datadoghq.eu is not issued "
                               f"by a CA in network.ca_bundle ({network.ca_bundle})")
    assert isinstance(info.value.__cause__, PlaywrightError)


def test_the_bundle_is_validated_fully_a_wrong_name_still_fails(two_cas, page):
    network = two_cas[0]
    with pytest.raises(ConfigError, match="net::ERR_CERT_COMMON_NAME_INVALID: the certificate of "
                                          "api.bigcorp.datadoghq.eu does not name"):
        with trust.certificate_errors(network):
            page.goto("https://api.bigcorp.datadoghq.eu/api/v1/validate")


def test_other_playwright_errors_pass_through(two_cas, page):
    network = two_cas[0]
    with pytest.raises(PlaywrightError, match="ERR_NAME_NOT_RESOLVED|ERR_CONNECTION"):
        with trust.certificate_errors(network):
            page.goto("https://nowhere.invalid/", timeout=10_000)


def test_without_the_bundle_chromium_refuses_the_emulator_like_certificate(tmp_path, two_cas):
    network, _, pw = two_cas
    bare = Network(host_map=network.host_map)
    browser = pw.chromium.launch(**launch_args({"headless": True}, bare, []))
    try:
        with pytest.raises(ConfigError, match="not issued by a CA Chromium trusts"):
            with trust.certificate_errors(bare):
                browser.new_context().new_page().goto("https://app.datadoghq.com/")
    finally:
        browser.close()
    assert os.environ.get("HOME") != str(tmp_path)  # the harness never changes its own HOME


def test_the_emulator_loads_with_its_ca_bundle_alone(tmp_path, two_cas):
    """The emulator's targets file also pins its leaf key (chromium_spki); its CA bundle alone is enough."""
    from emulator.server import start

    running = start(tmp_path / "emulator")
    try:
        network = Network(host_map={"*.datadoghq.eu": running.base_address}, ca_bundle=running.tls.ca_pem)
        browser = two_cas[2].chromium.launch(**launch_args({"headless": True}, network, []))
        try:
            response = browser.new_context().new_page().goto("https://app.datadoghq.eu/account/login")
            assert response is not None and response.status == 200
            with pytest.raises(ConfigError, match="does not name api.bigcorp.datadoghq.eu"):
                with trust.certificate_errors(network):
                    browser.new_context().new_page().goto("https://api.bigcorp.datadoghq.eu/api/v1/validate")
        finally:
            browser.close()
    finally:
        running.stop()


def test_nothing_turns_chromium_certificate_errors_off():
    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"""["']ignore_https_errors["']|ignore_https_errors\s*="""
                         r"|--ignore-certificate-errors(?!-spki-list)")
    offenders = [f"{p.relative_to(root)}:{n}" for d in ("harness", "fixtures", "suites", "core")
                 for p in (root / d).rglob("*.py") for n, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, f"Chromium must trust network.ca_bundle, not ignore certificate errors: {offenders}"
