"""harness/checks/registry.py and the package: `Check` objects, the `@check` decorator, the one
registration point (`import harness.checks`), requirement links, and verify() applying severities.
The checks themselves are tested per endpoint module (test_checks_front.py, test_checks_back.py,
test_integration_mode.py)."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

import harness.checks
from harness.checks import authorization, registry, token
from harness.checks.registry import (CHARACTERIZE, DD_DOCS, MUST, REGISTRY, SHOULD, Check, Recorder, check,
                                     requirement_link, verify)
from core.errors import ConformanceFailure
from harness.http.exchange import Exchange

ROOT = Path(__file__).resolve().parents[2]
CHECKS_DIR = ROOT / "harness" / "checks"


def ex(status: int = 200, body=None, headers: dict | None = None, raw: bytes | None = None) -> Exchange:
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return Exchange(method="POST", url="https://api.datadoghq.com/oauth2/v1/token",
                    request_headers={"Accept": "application/json"}, request_body=b"grant_type=x",
                    status=status, response_headers=headers or {}, response_body=content, elapsed_ms=3.0)


def test_registry_metadata():
    assert len(REGISTRY) >= 80
    for name, c in REGISTRY.items():
        assert isinstance(c, Check) and c.name == name == c.func.__name__
        assert c.severity in (MUST, SHOULD, CHARACTERIZE)
        assert re.fullmatch(r"RFC\d+-[\d.]+|DD-[A-Z-]+", c.requirement), c.requirement
        assert c.link.startswith("https://")
        assert c.title


# ---- requirement links ----------------------------------------------------------------------------

@pytest.mark.parametrize("req,url", [
    ("RFC6749-4.1.2", "https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2"),
    ("RFC9700-2.1.2", "https://www.rfc-editor.org/rfc/rfc9700#section-2.1.2"),
    ("RFC7636", "https://www.rfc-editor.org/rfc/rfc7636"),
    ("DD-OAUTH-REDIRECT-DOMAIN", DD_DOCS["DD-OAUTH"]),
    ("DD-ENDPOINTS-TTL", DD_DOCS["DD-ENDPOINTS"]),
    ("DD-TROUBLESHOOT-FORBIDDEN", DD_DOCS["DD-TROUBLESHOOT"]),
    ("DD-SCOPES-DATAFLOW", DD_DOCS["DD-SCOPES"]),
    ("DD-RATELIMIT", DD_DOCS["DD-RATELIMIT"]),
    ("DD-VALIDATE", DD_DOCS["DD-VALIDATE"]),
    ("DD-SOMETHING-NEW", DD_DOCS["DD-ENDPOINTS"]),
])
def test_requirement_link(req, url):
    assert requirement_link(req) == url


# ---- verify() and severities ------------------------------------------------------------------------

class FakeRecorder(Recorder):
    def __init__(self):
        self.steps, self.links, self.warnings, self.observed = [], [], [], []

    @contextmanager
    def step(self, title):
        self.steps.append(title)
        self.step_errors = getattr(self, "step_errors", [])
        try:
            yield
        except BaseException as exc:  # what allure's step sees: the step fails with this message
            self.step_errors.append((title, exc))
            raise

    def link(self, url, name):
        self.links.append((url, name))

    def warning(self, text):
        self.warnings.append(text)

    def observe(self, key, value):
        self.observed.append((key, value))


def test_verify_pass_returns_none_and_records_step_and_link():
    rec = FakeRecorder()
    assert verify(rec, authorization.state_echoed, {"state": "s"}, "s") is None
    assert rec.steps == ["[RFC6749-4.1.2] state is echoed byte for byte on the callback"]
    assert rec.links == [("https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2", "RFC6749-4.1.2")]
    assert rec.warnings == [] and rec.observed == []


def test_verify_must_raises_conformance_failure_with_requirement():
    rec = FakeRecorder()
    with pytest.raises(ConformanceFailure) as info:
        verify(rec, authorization.callback_domain, {"domain": "datadoghq.com"}, "datadoghq.eu")
    assert isinstance(info.value, AssertionError)
    message = str(info.value)
    assert message.startswith("[DD-OAUTH-REDIRECT-DOMAIN] the callback carries the site's domain: ")
    assert "'datadoghq.com'" in message
    assert rec.warnings == [] and rec.observed == []
    # the failure is raised inside the check's own step, so the report shows that step red
    assert [(t, str(e)) for t, e in rec.step_errors] == [(rec.steps[0], message)]


def test_verify_should_warns():
    rec = FakeRecorder()
    assert authorization.callback_org_params.severity == SHOULD
    failure = verify(rec, authorization.callback_org_params, {})
    assert failure == "missing site, dd_oid, dd_org_name"
    assert len(rec.warnings) == 1 and rec.warnings[0].startswith("[DD-OAUTH-REDIRECT-PARAMS] ")
    assert failure in rec.warnings[0]
    assert rec.observed == []


def test_verify_characterize_observes():
    rec = FakeRecorder()
    failure = verify(rec, token.token_expires_in, {"expires_in": 7200}, severity=CHARACTERIZE)
    assert failure == "expires_in is 7200"
    assert rec.observed == [("DD-ENDPOINTS-TTL", "expires_in is 7200")]
    assert rec.warnings == []


def test_verify_severity_override():
    with pytest.raises(ConformanceFailure, match=r"\[RFC9700-4.12\]"):
        verify(FakeRecorder(), authorization.redirect_not_307, 307, severity=MUST)
    rec = FakeRecorder()
    assert verify(rec, token.token_no_store, ex(headers={}), severity=SHOULD) == "Cache-Control is ''"
    assert rec.warnings == ["[RFC6749-5.1] token response is Cache-Control: no-store: Cache-Control is ''"]


def test_verify_with_the_default_recorder():
    assert verify(Recorder(), authorization.redirect_not_307, 302) is None
    assert verify(Recorder(), authorization.redirect_not_307, 307) is not None  # SHOULD: no exception
    with pytest.raises(ConformanceFailure):
        verify(Recorder(), token.token_fields, {})


# ---- Check objects, the decorator, the one registration point ----------------------------------------

def _decorated_checks(path: Path) -> list[str]:
    """Names of the functions a module file decorates with @check(...), read from its source."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                if isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "check":
                    names.append(node.name)
    return names


