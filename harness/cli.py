"""`ddoauth`: run the conformance suites, build the report, log in by hand for SSO/captcha users."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _report(results: list[str], out: str, verdict: str | None = None) -> int:
    from harness.results import report

    results_dirs = [Path(r) for r in results]
    merged = results_dirs[0]
    if len(results_dirs) > 1:  # several runs (a CI matrix): one report
        merged = Path(out).parent / "allure-results-merged"
        shutil.rmtree(merged, ignore_errors=True)
        merged.mkdir(parents=True)
        for d in results_dirs:
            if not d.is_dir():
                raise ConfigError(f"no Allure results at {d}")
            for f in d.iterdir():
                if f.is_file():
                    shutil.copy2(f, merged / f.name)
    index = report.generate_html(merged, out, ROOT)
    print(f"report: {index}")
    if verdict:  # a merged verdict for CI: per results dir (one per site job) and in total
        import json

        per = {d.name: report.summarize(d) for d in results_dirs if d.is_dir()}
        total = report.summarize(merged)
        ok = total["failed"] == 0 and total["broken"] == 0 and total["total"] > 0
        Path(verdict).parent.mkdir(parents=True, exist_ok=True)
        Path(verdict).write_text(json.dumps({"ok": ok, "totals": total, "results": per}, indent=2))
        print(f"verdict: {verdict} ({'ok' if ok else 'NOT ok'})")
    return 0


def _pytest_then_report(suite: Path, pytest_args: list[str]) -> int:
    """Run pytest on a suite into fresh Allure results, then build the HTML report (failing runs too)."""
    results = ROOT / "reports" / "allure-results"
    shutil.rmtree(results, ignore_errors=True)
    cmd = [sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider", "--alluredir", str(results),
           *pytest_args]
    rc = subprocess.call(cmd, cwd=ROOT)
    if rc in (0, 1) and results.is_dir():  # a report for failing runs too: that is when it matters
        try:
            _report([str(results)], str(ROOT / "reports" / "allure-report"))
        except ConfigError as exc:
            print(f"ddoauth: report not built: {exc}", file=sys.stderr)
            return rc or 2
    return rc


# Measured on a 2-CPU machine, the default run (7 targets, embedded emulator): serial 149-153 s, `-n 2`
# 133-140 s (peak 1.4 GiB PSS); the run is CPU-bound there (Chromium), so more workers only add start-up
# and memory. More CPUs were not measured: DDOAUTH_WORKERS=N (0: serial) or pytest's own -n wins.
DEFAULT_WORKERS = 2


def default_workers(passthrough: list[str], cpus: int | None = None, env: dict | None = None) -> list[str]:
    """The xdist arguments `ddoauth conformance` adds: none when the user chose (-n, --numprocesses,
    --dist, -p no:xdist), DDOAUTH_WORKERS when set, else DEFAULT_WORKERS where there are that many CPUs."""
    env = os.environ if env is None else env
    chosen = any(a in ("-n", "--numprocesses", "--dist", "no:xdist") or a.startswith(("-n", "--numprocesses=", "--dist="))
                 for a in passthrough)
    if chosen:
        return []
    raw = env.get("DDOAUTH_WORKERS")
    if raw is not None:
        if not raw.isdigit():
            raise ConfigError(f"DDOAUTH_WORKERS must be a whole number (0: serial), got {raw!r}")
        return ["-n", raw] if int(raw) > 1 else []
    cpus = os.cpu_count() or 1 if cpus is None else cpus
    return ["-n", str(DEFAULT_WORKERS)] if cpus >= DEFAULT_WORKERS else []


def _conformance(args: argparse.Namespace, passthrough: list[str]) -> int:
    return _pytest_then_report(ROOT / "suites", (["--targets", args.targets] if args.targets else [])
                               + default_workers(passthrough) + passthrough)


def _gate(args: argparse.Namespace) -> int:
    """Pre-publication gate: one checklist in the terminal and in reports/gate.json; exit 0 only when ready."""
    import json

    from harness.config.targets import load_targets
    from harness.gate import run_gate

    targets = None
    if args.targets:
        targets = load_targets(Path(args.targets), Path(args.env_file)).targets
    elif not args.static_only:
        raise ConfigError("the gate needs --targets (the sandbox targets the suites ran against), or --static-only")
    result = run_gate(Path(args.integration), targets, Path(args.ledger) if args.ledger else None,
                      static_only=args.static_only, max_age_days=args.max_age_days)
    for finding in result.findings:
        if finding.level != "pass" or args.verbose:
            print(finding.line())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.as_dict(), indent=2))
    summary = result.as_dict()
    verdict = "READY to submit" if result.passed else f"NOT READY: {summary['failures']} problem(s)"
    print(f"gate: {verdict}, {summary['warnings']} warning(s); checklist in {out}")
    return 0 if result.passed else 1


def _rotation(args: argparse.Namespace) -> int:
    """Secret rotation: `baseline` before Datadog rotates the secret, `verify` after."""
    pytest_args = ["--rotation-phase", args.phase, "--targets", args.targets, "--env-file", args.env_file,
                   "--state-dir", args.state_dir]
    for name in args.target:
        pytest_args += ["--target", name]
    return _pytest_then_report(ROOT / "suites" / "rotation", pytest_args)


def _campaign(args: argparse.Namespace) -> int:
    """Every emulator defect must be caught by its expected test; clean runs must not fail."""
    from emulator import defect_catalogue

    from harness.campaign import campaign

    DEFECTS = defect_catalogue()
    chosen = {k: v for k, v in DEFECTS.items() if not args.defect or k in args.defect}
    unknown = set(args.defect or []) - set(DEFECTS)
    if unknown:
        raise ConfigError(f"unknown defect(s): {', '.join(sorted(unknown))}; see emulator/behaviour.py")
    outcomes, false_failures = campaign(chosen, args.target or ["US1-sandbox"], repeat=args.repeat)
    return 0 if all(o.verdict == "caught" for o in outcomes) and false_failures == 0 else 1


def _login(args: argparse.Namespace) -> int:
    """A person logs in by hand (SSO, captcha) in a headed browser; the session is saved for later runs."""
    from playwright.sync_api import sync_playwright

    from harness.browser.chromium import launch_args
    from harness.browser.consent import login_start
    from harness.config.recipes import load_recipes
    from harness.config.targets import load_targets

    config = load_targets(Path(args.targets), Path(args.env_file))
    recipes = load_recipes(Path(args.recipes)) if args.recipes else config.recipes  # --recipes wins
    target = next((t for t in config.targets if t.name == args.target), None)
    if target is None:
        raise ConfigError(f"{args.targets}: no target named {args.target!r}")
    out = Path(args.state_dir) / "browser-state" / f"manual-{target.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with sync_playwright() as pw:
        # the harness's own launch: binary, flags, host mapping, network.ca_bundle's CAs trusted
        browser = pw.chromium.launch(**launch_args({"headless": False}, config.network, []))
        context = browser.new_context()
        page = context.new_page()
        page.goto(login_start(recipes, target))  # the recipes' login_path, or the client's authorize URL
        input(f"Log in to {target.site.web_host} in the browser window, then press Enter here... ")
        context.storage_state(path=str(out))
        out.chmod(0o600)
        browser.close()
    print(f"saved browser state: {out}\nadd to the target's user:  storage_state: {out}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    """Preflight before the first night: config, DNS/TLS, credentials, login, one consent flow, one API call."""
    import json
    import tempfile

    from harness.config.targets import embedded_config, load_targets
    from harness.doctor import run_doctor

    names = args.target or None
    recipes = Path(args.recipes) if args.recipes else None  # wins over the targets file's `recipes:`
    if args.targets:
        return run_doctor(lambda: load_targets(Path(args.targets), Path(args.env_file)), names, recipes=recipes)
    from emulator import start_embedded

    run_dir = Path(tempfile.mkdtemp(prefix="ddoauth-doctor-"))
    try:
        embedded = start_embedded(run_dir)
        try:
            document = json.loads(embedded.targets_file.read_text())
            return run_doctor(lambda: embedded_config(document), names, recipes=recipes)
        finally:
            embedded.stop()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ddoauth", description=__doc__, allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)
    conf = sub.add_parser("conformance", allow_abbrev=False, help="run the suites (default: the embedded emulator) and build the report")
    conf.add_argument("--targets", help="targets YAML (default: the embedded emulator)")
    rep = sub.add_parser("report", help="build the single-file HTML report from one or more results dirs")
    rep.add_argument("--results", action="append", required=True)
    rep.add_argument("--out", default=str(ROOT / "reports" / "allure-report"))
    rep.add_argument("--verdict", help="also write a merged verdict JSON (CI: several site jobs, one verdict)")
    gate = sub.add_parser("gate", allow_abbrev=False, help="pre-publication gate for an integration folder")
    gate.add_argument("--integration", required=True, help="the integration's folder (README.md, manifest.json, assets/)")
    gate.add_argument("--targets", help="targets YAML the suites ran against (dynamic checks, scope comparison)")
    gate.add_argument("--env-file", default=".env")
    gate.add_argument("--static-only", action="store_true", help="only the folder checks (pull requests without credentials)")
    gate.add_argument("--ledger", help="validation ledger (default .ddoauth/validation-ledger.json)")
    gate.add_argument("--max-age-days", type=int, default=7, help="how recent a passing run must be")
    gate.add_argument("--out", default=str(ROOT / "reports" / "gate.json"))
    gate.add_argument("-v", "--verbose", action="store_true", help="also list the rules that hold")
    rot = sub.add_parser("rotation", allow_abbrev=False, help="client-secret rotation regression")
    rot.add_argument("phase", choices=("baseline", "verify"))
    rot.add_argument("--targets", required=True)
    rot.add_argument("--target", action="append", required=True, help="target name (repeatable)")
    rot.add_argument("--env-file", default=".env")
    rot.add_argument("--state-dir", default=".ddoauth", help="where the private baseline is kept (0600)")
    camp = sub.add_parser("campaign", allow_abbrev=False, help="defect campaign against the embedded emulator")
    camp.add_argument("--defect", action="append", help="only this defect (repeatable)")
    camp.add_argument("--target", action="append", help="emulator target(s) to run on (default US1-sandbox)")
    camp.add_argument("--repeat", type=int, default=1, help="clean runs to repeat (false-failure check)")
    log = sub.add_parser("login", help="log in by hand in a headed browser and save the session")
    log.add_argument("--target", required=True)
    log.add_argument("--targets", required=True)
    log.add_argument("--env-file", default=".env")
    log.add_argument("--state-dir", default=".ddoauth")
    log.add_argument("--recipes", help="page recipes file (wins over the targets file's `recipes:`)")
    doc = sub.add_parser("doctor", allow_abbrev=False, help="preflight: config, DNS/TLS, credentials, login, "
                         "one consent flow and one API call per target (default: the embedded emulator)")
    doc.add_argument("--targets", help="targets YAML (default: the embedded emulator)")
    doc.add_argument("--target", action="append", help="only this target (repeatable; default: all)")
    doc.add_argument("--env-file", default=".env")
    doc.add_argument("--recipes", help="page recipes file (wins over the targets file's `recipes:`)")
    args, rest = parser.parse_known_args(argv)
    try:
        if args.command == "conformance":
            return _conformance(args, rest)
        if rest:
            parser.error(f"unrecognised arguments: {' '.join(rest)}")
        if args.command == "report":
            return _report(args.results, args.out, args.verdict)
        if args.command == "gate":
            return _gate(args)
        if args.command == "rotation":
            return _rotation(args)
        if args.command == "campaign":
            return _campaign(args)
        if args.command == "doctor":
            return _doctor(args)
        return _login(args)
    except ConfigError as exc:
        print(f"ddoauth: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
