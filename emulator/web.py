"""Browser side of the emulated Datadog (web host): login, MFA, site picker, org picker, consent."""
from __future__ import annotations

import hmac
import re
import secrets
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

import pyotp
from starlette.responses import HTMLResponse, RedirectResponse, Response

from core.scopes import load_catalogue

from . import pages, second_face
from .http import Ctx, read_body
from .state import CODE_TTL, AuthCode, Client, Session

SESSION_COOKIE = "dogweb"
SESSION_TTL = 12 * 3600
_PKCE_RE = re.compile(r"\A[A-Za-z0-9\-._~]{43,128}\Z")  # \Z: "$" would accept a trailing newline
# Parameters of the authorization request carried through login, pickers and the consent form.
AUTH_PARAMS = ("client_id", "redirect_uri", "response_type", "code_challenge", "code_challenge_method", "state", "scope")

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class FlowError(Exception):
    """An authorization error: shown as a page (fatal) or redirected to the client (redirectable)."""

    def __init__(self, error: str, description: str, redirect: bool = False):
        super().__init__(f"{error} - {description}")
        self.error = error
        self.description = description
        self.redirect = redirect


def _site_label(ctx: Ctx) -> str:
    return f"{ctx.site.key} · {ctx.site.web_host}"


def _face(ctx: Ctx):
    """The module that renders the pages: the classic face (pages) or the second one (behaviour face=second)."""
    return second_face if ctx.store.behaviour.face == "second" else pages


def login_path(ctx: Ctx) -> str:
    return second_face.LOGIN_PATH if ctx.store.behaviour.face == "second" else "/account/login"


def mfa_path(ctx: Ctx) -> str:
    return second_face.MFA_PATH if ctx.store.behaviour.face == "second" else "/account/login/mfa"


def _page(ctx: Ctx, html: str, status: int = 200) -> HTMLResponse:
    headers = dict(PAGE_HEADERS)
    if ctx.store.behaviour.has("no_store_missing_on_consent"):
        for h in ("Cache-Control", "X-Frame-Options", "Content-Security-Policy", "Pragma"):
            headers.pop(h, None)
    return HTMLResponse(html, status_code=status, headers=headers)


def error_page(ctx: Ctx, message: str, status: int = 400) -> HTMLResponse:
    return _page(ctx, _face(ctx).error_page(_site_label(ctx), message), status)


# ---- sessions -----------------------------------------------------------------------------

def current_session(ctx: Ctx) -> Session | None:
    sid = ctx.request.cookies.get(SESSION_COOKIE)
    store = ctx.store
    if not sid:
        return None
    session = store.sessions.get(sid)
    if session is None or session.site != ctx.site.key:
        return None
    if store.now() - session.created_at > SESSION_TTL:
        store.sessions.pop(sid, None)
        return None
    return session


def _new_session(ctx: Ctx) -> Session:
    s = Session(id=secrets.token_urlsafe(32), site=ctx.site.key, created_at=ctx.store.now())
    ctx.store.sessions[s.id] = s
    return s


def _set_cookie(resp: Response, session: Session) -> None:
    resp.set_cookie(SESSION_COOKIE, session.id, httponly=True, secure=True, samesite="lax", path="/")


def _safe_next(value: str | None) -> str:
    # only same-host relative paths: no open redirect through the login page
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


# ---- login --------------------------------------------------------------------------------

async def login_get(ctx: Ctx) -> Response:
    nxt = _safe_next(ctx.request.query_params.get("next"))
    return _page(ctx, _face(ctx).login_page(_site_label(ctx), login_path(ctx), nxt))


