"""The second face of the emulated Datadog's web pages (behaviour switch `face=second`).

The same flow as emulator/pages.py (same form fields, same POST targets) with another layout and other
labels, so that "a Datadog the harness has never seen" can be proven without real Datadog:

- login on /signin (the classic /account/login answers 404), MFA on /signin/verify: inputs with a
  placeholder only (no <label>, no aria-label), "Continue" / "Confirm", errors in `p.signin-error`;
- site and org pickers with other headings ("Choose your region", "Choose a workspace");
- consent: the scopes in an unlabelled list (no accessible name, the header's navigation is another
  list), each scope name in `span.scope-id`; "Allow access" and "Cancel", still a plain form POST;
- the error page has no test id: the message is in `section.problem p.problem-text`.

recipes/second-face.yaml is the recipes file that drives these pages; the signatures below match
emulator/pages.py so that web.py picks one module or the other.
"""
from __future__ import annotations

from html import escape

from .pages import _hidden, _split

LOGIN_PATH = "/signin"
MFA_PATH = "/signin/verify"

_CSS = """
*{box-sizing:border-box}body{margin:0;font-family:Georgia,"Times New Roman",serif;background:#fff;color:#222}
.top{display:flex;justify-content:space-between;align-items:center;border-bottom:3px solid #774aa4;padding:10px 24px}
.top .brand{font-size:20px;font-weight:700;color:#774aa4}.top ul{display:flex;gap:16px;list-style:none;margin:0;padding:0;
font-size:13px}.shell{display:grid;grid-template-columns:1fr 1fr;min-height:80vh}.aside{background:#2b1a40;color:#eee;
padding:48px}.aside p{max-width:320px;line-height:1.5}.pane{padding:48px;max-width:520px}h2{font-size:26px;margin:0 0 12px}
input{display:block;width:100%;margin:12px 0;padding:12px;border:2px solid #bbb;border-radius:10px;font-size:16px}
button{margin-top:16px;margin-right:8px;padding:12px 28px;border-radius:24px;border:0;font-size:15px;cursor:pointer}
button.go{background:#774aa4;color:#fff}button.stop{background:#eee;color:#333}.signin-error,.problem-text{color:#b00020;
font-weight:700}ol.regions,ul.workspaces{list-style:none;padding:0}ul.grants{padding-left:18px}ul.grants li{margin:8px 0}
.scope-id{font-family:monospace;font-weight:700}.scope-what{display:block;color:#666;font-size:13px}.bottom{padding:16px 24px;
font-size:11px;color:#999;border-top:1px solid #eee}
"""


def layout(title: str, body: str, site_label: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} - Datadog</title><meta name=viewport content='width=device-width'>"
        f"<style>{_CSS}</style></head><body><div class=top><span class=brand>Datadog</span>"
        "<nav><ul><li>Help</li><li>Status</li><li>Privacy</li></ul></nav></div>"
        f"<div class=shell><div class=aside><p>Monitoring for {escape(site_label)}.</p></div>"
        f"<div class=pane>{body}</div></div>"
        "<div class=bottom>Local Datadog emulator (second face) · not affiliated with Datadog, Inc.</div></body></html>"
    )


def _problem(error: str | None) -> str:
    return f"<p class=signin-error>{escape(error)}</p>" if error else ""


def login_page(site_label: str, action: str, next_url: str, error: str | None = None, email: str = "") -> str:
    return layout("Sign in", f"""<h2>Welcome back</h2>{_problem(error)}
<form method=post action='{escape(action)}' class=signin>{_hidden({'next': next_url})}
<input name=username type=email placeholder="Work email" autocomplete=username value='{escape(email)}' required>
<input name=password type=password placeholder="Your password" autocomplete=current-password required>
<button class=go type=submit>Continue</button></form>""", site_label)


def mfa_page(site_label: str, action: str, next_url: str, error: str | None = None) -> str:
    return layout("Verify", f"""<h2>Verify it's you</h2>
<p>Open your authenticator app.</p>{_problem(error)}
<form method=post action='{escape(action)}' class=verify>{_hidden({'next': next_url})}
<input name=otp type=text inputmode=numeric placeholder="6-digit code" autocomplete=one-time-code required>
<button class=go type=submit>Confirm</button></form>""", site_label)


def site_picker_page(site_label: str, options: list[tuple[str, str, str]]) -> str:
    """options: (site key, label, url to continue on that site)."""
    items = "".join(
        f"<li><form method=get action='{escape(url)}'>{_hidden(params)}"
        f"<button type=submit name=_site value='{escape(key)}'>{escape(key)} ({escape(label.split()[-1])})</button></form></li>"
        for key, label, (url, params) in ((k, lbl, _split(u)) for k, lbl, u in options)
    )
    return layout("Region", f"""<h2>Choose your region</h2>
<p>Pick the region where your organization was created.</p><ol class=regions>{items}</ol>""", site_label)


def org_picker_page(site_label: str, action: str, fields: dict[str, str], orgs: list[tuple[str, str]]) -> str:
    items = "".join(
        f"<li><button type=submit name=org_id value='{escape(oid)}'>{escape(name)}</button></li>" for oid, name in orgs
    )
    return layout("Workspace", f"""<h2>Choose a workspace</h2>
<form method=post action='{escape(action)}'>{_hidden(fields)}<ul class=workspaces>{items}</ul></form>""", site_label)


def consent_page(site_label: str, client_name: str, org_name: str, user_email: str,
                 scopes: list[tuple[str, str]], fields: dict[str, str]) -> str:
    items = "".join(f"<li><span class=scope-id>{escape(s)}</span><span class=scope-what>{escape(d)}</span></li>"
                    for s, d in scopes)
    return layout(f"Connect {client_name}", f"""<h2>Connect {escape(client_name)}</h2>
<p>Datadog organization: <b>{escape(org_name)}</b> ({escape(user_email)})</p>
<p>{escape(client_name)} will be allowed to:</p><ul class=grants>{items}</ul>
<form method=post action=/oauth2/v1/authorize>{_hidden(fields)}
<button class=go type=submit name=decision value=authorize>Allow access</button>
<button class=stop type=submit name=decision value=deny>Cancel</button></form>""", site_label)


def error_page(site_label: str, message: str, status: int = 400) -> str:
    return layout("Problem", f"""<section class=problem><h2>We couldn't continue</h2>
<p class=problem-text>{escape(message)}</p><p>Go back to the application and start again.</p></section>""", site_label)
