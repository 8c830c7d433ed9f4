"""Reading a YAML file the user (or the project) wrote: any problem is one ConfigError line naming the file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError


def read_yaml(path: Path, source: str, kind: str) -> Any:
    """The parsed document; "SOURCE: cannot read KIND (reason)" or "SOURCE: not valid YAML at line N"."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {kind} ({exc.strerror or exc.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: cannot read {kind} (not UTF-8)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{source}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
