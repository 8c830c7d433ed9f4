"""Where real Datadog hostnames go. Against real Datadog: nowhere special. Against the emulator
(or a corporate proxy/CA): a host -> address map and a CA bundle, applied at the network layer
only, so every URL the harness builds is the real Datadog URL.
"""
from __future__ import annotations

import fnmatch
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Network:
    host_map: dict[str, str] = field(default_factory=dict)  # host or glob ("*.datadoghq.eu") -> "ip:port"
    ca_bundle: Path | None = None  # trusted on top of the system store, by httpx and by Chromium (NSS db)
    # leaf keys Chromium accepts whatever their chain (base64 SHA-256 of the SPKI): a list or comma-joined
    chromium_spki: tuple[str, ...] | str | None = None

    def __post_init__(self):
        pins = self.chromium_spki.split(",") if isinstance(self.chromium_spki, str) else self.chromium_spki or ()
        object.__setattr__(self, "chromium_spki", tuple(p.strip() for p in pins if p.strip()) or None)

    def resolve(self, host: str) -> tuple[str, int] | None:
        host = host.lower()
        target = self.host_map.get(host) or next((a for h, a in self.host_map.items() if h.lower() == host), None)
        if target is None:
            for pattern, addr in self.host_map.items():
                if "*" in pattern and fnmatch.fnmatch(host, pattern):
                    target = addr
                    break
        if target is None:
            return None
        ip, _, port = target.rpartition(":")
        return ip, int(port)

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.ca_bundle:
            ctx.load_verify_locations(cafile=str(self.ca_bundle))
        return ctx

    def chromium_args(self, first_rules: list[str] | None = None) -> list[str]:
        args = []
        rules = list(first_rules or []) + [f"MAP {h} {a}" for h, a in self.host_map.items()]
        if rules:
            args.append(f"--host-resolver-rules={','.join(rules)}")
        if self.chromium_spki:
            args.append(f"--ignore-certificate-errors-spki-list={','.join(self.chromium_spki)}")
        return args


class MappedTransport(httpx.BaseTransport):
    """Sends `https://api.datadoghq.eu/...` to the mapped address, keeping URL, Host and TLS name.

    One pool per real host: a pooled connection verified for one name is never reused for another,
    so `api.bigcorp.datadoghq.eu` fails the certificate name check as it does against Datadog.
    """

    def __init__(self, network: Network, timeout: httpx.Timeout | None = None):
        self.network = network
        self._ssl = network.ssl_context()
        self._pools: dict[str, httpx.HTTPTransport] = {}
        self._direct = httpx.HTTPTransport(verify=self._ssl)

    def _pool(self, host: str) -> httpx.HTTPTransport:
        pool = self._pools.get(host)
        if pool is None:
            pool = self._pools[host] = httpx.HTTPTransport(verify=self._ssl)
        return pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        target = self.network.resolve(host)
        if target is None:
            return self._direct.handle_request(request)
        ip, port = target
        mapped = httpx.Request(
            request.method, request.url.copy_with(host=ip, port=port), headers=request.headers,
            stream=request.stream, extensions={**request.extensions, "sni_hostname": host},
        )
        return self._pool(host).handle_request(mapped)

    def close(self) -> None:
        self._direct.close()
        for pool in self._pools.values():
            pool.close()


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback address (127.0.0.0/8, ::1): where plain http is allowed for a redirect URI."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The harness says who it is: a Datadog-side record of requests (the emulator's request log) can then tell
# the harness's own token requests from the partner app's (integration mode's evidence).
HARNESS_USER_AGENT = "ddoauth-harness/1"


def make_client(network: Network, timeout: float = 20.0) -> httpx.Client:
    return httpx.Client(transport=MappedTransport(network), timeout=timeout, follow_redirects=False,
                        headers={"User-Agent": HARNESS_USER_AGENT})
