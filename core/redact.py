"""The one redactor: keeps secrets out of everything written under reports/.

Two layers, applied in this order by :meth:`Redactor.redact_text`:

1. Literal values registered at runtime with :meth:`Redactor.add` (client secrets, passwords,
   TOTP seeds, tokens, codes, API keys, cookies).  Each value is also registered in its
   URL-encoded, form-encoded, JSON-escaped and HTML-escaped forms, and is replaced by
   ``[REDACTED:<label>]``.
2. Pattern rules that catch secrets nobody registered: OAuth/form parameters (``code=``,
   ``access_token=`` ...), credential headers (``Authorization``, ``Cookie``, ``Set-Cookie``,
   ``DD-API-KEY`` ...), and JSON / Python-repr keys (``"access_token": "..."`` ...).  These
   are replaced by ``[REDACTED]``.  ``state`` is deliberately *not* a secret.  A value a
   rule hides that looks like a credential (8+ chars with a digit, or 16+ chars, no spaces)
   is then registered ("learned"), so its bare occurrences elsewhere - pytest's assertion
   introspection prints compared values bare - are redacted too.

Redaction is idempotent: redacting already redacted text changes nothing.

Binary data (PNG/JPEG screenshots, videos, archives) cannot be text-redacted and is passed
through untouched by :meth:`Redactor.redact_bytes`; do not attach binary blobs that may hold
secrets (Playwright trace zips, HAR archives in zip form).

Plain Python, no pytest import: usable from the CLI and the emulator too.
"""

from __future__ import annotations

import html
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

__all__ = [
    "MIN_SECRET_LENGTH",
    "PLACEHOLDER",
    "REDACTOR",
    "Redactor",
    "looks_binary",
    "redact_bytes",
    "redact_obj",
    "redact_text",
    "register_secret",
]

#: Values shorter than this are not registered: they would redact ordinary words.
MIN_SECRET_LENGTH = 6

#: Replacement for secrets found by a pattern rule (registered values carry their label).
PLACEHOLDER = "[REDACTED]"

_LABEL_OK = re.compile(r"[^A-Za-z0-9_.:/-]+")

# --- pattern rules -----------------------------------------------------------------------

# Query-string / form / "name=value" parameters whose value is a secret.  `state` is not.
_SECRET_PARAMS = (
    "code",
    "code_verifier",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "client_secret",
    "secret",  # otpauth://totp/...?secret=<seed>
    "password",
    "otp",
    "totp",
    "api_key",
    "application_key",
)

# JSON / Python-repr keys whose string value is a secret.
_SECRET_KEYS = (
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "client_secret",
    "password",
    "code",
    "code_verifier",
    "totp_secret",
    "otp",
    "totp",
    "api_key",
    "application_key",
    "app_key",
)

# Headers whose whole value is a secret ("Authorization" keeps its scheme word).
_SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "dd-api-key",
    "dd-application-key",
    "x-csrf-token",
    "x-xsrf-token",
    "x-csrftoken",
)
_COOKIE_HEADERS = ("cookie", "set-cookie")

_NOT_YET = r"(?!\[REDACTED)"

# {"code": "invalid_grant"}: an error code (lowercase words), not an authorization code.
_ERROR_CODE_RE = re.compile(r"[a-z]+(?:[_.][a-z]+)+|[a-z]{1,12}")
_HEX32_RE = re.compile(r"[0-9a-fA-F]{32,}")  # never re-redact a placeholder (keeps labels, idempotence)

# name=value (query strings, form bodies, log lines).  Not preceded by a word char, '.' or
# '-' so that `status_code=` / `error.code=` are left alone.
_PARAM_RE = re.compile(
    r"(?<![\w.\-])(" + "|".join(map(re.escape, _SECRET_PARAMS)) + r")(=)" + _NOT_YET
    + r"([^&\s\"'<>#;,)\]}]+)",
    re.IGNORECASE,
)

# "key": "value" / 'key': 'value' (JSON, Python dict reprs).  Only string values: a numeric
# {"code": 404} is an HTTP status, not a secret.
_KEY_RE = re.compile(
    r"(?P<q1>[\"'])(?P<key>" + "|".join(map(re.escape, _SECRET_KEYS)) + r")(?P=q1)"
    r"(?P<sep>\s*:\s*)(?P<q2>[\"'])" + _NOT_YET + r"(?P<val>(?:\\.|(?!(?P=q2))[^\\\n])*)(?P=q2)",
    re.IGNORECASE,
)

