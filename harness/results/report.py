"""Allure side files, HTML generation and result summaries (plain Python, no pytest).

* :func:`write_side_files` (:func:`write_categories`, :func:`write_environment`,
  :func:`write_executor`): the files allure-pytest does not write (the pytest plugin
  ``fixtures.reporting`` calls it once per run; the CLI may call them when merging).
  The categories are :data:`harness.results.outcome.CATEGORIES`, the classifier's own.
* :func:`generate_html`: the single-file, offline Allure 3 report, via the npm ``allure``
  package pinned in package.json and configured by allurerc.mjs.
* :func:`summarize`: counts per status and per category, read from allure result JSONs.

Everything written here goes through the redactor.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import harness
from core.errors import ConfigError, HarnessError
from core.redact import REDACTOR
from harness.results.outcome import CATEGORIES, categorize  # the one classifier's categories

__all__ = [
    "CATEGORIES",
    "REPORT_NAME",
    "ReportToolMissing",
    "categorize",
    "environment_properties",
    "executor_info",
    "generate_html",
    "summarize",
    "write_categories",
    "write_environment",
    "write_executor",
    "write_side_files",
]

REPORT_NAME = "Datadog OAuth conformance"

_STATUSES = ("passed", "failed", "broken", "skipped", "unknown")


class ReportToolMissing(ConfigError):
    """The pinned npm `allure` (or Node.js) is not installed; one-line message."""


# --- side files ----------------------------------------------------------------------------


def _atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(REDACTOR.redact_text(text), encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_categories(results_dir: str | os.PathLike[str]) -> Path:
    return _atomic_write(Path(results_dir) / "categories.json", json.dumps(CATEGORIES, indent=2) + "\n")


def _prop_escape(text: str, *, key: bool) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "=:#!" and (key or i == 0):
            out.append("\\" + ch)
        elif ch == " " and (key or i == 0):
            out.append("\\ ")
        else:
            out.append(ch)
    return "".join(out)


def write_environment(results_dir: str | os.PathLike[str], props: Mapping[str, Any]) -> Path:
    """environment.properties (Java properties syntax; UTF-8, which Allure 3 reads)."""
    lines = [
        f"{_prop_escape(str(k), key=True)}={_prop_escape('' if v is None else str(v), key=False)}"
        for k, v in props.items()
    ]
    return _atomic_write(Path(results_dir) / "environment.properties", "\n".join(lines) + "\n")


def executor_info(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """executor.json content: GitHub Actions when GITHUB_ACTIONS is set, else local."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS", "").lower() == "true":
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repo = env.get("GITHUB_REPOSITORY", "")
        run_id = env.get("GITHUB_RUN_ID", "")
        info: dict[str, Any] = {"name": "ddoauth", "type": "github"}
        run_number = env.get("GITHUB_RUN_NUMBER", "")
        workflow = env.get("GITHUB_WORKFLOW", "")
        if workflow or run_number:
            info["buildName"] = f"{workflow} #{run_number}".strip()
        if run_number.isdigit():
            info["buildOrder"] = int(run_number)
        if repo and run_id:
            info["buildUrl"] = f"{server}/{repo}/actions/runs/{run_id}"
        return info
    return {"name": "ddoauth", "type": "local"}


