"""core.redact: registered values in every encoding, pattern rules, binary passthrough."""

from __future__ import annotations

import html
import json
import secrets
import time
import urllib.parse

import pytest

from core import redact
from core.redact import PLACEHOLDER, REDACTOR, Redactor, looks_binary, register_secret

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256))


@pytest.fixture
def r() -> Redactor:
    return Redactor()


# --- registered values ---------------------------------------------------------------------

SECRET = 'p@ss w/rd+&="x<y>\\é'


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s,
        lambda s: urllib.parse.quote(s, safe=""),
        lambda s: urllib.parse.quote(s),
        lambda s: urllib.parse.quote_plus(s),
        lambda s: json.dumps(s)[1:-1],
        lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
        lambda s: html.escape(s),
    ],
    ids=["raw", "url", "url-path", "form", "json", "json-utf8", "html"],
)
def test_registered_value_redacted_in_every_encoding(r: Redactor, encode) -> None:
    r.add(SECRET, "client_secret")
    text = f"before {encode(SECRET)} after"
    out = r.redact_text(text)
    assert out == "before [REDACTED:client_secret] after"


def test_registered_value_inside_json_document(r: Redactor) -> None:
    r.add(SECRET, "password")
    doc = json.dumps({"nested": {"note": f"the password is {SECRET}"}})
    out = r.redact_text(doc)
    assert "[REDACTED:password]" in out
    assert json.loads(out)["nested"]["note"] == "the password is [REDACTED:password]"


def test_short_values_ignored(r: Redactor) -> None:
    r.add("abc12", "x")
    r.add("", "x")
    r.add(None, "x")  # type: ignore[arg-type]
    assert len(r) == 0
    assert r.redact_text("abc12 stays") == "abc12 stays"


def test_longest_value_wins(r: Redactor) -> None:
    r.add("abcdefgh", "short")
    r.add("abcdefghijkl", "long")
    assert r.redact_text("abcdefghijkl abcdefgh") == "[REDACTED:long] [REDACTED:short]"


def test_contains_and_values(r: Redactor) -> None:
    r.add("tok-123456", "access_token")
    r.add("pw-abcdef", "password")
    assert "tok-123456" in r
    assert "nope-123456" not in r
    assert sorted(r.values()) == ["pw-abcdef", "tok-123456"]
    assert r.labels()["pw-abcdef"] == "password"


def test_label_is_sanitised(r: Redactor) -> None:
    r.add("value-123456", "weird label]\n")
    assert r.redact_text("value-123456") == "[REDACTED:weird_label_]"


def test_global_helper_registers_on_global_redactor() -> None:
    value = "global-" + secrets.token_hex(8)
    assert register_secret(value, "api_key") == value
    assert value in REDACTOR
    assert redact.redact_text(f"k={value}") == "k=[REDACTED:api_key]"


# --- pattern rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("https://app/cb?code=AbC123xyz&state=st4te-keep", "https://app/cb?code=[REDACTED]&state=st4te-keep"),
        (
            "grant_type=authorization_code&code=c0de&client_secret=s3cr3t&redirect_uri=https%3A%2F%2Fx",
            "grant_type=authorization_code&code=[REDACTED]&client_secret=[REDACTED]&redirect_uri=https%3A%2F%2Fx",
        ),
        ("refresh_token=rt-1&access_token=at-1", "refresh_token=[REDACTED]&access_token=[REDACTED]"),
        ("password=hunter2 otp=123456 totp=654321", "password=[REDACTED] otp=[REDACTED] totp=[REDACTED]"),
        ("token=abc&id_token=eyJ.x.y", "token=[REDACTED]&id_token=[REDACTED]"),
        ("otpauth://totp/DD:me?secret=JBSWY3DPEHPK3PXP&issuer=DD", "otpauth://totp/DD:me?secret=[REDACTED]&issuer=DD"),
        ("state=abcdef123456&response_type=code", "state=abcdef123456&response_type=code"),
        ("status_code=200 error.code=7", "status_code=200 error.code=7"),
    ],
)
def test_query_and_form_params(r: Redactor, text: str, expected: str) -> None:
    assert r.redact_text(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer [REDACTED]"),
        ("authorization: Basic dXNlcjpwYXNz", "authorization: Basic [REDACTED]"),
        ("> Authorization: opaque-token-only", "> Authorization: [REDACTED]"),
        ("sent Authorization: Bearer abc.def", "sent Authorization: Bearer [REDACTED]"),
        ("Cookie: dogweb=abc; _dd_did=xyz", "Cookie: dogweb=[REDACTED]; _dd_did=[REDACTED]"),
        (
            "Set-Cookie: dogweb=abc123; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly",
            "Set-Cookie: dogweb=[REDACTED]; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly",
        ),
        ("DD-API-KEY: 0123456789abcdef0123456789abcdef", "DD-API-KEY: [REDACTED]"),
        ("dd-application-key: appkey-xyz", "dd-application-key: [REDACTED]"),
        ("X-CSRF-Token: csrf-123", "X-CSRF-Token: [REDACTED]"),
        (
            "Headers({'host': 'api', 'authorization': 'Bearer at-1', 'dd-api-key': 'k-1', 'cookie': 'a=1; b=2'})",
            "Headers({'host': 'api', 'authorization': 'Bearer [REDACTED]', 'dd-api-key': '[REDACTED]', "
            "'cookie': 'a=[REDACTED]; b=[REDACTED]'})",
        ),
        ('{"Authorization": "Bearer at-1"}', '{"Authorization": "Bearer [REDACTED]"}'),
        ("[('authorization', 'Bearer at-1')]", "[('authorization', 'Bearer [REDACTED]')]"),
    ],
)
def test_headers(r: Redactor, text: str, expected: str) -> None:
    assert r.redact_text(text) == expected


