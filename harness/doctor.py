"""`ddoauth doctor`: the preflight a user runs before the first night.

For each selected target, in order, one line per step (``ok`` or ``FAIL`` with the fix):

1. config       the targets file loads (a ConfigError is the one failing line; exit 4)
2. dns, tls     per host the target uses (web host, API host): where it resolves (network.hosts or
                DNS), a TLS handshake with the target's trust (network.ca_bundle or the system
                store) and the real hostname as SNI, naming the CA that answered; a failure says
                whether it was DNS, the TCP connect, or certificate verification
3. credentials  a token request with a bogus code: 401 ``invalid_client`` is a wrong id/secret,
                400 ``invalid_grant`` (or another non-client error) means the client was accepted
4. login        the user logs in through the page recipes (harness/browser/consent.py)
5. consent      one authorization flow with PKCE to a code, exchanged for tokens
6. api          one API call with the access token (a read the client's scopes open)

A target stops at its first failing step. Secrets never reach the output: every line passes the
one redactor. Plain Python: the CLI (harness/cli.py) starts the embedded emulator, not this module.
"""
from __future__ import annotations

import dataclasses
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

from core.errors import ConfigError, LoginFailed, TargetUnavailable
from core.network import Network, make_client
from core.pkce import PKCE
from core.redact import REDACTOR
from core.scopes import fill_placeholders, load_catalogue
from harness.config.recipes import Recipes, load_recipes
from harness.config.targets import HarnessConfig, Target
from harness.http.exchange import DatadogHTTP
from harness.http.oauth_client import OAuthClient, oauth_client, target_authorize_url

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 4
CONNECT_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 10.0
PAGE_TIMEOUT_S = 10.0  # a recipe that matches nothing for this long: the page is unrecognised
BOGUS_CODE = "ddoauth-doctor-not-a-code"
# a cheap read to prove a token works, most specific first (the same order as suites/probes.py)
IDENTITY_PREFERENCE = ("user_self_profile_read", "dashboards_read", "monitors_read", "metrics_read",
                       "events_read", "hosts_read", "slos_read", "incident_read")
_HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    detail: str
    skipped: bool = False

    def line(self, target: str = "") -> str:
        status = "skip" if self.skipped else ("ok" if self.ok else "FAIL")
        head = f"{target:<20} " if target else ""
        return REDACTOR.redact_text(f"{head}{self.name:<12} {status:<5} {self.detail}")


def ok(name: str, detail: str) -> Step:
    return Step(name, True, detail)


def fail(name: str, detail: str) -> Step:
    return Step(name, False, detail)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


# ---- 1. config ---------------------------------------------------------------------------------

def check_config(load: Callable[[], HarnessConfig], recipes: Path | None = None
                 ) -> tuple[Step, HarnessConfig | None]:
    """The targets file (and `--recipes`, which wins over its `recipes:`), validated as a run would."""
    try:
        config = load()
        if recipes is not None:
            config = dataclasses.replace(config, recipes=load_recipes(recipes))
    except ConfigError as exc:
        return fail("config", str(exc)), None
    net = config.network
    trust = f"CA bundle {net.ca_bundle}" if net.ca_bundle else "the system CA store"
    mapped = f"{len(net.host_map)} host mapping(s)" if net.host_map else "real DNS"
    return ok("config", f"{config.source}: {len(config.targets)} target(s); network: {mapped}, {trust}; "
                        f"recipes: {config.recipes.source}"), config


# ---- 2. DNS and TLS ----------------------------------------------------------------------------

Resolver = Callable[..., list]