async def login_post(ctx: Ctx) -> Response:
    form = await _form(ctx)
    nxt = _safe_next(form.get("next"))
    email = form.get("username", "")
    user = ctx.store.user_by_email(ctx.site.key, email)
    if user is None or not hmac.compare_digest(user.password.encode(), form.get("password", "").encode()):
        return _page(ctx, _face(ctx).login_page(_site_label(ctx), login_path(ctx), nxt,
                                                "Incorrect email or password.", email), 401)
    session = current_session(ctx) or _new_session(ctx)
    if user.totp_secret:
        session.user_id = None
        session.mfa_pending_user = user.id
        resp = RedirectResponse(mfa_path(ctx) + "?" + urlencode({"next": nxt}), status_code=303)
    else:
        session.user_id = user.id
        resp = RedirectResponse(nxt, status_code=303)
    _set_cookie(resp, session)
    return resp


async def mfa_get(ctx: Ctx) -> Response:
    nxt = _safe_next(ctx.request.query_params.get("next"))
    if current_session(ctx) is None:
        return RedirectResponse(login_path(ctx) + "?" + urlencode({"next": nxt}), status_code=303)
    return _page(ctx, _face(ctx).mfa_page(_site_label(ctx), mfa_path(ctx), nxt))


async def mfa_post(ctx: Ctx) -> Response:
    form = await _form(ctx)
    nxt = _safe_next(form.get("next"))
    session = current_session(ctx)
    if session is None or not session.mfa_pending_user:
        return RedirectResponse(login_path(ctx) + "?" + urlencode({"next": nxt}), status_code=303)
    user = ctx.store.users[session.mfa_pending_user]
    # TOTP follows wall-clock time, not the emulator clock: the authenticator app lives in the real world
    if not pyotp.TOTP(user.totp_secret).verify(form.get("otp", "").strip(), for_time=time.time(), valid_window=1):
        return _page(ctx, _face(ctx).mfa_page(_site_label(ctx), mfa_path(ctx), nxt,
                                              "That code is not valid. Try the next one."), 401)
    session.user_id = user.id
    session.mfa_pending_user = None
    resp = RedirectResponse(nxt, status_code=303)
    _set_cookie(resp, session)
    return resp


async def logout(ctx: Ctx) -> Response:
    sid = ctx.request.cookies.get(SESSION_COOKIE)
    if sid:
        ctx.store.sessions.pop(sid, None)
    resp = RedirectResponse(login_path(ctx), status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


async def home(ctx: Ctx) -> Response:
    session = current_session(ctx)
    who = ctx.store.users[session.user_id].email if session and session.user_id else "not signed in"
    body = (f"<div class=card><h1>Datadog {ctx.site.key}</h1><p class=sub>Local emulator of "
            f"{ctx.site.web_host} ({who}).</p><p>OAuth authorize endpoint: <code>/oauth2/v1/authorize</code></p></div>")
    return _page(ctx, _face(ctx).layout("Home", body, _site_label(ctx)))


async def _form(ctx: Ctx) -> dict[str, str]:
    from urllib.parse import parse_qsl

    body = await read_body(ctx.request)
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}


# ---- authorization request validation ------------------------------------------------------

def _validate_client(ctx: Ctx, params: dict[str, str]) -> Client:
    """Fatal checks (RFC 6749 §4.1.2.1): never redirect to an unverified redirect URI."""
    store, site = ctx.store, ctx.site
    if not site.oauth:
        raise FlowError("invalid_request", f"OAuth2 authorization is not available on {site.web_host}.")
    client_id = params.get("client_id")
    if not client_id:
        raise FlowError("invalid_request", "Missing client_id parameter.")
    client = store.client(site.key, client_id)
    if client is None and store.behaviour.has("unknown_client_accepted"):
        client = next(c for c in store.clients.values() if c.site == site.key)
    if client is None or client.disabled:
        raise FlowError("invalid_request", "Invalid client_id parameter value.")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise FlowError("invalid_request", "Missing redirect URI.")
    if store.behaviour.has("redirect_prefix_match"):
        ok = any(redirect_uri.startswith(r) for r in client.redirect_uris)
    else:
        ok = redirect_uri in client.redirect_uris  # exact string match (RFC 9700 §2.1)
    if not ok:
        if store.behaviour.has("redirect_mismatch_wrong_text"):
            raise FlowError("invalid_request", "Invalid client_id parameter value.")
        raise FlowError("invalid_request", "Mismatching redirect URI.")
    return client


