"""HTML for the emulated Datadog web pages: login, MFA, site picker, org picker, consent, errors.

Accessible names are stable (labels, button names, headings): the harness's page recipes
locate everything by role and label, as they do on the real pages.
"""
from __future__ import annotations

from html import escape

_CSS = """
*{box-sizing:border-box}body{margin:0;font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
background:#f4f2f9;color:#1c1b22}header{background:#632ca6;color:#fff;padding:14px 28px;display:flex;
align-items:center;gap:12px}header .logo{font-weight:800;letter-spacing:.18em;font-size:18px}
header .site{margin-left:auto;font-size:13px;opacity:.85}main{max-width:560px;margin:48px auto;padding:0 16px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:32px}
h1{font-size:22px;margin:0 0 8px}p.sub{color:#5b5a66;margin:0 0 24px}label{display:block;font-weight:600;
font-size:13px;margin:16px 0 6px}input[type=email],input[type=password],input[type=text]{width:100%;padding:10px 12px;
border:1px solid #c9c6d6;border-radius:4px;font-size:15px}button{font-size:15px;padding:10px 20px;border-radius:4px;
border:1px solid #632ca6;cursor:pointer}button.primary{background:#632ca6;color:#fff}button.secondary{background:#fff;
color:#632ca6}.actions{display:flex;gap:12px;margin-top:24px}.error{background:#fdecee;border:1px solid #e8a1ab;
color:#a3182b;padding:10px 12px;border-radius:4px;margin-bottom:16px}ul.scopes{list-style:none;padding:0;margin:16px 0;
border:1px solid #e4e1ee;border-radius:6px}ul.scopes li{padding:10px 14px;border-top:1px solid #e4e1ee}
ul.scopes li:first-child{border-top:0}ul.scopes code{font-weight:600;color:#3d1a70}ul.scopes span{display:block;
color:#5b5a66;font-size:13px;margin-top:2px}.app{display:flex;align-items:center;gap:12px;margin-bottom:16px}
.app .icon{width:44px;height:44px;border-radius:8px;background:#e9e0f7;color:#632ca6;display:flex;align-items:center;
justify-content:center;font-weight:800}.org{font-size:13px;color:#5b5a66}.choices button{display:block;width:100%;
text-align:left;margin-top:10px;background:#fff;color:#1c1b22;border-color:#c9c6d6}footer{text-align:center;
color:#8a8896;font-size:12px;margin:24px 0}
"""


def layout(title: str, body: str, site_label: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} | Datadog</title><meta name=viewport content='width=device-width'>"
        f"<style>{_CSS}</style></head><body><header><span class=logo>DATADOG</span>"
        f"<span class=site>{escape(site_label)}</span></header><main>{body}</main>"
        "<footer>Local Datadog emulator · not affiliated with Datadog, Inc.</footer></body></html>"
    )


def _hidden(fields: dict[str, str]) -> str:
    return "".join(f"<input type=hidden name='{escape(k)}' value='{escape(v)}'>" for k, v in fields.items())


def login_page(site_label: str, action: str, next_url: str, error: str | None = None, email: str = "") -> str:
    err = f"<div class=error role=alert>{escape(error)}</div>" if error else ""
    return layout("Log in", f"""<div class=card><h1>Log in to Datadog</h1>
<p class=sub>Use your Datadog account for {escape(site_label)}.</p>{err}
<form method=post action='{escape(action)}'>{_hidden({'next': next_url})}
<label for=email>Email</label><input id=email name=username type=email autocomplete=username value='{escape(email)}' required>
<label for=password>Password</label><input id=password name=password type=password autocomplete=current-password required>
<div class=actions><button class=primary type=submit>Log in</button></div></form></div>""", site_label)


def mfa_page(site_label: str, action: str, next_url: str, error: str | None = None) -> str:
    err = f"<div class=error role=alert>{escape(error)}</div>" if error else ""
    return layout("Two-factor authentication", f"""<div class=card><h1>Two-factor authentication</h1>
<p class=sub>Enter the 6-digit code from your authenticator app.</p>{err}
<form method=post action='{escape(action)}'>{_hidden({'next': next_url})}
<label for=otp>Authentication code</label><input id=otp name=otp type=text inputmode=numeric autocomplete=one-time-code required>
<div class=actions><button class=primary type=submit>Verify</button></div></form></div>""", site_label)


def site_picker_page(site_label: str, options: list[tuple[str, str, str]]) -> str:
    """options: (site key, label, url to continue on that site)."""
    buttons = "".join(
        f"<form method=get action='{escape(url)}'>{_hidden(params)}<button type=submit name=_site value='{escape(key)}'>{escape(label)}</button></form>"
        for key, label, (url, params) in ((k, lbl, _split(u)) for k, lbl, u in options)
    )
    return layout("Select your Datadog site", f"""<div class=card><h1>Select your Datadog site</h1>
<p class=sub>Your organization lives in one Datadog region. Choose it to continue the authorization there.</p>
<nav class=choices aria-label="Datadog sites">{buttons}</nav></div>""", site_label)


def _split(url: str) -> tuple[str, dict[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", dict(parse_qsl(parts.query, keep_blank_values=True))


def org_picker_page(site_label: str, action: str, fields: dict[str, str], orgs: list[tuple[str, str]]) -> str:
    buttons = "".join(
        f"<button type=submit name=org_id value='{escape(oid)}'>{escape(name)}</button>" for oid, name in orgs
    )
    return layout("Select an organization", f"""<div class=card><h1>Select an organization</h1>
<p class=sub>You belong to several organizations. Choose the one to connect.</p>
<form method=post action='{escape(action)}' class=choices aria-label="Organizations">{_hidden(fields)}{buttons}</form></div>""",
                  site_label)


def consent_page(site_label: str, client_name: str, org_name: str, user_email: str,
                 scopes: list[tuple[str, str]], fields: dict[str, str]) -> str:
    items = "".join(f"<li><code>{escape(s)}</code><span>{escape(d)}</span></li>" for s, d in scopes)
    initials = "".join(w[0] for w in client_name.split()[:2]).upper() or "A"
    return layout(f"Authorize {client_name}", f"""<div class=card>
<div class=app><div class=icon aria-hidden=true>{escape(initials)}</div><div><h1>Authorize {escape(client_name)}</h1>
<div class=org>Organization: <strong>{escape(org_name)}</strong> · signed in as {escape(user_email)}</div></div></div>
<p class=sub>{escape(client_name)} is requesting access to your Datadog organization. It will be able to:</p>
<ul class=scopes aria-label="Requested permissions">{items}</ul>
<form method=post action=/oauth2/v1/authorize>{_hidden(fields)}
<div class=actions><button class=primary type=submit name=decision value=authorize>Authorize</button>
<button class=secondary type=submit name=decision value=deny>Deny</button></div></form></div>""", site_label)


def error_page(site_label: str, message: str, status: int = 400) -> str:
    return layout("Error", f"""<div class=card><h1>Something went wrong</h1>
<div class=error role=alert data-testid=oauth-error>{escape(message)}</div>
<p class=sub>Return to the application and try again, or contact its support team.</p></div>""", site_label)
