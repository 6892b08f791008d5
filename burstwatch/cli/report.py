"""`burstwatch report [ALERTS.jsonl] [--state PATH] -o report.html`: the analyst's page.

From an alerts file, the cases are what the records say; with the ledger (``--state``) each
case also gets its rate over time, both directions, its connections and the overview's
totals. With the ledger alone the conversations are judged again (flow-rule hits are not
kept in the ledger, so those cases carry the conversation rules and the score only).
"""

from __future__ import annotations

import argparse
from typing import Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import hours, settings_from_args
from burstwatch.cli.scoring import add_score_options


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="write the analyst's HTML report of the cases")
    p.add_argument("alerts", nargs="?", metavar="ALERTS.jsonl",
                   help="case records as written by scan/live --alerts")
    p.add_argument("--state", metavar="PATH", help="the burst ledger of those cases (read only)")
    p.add_argument("-o", "--output", required=True, metavar="REPORT.html", help="where to write")
    p.add_argument("--horizon", type=hours, default=24.0, metavar="HOURS",
                   help="the ledger's history shown, back from its newest record (default 24)")
    p.add_argument("--rules", nargs="+", metavar="PATH",
                   help="with --state alone: rules to judge with (default: the shipped rules)")
    p.add_argument("--config", metavar="PATH", help="YAML configuration (default: the shipped one)")
    p.add_argument("--home", metavar="CC[,CC...]", help="home countries (default from config: US)")
    p.set_defaults(internal_nets=None)  # flows are in the ledger already, oriented
    add_score_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from burstwatch.cli.console import stderr_console
    from burstwatch.report import ReportError, from_ledger, from_records, read_alerts, write_report

    if args.alerts is None and args.state is None:
        raise ReportError("give an alerts file (ALERTS.jsonl), a ledger (--state PATH), or both")
    err = stderr_console()
    settings = settings_from_args(args)
    records: list[dict[str, Any]] = []
    if args.alerts is not None:
        records, warnings = read_alerts(args.alerts)
        for w in warnings:
            err.print(f"burstwatch: warning: {w}", markup=False)
    if args.state is None:
        data = from_records(records, settings.home_countries)
    else:
        from burstwatch.ledger import Ledger

        horizon_ns = int(args.horizon * 3600e9)
        with Ledger.open(args.state, None, read_only=True) as ledger:
            notes: list[str] = []
            if args.alerts is None:
                records = _judge(args, settings, ledger, horizon_ns)
                notes.append("Judged from the ledger alone: flow-rule hits are not kept in it, "
                             "so these cases carry the conversation rules and the anomaly score "
                             "only; give the alerts file as well for the flow rules.")
            data = from_ledger(ledger, records, settings.home_countries, horizon_ns)
            data.notes += notes
    size = write_report(args.output, data)
    err.print(f"report: {args.output} ({len(data.cases)} cases, {size / 1e6:.1f} MB)",
              markup=False)
    return ExitCode.OK


def _judge(args: argparse.Namespace, settings: Any, ledger: Any,
           horizon_ns: int) -> list[dict[str, Any]]:
    """The ledger's cases, judged now, with the revisions the ledger's case book holds."""
    from burstwatch.alerts.frame import rule_catalog
    from burstwatch.cli.scan import CASES_STATE, _rule_paths
    from burstwatch.cli.scoring import conversation_scorer_from_args
    from burstwatch.conversations.cases import CaseBook
    from burstwatch.conversations.judge import Judge, judge_ledger
    from burstwatch.rules import load_rules

    rules = load_rules(_rule_paths(args), rule_catalog())
    judge = Judge(rules, settings, conversation_scorer_from_args(args)[0])
    judgement = judge_ledger(judge, ledger, [], horizon_ns)
    book = CaseBook.from_json(ledger.get_state(CASES_STATE))
    for case in judgement.cases:
        book.update(case)
    return [c.to_record() for c in judgement.cases]
