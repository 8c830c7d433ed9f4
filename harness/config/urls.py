"""URL rules the configuration and the checks share."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_http(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