def test_every_check_module_is_imported_by_the_package():
    """harness/checks/__init__.py is the one registration point: each module that defines checks is in
    MODULES, the machinery and the private helpers define none."""
    defining = {p.stem for p in CHECKS_DIR.glob("*.py") if _decorated_checks(p)}
    assert defining == {m.__name__.rsplit(".", 1)[1] for m in harness.checks.MODULES}
    assert not _decorated_checks(CHECKS_DIR / "registry.py") and not _decorated_checks(CHECKS_DIR / "_helpers.py")
    in_source = sorted(n for p in CHECKS_DIR.glob("*.py") for n in _decorated_checks(p))
    assert in_source == sorted(REGISTRY), "every @check in the source is registered, and nothing else is"


def test_importing_the_package_alone_registers_every_check():
    """In a fresh interpreter, `import harness.checks` (nothing else) registers them all."""
    code = ("import harness.checks, sys; from harness.checks.registry import REGISTRY; "
            "print(len(REGISTRY)); print(sorted(m for m in sys.modules if m.startswith('suites')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    count, suites = out.splitlines()
    assert int(count) == len(REGISTRY) and suites == "[]"


def test_a_check_is_an_object_you_can_call():
    c = token.token_expires_in
    assert isinstance(c, Check) and REGISTRY["token_expires_in"] is c
    assert (c.name, c.requirement, c.severity, c.module) == ("token_expires_in", "DD-ENDPOINTS-TTL", MUST,
                                                             "harness.checks.token")
    assert c({"expires_in": 3600}) is None and c({"expires_in": 60}) == "expires_in is 60"
    assert "harness.checks.token.token_expires_in" in repr(c) and "DD-ENDPOINTS-TTL" in repr(c)


def test_the_decorator_returns_the_registered_check(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", {})

    @check("RFC6749-5.1", "a made-up check", SHOULD)
    def made_up(value) -> str | None:
        return None if value else "no value"

    assert isinstance(made_up, Check) and registry.REGISTRY == {"made_up": made_up}
    assert (made_up.requirement, made_up.title, made_up.severity) == ("RFC6749-5.1", "a made-up check", SHOULD)
    assert made_up(1) is None and made_up(0) == "no value"
    rec = FakeRecorder()
    assert verify(rec, made_up, 0) == "no value" and rec.warnings == ["[RFC6749-5.1] a made-up check: no value"]


def test_a_duplicate_check_name_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", dict(REGISTRY))
    with pytest.raises(ValueError, match=r"duplicate check name 'token_ok'.*harness\.checks\.token"):
        @check("RFC6749-5.1", "another token_ok")
        def token_ok(ex) -> str | None:
            return None
    assert registry.REGISTRY["token_ok"] is token.token_ok


def test_an_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="severity 'MAY'"):
        check("RFC6749-5.1", "a check", "MAY")


@pytest.mark.parametrize("wrong", ["token_ok", None, token.token_ok.func])
def test_verify_takes_the_check_object_not_its_name(wrong):
    with pytest.raises(TypeError, match=r"verify\(\) takes a Check object") as info:
        verify(FakeRecorder(), wrong, ex())
    if wrong == "token_ok":
        assert "harness.checks.<endpoint>.token_ok" in str(info.value)
