"""URL rules the configuration and the checks share."""
from __future__ import annotations

from urllib.parse import urlsplit

from core.network import is_loopback_host


def is_loopback_http(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and is_loopback_host(parts.hostname or "")
