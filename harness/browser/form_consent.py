"""A code for a test whose subject is the token endpoint, without rendering a page: where the recipes say
the consent page is a plain HTML form (`consent_form_post: true`), fetch the authorize URL with the
logged-in browser session's cookies and post the consent form's Authorize button, as the browser would.

One round trip pair instead of a rendered flow. Anything unexpected (no session, a login page, an org
picker, a page whose Authorize button is not in a plain form, an answer that is not a redirect to the
callback with a code) is not judged here: the caller falls back to a rendered flow, which meets the page
and says what it is. A transport error is the target's (TargetUnavailable, in the rendered flow's words),
never a second try: a POST may have been processed. Nothing else here reaches the report (the requests
carry the session's cookies; the error names the method and the URL without its query).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
import lxml.html

from core.errors import TargetUnavailable
from core.redact import REDACTOR
from harness.browser.consent import FlowResult, PageVisit, is_datadog_host, page_not_in_time, request_line
from harness.config.recipes import Locator, Recipes

MAX_HOPS = 5  # authorize -> (a same-host redirect or two) -> the consent page
# the rendered flow's patience (Playwright's default navigation timeout): a posted flow waits as long
FORM_TIMEOUT_S = 30.0


@dataclass
class FormPostOutcome:
    flow: FlowResult | None  # None: fall back to a rendered flow
    reason: str = ""  # why it fell back
    requests: int = 0


def session_cookies(storage_state: Path, host: str) -> dict[str, str]:
    """The cookies of a Playwright storage-state file that the browser would send to `host`."""
    state = json.loads(Path(storage_state).read_text())
    jar = {}
    for cookie in state.get("cookies", []):
        domain = str(cookie.get("domain", "")).lstrip(".")
        if host == domain or host.endswith("." + domain):
            jar[cookie["name"]] = cookie["value"]
    return jar


def _cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def _button_text(el) -> str:
    if el.tag == "input":
        return el.get("value") or ""
    return el.get("aria-label") or " ".join(el.text_content().split())


def find_submit(doc, spec: Locator | None):
    """The <button>/<input type=submit> the recipe's authorize locator names, inside a <form>, or None.
    Only locators a static page can answer: role button (+ name), text, test id, CSS."""
    if spec is None or spec.within is not None:
        return None
    buttons = doc.xpath("//form//button[not(@type) or @type='submit'] | //form//input[@type='submit']")
    if spec.role is not None:
        if spec.role != "button":
            return None
        matches = [b for b in buttons if spec.name is None or re.search(spec.name, _button_text(b))]
    elif spec.text is not None:
        matches = [b for b in buttons if re.search(spec.text, _button_text(b))]
    elif spec.testid is not None:
        matches = [b for b in buttons if b.get("data-testid") == spec.testid]
    elif spec.css is not None:
        try:
            chosen = set(doc.cssselect(spec.css))
        except Exception:  # cssselect missing or a selector it cannot read: render instead
            return None
        matches = [b for b in buttons if b in chosen]
    else:
        return None
    return matches[0] if len(matches) == 1 else None


def _form_of(el):
    while el is not None and el.tag != "form":
        el = el.getparent()
    return el


def _fetch(client: httpx.Client, method: str, url: str, jar: dict, web_host: str, data=None, referer=None):
    """One request with the session's cookies, following redirects that stay on the web host. Returns
    (the last response, its URL, requests made, a redirect that left the web host or None)."""
    n = 0
    for _ in range(MAX_HOPS):
        headers = {"Cookie": _cookie_header(jar), "Accept": "text/html"}
        if referer:
            headers.update({"Referer": referer, "Origin": f"https://{web_host}"})
        content = None
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(data)
        resp = _request(client, method, url, headers, content)
        n += 1
        jar.update(dict(resp.cookies))
        location = resp.headers.get("location")
        if resp.status_code in (301, 302, 303, 307, 308) and location:
            nxt = urljoin(url, location)
            if urlsplit(nxt).hostname != web_host:
                return resp, nxt, n, nxt
            url, method, data = nxt, "GET", None
            continue
        return resp, url, n, None
    return resp, url, n, None


def _request(client: httpx.Client, method: str, url: str, headers: dict, content) -> httpx.Response:
    """A transport error is the target's (Datadog unreachable), said as the rendered flow says it, never a
    reason to try again in a browser: a POST (the org picker, the approval) may have been processed, and a
    page that did not come in 30 s would not come in the browser's 30 s either."""
    try:
        return client.request(method, url, headers=headers, content=content)
    except httpx.TransportError as exc:
        how = f"{type(exc).__name__}, consent form posted without rendering"
        if isinstance(exc, httpx.TimeoutException):
            raise page_not_in_time(method, url, FORM_TIMEOUT_S, how) from exc
        raise TargetUnavailable(f"Datadog unreachable: {request_line(method, url)} failed ({how})") from exc


