"""`burstwatch rules lint|test PATH...`: check rule files, and run their test cases."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.rules_path import bundled_rules_dir

if TYPE_CHECKING:  # the rest is imported where it runs: the parser is built without it
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.rules import Rule
    from burstwatch.rules.casefile import RuleCase


def register(sub: Any) -> None:
    p = sub.add_parser("rules", help="lint rule files, or run their test cases")
    rs = p.add_subparsers(dest="rules_command", metavar="ACTION")
    lp = rs.add_parser("lint", help="report every problem in rule files, with file:line:column")
    lp.add_argument("paths", nargs="*", metavar="PATH", help="rule files or folders (default: shipped rules)")
    lp.set_defaults(handler=run_lint)
    tp = rs.add_parser("test", help="run the test cases beside each rule (rules/tests/NAME.tests.yml)")
    tp.add_argument("paths", nargs="*", metavar="PATH", help="rule files or folders (default: shipped rules)")
    tp.set_defaults(handler=run_test, compiles_kernels=True)


def _paths(args: argparse.Namespace) -> list[str]:
    if args.paths:
        return list(args.paths)
    bundled = bundled_rules_dir()
    return [str(bundled)] if bundled else ["rules"]


def run_lint(args: argparse.Namespace) -> int:
    from burstwatch.alerts.frame import rule_catalog
    from burstwatch.cli.console import stderr_console, stdout_console
    from burstwatch.rules import lint

    findings = lint(_paths(args), rule_catalog())
    out = stdout_console()
    for f in findings:
        out.print(str(f), markup=False)
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    stderr_console().print(f"{errors} error(s), {warnings} warning(s)", markup=False)
    return ExitCode.ERROR if errors else ExitCode.OK


def case_captures(case: RuleCase, tmp: Path) -> list[Path]:
    """The case's capture files, generating them first when the case names scenarios."""
    if case.capture is not None:
        return [case.capture]
    from burstwatch.rules import Finding, Location, RuleError
    from burstwatch.synth.scenarios import DEFAULT_START, write_scenario

    paths = []
    for k, gen in enumerate(case.generate or ()):
        path = tmp / f"case-{k}.pcap"
        params = dict(gen.get("params") or {})
        if "day" in gen:
            params["start_ts"] = DEFAULT_START + float(gen["day"]) * 86_400
        try:
            write_scenario(str(path), str(gen["scenario"]), int(gen.get("seed", 0)),
                           link=gen.get("link", "ethernet"),
                           nanosecond=bool(gen.get("nanosecond")), **params)
        except (KeyError, TypeError, ValueError) as exc:
            raise RuleError([Finding(Location(str(case.file)), "error", "bad-test-case",
                                     f"{case.name}: cannot generate the capture ({exc})")]) from None
        paths.append(path)
    return paths


def run_case(rule: Rule, case: RuleCase, geo: GeoDatabase) -> tuple[bool, str]:
    """Run ``rule`` over the case's captures; compare what it flagged with the expectation:
    flows for a flow rule, conversations (host and party) for a conversation rule."""
    from burstwatch.alerts.detect import Detector
    from burstwatch.config import Settings
    from burstwatch.conversations.judge import Judge, judge_ledger
    from burstwatch.enrich.annotate import FlowAnnotator
    from burstwatch.flows.roles import local_nets
    from burstwatch.ledger import DAY_NS, Ledger
    from burstwatch.pipeline import run_flows

    settings = Settings(home_countries=case.home)
    got: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="burstwatch-case-") as tmp, Ledger.open(None) as ledger:
        captures = [str(p) for p in case_captures(case, Path(tmp))]
        batches = list(run_flows(captures, None, None, lambda: FlowAnnotator(geo, settings),
                                 local=local_nets(settings.internal_nets), ledger=ledger))
        if rule.applies_to == "conversation":
            judgement = judge_ledger(Judge([rule], settings), ledger, [], DAY_NS)
            got = [{"source.ip": c.local_ip, "destination.party": c.party,
                    "destination.ip": c.remote_ip, "destination.port": str(c.remote_port)}
                   for c in judgement.cases]
    if rule.applies_to == "flow":
        detector = Detector([rule])
        for batch in batches:
            for alert in detector(batch):
                r = alert.to_record()
                got.append({
                    "source.ip": r["source"]["ip"], "destination.ip": r["destination"]["ip"],
                    "source.port": str(r["source"]["port"]),
                    "destination.port": str(r["destination"]["port"]),
                })
    missing = [e for e in case.expect if not any(all(g.get(k) == v for k, v in e.items()) for g in got)]
    extra = [g for g in got if not any(all(g.get(k) == v for k, v in e.items()) for e in case.expect)]
    what = "alert(s)" if rule.applies_to == "flow" else "conversation(s)"
    if not missing and not extra:
        return True, f"{len(got)} {what} as expected"
    parts = []
    if missing:
        parts.append("missing: " + "; ".join(f"{e}" for e in missing))
    if extra:
        parts.append("unexpected: " + "; ".join(
            f"{g['source.ip']} -> {g.get('destination.party') or g['destination.ip']}:{g['destination.port']}"
            for g in extra))
    return False, ", ".join(parts)


def run_test(args: argparse.Namespace) -> int:
    from rich.table import Table

    from burstwatch.alerts.frame import rule_catalog
    from burstwatch.cli.console import stderr_console, stdout_console
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.rules import load_rules
    from burstwatch.rules.casefile import case_file_for, load_cases
    from burstwatch.rules.loader import rule_files

    catalog = rule_catalog()
    files, problems = rule_files(_paths(args))
    rules_by_file: dict[Path, list[Rule]] = {}
    for f in files:
        rules_by_file[Path(f)] = load_rules([f], catalog)
    geo = GeoDatabase.bundled()
    table = Table("rule", "case", "result", "detail")
    failed = 0
    total = 0
    for path, rules in rules_by_file.items():
        case_file = case_file_for(path)
        if not case_file.is_file():
            table.add_row(", ".join(r.id for r in rules), "-", "NO TESTS", str(case_file))
            failed += 1
            continue
        by_id = {r.id: r for r in rules}
        for case in load_cases(case_file):
            total += 1
            rule = by_id.get(case.rule_id)
            if rule is None:
                ok, detail = False, f"no rule with id {case.rule_id} in {path}"
            elif case.capture is not None and not case.capture.is_file():
                ok, detail = False, f"capture not found: {case.capture}"
            else:
                ok, detail = run_case(rule, case, geo)
            failed += not ok
            table.add_row(case.rule_id, case.name, "pass" if ok else "FAIL", detail)
    stdout_console().print(table)
    stderr_console().print(f"{total - failed} passed, {failed} failed", markup=False)
    return ExitCode.ERROR if failed else ExitCode.OK