def _validate_request(ctx: Ctx, client: Client, params: dict[str, str]) -> list[str]:
    """Redirectable checks; returns the scopes the consent will cover."""
    behaviour = ctx.store.behaviour
    rtype = params.get("response_type")
    if not rtype:
        raise FlowError("invalid_request", "Missing response_type parameter.", redirect=True)
    if rtype != "code":
        raise FlowError("unsupported_response_type", "The response type is not supported.", redirect=True)
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method") or ("plain" if challenge else None)
    if challenge is None:
        if behaviour.pkce == "required":
            raise FlowError("invalid_request", "Code challenge required.", redirect=True)
    else:
        if method not in ("S256", "SHA-256") and not (method == "plain" and behaviour.has("pkce_plain_accepted")):
            raise FlowError("invalid_request", "Transform algorithm not supported.", redirect=True)
        if not _PKCE_RE.match(challenge):
            raise FlowError("invalid_request", "Invalid code_challenge parameter value.", redirect=True)
    requested = params.get("scope")
    if requested is None or not requested.strip():
        return list(client.scopes)  # Datadog assigns the client's configured scopes
    scopes = requested.split()
    if any(s not in client.scopes for s in scopes):
        raise FlowError("invalid_scope", "The requested scope is invalid, unknown, or malformed.", redirect=True)
    return scopes


