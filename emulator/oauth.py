"""Back channel of the emulated Datadog (API host): token (code and refresh grants) and revoke."""
from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from urllib.parse import unquote

from starlette.responses import JSONResponse, Response

from .http import NO_STORE, BodyParseError, Ctx, parse_params, read_body
from .state import Client, Grant
from .web import _PKCE_RE, code_expired

BAD_CODE = "Invalid code or code verifier"  # Datadog's documented troubleshooting text


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str, headers: dict | None = None):
        super().__init__(description)
        self.status, self.error, self.description, self.headers = status, error, description, headers or {}


def oauth_error_response(ctx: Ctx, err: OAuthError) -> JSONResponse:
    if ctx.store.behaviour.token_error_body == "datadog":
        body = {"errors": [f"{err.error} - {err.description}"]}
    else:
        body = {"error": err.error, "error_description": err.description}
    return JSONResponse(body, status_code=err.status, headers={**NO_STORE, **err.headers})


async def _params(ctx: Ctx) -> dict[str, str]:
    if ctx.request.method == "GET":  # reached only under the token_get_accepted defect (app.py)
        return dict(ctx.request.query_params)
    body = await read_body(ctx.request)
    try:
        return parse_params(ctx.request.headers.get("content-type", ""), body)
    except BodyParseError as exc:
        if exc.kind == "content_type":
            # Datadog answers an unparseable PKCE exchange this way (troubleshooting: fix the content-type)
            raise OAuthError(400, "invalid_grant", BAD_CODE) from None
        if exc.kind == "duplicate":
            raise OAuthError(400, "invalid_request", f"Duplicate {exc.detail} parameter.") from None
        raise OAuthError(400, "invalid_request", "Malformed request body.") from None


def _authenticate(ctx: Ctx, params: dict[str, str]) -> Client:
    """Client authentication (RFC 6749 §2.3.1): secret in the body; HTTP Basic behind a switch."""
    store, behaviour = ctx.store, ctx.store.behaviour
    client_id, secret = params.get("client_id"), params.get("client_secret")
    auth = ctx.request.headers.get("authorization", "")
    used_basic = False
    if behaviour.basic_auth and auth.lower().startswith("basic "):
        try:
            raw = base64.b64decode(auth[6:].strip(), validate=True).decode()
            b_id, _, b_secret = raw.partition(":")
            client_id, secret, used_basic = unquote(b_id), unquote(b_secret), True
        except (ValueError, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", "Client authentication failed.",
                             {"WWW-Authenticate": 'Basic realm="datadog"'}) from None
    challenge = {"WWW-Authenticate": 'Basic realm="datadog"'} if used_basic else {}
    if not client_id:
        raise OAuthError(401, "invalid_client", "Missing client_id parameter.", challenge)
    client = store.client(ctx.site.key, client_id)
    if client is None or client.disabled:
        raise OAuthError(401, "invalid_client", "Client authentication failed.", challenge)
    if not secret:
        if behaviour.has("missing_secret_accepted"):
            return client
        raise OAuthError(401, "invalid_client", "Client authentication failed.", challenge)
    ok = hmac.compare_digest(secret.encode(), client.secret.encode())
    if not ok and client.previous_secret and behaviour.has("old_secret_accepted"):
        ok = hmac.compare_digest(secret.encode(), client.previous_secret.encode())
    if not ok:
        raise OAuthError(401, "invalid_client", "Client authentication failed.", challenge)
    return client


# a scope no client of the seed holds: what refresh_scope_widened adds to a refreshed grant's answer
WIDENED_SCOPE = "org_management"


def _token_response(ctx: Ctx, grant: Grant, access, refresh, include_refresh: bool = True,
                    refreshed: bool = False) -> JSONResponse:
    behaviour = ctx.store.behaviour
    scopes = list(grant.scopes)
    if behaviour.has("token_scope_missing_one") and len(scopes) > 1:
        scopes = scopes[:-1]
    if refreshed and behaviour.has("refresh_scope_widened") and WIDENED_SCOPE not in scopes:
        scopes.append(WIDENED_SCOPE)
    body: dict = {"access_token": access.token, "token_type": "Bearer", "expires_in": 3600, "scope": " ".join(scopes)}
    if include_refresh:
        body["refresh_token"] = refresh.token
    if behaviour.has("expires_in_string"):
        body["expires_in"] = "3600"
    if behaviour.has("expires_in_missing"):
        body.pop("expires_in")
    if refreshed and behaviour.has("refresh_token_type_missing"):
        body.pop("token_type")
    headers = {} if behaviour.has("token_no_store_missing") else dict(NO_STORE)
    if refreshed and behaviour.has("refresh_no_store_missing"):
        headers.pop("Cache-Control", None)
    if behaviour.has("token_pragma_missing"):
        headers.pop("Pragma", None)
    media_type = "text/plain" if behaviour.has("token_not_json") else None  # the body stays JSON
    return JSONResponse(body, headers=headers, media_type=media_type)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _code_grant(ctx: Ctx, client: Client, params: dict[str, str]) -> Response:
    store, behaviour = ctx.store, ctx.store.behaviour
    value = params.get("code")
    if not value:
        raise OAuthError(400, "invalid_request", "Missing code parameter.")
    code = store.codes.get(value)
    if code is None or code.site != ctx.site.key or code.client_id != client.id or code_expired(store, code):
        raise OAuthError(400, "invalid_grant", BAD_CODE)
    if code.used and not behaviour.has("code_reuse_allowed"):
        # RFC 6749 §4.1.2: a replayed code SHOULD revoke what it already issued
        if code.grant_id:
            store.revoke_grant(code.grant_id)
        raise OAuthError(400, "invalid_grant", BAD_CODE)
    if params.get("redirect_uri") != code.redirect_uri:
        raise OAuthError(400, "invalid_request", "Mismatching redirect URI.")
    verifier = params.get("code_verifier")
    if code.code_challenge:
        if not behaviour.has("pkce_verifier_ignored"):
            good = bool(verifier) and bool(_PKCE_RE.match(verifier))
            if good:
                method = code.code_challenge_method or "plain"
                expected = verifier if method == "plain" else _s256(verifier)
                good = hmac.compare_digest(expected, code.code_challenge)
            if not good:
                if behaviour.has("bad_verifier_500"):
                    return JSONResponse({"errors": ["Internal Server Error"]}, status_code=500)
                raise OAuthError(400, "invalid_grant", BAD_CODE)
    elif verifier:
        # PKCE downgrade: a verifier for a code issued without a challenge (RFC 9700 §4.8)
        raise OAuthError(400, "invalid_grant", BAD_CODE)
    code.used = True
    grant = Grant(str(uuid.uuid4()), ctx.site.key, client.id, code.user_id, code.org_id, list(code.scopes))
    store.grants[grant.id] = grant
    code.grant_id = grant.id
    access, refresh = store.issue_tokens(grant)
    return _token_response(ctx, grant, access, refresh)


