"""The Datadog site registry (data in core/data/sites.yaml), shared with the emulator."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from core.errors import ConfigError

_REQUIRED = ("domain", "web_host", "api_host", "logs_intake_host", "environment", "oauth")


@dataclass(frozen=True)
class Endpoints:
    """Where a site's OAuth endpoints are: Datadog's documented paths unless a targets file's `endpoints`
    says otherwise (a Datadog that moved one, e.g. the token endpoint's /api/v2/oauth2/token alias)."""
    authorize: str = "/oauth2/v1/authorize"  # on the site's web host (the consent form posts back to it)
    token: str = "/oauth2/v1/token"  # on api.<domain>
    revoke: str = "/oauth2/v1/revoke"  # on api.<domain>


DOCUMENTED_ENDPOINTS = Endpoints()


@dataclass(frozen=True)
class Site:
    key: str
    domain: str
    web_host: str
    api_host: str
    logs_intake_host: str
    event_intake_host: str
    environment: str
    oauth: bool

    @property
    def web_origin(self) -> str:
        return f"https://{self.web_host}"

    @property
    def api_origin(self) -> str:
        return f"https://{self.api_host}"

    @property
    def hosts(self) -> tuple[str, ...]:
        return (self.web_host, self.api_host, self.logs_intake_host, self.event_intake_host)


class SiteRegistry:
    def __init__(self, sites: dict[str, Site]):
        self._sites = sites

    def __iter__(self):
        return iter(self._sites.values())

    def __len__(self) -> int:
        return len(self._sites)

    def keys(self) -> list[str]:
        return list(self._sites)

    def get(self, key: str) -> Site:
        try:
            return self._sites[key.upper()]
        except KeyError:
            raise ConfigError(f"unknown Datadog site {key!r}; known: {', '.join(self._sites)}") from None

    def by_domain(self, domain: str) -> Site | None:
        for site in self._sites.values():
            if site.domain == domain:
                return site
        return None

    def by_host(self, host: str) -> Site | None:
        host = host.split(":")[0].lower()
        for site in self._sites.values():
            if host in site.hosts:
                return site
        return None

    def oauth_sites(self) -> list[Site]:
        return [s for s in self._sites.values() if s.oauth]

    def all_hosts(self) -> list[str]:
        return [h for s in self._sites.values() for h in s.hosts]


def parse_registry(data: dict, source: str = "sites.yaml") -> SiteRegistry:
    if not isinstance(data, dict) or not isinstance(data.get("sites"), dict):
        raise ConfigError(f"{source}: top-level 'sites' mapping is missing")
    sites = {}
    for key, entry in data["sites"].items():
        missing = [f for f in _REQUIRED if f not in (entry or {})]
        if missing:
            raise ConfigError(f"{source}: site {key}: missing {', '.join(missing)}")
        sites[key.upper()] = Site(
            key=key.upper(),
            domain=entry["domain"],
            web_host=entry["web_host"],
            api_host=entry["api_host"],
            logs_intake_host=entry["logs_intake_host"],
            event_intake_host=entry.get("event_intake_host", f"event-management-intake.{entry['domain']}"),
            environment=entry["environment"],
            oauth=bool(entry["oauth"]),
        )
    return SiteRegistry(sites)


@functools.lru_cache(maxsize=None)
def load_registry(path: str | None = None) -> SiteRegistry:
    if path is None:
        text = resources.files("core").joinpath("data/sites.yaml").read_text()
        source = "core/data/sites.yaml"
    else:
        text = Path(path).read_text()
        source = path
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc.__class__.__name__})") from None
    return parse_registry(data, source)
