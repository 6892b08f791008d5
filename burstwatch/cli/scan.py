"""`burstwatch scan FILE...`: which conversations sent bursty encrypted traffic abroad, and why.

Flows go to the burst ledger (in memory, or ``--state`` for history across runs); flow rules
fire on flow-windows; then every conversation within the horizon is judged and each one worth
a look becomes one case.

Exit status: 0 nothing flagged, 1 something flagged, 2 error (like grep).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from burstwatch import heap
from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import (
    add_conversation_options,
    add_enrich_options,
    add_flow_options,
    add_input_options,
    add_jobs_option,
    ceiling_note,
    flow_config,
    geo_from_args,
    settings_from_args,
)
from burstwatch.cli.scoring import add_score_options, conversation_scorer_from_args
from burstwatch.errors import BurstwatchError
from burstwatch.parallel.options import add_dask_options
from burstwatch.rules_path import bundled_rules_dir

if TYPE_CHECKING:
    from rich.console import Console

    from burstwatch.alerts.record import Alert
    from burstwatch.cli.interrupt import StopRequest
    from burstwatch.config import Settings
    from burstwatch.conversations.cases import Case
    from burstwatch.conversations.judge import Judge, Judgement
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.ledger import Ledger
    from burstwatch.records import FlowBatch
    from burstwatch.records import Progress as ProgressFn
    from burstwatch.report import ReportData

CASES_STATE = "cases"  # the ledger's name for the case revisions


class ScanError(BurstwatchError):
    """scan cannot start (no rules found, alerts file unwritable)."""


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="flag bursty encrypted sessions to foreign endpoints")
    add_input_options(p)
    add_jobs_option(p)
    add_dask_options(p)
    p.add_argument("--rules", nargs="+", metavar="PATH", help="rule files or folders (default: the shipped rules)")
    p.add_argument("--alerts", metavar="OUT", help="also write the case records here: .jsonl "
                   "(JSON lines), .csv or .parquet (the same fields, docs/fields.md)")
    p.add_argument("--format", choices=("table", "jsonl"), default="table",
                   help="standard output: a table for people (default) or JSON lines")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="table: each case in full (connection, id, why), not one line")
    p.add_argument("--report", metavar="REPORT.html",
                   help="also write the analyst's HTML report (one self-contained file)")
    add_flow_options(p)
    add_enrich_options(p)
    add_conversation_options(p)
    add_score_options(p)
    p.set_defaults(handler=run, compiles_kernels=True)


def _rule_paths(args: argparse.Namespace) -> list[str]:
    if args.rules:
        return list(args.rules)
    bundled = bundled_rules_dir()
    if bundled is None:
        raise ScanError("no rules given and the shipped rules are not installed; use --rules PATH")
    return [str(bundled)]


def _write_alerts(alerts_file: IO[str], path: str, lines: list[str]) -> None:
    """Every line, then close: a full disk or an I/O error is one line (ScanError)."""
    try:
        with alerts_file:
            for line in lines:
                alerts_file.write(line + "\n")
    except OSError as exc:
        raise ScanError(f"{path}: cannot write alerts ({exc.strerror or exc})") from None


def _open_alerts(path: str | None) -> IO[str] | None:
    if not path:
        return None
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise ScanError(f"{path}: cannot write alerts ({exc.strerror})") from None


def _print_cases(out: Console, records: list[dict[str, Any]], verbose: bool) -> None:
    """One line per case, fitted to the terminal (80 columns when piped); ``-v``: in full."""
    from burstwatch.cli.caseline import case_details, case_lines

    lines = case_lines(records, out.width)
    out.print(lines[0], markup=False, highlight=False)
    for rec, line in zip(records, lines[1:], strict=True):
        out.print(line, markup=False, highlight=False)
        if verbose:
            for detail in case_details(rec):
                out.print(detail, markup=False, highlight=False)


def judge_and_revise(ledger: Ledger, judge: Judge, flow_alerts: list[Alert], horizon_h: float,
                     capture: str, keep_cases: bool) -> Judgement:
    """The cases of every conversation within the horizon, with revisions kept in the ledger
    when it is a file (so a case seen by an earlier run is revised, not repeated)."""
    from burstwatch.conversations.cases import CaseBook
    from burstwatch.conversations.judge import judge_ledger

    judgement = judge_ledger(judge, ledger, flow_alerts, int(horizon_h * 3600e9), capture)
    book = CaseBook.from_json(ledger.get_state(CASES_STATE)) if keep_cases else CaseBook()
    for case in judgement.cases:
        book.update(case)
    if keep_cases:
        ledger.put_state(CASES_STATE, book.to_json())
    return judgement


def run(args: argparse.Namespace) -> int:
    from burstwatch.cli.interrupt import stop_on_signals

    with stop_on_signals() as stop:
        return _run(args, stop)


class _Judging:
    """What judges the rows, loaded while the first input's reading starts: the rules (the
    flow rules' detector), the conversation judge and its model, the consoles; and the
    header, printed once they are known."""

    def __init__(self, args: argparse.Namespace, settings: Settings, geo: GeoDatabase) -> None:
        # What the end of the run uses, imported here while the input is being read.
        import burstwatch.conversations.cases  # noqa: F401
        import burstwatch.outputs.jsonline  # noqa: F401
        from burstwatch.alerts.detect import Detector
        from burstwatch.alerts.frame import rule_catalog
        from burstwatch.cli.console import clean, stderr_console, stdout_console
        from burstwatch.conversations.judge import Judge
        from burstwatch.rules import load_rules

        self.err = stderr_console()
        self.as_table = args.format == "table"
        self.out: Console = stdout_console() if self.as_table else self.err
        rules = load_rules(_rule_paths(args), rule_catalog())
        flow_rules = [r for r in rules if r.applies_to == "flow"]
        self.detector = Detector(flow_rules)
        scorer, model_line = conversation_scorer_from_args(args)
        self.judge = Judge(rules, settings, scorer)
        out = self.out
        inputs = ", ".join("<stdin>" if f == "-" else f for f in args.files)
        out.print(f"burstwatch scan: {inputs}", markup=False)
        out.print(f"home countries: {', '.join(settings.home_countries)} ({settings.source})",
                  markup=False)
        out.print(f"rules: {len(rules)} loaded from {', '.join(_rule_paths(args))} "
                  f"({len(flow_rules)} on flows, {len(self.judge.rules)} on conversations)",
                  markup=False)
        out.print(geo.header(), markup=False)
        out.print(model_line, markup=False)
        out.print(f"ledger: {args.state or 'in memory (this run only)'}; "
                  f"horizon {args.horizon:g} h", markup=False)
        stale = geo.staleness_warning()
        if stale:
            self.err.print(f"burstwatch: warning: {clean(stale)}")


def _drawn_once(progress: ProgressFn | None, shown: threading.Event) -> ProgressFn | None:
    """The progress bar, drawing only once ``shown`` is set (after the header)."""
    if progress is None:
        return None
    draw = progress

    def update(done: int, total: int) -> None:
        if shown.is_set():
            draw(done, total)

    return update


def _run(args: argparse.Namespace, stop: StopRequest) -> int:
    if not args.dask:  # the workers' fork server loads the package while this process does
        from burstwatch.parallel.plan import start_fork_server

        start_fork_server(args.jobs, args.files, args.state is not None)
    # Imported here, not above: the parser is built without loading the pipeline. What the
    # reading needs first; the rules, the judge and the consoles once it has started.
    from burstwatch.cli.progress import progress_bar
    from burstwatch.enrich.annotate import AnnotatorFactory, EnrichStats
    from burstwatch.flows.roles import local_nets
    from burstwatch.ingest.timeline import expand_inputs
    from burstwatch.ledger import Ledger
    from burstwatch.parallel.options import dask_cluster
    from burstwatch.pipeline import RunStats, run_flows
    from burstwatch.readahead import StartedAhead

    settings = settings_from_args(args)
    geo = geo_from_args(args)
    if args.report:
        from burstwatch.report import check_writable

        check_writable(args.report)
    alerts_file = _open_alerts(args.alerts)
    report_parts: list[ReportData] = []
    ledger_mb = settings.limits.ledger_memory_mb
    ledger = Ledger.open(args.state, args.retention, memory_mb=ledger_mb)

    stats = RunStats()
    enrich_stats = EnrichStats()
    cases: list[Case] = []
    conversations_seen = 0
    by_level_count: dict[str, int] = {}
    interrupted = False
    judging: _Judging | None = None
    shown = threading.Event()
    # Unrelated captures (--separate) are judged each on its own, unless a ledger file is
    # given: then everything goes into that one history.
    groups = ([[f] for f in expand_inputs(args.files)] if args.separate and args.state is None
              else [list(args.files)])
    try:
        for k, group in enumerate(groups):
            with ledger if k == 0 else Ledger.open(None, args.retention, memory_mb=ledger_mb) as held:
                # Rows are converted (and a file's committed in large transactions) behind the
                # run; an in-memory ledger holds them as Arrow tables, without a database.
                held.write_behind()
                flow_alerts: list[Alert] = []
                try:
                    with progress_bar() as progress:
                        batches: Iterable[FlowBatch] = run_flows(
                            group, flow_config(args, settings), stats,
                            AnnotatorFactory(geo, settings, enrich_stats),
                            _drawn_once(progress, shown), local=local_nets(settings.internal_nets),
                            ledger=held, separate=args.separate, carry=args.state is not None,
                            stop=stop.event, jobs=args.jobs, cluster=dask_cluster(args))
                        if judging is None:
                            # The reading starts now, in threads that mostly leave the
                            # interpreter free, while the rules and the model load.
                            started = StartedAhead(iter(batches))
                            try:
                                judging = _Judging(args, settings, geo)
                            except BaseException:
                                stop.event.set()
                                started.close()
                                raise
                            shown.set()
                            batches = started
                        for batch in batches:
                            flow_alerts.extend(judging.detector(batch))
                except KeyboardInterrupt:
                    if judging is None:
                        raise
                    interrupted = True  # judge what was read: nothing found is lost
                held.connect_ahead()  # while the last rows are converted for it
                interrupted = interrupted or stop.requested
                heap.give_back()  # what reading freed, before the conversation question
                judgement = judge_and_revise(held, judging.judge, flow_alerts, args.horizon,
                                             _name(group), keep_cases=args.state is not None)
                if args.report:
                    from burstwatch.report import from_ledger

                    report_parts.append(from_ledger(
                        held, [c.to_record() for c in judgement.cases], settings.home_countries,
                        int(args.horizon * 3600e9)))
            cases += judgement.cases
            conversations_seen += judgement.conversations
            for level, n in judgement.by_level.items():
                by_level_count[level] = by_level_count.get(level, 0) + n
            if interrupted:
                break
    finally:
        from burstwatch.cli.console import clean, stderr_console

        err = judging.err if judging is not None else stderr_console()
        for w in stats.warnings:
            err.print(f"burstwatch: warning: {clean(w)}")
        if stats.decode_warning():
            err.print(f"burstwatch: warning: {stats.decode_warning()}")
    from burstwatch.alerts.record import LEVEL_ORDER
    from burstwatch.outputs.jsonline import json_line

    if judging is None:  # no input at all
        judging = _Judging(args, settings, geo)
    out, as_table = judging.out, judging.as_table
    cases.sort(key=lambda c: (-c.severity, c.first_ns, c.case_id))
    lines = [json_line(case.to_record()) for case in cases]
    if alerts_file is not None and args.alerts.endswith((".csv", ".parquet")):
        from burstwatch.outputs.columns import Columns
        from burstwatch.outputs.writers import write_records
        from burstwatch.schema import ALERT

        alerts_file.close()
        write_records(ALERT, [Columns.from_records(ALERT, [c.to_record() for c in cases])],
                      args.alerts)
    elif alerts_file is not None:
        _write_alerts(alerts_file, args.alerts, lines)
    if not as_table:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    if args.report and report_parts:
        from burstwatch.report import merge_all, write_report

        report = merge_all(report_parts)
        report.packets, report.flows = stats.packets, stats.flow_rows
        size = write_report(args.report, report)
        err.print(f"report: {args.report} ({len(cases)} cases, {size / 1e6:.1f} MB)",
                  markup=False)
    if as_table:
        if cases:
            _print_cases(out, [c.to_record() for c in cases], args.verbose)
        else:
            out.print("No cases.", markup=False)
    by_level = ", ".join(f"{lvl} {by_level_count.get(lvl, 0)}" for lvl in reversed(LEVEL_ORDER))
    out.print(
        f"summary: {stats.packets:,} packets, {stats.flow_rows:,} flows "
        f"({stats.window_rows:,} window records), {enrich_stats.encrypted_flows:,} encrypted, "
        f"{enrich_stats.foreign_flows:,} to foreign endpoints, "
        f"{enrich_stats.allowlisted:,} allow-listed; {conversations_seen:,} conversations judged; "
        f"cases: {len(cases)} ({by_level})" + ceiling_note(stats.flows_evicted, enrich_stats.samples_dropped),
        markup=False,
    )
    if ledger.pruned_note():
        out.print(ledger.pruned_note(), markup=False)
    if interrupted:
        err.print(f"burstwatch: interrupted ({stop.name}); the cases above cover what was read")
        return stop.exit_code
    return ExitCode.FLAGGED if cases else ExitCode.OK


def _name(files: list[str]) -> str:
    """What the cases came from, for their records."""
    names = ["<stdin>" if f == "-" else f for f in files]
    return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"
