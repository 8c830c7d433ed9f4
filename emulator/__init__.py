"""A local stand-in for Datadog: every site, real hostnames over local TLS, documented OAuth behaviour.

The harness's CLI and pytest plugin reach it only through this module: :func:`start_embedded` and
:func:`defect_catalogue`. Everything else in the package is the emulator's own.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class EmbeddedEmulator:
    """A running emulator and the targets file that points at it (written 0600 in its run dir)."""
    running: Any  # emulator.server.RunningEmulator
    targets_file: Path

    @property
    def port(self) -> int:
        return self.running.port

    def stop(self) -> None:
        self.running.stop()


def start_embedded(run_dir: Path, behaviour: dict | None = None, defects: set[str] | frozenset[str] = frozenset(),
                   **start_options: Any) -> EmbeddedEmulator:
    """Start the emulator, apply behaviour switches and named defects, and write its targets file
    (the form a user writes by hand, as JSON). A bad switch or defect raises core.errors.ConfigError."""
    from .server import start

    running = start(Path(run_dir), **start_options)
    changes = dict(behaviour or {})
    if defects:
        changes["defects"] = set(defects)
    try:
        running.store.behaviour.update(changes)
    except Exception:
        running.stop()
        raise
    path = Path(run_dir) / "targets.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(running.targets_document(), fh)
    return EmbeddedEmulator(running, path)


def defect_catalogue() -> dict[str, tuple[str, list[str]]]:
    """Named server defects: name -> (what it breaks, the suite tests expected to catch it)."""
    from .behaviour import DEFECTS

    return dict(DEFECTS)