# key = 'value' (pytest --showlocals, Python reprs of objects/kwargs, YAML-ish).
_ASSIGN_RE = re.compile(
    r"(?<![\w.\-\"'])(?P<key>" + "|".join(map(re.escape, _SECRET_KEYS + ("client_secret", "secret")))
    + r")(?P<sep>\s*[=:]\s*)(?P<q>[\"'])" + _NOT_YET + r"(?P<val>(?:\\.|(?!(?P=q))[^\\\n])+)(?P=q)",
    re.IGNORECASE,
)

# Datadog api_keys answers: {"key": "<32 hex>"}.
_HEX_KEY_RE = re.compile(r"(?P<q>[\"'])key(?P=q)(?P<sep>\s*:\s*)(?P<q2>[\"'])(?P<val>[0-9a-fA-F]{32,})(?P=q2)")

# Playwright cookies / storage state: {"name": "dogweb", "value": "<session>", ...}.
_COOKIE_OBJ_RE = re.compile(
    r"(?P<head>(?P<q>[\"'])name(?P=q)\s*:\s*(?P=q)[^\"'\n]*(?P=q)\s*,\s*(?P=q)value(?P=q)\s*:\s*)"
    r"(?P=q)" + _NOT_YET + r"(?P<val>(?:\\.|(?!(?P=q))[^\\\n])*)(?P=q)"
)

_ALL_HEADERS = "|".join(map(re.escape, _SECRET_HEADERS + _COOKIE_HEADERS))

# Header lines: "Authorization: Bearer x" (raw HTTP, curl -v, logs); the value runs to the end
# of the line.  At the start of a line (after optional indentation or curl's "> "/"< ")
# every credential header counts; mid-line only names that are not ordinary words do
# ("authorization: expected 302" in an assertion message is prose, not a header) plus
# Authorization followed by a known scheme.
_HEADER_LINE_RE = re.compile(
    r"(?m)^(?P<lead>[ \t>*<|+-]*)(?P<name>" + _ALL_HEADERS + r")(?P<sep>[ \t]*:[ \t]*)(?P<val>[^\r\n]+)",
    re.IGNORECASE,
)
_HEADER_ANYWHERE_RE = re.compile(
    r"(?<![\w\-\"'])(?:(?P<name>dd-api-key|dd-application-key|x-csrf-token|x-xsrf-token|x-csrftoken"
    r"|set-cookie|proxy-authorization)|(?P<auth>authorization)(?=[ \t]*:[ \t]*"
    r"(?:bearer|basic|token|digest|negotiate|ntlm|mac|hoba|aws4-hmac-sha256)[ \t]+\S))"
    r"(?P<sep>[ \t]*:[ \t]*)(?P<val>[^\r\n]+)",
    re.IGNORECASE,
)

# Quoted headers: {'authorization': 'Bearer x'} (httpx Headers repr, JSON dumps).
_HEADER_QUOTED_RE = re.compile(
    r"(?P<q1>[\"'])(?P<name>" + _ALL_HEADERS + r")(?P=q1)(?P<sep>\s*[:,]\s*)(?P<q2>[\"'])"
    r"(?P<val>(?:\\.|(?!(?P=q2))[^\\\n])*)(?P=q2)",
    re.IGNORECASE,
)

_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9_\-]*)(?P<ws>\s+)(?P<cred>\S.*)$", re.DOTALL)
_COOKIE_PAIR_RE = re.compile(r"(?P<name>[^=;,\s]+)(?P<eq>\s*=\s*)(?P<val>[^;,\r\n]*)")
_COOKIE_ATTRS = {"path", "domain", "expires", "max-age", "samesite", "secure", "httponly",
                 "priority", "partitioned", "version", "comment"}


# Every substitution below appends what it hid to ``found`` as (value, label), so that the
# Redactor can *learn* secrets it was never told about (see Redactor.learn).
_Found = list[tuple[str, str]]