def write_executor(results_dir: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Path:
    return _atomic_write(Path(results_dir) / "executor.json", json.dumps(executor_info(environ), indent=2) + "\n")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_properties(extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """environment.properties content: versions and platform, then the run's own entries (target mode...)."""
    props: dict[str, str] = {
        "harness_version": harness.__version__,
        "python": platform.python_version(),
        "playwright": _version("playwright"),
        "pytest": _version("pytest"),
        "allure_pytest": _version("allure-pytest"),
        "platform": platform.platform(terse=True),
        "target_mode": "unknown",
    }
    for key, value in (extra or {}).items():
        props[str(key)] = "" if value is None else str(value)
    return props


def write_side_files(results_dir: str | os.PathLike[str], environment: Mapping[str, Any] | None = None) -> None:
    """environment.properties, executor.json and categories.json, once per run."""
    results = Path(os.path.abspath(results_dir))
    write_environment(results, environment_properties(environment))
    write_executor(results)
    write_categories(results)


# --- summaries -----------------------------------------------------------------------------

def summarize(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Counts per status (and per category) of the ``*-result.json`` files in results_dir.

    A test retried within one results dir (same historyId) counts once, by its last run.
    """
    results_dir = Path(results_dir)
    latest: dict[str, dict[str, Any]] = {}
    unnamed = 0
    for path in sorted(results_dir.glob("*-result.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        key = data.get("historyId") or f"__no_history_{unnamed}"
        unnamed += 1
        prev = latest.get(key)
        if prev is None or (data.get("stop") or 0) >= (prev.get("stop") or 0):
            latest[key] = data
    counts = dict.fromkeys(_STATUSES, 0)
    by_category: dict[str, int] = {c["name"]: 0 for c in CATEGORIES}
    for data in latest.values():
        status = data.get("status") if data.get("status") in _STATUSES else "unknown"
        counts[status] += 1
        message = (data.get("statusDetails") or {}).get("message")
        category = categorize(status, message)
        if category:
            by_category[category] += 1
    return {"total": len(latest), **counts, "by_category": by_category}


# --- HTML ----------------------------------------------------------------------------------

# Allure 3.18's awesome plugin always embeds a Google Analytics loader; a report of a
# partner's conformance run must not call home when opened, so it is removed.
_ANALYTICS_RE = re.compile(
    r"\s*<script async src=\"https://www\.googletagmanager\.com/gtag/js[^\"]*\"></script>\s*"
    r"<script>\s*window\.dataLayer = window\.dataLayer \|\| \[\];.*?</script>",
    re.DOTALL,
)


def _allure_bin(project_root: Path) -> Path:
    names = ("allure.cmd", "allure") if os.name == "nt" else ("allure",)
    for name in names:
        candidate = project_root / "node_modules" / ".bin" / name
        if candidate.exists():
            return candidate
    raise ReportToolMissing(
        f"Allure 3 is not installed ({project_root / 'node_modules' / '.bin' / 'allure'} is missing): run `make setup`"
    )


def allure_command(results_dir: Path, report_dir: Path, project_root: Path) -> list[str]:
    """The command line generate_html runs (for logs and docs)."""
    return [
        str(_allure_bin(project_root)),
        "generate",
        str(results_dir),
        "--config",
        str(project_root / "allurerc.mjs"),
        "--output",
        str(report_dir),
    ]


def generate_html(
    results_dir: str | os.PathLike[str],
    report_dir: str | os.PathLike[str],
    project_root: str | os.PathLike[str],
    *,
    history_path: str | os.PathLike[str] | None = None,
    timeout: float = 600,
) -> Path:
    """Build the single-file offline HTML report; return the path of its index.html.

    Runs the project's pinned ``node_modules/.bin/allure generate`` with allurerc.mjs
    (awesome plugin, ``singleFile``, history in reports/history.jsonl unless
    ``history_path``), then strips the analytics loader from index.html.
    """
    project_root = Path(project_root).resolve()
    results_dir = Path(results_dir).resolve()
    report_dir = Path(report_dir).resolve()
    if shutil.which("node") is None:
        raise ReportToolMissing("Node.js (20+) is not on PATH: install it, then run `make setup`")
    command = allure_command(results_dir, report_dir, project_root)
    if not (project_root / "allurerc.mjs").is_file():
        raise ConfigError(f"{project_root / 'allurerc.mjs'} is missing")
    if not results_dir.is_dir():
        raise ConfigError(f"no Allure results at {results_dir}: run the suite with --alluredir first")

    env = dict(os.environ)
    env.update(
        {
            "DDOAUTH_ALLURE_RESULTS": str(results_dir),
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            "ALLURE_NO_ANALYTICS": "true",
            "NO_UPDATE_NOTIFIER": "1",
        }
    )
    if history_path is not None:
        env["DDOAUTH_ALLURE_HISTORY"] = str(Path(history_path).resolve())
    index = report_dir / "index.html"
    if index.exists():
        index.unlink()
    try:
        proc = subprocess.run(
            command,
            cwd=project_root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"allure generate did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0 or not index.is_file():
        tail = " | ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-5:])
        raise HarnessError(f"allure generate failed (exit {proc.returncode}): {REDACTOR.redact_text(tail)}")
    html = index.read_text(encoding="utf-8")
    cleaned = _ANALYTICS_RE.sub("", html)
    if cleaned != html:
        tmp = index.with_name("index.html.tmp")
        tmp.write_text(cleaned, encoding="utf-8")
        os.replace(tmp, index)
    return index
