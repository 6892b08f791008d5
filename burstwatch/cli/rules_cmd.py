"""`burstwatch rules lint|test PATH...`: check rule files, and run their test cases."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.rules_path import bundled_rules_dir

if TYPE_CHECKING:  # the rest is imported where it runs: the parser is built without it
    from burstwatch.rules import Rule


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
    from burstwatch.rules.lint import lint

    findings = lint(_paths(args), rule_catalog())
    out = stdout_console()
    for f in findings:
        out.print(str(f), markup=False)
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    stderr_console().print(f"{errors} error(s), {warnings} warning(s)", markup=False)
    return ExitCode.ERROR if errors else ExitCode.OK


def run_test(args: argparse.Namespace) -> int:
    from burstwatch.alerts.frame import rule_catalog
    from burstwatch.cli.console import TextTable, stderr_console, stdout_console
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.rules import load_rules
    from burstwatch.rules.casefile import case_file_for, load_cases
    from burstwatch.rules.caserun import GeneratedCaptures, run_case
    from burstwatch.rules.loader import rule_files

    catalog = rule_catalog()
    files, problems = rule_files(_paths(args))
    err = stderr_console()
    for problem in problems:
        err.print(str(problem), markup=False)
    if any(p.is_error for p in problems):
        return ExitCode.ERROR
    rules_by_file: dict[Path, list[Rule]] = {}
    for f in files:
        rules_by_file[Path(f)] = load_rules([f], catalog)
    geo = GeoDatabase.bundled()
    table = TextTable("rule", "case", "result", "detail")
    passed = failed = untested = 0
    with GeneratedCaptures() as generated:  # a scenario several cases ask for, made once
        for path, rules in rules_by_file.items():
            case_file = case_file_for(path)
            cases = load_cases(case_file) if case_file.is_file() else []
            by_id = {key: r for r in rules for key in (r.id, r.uuid) if key}
            for rule in rules:
                if not any(by_id.get(c.rule_id) is rule for c in cases):
                    untested += 1
                    detail = str(case_file) if not case_file.is_file() else f"no case names it in {case_file}"
                    table.add_row(rule.id, "-", "NO TESTS", detail)
            for case in cases:
                hit = by_id.get(case.rule_id)
                if hit is None:
                    ok, detail = False, f"no rule with id {case.rule_id} in {path}"
                elif case.capture is not None and not case.capture.is_file():
                    ok, detail = False, f"capture not found: {case.capture}"
                else:
                    ok, detail = run_case(hit, case, geo, generated)
                passed += ok
                failed += not ok
                table.add_row(case.rule_id, case.name, "pass" if ok else "FAIL", detail)
    stdout_console().print(table)
    summary = f"{passed} passed, {failed} failed"
    if untested:
        summary += f", {untested} rule{'s' if untested != 1 else ''} without test cases"
    err.print(summary, markup=False)
    return ExitCode.ERROR if failed or untested else ExitCode.OK