def _redact_header_value(name: str, value: str, found: _Found) -> str:
    name = name.lower()
    if name in _COOKIE_HEADERS:
        return _redact_cookie_value(value, found, set_cookie=(name == "set-cookie"))
    if value.startswith("[REDACTED"):
        return value
    if name in ("authorization", "proxy-authorization"):
        m = _SCHEME_RE.match(value)
        if m:
            cred = m.group("cred")
            if cred.startswith("[REDACTED"):
                return value
            found.append((cred.strip(), name))
            return f"{m.group('scheme')}{m.group('ws')}{PLACEHOLDER}"
    stripped = value.rstrip()
    found.append((stripped, name))
    return PLACEHOLDER + value[len(stripped):]


def _redact_cookie_value(value: str, found: _Found, *, set_cookie: bool) -> str:
    def pair(m: re.Match[str]) -> str:
        if m.group("name").lower() in _COOKIE_ATTRS or m.group("val").startswith("[REDACTED"):
            return m.group(0)
        found.append((m.group("val").strip(), "cookie"))
        return f"{m.group('name')}{m.group('eq')}{PLACEHOLDER}"

    if set_cookie:
        # Only the first pair is the cookie; the rest are attributes (Path, Expires ...).
        first, sep, rest = value.partition(";")
        return _COOKIE_PAIR_RE.sub(pair, first, count=1) + sep + rest
    if "=" not in value:  # a bare cookie blob
        if value.startswith("[REDACTED"):
            return value
        found.append((value.strip(), "cookie"))
        return PLACEHOLDER
    return _COOKIE_PAIR_RE.sub(pair, value)


def _sub_param(m: re.Match[str], found: _Found) -> str:
    found.append((m.group(3), m.group(1).lower()))
    return f"{m.group(1)}{m.group(2)}{PLACEHOLDER}"


def _sub_keyed(m: re.Match[str], found: _Found) -> str:
    if m.group("key").lower() == "code" and _ERROR_CODE_RE.fullmatch(m.group("val")):
        return m.group(0)
    found.append((m.group("val"), m.group("key").lower()))
    return f"{m.group('q1')}{m.group('key')}{m.group('q1')}{m.group('sep')}{m.group('q2')}{PLACEHOLDER}{m.group('q2')}"


def _sub_assign(m: re.Match[str], found: _Found) -> str:
    if m.group("key").lower() == "code" and _ERROR_CODE_RE.fullmatch(m.group("val")):
        return m.group(0)
    found.append((m.group("val"), m.group("key").lower()))
    return f"{m.group('key')}{m.group('sep')}{m.group('q')}{PLACEHOLDER}{m.group('q')}"


def _sub_hex_key(m: re.Match[str], found: _Found) -> str:
    found.append((m.group("val"), "api_key"))
    return f"{m.group('q')}key{m.group('q')}{m.group('sep')}{m.group('q2')}{PLACEHOLDER}{m.group('q2')}"


def _sub_cookie_obj(m: re.Match[str], found: _Found) -> str:
    found.append((m.group("val"), "cookie"))
    return f"{m.group('head')}{m.group('q')}{PLACEHOLDER}{m.group('q')}"


def _sub_header_line(m: re.Match[str], found: _Found) -> str:
    groups = m.groupdict()
    name = groups.get("name") or groups.get("auth") or ""
    value = _redact_header_value(name, m.group("val"), found)
    return f"{groups.get('lead') or ''}{name}{m.group('sep')}{value}"


def _sub_header_quoted(m: re.Match[str], found: _Found) -> str:
    q1, q2 = m.group("q1"), m.group("q2")
    value = _redact_header_value(m.group("name"), m.group("val"), found)
    return f"{q1}{m.group('name')}{q1}{m.group('sep')}{q2}{value}{q2}"


# Order matters: quoted forms before line forms (a line rule would eat the closing quote).
_PATTERN_RULES: tuple[tuple[re.Pattern[str], Any, tuple[str, ...]], ...] = (
    (_HEADER_QUOTED_RE, _sub_header_quoted, _SECRET_HEADERS + _COOKIE_HEADERS),
    (_HEADER_LINE_RE, _sub_header_line, _SECRET_HEADERS + _COOKIE_HEADERS),
    (_HEADER_ANYWHERE_RE, _sub_header_line, _SECRET_HEADERS + _COOKIE_HEADERS),
    (_KEY_RE, _sub_keyed, _SECRET_KEYS),
    (_HEX_KEY_RE, _sub_hex_key, ("key",)),
    (_COOKIE_OBJ_RE, _sub_cookie_obj, ("value",)),
    (_ASSIGN_RE, _sub_assign, _SECRET_KEYS + ("secret",)),
    (_PARAM_RE, _sub_param, _SECRET_PARAMS),
)