def test_multiline_http_dump(r: Redactor) -> None:
    dump = (
        "POST /oauth2/v1/token HTTP/1.1\r\n"
        "Host: api.datadoghq.com\r\n"
        "Authorization: Basic Y2xpZW50OnNlY3JldA==\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        "grant_type=authorization_code&code=abc&state=keep-me-123\r\n"
    )
    out = r.redact_text(dump)
    assert "Y2xpZW50OnNlY3JldA==" not in out
    assert "Authorization: Basic [REDACTED]\r\n" in out
    assert "Host: api.datadoghq.com\r\n" in out
    assert "code=[REDACTED]&state=keep-me-123" in out


def test_prose_mentioning_authorization_is_kept(r: Redactor) -> None:
    text = "Test Authorization: expected a 302 to the redirect URI"
    assert r.redact_text(text) == text


@pytest.mark.parametrize(
    "doc",
    [
        {"access_token": "at-1", "refresh_token": "rt-1", "token_type": "bearer", "expires_in": 3600},
        {"client_secret": "cs-1", "client_id": "keep-client-id"},
        {"password": "pw", "username": "keep@example.com"},
        {"code": "c0deValue123", "state": "keep-state"},
        {"totp_secret": "JBSWY3DPEHPK3PXP"},
    ],
)
def test_json_keys(r: Redactor, doc: dict) -> None:
    for text in (json.dumps(doc), json.dumps(doc, indent=2), repr(doc)):
        out = r.redact_text(text)
        for key, value in doc.items():
            secret = key in ("access_token", "refresh_token", "client_secret", "password", "code", "totp_secret")
            assert (str(value) in out) is not secret, (key, out)


def test_json_key_in_api_keys_answer(r: Redactor) -> None:
    answer = json.dumps({"data": {"type": "api_keys", "attributes": {"name": "ddoauth", "key": "0123456789abcdef" * 2}}})
    out = r.redact_text(answer)
    assert "0123456789abcdef" not in out
    assert '"key": "[REDACTED]"' in out
    assert '"name": "ddoauth"' in out
    # a "key" that is not a 32+ hex value is ordinary data
    assert r.redact_text('{"key": "site"}') == '{"key": "site"}'


def test_numeric_and_error_codes_kept(r: Redactor) -> None:
    text = '{"code": 404, "error": {"code": "invalid_grant"}, "errors": ["Forbidden"]}'
    assert r.redact_text(text) == text


def test_python_locals_and_reprs(r: Redactor) -> None:
    assert r.redact_text("password = 'hunter22'") == f"password = '{PLACEHOLDER}'"
    assert r.redact_text("Token(access_token='at-1', scope='dashboards_read')") == (
        f"Token(access_token='{PLACEHOLDER}', scope='dashboards_read')"
    )


def test_playwright_cookie_objects(r: Redactor) -> None:
    state = json.dumps({"cookies": [{"name": "dogweb", "value": "sess-1", "domain": ".datadoghq.com", "path": "/"}]})
    out = r.redact_text(state)
    assert "sess-1" not in out
    assert '"name": "dogweb"' in out


def test_registered_label_survives_pattern_rules(r: Redactor) -> None:
    r.add("registered-code-123", "authorization_code")
    assert r.redact_text("?code=registered-code-123&state=s") == "?code=[REDACTED:authorization_code]&state=s"
    assert r.redact_text('{"access_token": "registered-code-123"}') == '{"access_token": "[REDACTED:authorization_code]"}'