def check_dns(host: str, network: Network, resolver: Resolver = socket.getaddrinfo
              ) -> tuple[Step, tuple[str, int] | None]:
    """Where the harness will connect for `host`: the network map first, else real DNS (port 443)."""
    mapped = network.resolve(host)
    if mapped is not None:
        ip, port = mapped
        return ok("dns", f"{host} -> {ip}:{port} (network.hosts)"), (ip.strip("[]"), port)
    try:
        infos = resolver(host, 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or _first_line(exc)
        return fail("dns", f"{host}: DNS lookup failed ({why}): check the machine's DNS (or proxy), or map the "
                           f"host under network.hosts"), None
    if not infos:
        return fail("dns", f"{host}: DNS returned no address: check the machine's DNS"), None
    ip = infos[0][4][0]
    return ok("dns", f"{host} -> {ip} (DNS)"), (ip, 443)


def _issuer(attributes: dict[str, str]) -> str:
    cn, org = attributes.get("commonName"), attributes.get("organizationName")
    if cn and org and org not in cn:
        return f"'{cn}' ({org})"
    return f"'{cn or org or 'an unnamed CA'}'"


def _issuer_from_dict(cert: dict) -> str:
    return _issuer({k: v for rdn in cert.get("issuer", ()) for k, v in rdn})


def _issuer_from_der(der: bytes) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.load_der_x509_certificate(der).issuer
    attrs = {}
    for key, oid in (("commonName", NameOID.COMMON_NAME), ("organizationName", NameOID.ORGANIZATION_NAME)):
        found = name.get_attributes_for_oid(oid)
        if found:
            attrs[key] = str(found[0].value)
    return _issuer(attrs)


def _connect(addr: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(addr, timeout=timeout)


def _unverified_issuer(host: str, addr: tuple[str, int], timeout: float) -> str:
    """Who issued the certificate the server shows, read without trusting it (to name it in the failure)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with _connect(addr, timeout) as sock, ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
        return _issuer_from_der(der) if der else "an unknown issuer"
    except (OSError, ValueError, ImportError):
        return "an unknown issuer"


def check_tls(host: str, addr: tuple[str, int], network: Network, timeout: float = CONNECT_TIMEOUT_S) -> Step:
    """A TCP connect and a TLS handshake with the target's trust and `host` as SNI and name to verify."""
    where = f"{addr[0]}:{addr[1]}"
    try:
        sock = _connect(addr, timeout)
    except OSError as exc:
        why = exc.strerror or _first_line(exc)
        return fail("connect", f"{host}: cannot connect to {where} ({why}): check network.hosts and that the "
                               f"server is up (or a firewall / proxy in the way)")
    trust = f"network.ca_bundle ({network.ca_bundle})" if network.ca_bundle else "the system store"
    try:
        ctx = network.ssl_context()
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        return fail("tls", f"network.ca_bundle {network.ca_bundle} cannot be loaded ({_first_line(exc)}): "
                           f"point it at a PEM file of CA certificates")
    try:
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            cert = tls.getpeercert() or {}
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        issuer = _unverified_issuer(host, addr, timeout)
        if exc.verify_code == _HOSTNAME_MISMATCH:
            return fail("tls", f"{host}: certificate verification failed: the certificate (issued by {issuer}) "
                               f"does not name {host}: check the site's hostnames and network.hosts")
        return fail("tls", f"{host}: certificate verification failed ({exc.verify_message}): the certificate was "
                           f"issued by {issuer}, not trusted by {trust}: set network.ca_bundle to that CA's "
                           f"certificate")
    except (ssl.SSLError, OSError) as exc:
        return fail("tls", f"{host}: TLS handshake with {where} failed ({_first_line(exc)}): is it a TLS "
                           f"server for {host}?")
    finally:
        sock.close()
    trusted = "network.ca_bundle" if network.ca_bundle else "the system store"
    return ok("tls", f"{host}: {version}, certificate issued by {_issuer_from_dict(cert)}, trusted by {trusted}")


# ---- 3. client credentials ---------------------------------------------------------------------

def check_credentials(http: DatadogHTTP, target: Target) -> Step:
    """A code exchange with a bogus code: the answer says whether the client authenticated, without a user."""
    client = oauth_client(http, target)
    try:
        ex = client.exchange_code(BOGUS_CODE, target.redirect_uri, PKCE.generate().verifier)
    except TargetUnavailable as exc:
        return fail("credentials", f"token endpoint unreachable: {_first_line(exc)}")
    body = ex.json if isinstance(ex.json, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), str) else None
    answer = f"{ex.status} {error}" if error else str(ex.status)
    if ex.status == 401 or error == "invalid_client":
        return fail("credentials", f"client authentication refused ({answer} from {client.token_url}): "
                                   f"check client.id / client.secret")
    if error == "unauthorized_client":
        return fail("credentials", f"the client may not use the authorization_code grant ({answer}): check the "
                                   f"client's registration")
    if ex.status == 400 and error:
        return ok("credentials", f"client accepted (the bogus code was refused as expected: {answer})")
    if ex.status == 404:
        return fail("credentials", f"no token endpoint at {client.token_url} (404): check the target's site, or "
                                   f"the targets file's endpoints.token (now {target.endpoints.token!r})")
    if 200 <= ex.status < 300:
        return fail("credentials", f"the token endpoint accepted a bogus code ({ex.status}): this is not a "
                                   f"Datadog token endpoint that checks codes; check the site and network.hosts")
    return fail("credentials", f"unexpected answer from {client.token_url}: {answer}")


# ---- 4/5. browser: login and one consent flow --------------------------------------------------

class DoctorBrowser:
    """One headless Chromium for the whole run, with the network's host mapping and the configured page
    recipes; one saved session per (site, user), so two targets of the same user log in once (a TOTP
    code is not sent twice). An unrecognised page is saved under `pages_dir`."""

    def __init__(self, network: Network, redirect_uris: Iterable[str], recipes: Recipes | None = None,
                 pages_dir: Path | None = None):
        self.network = network
        self.redirect_uris = list(redirect_uris)
        self.recipes = recipes
        self.pages_dir = pages_dir
        self._pw = None
        self._browser = None
        self.sessions: dict[tuple[str, str], dict] = {}  # login_key -> Playwright storage state

    def _start(self):
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            from harness.browser.chromium import launch_args
            from harness.browser.consent import blocked_hosts_rules

            self._pw = sync_playwright().start()
            args = launch_args({"headless": True}, self.network, blocked_hosts_rules(self.redirect_uris))
            self._browser = self._pw.chromium.launch(**args)
        return self._browser

    def new_context(self, storage_state=None):
        kwargs = {}  # never ignore_https_errors: launch_args makes Chromium trust network.ca_bundle's CAs
        if storage_state is not None:
            kwargs["storage_state"] = storage_state
        context = self._start().new_context(**kwargs)
        context.set_default_timeout(PAGE_TIMEOUT_S * 1000 * 1.5)
        return context

    def driver(self, target: Target):
        from harness.browser.consent import ConsentDriver, Credentials

        creds = Credentials(target.user.email, target.user.password, target.user.totp_secret)
        return ConsentDriver(creds, target.org, target.site.key, screenshots=False, timeout_s=PAGE_TIMEOUT_S,
                             recipes=self.recipes, snapshot_dir=self.pages_dir,
                             snapshot_prefix=f"doctor-{target.name}")

    def login_start(self, target: Target) -> str:
        from harness.browser.consent import login_start
        from harness.config.recipes import builtin_recipes

        return login_start(self.recipes or builtin_recipes(), target)

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._pw is not None:
            self._pw.stop()
        self._browser = self._pw = None


def _browser_failure(name: str, exc: BaseException, network=None) -> Step:
    if isinstance(exc, LoginFailed):
        message = _first_line(exc, limit=1000)
        if "recipe" in message:  # an unrecognised page: the message names the saved page and the recipes file
            return fail(name, message)
        return fail(name, f"{message}: check the user's email/password/totp_secret, or the page recipes if "
                          f"Datadog's page changed")
    if isinstance(exc, TargetUnavailable):
        return fail(name, f"Datadog unreachable: {_first_line(exc)}")
    from harness.browser.trust import certificate_error

    tls = certificate_error(str(exc), network)  # e.g. not issued by a CA in network.ca_bundle (PATH)
    return fail(name, f"the browser failed: {tls or _first_line(exc)}")


def check_login(browser: DoctorBrowser, target: Target) -> Step:
    from playwright.sync_api import Error as PlaywrightError

    if target.login_key in browser.sessions:
        return ok("login", f"{target.user.email} on {target.site.web_host} (session of an earlier target reused)")
    state = str(target.user.storage_state) if target.user.storage_state and target.user.storage_state.exists() else None
    if target.user.storage_state and state is None and not target.user.password:
        return fail("login", f"user.storage_state {target.user.storage_state} does not exist: run `ddoauth login`")
    try:
        context = browser.new_context(storage_state=state)
        try:
            page = context.new_page()
            browser.driver(target).login(page, target.site.web_origin, browser.login_start(target))
            browser.sessions[target.login_key] = context.storage_state()
        finally:
            context.close()
    except (LoginFailed, TargetUnavailable, PlaywrightError) as exc:
        return _browser_failure("login", exc, browser.network)
    how = "saved browser state" if state else "password" + (" + TOTP" if target.user.totp_secret else "")
    return ok("login", f"{target.user.email} on {target.site.web_host} ({how})")


@dataclass
class Tokens:
    access_token: str
    refresh_token: str | None
    domain: str


def _strip_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def check_consent(browser: DoctorBrowser, http: DatadogHTTP, target: Target) -> tuple[Step, Tokens | None]:
    from playwright.sync_api import Error as PlaywrightError

    pkce = PKCE.generate()
    state = secrets.token_urlsafe(16)
    url = target_authorize_url(target, state, pkce)
    try:
        context = browser.new_context(storage_state=browser.sessions.get(target.login_key))
        try:
            result = browser.driver(target).run(context.new_page(), url)
        finally:
            context.close()
    except (LoginFailed, TargetUnavailable, PlaywrightError) as exc:
        return _browser_failure("consent", exc, browser.network), None
    callback = result.callback
    if result.callback_url is None:
        if result.error_text:
            return fail("consent", f"Datadog showed an error page: {result.error_text[:200]}: check that "
                                   f"redirect_uri {target.redirect_uri} is registered for the client"), None
        return fail("consent", f"no callback: the flow stopped at {_strip_query(result.final_url)} after "
                               f"{' -> '.join(result.page_names()) or 'no page'}"), None
    if "error" in callback:
        return fail("consent", f"the callback carried error={callback['error']} "
                               f"({callback.get('error_description', 'no description')}): check the client's "
                               f"scopes and redirect URIs"), None
    if not callback.get("code"):
        return fail("consent", f"the callback {_strip_query(result.callback_url)} has no code"), None
    if callback.get("state") != state:
        return fail("consent", "the callback's state is not the one sent (RFC 6749 4.1.2): run the suites"), None
    domain = callback.get("domain") or target.site.domain
    try:
        ex = oauth_client(http, target, domain).exchange_code(callback["code"], target.redirect_uri, pkce.verifier)
    except TargetUnavailable as exc:
        return fail("consent", f"code received, but the token endpoint is unreachable: {_first_line(exc)}"), None
    body = ex.json if isinstance(ex.json, dict) else {}
    if ex.status == 401 or body.get("error") == "invalid_client":
        return fail("consent", f"code received, but the exchange was refused ({ex.status} invalid_client): "
                               f"check client.id / client.secret"), None
    if ex.status != 200 or not isinstance(body.get("access_token"), str):
        error = body.get("error") or "no access_token"
        return fail("consent", f"code received, but the exchange answered {ex.status} ({error})"), None
    pages = " -> ".join(result.page_names()) or "no page"
    granted = len(str(body.get("scope") or "").split())
    return (ok("consent", f"code on {_strip_query(result.callback_url)} via {pages}; exchanged for tokens "
                          f"({ex.status}, {granted} scope(s) granted)"),
            Tokens(body["access_token"], body.get("refresh_token"), domain))


# ---- 6. one API call ---------------------------------------------------------------------------

def identity_read(scopes: Iterable[str]) -> tuple[str, str, dict, str] | None:
    """(method, path, params, scope) of a catalogued read the scopes open, the cheapest first, or None."""
    catalogue = load_catalogue()
    scopes = list(scopes)
    for scope in [s for s in IDENTITY_PREFERENCE if s in scopes] + scopes:
        probe = catalogue.probe_for(scope)
        if probe is None or probe.read is None:
            continue
        endpoint = catalogue.endpoints[probe.read.endpoint]
        return endpoint.method, endpoint.path, fill_placeholders(probe.read.params, time.time()), scope
    return None


def check_api(http: DatadogHTTP, target: Target, tokens: Tokens) -> Step:
    read = identity_read(target.client.scopes)
    if read is None:
        return Step("api", True, "no catalogued read among the client's scopes: no API call made", skipped=True)
    method, path, params, scope = read
    client = oauth_client(http, target, tokens.domain)
    try:
        ex = client.api(method, path, tokens.access_token, params=params, label="doctor api")
    except TargetUnavailable as exc:
        return fail("api", f"{method} {path}: unreachable: {_first_line(exc)}")
    finally:
        _revoke_quietly(client, tokens)
    call = f"{method} https://api.{tokens.domain}{path} ({scope})"
    if 200 <= ex.status < 300:
        return ok("api", f"{call} -> {ex.status}")
    if ex.status in (401, 403):
        return fail("api", f"{call} -> {ex.status}: the access token was refused: check the client's scopes")
    if ex.status == 404:
        return fail("api", f"{call} -> 404: the endpoint is absent on this target")
    return fail("api", f"{call} -> {ex.status}")


def _revoke_quietly(client: OAuthClient, tokens: Tokens) -> None:
    """The doctor's grant is not needed after its one call: revoke it (best effort, never a verdict)."""
    for token in (tokens.refresh_token, tokens.access_token):
        if token:
            try:
                client.revoke(token)
            except TargetUnavailable:
                return


# ---- a target, a run ---------------------------------------------------------------------------

def target_hosts(target: Target) -> list[str]:
    """The hosts a consent flow and a token exchange use: the site's web host and API host."""
    return list(dict.fromkeys((target.site.web_host, target.site.api_host)))


def check_target(target: Target, network: Network, http: DatadogHTTP, browser: DoctorBrowser,
                 out: Callable[[str], None], resolver: Resolver = socket.getaddrinfo) -> bool:
    """Every step for one target, printed as it ends; False at the first failing step."""
    def report(step: Step) -> bool:
        out(step.line(target.name))
        return step.ok

    for host in target_hosts(target):
        step, addr = check_dns(host, network, resolver)
        if not report(step) or addr is None:
            return False
        if not report(check_tls(host, addr, network)):
            return False
    if not report(check_credentials(http, target)):
        return False
    if not report(check_login(browser, target)):
        return False
    step, tokens = check_consent(browser, http, target)
    if not report(step) or tokens is None:
        return False
    return report(check_api(http, target, tokens))


def run_doctor(load: Callable[[], HarnessConfig], names: list[str] | None = None,
               out: Callable[[str], None] = print, resolver: Resolver = socket.getaddrinfo,
               recipes: Path | None = None, pages_dir: Path | None = Path("reports") / "pages") -> int:
    """The whole preflight; the exit code: 0 all ok, 1 a step failed, 4 the configuration is wrong."""
    step, config = check_config(load, recipes)
    out(step.line())
    if config is None:
        return EXIT_CONFIG
    try:
        targets = config.select(names or None)
    except ConfigError as exc:
        out(fail("config", str(exc)).line())
        return EXIT_CONFIG
    http = DatadogHTTP(make_client(config.network, timeout=HTTP_TIMEOUT_S), max_retries=1, retry_budget_s=5.0)
    browser = DoctorBrowser(config.network, [t.redirect_uri for t in targets], config.recipes, pages_dir)
    failed: list[str] = []
    try:
        for target in targets:
            start = time.monotonic()
            passed = check_target(target, config.network, http, browser, out, resolver)
            verdict = "ok" if passed else "FAIL"
            out(REDACTOR.redact_text(f"{target.name:<20} {'done':<12} {verdict:<5} "
                                     f"{time.monotonic() - start:.1f} s"))
            if not passed:
                failed.append(target.name)
    finally:
        browser.close()
        http.client.close()
    if failed:
        out(f"doctor: {len(failed)} of {len(targets)} target(s) not ready: {', '.join(failed)}")
        return EXIT_FAILED
    out(f"doctor: {len(targets)} target(s) ready")
    return EXIT_OK