# A value found by a pattern rule is learned (registered) only when it looks like a
# credential, not like a word: 8+ characters, no whitespace, and a digit or 16+ characters.
_LEARNABLE_RE = re.compile(r"(?=\S*\d)\S{8,}|\S{16,}")


# --- binary detection --------------------------------------------------------------------

_BINARY_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"RIFF",  # WebP, AVI, WAV
    b"\x1a\x45\xdf\xa3",  # WebM / Matroska (Playwright videos)
    b"PK\x03\x04",  # zip (Playwright traces)
    b"%PDF-",
    b"\x1f\x8b",  # gzip
    b"BM",  # bmp (checked together with a NUL below)
)


def looks_binary(data: bytes) -> bool:
    """True for images, videos, archives and anything with NUL bytes near the start."""
    head = data[:8192]
    if b"\x00" in head:
        return True
    return any(head.startswith(m) for m in _BINARY_MAGIC if m != b"BM")


# --- the redactor --------------------------------------------------------------------------


def _trie_pattern(words: list[str]) -> str:
    """One regex alternation of ``words`` shaped as a trie: at any position it matches the
    longest registered word, and costs ~one character test per position however many
    words are registered (a flat ``a|b|c`` alternation tries every word)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        parts = []
        for ch in sorted(k for k in node if k):
            chain, sub = [ch], node[ch]
            while len(sub) == 1 and "" not in sub:  # compress single-child chains
                (nxt,) = sub
                chain.append(nxt)
                sub = sub[nxt]
            parts.append(re.escape("".join(chain)) + build(sub))
        if not parts:
            return ""
        body = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


def _variants(value: str) -> set[str]:
    forms = {value, value.strip()}
    forms.add(urllib.parse.quote(value, safe=""))
    forms.add(urllib.parse.quote(value, safe="/"))
    forms.add(urllib.parse.quote_plus(value))
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    forms.add(html.escape(value, quote=True))
    forms.add(html.escape(value, quote=False))
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """Registry of literal secrets plus pattern rules; see the module docstring.

    With ``learn`` (the default), a credential-looking value hidden by a pattern rule
    (``"access_token": "at-9f8e..."``) is registered too, so that its bare occurrences
    elsewhere (pytest's ``assert 'at-9f8e...' == ...``) are redacted as well.
    """

    def __init__(self, *, learn: bool = True) -> None:
        self.learn = learn
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}  # registered value -> label
        self._forms: dict[str, str] = {}  # every encoded form -> label
        self._regex: re.Pattern[str] | None = None
        self._dirty = False

    # registry ---------------------------------------------------------------------------

    def add(self, value: str | None, label: str = "secret") -> bool:
        """Register a literal secret; values shorter than 6 characters are ignored.

        Returns True when the value was not registered before."""
        if not isinstance(value, str) or len(value.strip()) < MIN_SECRET_LENGTH:
            return False
        label = _LABEL_OK.sub("_", str(label) or "secret")
        with self._lock:
            if value in self._secrets:
                return False
            self._secrets[value] = label
            for form in _variants(value):
                self._forms.setdefault(form, label)
            self._dirty = True
            return True

    def _learn(self, found: _Found) -> bool:
        learned = False
        for value, label in found:
            candidates = {value}
            try:
                candidates.add(urllib.parse.unquote_plus(value))
                candidates.add(json.loads(f'"{value}"'))
            except ValueError:
                pass
            for candidate in candidates:
                if (
                    isinstance(candidate, str)
                    and not candidate.startswith("[REDACTED")
                    and _LEARNABLE_RE.fullmatch(candidate)
                ):
                    learned |= self.add(candidate, label)
        return learned

    def clear(self) -> None:
        """Forget every registered value (for tests)."""
        with self._lock:
            self._secrets.clear()
            self._forms.clear()
            self._regex = None
            self._dirty = False

    def values(self) -> list[str]:
        """The registered values (raw, not their encoded forms)."""
        with self._lock:
            return list(self._secrets)

    def labels(self) -> dict[str, str]:
        with self._lock:
            return dict(self._secrets)

    def __contains__(self, value: object) -> bool:
        return value in self._secrets

    def __iter__(self) -> Iterator[str]:
        return iter(self.values())

    def __len__(self) -> int:
        return len(self._secrets)

    def _compiled(self) -> tuple[re.Pattern[str] | None, dict[str, str]]:
        if self._dirty:
            with self._lock:
                if self._dirty:
                    forms = list(self._forms)
                    self._regex = re.compile(_trie_pattern(forms)) if forms else None
                    self._dirty = False
        return self._regex, self._forms

    # redaction ----------------------------------------------------------------------------

    def redact_text(self, s: str) -> str:
        """Replace registered values (longest first) and pattern-matched secrets."""
        if not s:
            return s
        if not isinstance(s, str):
            s = str(s)
        s = self._redact_literals(s)
        found: _Found = []
        lowered = s.lower()
        for pattern, sub, triggers in _PATTERN_RULES:
            if any(t in lowered for t in triggers):
                s = pattern.sub(lambda m, sub=sub: sub(m, found), s)
                lowered = s.lower()
        if found and self.learn and self._learn(found):
            s = self._redact_literals(s)
        return s

    def _redact_literals(self, s: str) -> str:
        regex, forms = self._compiled()
        if regex is None:
            return s
        return regex.sub(lambda m: f"[REDACTED:{forms.get(m.group(0), 'secret')}]", s)

    def redact_bytes(self, b: bytes) -> bytes:
        """Redact text-like bytes; binary data (images, video, archives) is returned as is."""
        if not b or looks_binary(b):
            return b
        text = b.decode("utf-8", errors="surrogateescape")
        out = self.redact_text(text)
        if out == text:
            return b
        return out.encode("utf-8", errors="surrogateescape")

    def redact_obj(self, obj: Any) -> Any:
        """Redacted copy of a JSON-like structure (dicts, lists, tuples, strings, bytes)."""
        before = len(self._secrets)
        out = self._redact_obj(obj, None, 0)
        if len(self._secrets) != before:  # learned a secret part-way: redo the earlier parts
            out = self._redact_obj(obj, None, 0)
        return out

    def _redact_obj(self, obj: Any, key: str | None, depth: int) -> Any:
        if depth > 200:  # cyclic or absurdly deep: do not recurse further
            return obj
        if isinstance(obj, str):
            out = self.redact_text(obj)
            if key is not None and out and not out.startswith("[REDACTED"):
                k = key.lower()
                if k == "code" and _ERROR_CODE_RE.fullmatch(out):
                    return out
                if k in _SECRET_KEYS or (k == "key" and _HEX32_RE.fullmatch(out)):
                    if self.learn:
                        self._learn([(out, "api_key" if k == "key" else k)])
                    return PLACEHOLDER
            return out
        if isinstance(obj, (bytes, bytearray)):
            return self.redact_bytes(bytes(obj))
        if isinstance(obj, dict):
            is_cookie = "name" in obj and "value" in obj and ("domain" in obj or "path" in obj)
            result = {}
            for k, v in obj.items():
                new_key = self.redact_text(k) if isinstance(k, str) else k
                if is_cookie and k == "value" and isinstance(v, str):
                    out = self.redact_text(v)
                    if not out.startswith("[REDACTED"):
                        if self.learn:
                            self._learn([(out, "cookie")])
                        out = PLACEHOLDER
                    result[new_key] = out
                    continue
                result[new_key] = self._redact_obj(v, k if isinstance(k, str) else None, depth + 1)
            return result
        if isinstance(obj, list):
            return [self._redact_obj(v, None, depth + 1) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self._redact_obj(v, None, depth + 1) for v in obj)
        return obj


#: The process-global redactor every writer under reports/ goes through.
REDACTOR = Redactor()


def register_secret(value: str | None, label: str = "secret") -> str | None:
    """Register ``value`` with the global redactor and return it unchanged (for chaining)."""
    REDACTOR.add(value, label)
    return value


def redact_text(s: str) -> str:
    return REDACTOR.redact_text(s)


def redact_bytes(b: bytes) -> bytes:
    return REDACTOR.redact_bytes(b)


def redact_obj(obj: Any) -> Any:
    return REDACTOR.redact_obj(obj)