def _refresh_grant(ctx: Ctx, client: Client, params: dict[str, str]) -> Response:
    store, behaviour = ctx.store, ctx.store.behaviour
    value = params.get("refresh_token")
    if not value:
        raise OAuthError(400, "invalid_request", "Missing refresh_token parameter.")
    rt = store.refresh_tokens.get(value)
    grant = store.grants.get(rt.grant_id) if rt else None
    if rt is None or rt.revoked or grant is None or grant.revoked or grant.client_id != client.id \
            or grant.site != ctx.site.key:
        raise OAuthError(400, "invalid_grant", "Invalid refresh token.")
    if behaviour.has("refresh_fails_after_expiry"):
        live = [t for t in store.access_tokens.values() if t.grant_id == grant.id and t.expires_at > store.now()]
        if not live:
            raise OAuthError(400, "invalid_grant", "Invalid refresh token.")
    requested = params.get("scope")
    if requested and any(s not in grant.scopes for s in requested.split()):
        raise OAuthError(400, "invalid_scope", "The requested scope exceeds the original grant.")
    mode = behaviour.refresh_rotation
    if mode == "none":
        access, refresh = store.issue_tokens(grant, refresh=rt.token)
        return _token_response(ctx, grant, access, refresh,
                               include_refresh=not behaviour.refresh_response_omits_refresh_token, refreshed=True)
    if mode == "rotate_invalidate":
        rt.revoked = True
    access, refresh = store.issue_tokens(grant)
    return _token_response(ctx, grant, access, refresh, refreshed=True)


async def token(ctx: Ctx) -> Response:
    store = ctx.store
    try:
        params = await _params(ctx)
        with store.lock:  # redemption is atomic: of two concurrent uses of one code, exactly one wins
            client = _authenticate(ctx, params)
            grant_type = params.get("grant_type")
            if not grant_type:
                raise OAuthError(400, "invalid_request", "Missing grant_type parameter.")
            if grant_type == "authorization_code":
                return _code_grant(ctx, client, params)
            if grant_type == "refresh_token":
                return _refresh_grant(ctx, client, params)
            raise OAuthError(400, "unsupported_grant_type", "The grant type is not supported.")
    except OAuthError as err:
        return oauth_error_response(ctx, err)


async def revoke(ctx: Ctx) -> Response:
    """RFC 7009: unknown tokens answer 200; a refresh token takes its grant's access tokens with it."""
    store, behaviour = ctx.store, ctx.store.behaviour
    try:
        params = await _params(ctx)
        with store.lock:
            client = _authenticate(ctx, params)
            value = params.get("token")
            if not value:
                if behaviour.has("revoke_missing_token_200"):
                    return Response(status_code=200, headers=NO_STORE)
                raise OAuthError(400, "invalid_request", "Missing token parameter.")
            access = store.access_tokens.get(value)
            refresh = store.refresh_tokens.get(value)
            held = access or refresh
            grant = store.grants.get(held.grant_id) if held else None
            if grant is None or grant.site != ctx.site.key:
                return Response(status_code=200, headers=NO_STORE)
            if grant.client_id != client.id:
                if behaviour.revoke_foreign_token == "reject":
                    raise OAuthError(400, "unauthorized_client", "The token was not issued to this client.")
                return Response(status_code=200, headers=NO_STORE)
            if behaviour.has("revoke_noop"):
                return Response(status_code=200, headers=NO_STORE)
            if access is not None:
                access.revoked = True
            else:
                refresh.revoked = True
                if not behaviour.has("revoke_no_cascade"):
                    store.revoke_grant(grant.id)
            return Response(status_code=200, headers=NO_STORE)
    except OAuthError as err:
        return oauth_error_response(ctx, err)
