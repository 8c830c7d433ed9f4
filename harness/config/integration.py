"""Integration mode's configuration: a target's `integration` section (where the partner's app starts,
the redirect URI it registered, how its login, success and failure pages look, what data it sends, and
the org keys that read Datadog's side), parsed and validated like the rest of the targets file.
The mode itself is harness/browser/partner.py."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from harness.config.urls import is_loopback_http

from core.errors import ConfigError
from core.redact import REDACTOR

API_KEY_NAME = "{client} OAuth Client API Key"  # Datadog names the marketplace key after the client
TOKEN_PATHS = ("/oauth2/v1/token", "/api/v2/oauth2/token")


# ---- configuration -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PartnerLogin:
    fields: tuple[tuple[str, str], ...]  # (input label, value), filled in order
    submit: str = r"^(Sign in|Log in|Login|Continue)$"  # the submit button's accessible name (regex)
    url: str | None = None  # regex for the login page URL; default: a partner page showing the first label


@dataclass(frozen=True)
class DataEvidence:
    metric: str
    tag: str | None = None
    wait_s: float = 60.0


@dataclass(frozen=True)
class OrgKeys:
    api_key: str
    app_key: str


@dataclass(frozen=True)
class IntegrationConfig:
    onboarding_url: str
    redirect_uri: str
    client_ids: tuple[str, ...]  # the client ids the partner may use (published and/or test)
    client_name: str | None = None  # Datadog names the partner's API key after it
    success_url: str | None = None  # regex on the final URL
    success_text: str | None = None  # text on the final page
    failure_text: str | None = None  # text on the partner's error page (deny)
    login: PartnerLogin | None = None
    data: DataEvidence | None = None
    org_keys: OrgKeys | None = None
    timeout_s: float = 45.0
    # a partner page that stays still this long and matches none of the configured pages ends the flow at once
    # (with what is missing), instead of waiting out timeout_s; a slow single-page app may need more
    settle_s: float = 3.0

    @property
    def partner_host(self) -> str:
        return urlsplit(self.redirect_uri).hostname or ""

    def api_key_prefix(self) -> str | None:
        return API_KEY_NAME.format(client=self.client_name) if self.client_name else None


def _https(value, source: str, where: str, loopback_ok: bool = True) -> str:
    parts = urlsplit(str(value))
    if not (parts.scheme == "https" and parts.hostname) and not (loopback_ok and is_loopback_http(str(value))):
        raise ConfigError(f"{source}: {where} must be an https URL (or http on a loopback address), got {value!r}")
    return str(value)


def _regex(value, source: str, where: str) -> str:
    try:
        re.compile(str(value))
    except re.error as exc:
        raise ConfigError(f"{source}: {where} is not a valid regular expression ({exc.msg})") from None
    return str(value)


def _seconds(value, most: float, source: str, where: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1
    if not 0 < seconds <= most:  # also refuses nan
        raise ConfigError(f"{source}: {where} must be a number of seconds in (0, {most:g}]")
    return seconds


def parse_integration(raw, source: str, where: str, client_id: str, client_name: str | None) -> IntegrationConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a mapping (onboarding_url, redirect_uri, success, ...)")
    for key in ("onboarding_url", "redirect_uri"):
        if not raw.get(key):
            raise ConfigError(f"{source}: {where}.{key} is required")
    success = raw.get("success") or {}
    if not isinstance(success, dict) or not (success.get("url") or success.get("text")):
        raise ConfigError(f"{source}: {where}.success needs a url (regex) and/or a text that shows the partner's "
                          f"success page")
    failure = raw.get("failure") or {}
    if not isinstance(failure, dict):
        raise ConfigError(f"{source}: {where}.failure must be a mapping with a text")
    ids = raw.get("client_ids", raw.get("client_id", [client_id]))
    ids = [ids] if isinstance(ids, str) else ids
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ConfigError(f"{source}: {where}.client_id must be a client id or a list of them")
    login = None
    if raw.get("login") is not None:
        lraw = raw["login"]
        fields = lraw.get("fields") if isinstance(lraw, dict) else None
        if not isinstance(fields, dict) or not fields or not all(isinstance(v, str) and v for v in fields.values()):
            raise ConfigError(f"{source}: {where}.login.fields must map input labels to values")
        for label, value in fields.items():
            if re.search("pass|secret|code|token", str(label), re.I):
                REDACTOR.add(value, "partner_password")
        login = PartnerLogin(tuple((str(k), v) for k, v in fields.items()),
                             _regex(lraw.get("submit", PartnerLogin.submit), source, f"{where}.login.submit"),
                             _regex(lraw["url"], source, f"{where}.login.url") if lraw.get("url") else None)
    data = None
    if raw.get("data") is not None:
        draw = raw["data"]
        if not isinstance(draw, dict) or not draw.get("metric"):
            raise ConfigError(f"{source}: {where}.data.metric is required (the metric the partner sends)")
        wait = _seconds(draw.get("wait_s", 60), 900, source, f"{where}.data.wait_s")
        data = DataEvidence(str(draw["metric"]), draw.get("tag"), wait)
    org_keys = None
    if raw.get("org_keys") is not None:
        kraw = raw["org_keys"]
        if not isinstance(kraw, dict) or not kraw.get("api_key") or not kraw.get("app_key"):
            raise ConfigError(f"{source}: {where}.org_keys needs api_key and app_key (from .env)")
        org_keys = OrgKeys(str(kraw["api_key"]), str(kraw["app_key"]))
        REDACTOR.add(org_keys.api_key, "api_key")
        REDACTOR.add(org_keys.app_key, "application_key")
    timeout = _seconds(raw.get("timeout_s", 45), 600, source, f"{where}.timeout_s")
    settle = _seconds(raw.get("settle_s", min(IntegrationConfig.settle_s, timeout)), timeout, source,
                      f"{where}.settle_s (at most timeout_s)")
    return IntegrationConfig(
        onboarding_url=_https(raw["onboarding_url"], source, f"{where}.onboarding_url"),
        redirect_uri=_https(raw["redirect_uri"], source, f"{where}.redirect_uri"),
        client_ids=tuple(ids), client_name=raw.get("client_name") or client_name,
        success_url=_regex(success["url"], source, f"{where}.success.url") if success.get("url") else None,
        success_text=success.get("text"), failure_text=failure.get("text"),
        login=login, data=data, org_keys=org_keys, timeout_s=timeout, settle_s=settle)


def integration_as_dict(cfg: IntegrationConfig) -> dict:
    """The targets-file form of a section (what parse_integration reads back)."""
    out: dict = {"onboarding_url": cfg.onboarding_url, "redirect_uri": cfg.redirect_uri,
                 "client_id": list(cfg.client_ids), "success": {}}
    if cfg.client_name:
        out["client_name"] = cfg.client_name
    if cfg.success_url:
        out["success"]["url"] = cfg.success_url
    if cfg.success_text:
        out["success"]["text"] = cfg.success_text
    if cfg.failure_text:
        out["failure"] = {"text": cfg.failure_text}
    if cfg.login:
        out["login"] = {"fields": dict(cfg.login.fields), "submit": cfg.login.submit}
        if cfg.login.url:
            out["login"]["url"] = cfg.login.url
    if cfg.data:
        out["data"] = {"metric": cfg.data.metric, "wait_s": cfg.data.wait_s,
                       **({"tag": cfg.data.tag} if cfg.data.tag else {})}
    if cfg.org_keys:
        out["org_keys"] = {"api_key": cfg.org_keys.api_key, "app_key": cfg.org_keys.app_key}
    out["timeout_s"] = cfg.timeout_s
    out["settle_s"] = cfg.settle_s
    return out


def onboarding_url(base: str, site=None, domain: str | None = None, site_as_host: bool = False) -> str:
    """The onboarding URL as Datadog's tile / "Test Authorization" opens it: `site` and `domain` appended.
    Whether `site` carries the scheme is undocumented (UNCONFIRMED): `site_as_host` sends the bare host."""
    parts = urlsplit(base)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if site is not None:
        query += [("site", site.web_host if site_as_host else site.web_origin), ("domain", domain or site.domain)]
    return urlunsplit(parts._replace(query=urlencode(query)))
