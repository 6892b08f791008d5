"""`burstwatch flows FILE... -o OUT`: export flow-window (or burst) records."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import (
    add_enrich_options,
    add_flow_options,
    add_input_options,
    add_jobs_option,
    ceiling_note,
    enricher_factory_from_args,
    flow_config,
    settings_from_args,
)


def register(sub: Any) -> None:
    p = sub.add_parser("flows", help="export flow/window records (or bursts) with features")
    add_input_options(p)
    add_jobs_option(p)
    p.add_argument("-o", "--output", default="-", metavar="OUT",
                   help="output file: .jsonl, .csv or .parquet (default: JSON lines on stdout)")
    p.add_argument("--bursts", action="store_true", help="write burst records instead of flows")
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
    from burstwatch.outputs.ecs import BURST_COLUMNS, FLOW_COLUMNS, burst_records, flow_records
    from burstwatch.outputs.writers import write_records
    from burstwatch.pipeline import RunStats, run_flows

    err = stderr_console()
    stats = RunStats()
    settings = settings_from_args(args)
    factory = enricher_factory_from_args(args)
    with stop_on_signals() as stop, progress_bar() as progress:
        local = local_nets(settings.internal_nets)
        batches = run_flows(args.files, flow_config(args, settings), stats, factory, progress,
                            local=local, separate=args.separate, jobs=args.jobs,
                            stop=stop.event)

        def records() -> Iterator[dict[str, Any]]:
            for batch in batches:
                yield from (burst_records(batch) if args.bursts else flow_records(batch))

        columns = list(BURST_COLUMNS if args.bursts else FLOW_COLUMNS)
        count = write_records(records(), args.output, columns)
    for w in stats.warnings:
        err.print(f"burstwatch: warning: {clean(w)}")
    if stats.flows_evicted:
        note = ceiling_note(stats.flows_evicted).removeprefix("; ")
        err.print(f"burstwatch: {note}")
    if stats.decode_warning():
        err.print(f"burstwatch: warning: {stats.decode_warning()}")
    if args.output != "-":
        kind = "bursts" if args.bursts else "flow records"
        err.print(f"burstwatch: wrote {count} {kind} to {args.output}", markup=False)
    if stop.requested:
        err.print(f"burstwatch: interrupted ({stop.name}); the records cover what was read")
        return stop.exit_code
    return ExitCode.OK