def _redirect_with(uri: str, params: dict[str, str]) -> RedirectResponse:
    parts = urlsplit(uri)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    # 302, not 307: a 307 would replay the consent POST body to the client (RFC 9700 §4.12)
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302,
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _error_redirect(client_redirect: str, err: FlowError, state: str | None, code: str | None = None,
                    fragment: bool = False) -> RedirectResponse:
    params = {"error": err.error, "error_description": err.description}
    if state is not None:
        params["state"] = state
    if code is not None:  # only the error_redirect_with_code defect: RFC 6749 §4.1.2.1 allows no code here
        params["code"] = code
    if fragment:  # behaviour error_response_mode=fragment: the parameters after '#', the URI's own query kept
        parts = urlsplit(client_redirect)
        return RedirectResponse(urlunsplit(parts._replace(fragment=urlencode(params))), status_code=302,
                                headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    return _redirect_with(client_redirect, params)


def _in_fragment(ctx: Ctx) -> bool:
    return ctx.store.behaviour.error_response_mode == "fragment"


def _stray_code(ctx: Ctx, params: dict[str, str]) -> str | None:
    """The error_redirect_with_code defect: a working code for the (verified) client on an error redirect."""
    if not ctx.store.behaviour.has("error_redirect_with_code"):
        return None
    store = ctx.store
    client = store.client(ctx.site.key, params.get("client_id", ""))
    if client is None:
        return None
    session = current_session(ctx)
    if session is not None and session.user_id is not None:
        user = store.users[session.user_id]
    else:
        user = next((u for u in store.users.values() if u.site == ctx.site.key and client.org_id in u.org_ids), None)
        if user is None:
            return None
    org_id = client.org_id if client.org_id in user.org_ids else user.org_ids[0]
    return _new_code(ctx, client, list(client.scopes), user, org_id, params).code


def _flow_error(ctx: Ctx, err: FlowError, params: dict[str, str]) -> Response:
    if err.redirect:
        return _error_redirect(params["redirect_uri"], err, params.get("state"), _stray_code(ctx, params),
                               _in_fragment(ctx))
    return error_page(ctx, f"{err.error} - {err.description}")


def _authorize_params(ctx: Ctx) -> dict[str, str]:
    seen: dict[str, str] = {}
    for k, v in ctx.request.query_params.multi_items():
        if k in seen and k in AUTH_PARAMS:
            raise FlowError("invalid_request", f"Duplicate {k} parameter.")
        seen[k] = v
    return seen


# ---- authorize ----------------------------------------------------------------------------

async def authorize_get(ctx: Ctx) -> Response:
    try:
        params = _authorize_params(ctx)
    except FlowError as err:
        return error_page(ctx, f"{err.error} - {err.description}")
    try:
        client = _validate_client(ctx, params)
        scopes = _validate_request(ctx, client, params)
    except FlowError as err:
        return _flow_error(ctx, err, params)
    session = current_session(ctx)
    logged_in = session is not None and session.user_id is not None
    if (not logged_in and ctx.site.key == "US1" and ctx.store.behaviour.site_picker == "us1_without_session"
            and "_site" not in params):
        return _site_picker(ctx)
    if not logged_in:
        nxt = ctx.request.url.path + ("?" + ctx.request.url.query if ctx.request.url.query else "")
        return RedirectResponse(login_path(ctx) + "?" + urlencode({"next": nxt}), status_code=302)
    user = ctx.store.users[session.user_id]
    fields = {k: params[k] for k in AUTH_PARAMS if k in params}
    fields["csrf"] = session.csrf
    if _prompt_consent(ctx, params):
        fields["prompt"] = "consent"  # carried through the org picker
    if len(user.org_ids) > 1:
        orgs = [(oid, ctx.store.org(oid).name) for oid in user.org_ids]
        return _page(ctx, _face(ctx).org_picker_page(_site_label(ctx), "/oauth2/v1/authorize", fields, orgs))
    return _consent(ctx, client, scopes, user, user.org_ids[0], fields, params)


def _site_picker(ctx: Ctx) -> Response:
    query = ctx.request.url.query
    options = []
    for site in ctx.store.registry.oauth_sites():
        if site.environment != ctx.site.environment:
            continue
        url = f"https://{site.web_host}/oauth2/v1/authorize?{query}&_site={site.key}"
        options.append((site.key, f"{site.key} — {site.web_host}", url))
    return _page(ctx, _face(ctx).site_picker_page(_site_label(ctx), options))


def _foreign_org_refused(ctx: Ctx, client: Client, org_id: str) -> bool:
    """An unpublished (test) client outside its sandbox org is refused, unless the test_client_any_org defect."""
    return client.kind == "test" and org_id != client.org_id and not ctx.store.behaviour.has("test_client_any_org")


def _consent(ctx: Ctx, client: Client, scopes: list[str], user, org_id: str,
             fields: dict[str, str], params: dict[str, str]) -> Response:
    if _foreign_org_refused(ctx, client, org_id):
        # an unpublished client can only be authorized from the sandbox org that created it
        return error_page(ctx, "invalid_request - Invalid client_id parameter value.")
    if (ctx.store.behaviour.remember_consent and not _prompt_consent(ctx, params)
            and _consent_key(client, scopes, user, org_id) in ctx.store.consents):
        # consent given before for exactly these scopes: no page, straight back to the client with a code
        return _issue_code(ctx, client, scopes, user, org_id, params)
    catalogue = load_catalogue()
    shown = list(scopes)
    if ctx.store.behaviour.has("consent_extra_scope"):
        shown.append("org_management")
    fields = dict(fields, org_id=org_id)
    html = _face(ctx).consent_page(_site_label(ctx), client.name, ctx.store.org(org_id).name, user.email,
                                   [(s, catalogue.describe(s)) for s in shown], fields)
    return _page(ctx, html)


async def authorize_post(ctx: Ctx) -> Response:
    form = await _form(ctx)
    session = current_session(ctx)
    if session is None or session.user_id is None:
        return error_page(ctx, "invalid_request - Your session has expired. Start the authorization again.", 401)
    if not hmac.compare_digest(form.get("csrf", ""), session.csrf):
        return error_page(ctx, "invalid_request - Invalid CSRF token.", 403)
    params = {k: form[k] for k in AUTH_PARAMS if k in form}
    try:
        client = _validate_client(ctx, params)
        scopes = _validate_request(ctx, client, params)
    except FlowError as err:
        return _flow_error(ctx, err, params)
    user = ctx.store.users[session.user_id]
    org_id = form.get("org_id", "")
    if org_id not in user.org_ids:
        return error_page(ctx, "invalid_request - Unknown organization.")
    decision = form.get("decision")
    if decision is None:  # org picker step
        fields = {k: params[k] for k in AUTH_PARAMS if k in params}
        fields["csrf"] = session.csrf
        if _prompt_consent(ctx, form):
            fields["prompt"] = params["prompt"] = "consent"
        return _consent(ctx, client, scopes, user, org_id, fields, params)
    if _foreign_org_refused(ctx, client, org_id):
        return error_page(ctx, "invalid_request - Invalid client_id parameter value.")
    state = params.get("state")
    if decision != "authorize":
        return _error_redirect(params["redirect_uri"],
                               FlowError("access_denied", "The user denied the authorization request."), state,
                               _stray_code(ctx, params), _in_fragment(ctx))
    if ctx.store.behaviour.remember_consent:
        ctx.store.consents.add(_consent_key(client, scopes, user, org_id))
    return _issue_code(ctx, client, scopes, user, org_id, params)


def _prompt_consent(ctx: Ctx, params: dict[str, str]) -> bool:
    """remember_consent only: `prompt=consent` on the authorize request shows the consent page anyway."""
    return ctx.store.behaviour.remember_consent and params.get("prompt") == "consent"


def _consent_key(client: Client, scopes: list[str], user, org_id: str) -> tuple:
    """What remembered consent (behaviour remember_consent) is keyed on: the same user, client, org and scopes."""
    return (user.id, client.id, org_id, frozenset(scopes))


def _new_code(ctx: Ctx, client: Client, scopes: list[str], user, org_id: str, params: dict[str, str]) -> AuthCode:
    store = ctx.store
    code = AuthCode(
        code=secrets.token_urlsafe(24), site=ctx.site.key, client_id=client.id, redirect_uri=params["redirect_uri"],
        code_challenge=params.get("code_challenge"), code_challenge_method=params.get("code_challenge_method"),
        user_id=user.id, org_id=org_id, scopes=scopes, issued_at=store.now(),
    )
    store.codes[code.code] = code
    return code


def _issue_code(ctx: Ctx, client: Client, scopes: list[str], user, org_id: str, params: dict[str, str]) -> Response:
    store, site, behaviour = ctx.store, ctx.site, ctx.store.behaviour
    code = _new_code(ctx, client, scopes, user, org_id, params)
    out: dict[str, str] = {"code": code.code}
    state = params.get("state")
    if state is not None and not behaviour.has("state_dropped"):
        # state_altered: a truncated state, as a server that cuts it at a length or a special character would
        out["state"] = (state[:-1] if len(state) > 1 else state + "x") if behaviour.has("state_altered") else state
    domain = site.domain
    if behaviour.has("domain_wrong_region"):
        others = [s for s in store.registry.oauth_sites() if s.key != site.key]
        domain = others[0].domain
    if not behaviour.has("domain_missing"):
        out["domain"] = domain
    named_site = site
    if behaviour.has("callback_site_wrong_region"):
        named_site = next(s for s in store.registry.oauth_sites() if s.key != site.key)
    out["site"] = named_site.web_origin if behaviour.site_param == "origin" else named_site.web_host
    named_org = org_id
    if behaviour.has("callback_wrong_org"):  # another org of the site: the user's default, the client owner's...
        named_org = next(o.id for o in store.orgs.values() if o.site == site.key and o.id != org_id)
    out["dd_oid"] = named_org
    out["dd_org_name"] = store.org(named_org).name
    if behaviour.callback_client_id:
        out["client_id"] = client.id
    redirect_uri = params["redirect_uri"]
    if behaviour.has("callback_path_altered"):  # a "normalised" URI: not the registered one any more
        parts = urlsplit(redirect_uri)
        redirect_uri = urlunsplit(parts._replace(path=parts.path + "/" if not parts.path.endswith("/")
                                                 else parts.path.rstrip("/")))
    return _redirect_with(redirect_uri, out)


def code_expired(store, code: AuthCode) -> bool:
    return store.now() - code.issued_at > CODE_TTL