def test_learns_secrets_found_by_patterns(r: Redactor) -> None:
    """pytest shows compared values bare: a token seen once as "access_token" is learned."""
    text = 'body = {"access_token": "at-9f8e7d6c5b"}\nassert \'at-9f8e7d6c5b\' == \'expected\''
    out = r.redact_text(text)
    assert "at-9f8e7d6c5b" not in out
    assert "at-9f8e7d6c5b" in r
    assert r.redact_text("later: at-9f8e7d6c5b") == "later: [REDACTED:access_token]"
    # in a structure, an earlier string is redone once a later one taught a secret
    obj = {"message": "got rt-12345678", "trace": "refresh_token=rt-12345678"}
    assert r.redact_obj(obj) == {
        "message": "got [REDACTED:refresh_token]",
        "trace": "refresh_token=[REDACTED:refresh_token]",
    }


def test_does_not_learn_words(r: Redactor) -> None:
    r.redact_text('{"password": "password", "code": "abc"} token=true Cookie: lang=english')
    assert len(r) == 0
    assert Redactor(learn=False).redact_text('{"access_token": "at-12345678"} at-12345678').endswith("at-12345678")


def test_idempotent(r: Redactor) -> None:
    r.add("tok-abcdef", "access_token")
    text = (
        "Authorization: Bearer tok-abcdef\nCookie: a=1\nSet-Cookie: s=2; Path=/\n?code=x&state=y\n"
        '{"password": "p", "key": "' + "a" * 32 + '"} password=\'z\''
    )
    once = r.redact_text(text)
    assert r.redact_text(once) == once


# --- objects and bytes ---------------------------------------------------------------------


def test_redact_obj(r: Redactor) -> None:
    r.add("secret-value-1", "client_secret")
    obj = {
        "name": "test_x",
        "statusDetails": {"message": "AssertionError: got secret-value-1", "trace": "code=abc"},
        "parameters": [{"name": "password", "value": "pw-plain"}],
        "password": "pw-2",
        "code": "invalid_request",
        "key": "f" * 40,
        "tuple": ("secret-value-1", 3),
        "n": 7,
        "none": None,
        "cookies": [{"name": "dogweb", "value": "s-1", "domain": "x"}],
    }
    out = r.redact_obj(obj)
    assert out["statusDetails"]["message"] == "AssertionError: got [REDACTED:client_secret]"
    assert out["statusDetails"]["trace"] == "code=[REDACTED]"
    assert out["password"] == PLACEHOLDER
    assert out["code"] == "invalid_request"
    assert out["key"] in (PLACEHOLDER, "[REDACTED:api_key]")
    assert out["tuple"] == ("[REDACTED:client_secret]", 3)
    assert out["n"] == 7 and out["none"] is None
    assert out["cookies"][0]["value"] == PLACEHOLDER
    assert obj["password"] == "pw-2"  # the input is not modified


@pytest.mark.parametrize("blob", [PNG, JPEG, b"PK\x03\x04zip", b"\x1a\x45\xdf\xa3webm", b"abc\x00def"])
def test_binary_untouched(r: Redactor, blob: bytes) -> None:
    r.add("abcdefgh", "x")
    data = blob + b" password=abcdefgh"
    assert looks_binary(data)
    assert r.redact_bytes(data) is data


def test_text_bytes_redacted_and_invalid_utf8_preserved(r: Redactor) -> None:
    r.add("tok-abcdef", "access_token")
    data = b"caf\xe9 tok-abcdef \xff\xfe end"
    out = r.redact_bytes(data)
    assert out == b"caf\xe9 [REDACTED:access_token] \xff\xfe end"
    assert r.redact_bytes(b"nothing here") == b"nothing here"
    assert r.redact_bytes(b"") == b""


def test_many_secrets_and_large_text_stay_fast(r: Redactor) -> None:
    """A sanity check, not a benchmark: hundreds of secrets over ~1 MB of text."""
    values = [secrets.token_urlsafe(24) for _ in range(300)]
    for i, v in enumerate(values):
        r.add(v, f"t{i}")
    chunk = "lorem ipsum status_code=200 " * 30 + "\n"
    text = chunk * 1000 + " ".join(values[::7])
    start = time.perf_counter()
    out = r.redact_text(text)
    elapsed = time.perf_counter() - start
    assert not any(v in out for v in values[::7])
    assert elapsed < 20  # generous: catches a quadratic blow-up, not a slow machine


def test_thread_safe_registration(r: Redactor) -> None:
    import threading

    values = [f"thread-secret-{i:04d}" for i in range(200)]

    def worker(chunk: list[str]) -> None:
        for v in chunk:
            r.add(v, "t")
            r.redact_text(v)

    threads = [threading.Thread(target=worker, args=(values[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(r) == 200
    assert r.redact_text(" ".join(values)).count("[REDACTED:t]") == 200
