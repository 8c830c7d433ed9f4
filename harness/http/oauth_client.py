"""The harness acting as the partner's OAuth client, with the partner's credentials.

Every call returns the raw Exchange: checks judge status, headers and body themselves.
Hosts are built the documented way: authorize on the site's web host, everything else on
`https://api.<domain>` where `domain` comes from the callback (never from the org subdomain).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from harness.http.exchange import DatadogHTTP, Exchange
from core.pkce import PKCE
from core.redact import REDACTOR
from core.sites import DOCUMENTED_ENDPOINTS, Endpoints


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str
    kind: str = "test"  # test | published


def api_origin(domain: str) -> str:
    return f"https://api.{domain}"


def authorize_url(web_origin: str, client_id: str, redirect_uri: str, state: str | None,
                  pkce: PKCE | None, scope: str | None = None, extra: list[tuple[str, str]] | None = None,
                  endpoints: Endpoints = DOCUMENTED_ENDPOINTS) -> str:
    params: list[tuple[str, str]] = [("redirect_uri", redirect_uri), ("client_id", client_id),
                                     ("response_type", "code")]
    if pkce is not None:
        params += [("code_challenge", pkce.challenge), ("code_challenge_method", pkce.method)]
    if state is not None:
        params.append(("state", state))
    if scope is not None:
        params.append(("scope", scope))
    params += extra or []
    return f"{web_origin}{endpoints.authorize}?{urlencode(params, quote_via=quote)}"


def target_authorize_url(target, state: str | None, pkce: PKCE | None, scope: str | None = None) -> str:
    """A configured target's authorization request (harness.config.targets.Target): its site's web host,
    its client and redirect URI, its endpoints.authorize."""
    return authorize_url(target.site.web_origin, target.client.id, target.redirect_uri, state, pkce, scope,
                         endpoints=target.endpoints)


def oauth_client(http: DatadogHTTP, target, domain: str | None = None) -> OAuthClient:
    """The OAuth client of a configured target (harness.config.targets.Target): its credentials, its
    endpoints, on `domain` (the callback's) or its site's."""
    return OAuthClient(http, ClientCredentials(target.client.id, target.client.secret, target.client.kind),
                       domain or target.site.domain, target.endpoints)


class OAuthClient:
    def __init__(self, http: DatadogHTTP, credentials: ClientCredentials, domain: str,
                 endpoints: Endpoints = DOCUMENTED_ENDPOINTS):
        self.http = http
        self.credentials = credentials
        self.domain = domain
        self.endpoints = endpoints
        REDACTOR.add(credentials.client_secret, "client_secret")

    @property
    def token_url(self) -> str:
        return f"{api_origin(self.domain)}{self.endpoints.token}"

    @property
    def revoke_url(self) -> str:
        return f"{api_origin(self.domain)}{self.endpoints.revoke}"

    def _post(self, url: str, fields: dict[str, str], body_format: str, label: str,
              basic: bool = False, content_type: str | None = None) -> Exchange:
        fields = {k: v for k, v in fields.items() if v is not None}
        headers = {"Accept": "application/json"}
        if basic:
            cid = quote(fields.pop("client_id", ""), safe="")
            secret = quote(fields.pop("client_secret", ""), safe="")
            headers["Authorization"] = "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()
        if body_format == "json":
            content = json.dumps(fields).encode()
            headers["Content-Type"] = content_type or "application/json"
        else:
            content = urlencode(fields).encode()
            headers["Content-Type"] = content_type or "application/x-www-form-urlencoded"
        return self.http.request("POST", url, label=label, content=content, headers=headers)

    def _auth_fields(self, client_id: str | None, secret: str | None, include_secret: bool) -> dict:
        fields = {"client_id": client_id if client_id is not None else self.credentials.client_id}
        if include_secret:
            fields["client_secret"] = secret if secret is not None else self.credentials.client_secret
        return fields

    def exchange_code(self, code: str, redirect_uri: str | None, verifier: str | None, *,
                      body_format: str = "form", include_secret: bool = True, secret: str | None = None,
                      client_id: str | None = None, basic: bool = False, content_type: str | None = None,
                      extra: dict | None = None, url: str | None = None) -> Exchange:
        REDACTOR.add(code, "authorization_code")
        fields = {"grant_type": "authorization_code", **self._auth_fields(client_id, secret, include_secret),
                  "redirect_uri": redirect_uri, "code_verifier": verifier, "code": code, **(extra or {})}
        return self._post(url or self.token_url, fields, body_format, "token: authorization_code", basic, content_type)

    def exchange_code_with_get(self, code: str, redirect_uri: str | None, verifier: str | None) -> Exchange:
        """The same code exchange sent as a GET, every parameter in the query: RFC 6749 §3.2 says the
        client MUST use POST, and a check proves Datadog refuses it. The secret goes in the URL to the
        token host only (the host that receives it in every POST); the redactor knows its URL forms."""
        REDACTOR.add(code, "authorization_code")
        fields = {"grant_type": "authorization_code", **self._auth_fields(None, None, True),
                  "redirect_uri": redirect_uri, "code_verifier": verifier, "code": code}
        return self.http.request("GET", self.token_url, label="token: authorization_code with GET",
                                 params={k: v for k, v in fields.items() if v is not None},
                                 headers={"Accept": "application/json"})

    def refresh(self, refresh_token: str, *, include_secret: bool = True, secret: str | None = None,
                client_id: str | None = None, scope: str | None = None, body_format: str = "form") -> Exchange:
        REDACTOR.add(refresh_token, "refresh_token")
        fields = {"grant_type": "refresh_token", **self._auth_fields(client_id, secret, include_secret),
                  "refresh_token": refresh_token, "scope": scope}
        return self._post(self.token_url, fields, body_format, "token: refresh_token")

    def revoke(self, token: str | None, hint: str | None = None, *, include_secret: bool = True,
               secret: str | None = None, client_id: str | None = None) -> Exchange:
        fields = {**self._auth_fields(client_id, secret, include_secret), "token": token, "token_type_hint": hint}
        return self._post(self.revoke_url, fields, "form", "revoke")

    def api(self, method: str, path: str, access_token: str | None, *, label: str = "", host: str | None = None,
            headers: dict | None = None, **kwargs) -> Exchange:
        h = {"Accept": "application/json", **(headers or {})}
        if access_token is not None:
            h["Authorization"] = f"Bearer {access_token}"
        origin = f"https://{host}" if host else api_origin(self.domain)
        return self.http.request(method, origin + path, label=label or f"{method} {path}", headers=h, **kwargs)