def _submit(doc, button, page_url: str):
    form = _form_of(button)
    if form is None or (form.get("method") or "get").lower() != "post":
        return None, None
    fields = list(form.form_values())
    if button.get("name"):
        fields.append((button.get("name"), button.get("value") or ""))
    return urljoin(page_url, form.get("action") or page_url), fields


def post_consent(client: httpx.Client, authorize_url: str, storage_state: Path, recipes: Recipes,
                 org: str | None = None) -> FormPostOutcome:
    """Authorize through the consent form with the session's cookies (choosing `org` on an org picker
    first); a FlowResult like a rendered flow's (callback URL and parameters, redirect status), or None
    with the reason to render instead."""
    web_host = urlsplit(authorize_url).hostname or ""
    jar = session_cookies(storage_state, web_host)
    if not jar:
        return FormPostOutcome(None, "no session cookies for " + web_host)
    return _post_consent(client, authorize_url, jar, web_host, recipes, org)


def _post_consent(client, authorize_url: str, jar: dict, web_host: str, recipes: Recipes, org) -> FormPostOutcome:
    resp, url, n, left = _fetch(client, "GET", authorize_url, jar, web_host)
    picked = False
    for _ in range(MAX_HOPS):
        if left is not None:  # straight to the callback (remembered consent) or away: render and see
            return FormPostOutcome(None, f"the flow left {web_host} for {urlsplit(left).hostname} before a consent "
                                         f"form", n)
        if resp.status_code != 200 or "html" not in resp.headers.get("content-type", ""):
            return FormPostOutcome(None, f"{urlsplit(url).path} answered HTTP {resp.status_code}", n)
        doc = lxml.html.fromstring(resp.text)
        button = find_submit(doc, recipes.page("consent").authorize)
        if button is not None:
            break
        choice = recipes.page("org_picker").choice
        org_button = None
        if org and not picked and choice is not None and choice.role == "button" and choice.within is None:
            org_button = find_submit(doc, Locator(role="button", name=rf"^{re.escape(org)}$"))
        action, fields = _submit(doc, org_button, url) if org_button is not None else (None, None)
        if action is None or urlsplit(action).hostname != web_host:
            title = " ".join((doc.findtext(".//title") or "").split())
            return FormPostOutcome(None, f"no plain consent form with the recipe's Authorize button on "
                                         f"{urlsplit(url).path} ({title!r})", n)
        picked = True
        resp, url, more, left = _fetch(client, "POST", action, jar, web_host, data=fields, referer=url)
        n += more
    else:
        return FormPostOutcome(None, "no consent form within a few pages", n)
    action, fields = _submit(doc, button, url)
    if action is None or urlsplit(action).hostname != web_host:
        return FormPostOutcome(None, "the recipe's Authorize button is not in a form posted to " + web_host, n)
    consent_url = url
    answer, _, more, callback = _fetch(client, "POST", action, jar, web_host, data=fields, referer=consent_url)
    n += more
    pairs = parse_qsl(urlsplit(callback or "").query, keep_blank_values=True)
    if callback is None or is_datadog_host(urlsplit(callback).hostname or "") or not dict(pairs).get("code"):
        return FormPostOutcome(None, f"the consent form's answer was HTTP {answer.status_code}, not a callback "
                                     f"with a code", n)
    for k, v in pairs:
        if k == "code":
            REDACTOR.add(v, "authorization_code")
    result = FlowResult(callback_url=callback, callback_pairs=pairs, callback_redirect_status=answer.status_code,
                        final_url=callback, pages=[PageVisit("consent", consent_url)], via="form post")
    return FormPostOutcome(result, requests=n)
