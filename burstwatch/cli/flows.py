"""`burstwatch flows FILE... -o OUT`: export flow-window, burst or conversation records."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import (
    add_enrich_options,
    add_flow_options,
    add_input_options,
    add_jobs_option,
    ceiling_note,
    enricher_factory_from_args,
    flow_config,
    hours,
    settings_from_args,
)
from burstwatch.cli.scoring import add_score_options

if TYPE_CHECKING:
    from burstwatch.config import Settings
    from burstwatch.ledger import Ledger
    from burstwatch.outputs.columns import Columns
    from burstwatch.records import FlowBatch


def register(sub: Any) -> None:
    p = sub.add_parser("flows", help="export flow/window records (or bursts, or conversations) "
                       "with features")
    add_input_options(p)
    add_jobs_option(p)
    p.add_argument("-o", "--output", default="-", metavar="OUT",
                   help="output file: .jsonl, .csv or .parquet (default: JSON lines on stdout)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--bursts", action="store_true", help="write burst records instead of flows")
    kind.add_argument("--conversations", action="store_true",
                      help="write conversation records (a local host and a remote party over "
                      "the horizon, judged as scan does: features and anomaly score)")
    p.add_argument("--horizon", type=hours, default=24.0, metavar="HOURS",
                   help="with --conversations: the hours of traffic a conversation covers, "
                   "counted back from the newest record (default 24)")
    add_score_options(p)
    add_flow_options(p)
    add_enrich_options(p)
    p.set_defaults(handler=run, compiles_kernels=True)


def run(args: argparse.Namespace) -> int:
    from burstwatch.parallel.plan import start_fork_server

    start_fork_server(args.jobs, args.files, False)  # it loads while this process does
    # Imported here, not above: the parser is built without loading the pipeline.
    from burstwatch.cli.console import clean, stderr_console
    from burstwatch.cli.interrupt import stop_on_signals
    from burstwatch.cli.progress import progress_bar
    from burstwatch.flows.roles import local_nets
    from burstwatch.outputs.ecs import burst_columns, flow_columns
    from burstwatch.outputs.writers import write_records
    from burstwatch.pipeline import RunStats, run_flows
    from burstwatch.schema import BURST, CONVERSATION, FLOW

    err = stderr_console()
    stats = RunStats()
    settings = settings_from_args(args)
    factory = enricher_factory_from_args(args)
    kind = CONVERSATION if args.conversations else BURST if args.bursts else FLOW
    with stop_on_signals() as stop, progress_bar() as progress:
        local = local_nets(settings.internal_nets)
        if kind == CONVERSATION:
            batches: Iterable[Columns] = [_conversations(args, settings, lambda ledger: run_flows(
                args.files, flow_config(args, settings), stats, factory, progress, local=local,
                separate=args.separate, jobs=args.jobs, stop=stop.event, ledger=ledger))]
        else:
            flows = run_flows(args.files, flow_config(args, settings), stats, factory, progress,
                              local=local, separate=args.separate, jobs=args.jobs,
                              stop=stop.event)
            columns = burst_columns if kind == BURST else flow_columns
            batches = (columns(batch) for batch in export_chunks(flows, kind == BURST))
        count = write_records(kind, batches, args.output)
    for w in stats.warnings:
        err.print(f"burstwatch: warning: {clean(w)}")
    if stats.flows_evicted:
        note = ceiling_note(stats.flows_evicted).removeprefix("; ")
        err.print(f"burstwatch: {note}")
    if stats.decode_warning():
        err.print(f"burstwatch: warning: {stats.decode_warning()}")
    if args.output != "-":
        what = {FLOW: "flow records", BURST: "bursts", CONVERSATION: "conversation records"}[kind]
        err.print(f"burstwatch: wrote {count} {what} to {args.output}", markup=False)
    if stop.requested:
        err.print(f"burstwatch: interrupted ({stop.name}); the records cover what was read")
        return stop.exit_code
    return ExitCode.OK


# Records are formatted per batch, column by column, at a cost per column that does not
# depend on the rows: batches are joined up to this many records first. (16,384 was no
# faster on the 5 M-packet capture and held 120 MiB more; 2,048 was slower.)
EXPORT_CHUNK = 4096


def export_chunks(batches: Iterable[FlowBatch], bursts: bool) -> Iterator[FlowBatch]:
    """``batches`` joined in order into batches of about ``EXPORT_CHUNK`` flow records (or
    bursts), so the writer's per-column work is paid per chunk, not per batch."""
    from burstwatch.records import FlowBatch

    held: list[FlowBatch] = []
    count = 0
    for batch in batches:
        if held and not all(batch.columns_like(h) for h in held):
            yield FlowBatch.concat(held)
            held, count = [], 0
        held.append(batch)
        count += len(batch.bursts) if bursts else len(batch.rows)
        if count >= EXPORT_CHUNK:
            yield FlowBatch.concat(held)
            held, count = [], 0
    if held:
        yield FlowBatch.concat(held)


def _conversations(args: argparse.Namespace, settings: Settings,
                   read: Callable[[Ledger], Iterable[Any]]) -> Columns:
    """Read the captures into a ledger in memory and give every conversation within the
    horizon as records, with the features and the anomaly score a scan judges them by."""
    from burstwatch.cli.scoring import conversation_scorer_from_args
    from burstwatch.conversations.judge import Judge
    from burstwatch.conversations.records import conversation_columns
    from burstwatch.ledger import Ledger, conversations

    scorer, _ = conversation_scorer_from_args(args)
    judge = Judge([], settings, scorer)
    with Ledger.open(None, memory_mb=settings.limits.ledger_memory_mb) as ledger:
        for _ in read(ledger):
            pass
        conv, bursts = conversations(ledger, int(args.horizon * 3600e9))
        feats, scope, scores, reasons = judge.assess(conv, bursts)
        capture = ", ".join("<stdin>" if f == "-" else f for f in args.files)
        return conversation_columns(conv, bursts, feats, scope, scores, reasons, capture)
