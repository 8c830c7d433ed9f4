"""Run the emulator: in a background thread (tests, the embedded default target) or as a CLI."""
from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from core.errors import ConfigError
from core.network import Network
from core.sites import SiteRegistry, load_registry

from .app import EmulatorApp
from .state import Store, load_seed
from .tls import TLSMaterial, make_tls

EXTRA_HOSTS = ("integration.example.com",)  # the reference partner app's host (integration mode)
STOP_GRACE_S = 1.0  # how long stop() lets in-flight requests finish before connections are dropped


class AsyncMappedTransport(httpx.AsyncBaseTransport):
    """core.network.MappedTransport, async: `https://api.datadoghq.eu/...` goes to the mapped address over
    real TLS, verified against the given CA for the real hostname (SNI). A name the map does not know fails
    as an unresolvable one would (no fallback to the real network). One pool per hostname."""

    def __init__(self, network: Network, ssl_context: ssl.SSLContext | None = None):
        self.network = network
        self._ssl = ssl_context or network.ssl_context()
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        target = self.network.resolve(host)
        if target is None:
            raise httpx.ConnectError(f"[Errno -2] Name or service not known: {host}", request=request)
        ip, port = target
        pool = self._pools.get(host)
        if pool is None:
            pool = self._pools[host] = httpx.AsyncHTTPTransport(verify=self._ssl)
        mapped = httpx.Request(
            request.method, request.url.copy_with(host=ip, port=port), headers=request.headers,
            stream=request.stream, extensions={**request.extensions, "sni_hostname": host},
        )
        return await pool.handle_async_request(mapped)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


class _QuietDrops(logging.Filter):
    # A rule that drops connections makes uvicorn complain; that is the point, not news.
    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


@dataclass
class RunningEmulator:
    port: int
    tls: TLSMaterial
    store: Store
    app: EmulatorApp
    registry: SiteRegistry
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def base_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def host_map(self) -> dict[str, str]:
        """Every served hostname -> the local address (what a client must resolve them to)."""
        return {h: self.base_address for h in served_hosts(self.registry)}

    def chromium_resolver_rules(self) -> str:
        return ",".join(f"MAP {h} {self.base_address}" for h in served_hosts(self.registry))

    def targets_document(self) -> dict:
        """A targets file (as a mapping) for the suites against this emulator."""
        from .targets import targets_document

        return targets_document(self.store.snapshot(), self.base_address, str(self.tls.ca_pem), self.tls.spki_sha256)

    def stop(self, timeout: float = 10.0) -> None:
        # an idle pooled TLS connection whose client never reads again (an httpx pool nobody closed) holds
        # uvicorn's graceful shutdown until the join gives up: past a short grace, close it regardless
        self._server.should_exit = True
        self._thread.join(STOP_GRACE_S + 0.5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)


def served_hosts(registry: SiteRegistry) -> list[str]:
    return registry.all_hosts() + list(EXTRA_HOSTS)


def start(state_dir: Path, port: int = 0, seed: str | Path | None = None, control_api: bool = True,
          registry: SiteRegistry | None = None, host: str = "127.0.0.1", timeout: float = 15.0) -> RunningEmulator:
    registry = registry or load_registry()
    store = Store(registry, load_seed(seed))
    tls = make_tls(Path(state_dir), served_hosts(registry))
    app = EmulatorApp(store, control_api=control_api)
    if app.partner.host not in EXTRA_HOSTS:
        raise ConfigError(f"seed partner.host must be one of {', '.join(EXTRA_HOSTS)} (the certificate's names)")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual_port = sock.getsockname()[1]
    # The partner app's outbound HTTP: every served hostname to this socket, over TLS checked against our CA.
    local = "127.0.0.1" if host in ("0.0.0.0", "") else host
    network = Network(host_map={h: f"{local}:{actual_port}" for h in served_hosts(registry)}, ca_bundle=tls.ca_pem)
    partner_tls = network.ssl_context()
    app.partner.transport_factory = lambda: AsyncMappedTransport(network, partner_tls)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    config = uvicorn.Config(app, ssl_certfile=str(tls.cert_pem), ssl_keyfile=str(tls.key_pem), log_level="warning",
                            access_log=False, lifespan="off", http="httptools", loop="uvloop",
                            timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ddoauth-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the emulator did not start")
        time.sleep(0.02)
    return RunningEmulator(actual_port, tls, store, app, registry, server, thread)
