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


class RedactingAllureFileLogger:
    """Writes what ``AllureFileLogger`` writes, to the same directory, after redaction."""

    def __init__(self, inner: Any, redactor: Any = REDACTOR) -> None:
        self.inner = inner
        self.redactor = redactor
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

    @_allure_hookimpl
    def report_result(self, result: Any) -> None:
        self._report_item(result)

    @_allure_hookimpl
    def report_container(self, container: Any) -> None:
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
        self._write(file_name, data)


def install_redacting_writer(report_dir: str | os.PathLike[str]) -> Callable[[], None]:
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
            wrapper = RedactingAllureFileLogger(plugin)
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
            if pm.is_registered(wrapper):
                pm.unregister(wrapper)
            if not pm.is_registered(original):
                pm.register(original)

    return restore


__all__ = ["RedactingAllureFileLogger", "install_redacting_writer"]
