"""Every file allure-pytest writes (result and container JSON, attachments) goes through the redactor.

allure-pytest registers an ``AllureFileLogger`` for ``--alluredir`` in ``allure_commons.plugin_manager``;
:func:`install_redacting_writer` swaps it for a :class:`RedactingAllureFileLogger` on the same
directory and returns the function that puts the original back. Images and other binary
attachments pass through untouched (they cannot be text-redacted).
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.redact import REDACTOR, looks_binary

try:  # allure-pytest is a project dependency, but keep this importable without it
    import allure_commons
    from allure_commons import hookimpl as _allure_hookimpl
    from allure_commons.logger import AllureFileLogger
except ImportError:  # pragma: no cover
    allure_commons = None
    AllureFileLogger = None

    def _allure_hookimpl(func):  # type: ignore[no-redef]
        return func


def is_trivial_container(container: Any) -> bool:
    """A fixture container that says nothing but the fixture's name and timing: every set-up and
    tear-down passed (or has no status, as allure-pytest's finalizer entries) with no step and no
    attachment. allure-pytest writes one per fixture per test (`recorder`, `verify`, ...): about six
    per test, over half of the single-file report. A fixture that failed, or recorded steps or
    attachments (a shared grant's consent flow), is kept."""
    fixtures = list(getattr(container, "befores", None) or ()) + list(getattr(container, "afters", None) or ())
    return all(not getattr(f, "steps", None) and not getattr(f, "attachments", None)
               and not getattr(f, "statusDetails", None) and getattr(f, "status", None) in (None, "passed")
               for f in fixtures)


# labels allure-pytest adds that no reader filters on (and that differ between xdist workers and runs)
NOISE_LABELS = frozenset({"host", "thread", "framework", "language", "package"})
# attachments a passing test does without in a light report: its HTTP exchanges (fixtures/grants.py names them)
LIGHT_ATTACHMENT_PREFIX = "HTTP "


def _strip_attachments(item: Any, prefix: str, dropped: set[str]) -> None:
    kept = []
    for attachment in getattr(item, "attachments", None) or ():
        if str(getattr(attachment, "name", "")).startswith(prefix):
            dropped.add(attachment.source)
        else:
            kept.append(attachment)
    if getattr(item, "attachments", None) is not None:
        item.attachments = kept
    for step in getattr(item, "steps", None) or ():
        _strip_attachments(step, prefix, dropped)


def _sources(item: Any) -> set[str]:
    found = {a.source for a in getattr(item, "attachments", None) or ()}
    for step in getattr(item, "steps", None) or ():
        found |= _sources(step)
    for fixture in list(getattr(item, "befores", None) or ()) + list(getattr(item, "afters", None) or ()):
        found |= _sources(fixture)
    return found


class RedactingAllureFileLogger:
    """Writes what ``AllureFileLogger`` writes, to the same directory, after redaction.

    light: a passing test's HTTP exchange attachments are left out (a failed or broken
    test keeps every one, where it was attached): text attachments wait in memory until the result or
    container that names them is written; `flush` writes whatever is still waiting."""

    def __init__(self, inner: Any, redactor: Any = REDACTOR, light: bool = False) -> None:
        self.inner = inner
        self.redactor = redactor
        self.light = light
        self._pending: dict[str, bytes] = {}
        # allure-commons offers no public accessor for the logger's directory
        self.report_dir = Path(inner._report_dir)
        self.report_dir.mkdir(parents=True, exist_ok=True)

    def _write(self, file_name: str, data: bytes) -> None:
        tmp = self.report_dir / f"{file_name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.report_dir / file_name)

    def _report_item(self, item: Any) -> None:
        from attr import asdict

        indent = 4 if os.environ.get("ALLURE_INDENT_OUTPUT") else None
        file_name = item.file_pattern.format(prefix=uuid.uuid4())
        data = asdict(item, filter=lambda _, v: v or v is False)
        data = self.redactor.redact_obj(data)
        self._write(file_name, json.dumps(data, indent=indent, ensure_ascii=False).encode("utf-8"))

    def _write_pending(self, item: Any) -> None:
        for source in _sources(item):
            data = self._pending.pop(source, None)
            if data is not None:
                self._write(source, data)

    def flush(self) -> None:
        for source, data in list(self._pending.items()):
            self._write(source, data)
        self._pending.clear()

    @_allure_hookimpl
    def report_result(self, result: Any) -> None:
        labels = getattr(result, "labels", None)
        if labels:
            result.labels = [label for label in labels if getattr(label, "name", None) not in NOISE_LABELS]
        if self.light and getattr(result, "status", None) == "passed":
            dropped: set[str] = set()
            _strip_attachments(result, LIGHT_ATTACHMENT_PREFIX, dropped)
            for source in dropped:
                self._pending.pop(source, None)
        self._write_pending(result)
        self._report_item(result)

    @_allure_hookimpl
    def report_container(self, container: Any) -> None:
        if is_trivial_container(container):  # most of a report's weight, and nothing a reader needs
            return
        self._write_pending(container)
        self._report_item(container)

    @_allure_hookimpl
    def report_globals(self, globals_item: Any) -> None:
        self._report_item(globals_item)

    @_allure_hookimpl
    def report_attached_file(self, source: Any, file_name: str) -> None:
        with open(source, "rb") as fh:
            head = fh.read(8192)
        if looks_binary(head):  # screenshots, videos: cannot be text-redacted
            tmp = self.report_dir / f"{file_name}.tmp"
            shutil.copy2(source, tmp)
            os.replace(tmp, self.report_dir / file_name)
            return
        self._write(file_name, self.redactor.redact_bytes(Path(source).read_bytes()))

    @_allure_hookimpl
    def report_attached_data(self, body: Any, file_name: str) -> None:
        if isinstance(body, str):
            data = self.redactor.redact_text(body).encode("utf-8")
        else:
            data = self.redactor.redact_bytes(bytes(body))
        if self.light and not looks_binary(data[:8192]):  # written with the result that keeps it
            self._pending[file_name] = data
            return
        self._write(file_name, data)


def install_redacting_writer(report_dir: str | os.PathLike[str], light: bool = False) -> Callable[[], None]:
    """Swap allure-pytest's writer of report_dir for a redacting one; return the undo function.

    Fails closed (ConfigError) when allure's writer is not found: never let allure write unredacted files.
    """
    if allure_commons is None:
        raise ConfigError("--alluredir given but allure-pytest is not importable")
    pm = allure_commons.plugin_manager
    target = Path(os.path.abspath(report_dir))
    swapped: list[tuple[Any, RedactingAllureFileLogger]] = []
    already = False
    for plugin in list(pm.get_plugins()):
        if isinstance(plugin, RedactingAllureFileLogger) and plugin.report_dir == target:
            already = True
        elif type(plugin) is AllureFileLogger and Path(plugin._report_dir) == target:
            pm.unregister(plugin)
            wrapper = RedactingAllureFileLogger(plugin, light=light)
            pm.register(wrapper)
            swapped.append((plugin, wrapper))
    if not swapped and not already:
        raise ConfigError(
            f"ddoauth: allure-pytest's file writer for {target} was not found; "
            "cannot guarantee redaction of the Allure results"
        )

    def restore() -> None:
        # Runs before allure-pytest's own cleanup (cleanups are LIFO), which unregisters
        # the original writer by object: so it must be registered again.
        for original, wrapper in swapped:
            wrapper.flush()
            if pm.is_registered(wrapper):
                pm.unregister(wrapper)
            if not pm.is_registered(original):
                pm.register(original)

    return restore


__all__ = ["RedactingAllureFileLogger", "install_redacting_writer"]
