"""`burstwatch train [--state PATH] [CAPTURE...] -o MODEL`: learn the conversation model of a site.

The model learns what the site's own conversations (one local host, one remote party, over a
horizon) look like, from the burst ledger that ``scan``/``live`` keep (``--state``), from
captures of ordinary traffic, or both. Everything given is treated as benign.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import (
    add_enrich_options,
    add_flow_options,
    flow_config,
    geo_from_args,
    hours,
    settings_from_args,
    whole,
)

HOUR_NS = 3_600_000_000_000


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="learn the conversation anomaly model from this site's history or captures",
        description="Learn what ordinary conversations (one local host, one remote party, over a "
        "horizon) look like on this network, from the burst ledger kept by scan/live (--state) "
        "and/or captures of ordinary traffic, and write a model file. Everything given is treated "
        "as benign: train on days without known incidents.",
    )
    p.add_argument("files", nargs="*", metavar="CAPTURE",
                   help="capture of ordinary traffic (file, directory or glob); all files are one "
                        "capture unless --separate")
    p.add_argument("--state", metavar="PATH", help="burst ledger with the site's history (read only)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write")
    p.add_argument("--horizon", type=hours, default=24.0, metavar="HOURS",
                   help="conversation horizon in hours, as the judge uses it (default 24)")
    p.add_argument("--trees", type=whole(1), default=200, metavar="N", help="isolation trees (default 200)")
    p.add_argument("--seed", type=whole(0), default=0, metavar="S",
                   help="random seed: the same history and seed give the same model (default 0)")
    p.add_argument("--separate", action="store_true", help="read each capture file as a capture of its own")
    add_flow_options(p)
    add_enrich_options(p)
    p.set_defaults(handler=run, compiles_kernels=True)


def run(args: argparse.Namespace) -> int:
    from burstwatch.cli.console import clean, stderr_console, stdout_console
    from burstwatch.cli.progress import progress_bar
    from burstwatch.ledger import Ledger
    from burstwatch.records import RunStats
    from burstwatch.score.conversation import (
        ConversationModel,
        ConversationRows,
        rows_from_captures,
    )
    from burstwatch.score.conversation.rows import rows_from_ledger

    out = stdout_console()
    err = stderr_console()
    problem = None
    if not (args.state or args.files):
        problem = "give --state PATH (the site's ledger) and/or capture files to learn from"
    if problem:
        err.print(f"burstwatch: error: {problem}", markup=False)
        return ExitCode.ERROR
    horizon_ns = int(args.horizon * HOUR_NS)
    parts: list[tuple[str, ConversationRows]] = []
    if args.state:
        if not Path(args.state).is_file():
            err.print(f"burstwatch: error: {args.state}: no such ledger file", markup=False)
            return ExitCode.ERROR
        with Ledger.open(args.state, None, read_only=True) as ledger:
            parts.append((f"site history {args.state}", rows_from_ledger(ledger, horizon_ns)))
    if args.files:
        stats = RunStats()
        with progress_bar() as progress:
            settings = settings_from_args(args)
            rows = rows_from_captures(args.files, horizon_ns, config=flow_config(args, settings),
                                      settings=settings, geo=geo_from_args(args),
                                      stats=stats, progress=progress, separate=args.separate)
        for w in stats.warnings:
            err.print(f"burstwatch: warning: {clean(w)}")
        names = [Path(f).name for f in args.files]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        parts.append((f"captures {shown}", rows))
    rows = ConversationRows.concat([r for _, r in parts])
    source = " and ".join(s for s, _ in parts)
    model = ConversationModel(n_estimators=args.trees, random_state=args.seed)
    model.fit(rows.values, hosts=list(rows.local_ip), source=source, horizon_ns=horizon_ns,
              context={"sources": [{"source": s, "conversations": len(r), "rows": int(r.scored.sum()),
                                    "horizons": r.horizons} for s, r in parts]})
    model.save(args.output)
    for line in summary_lines(model, args.output, parts):
        out.print(line, markup=False, highlight=False)
    return ExitCode.OK


def summary_lines(model: Any, output: str, parts: list[tuple[str, Any]]) -> list[str]:
    """What a person checks after training: how much was learned, from where, what scores can mean."""
    from burstwatch.conversations.judge import ANOMALY_THRESHOLD, RAISE_THRESHOLD, SITE_MODEL_LEVEL

    t = model.training_
    lines = [f"wrote {output}",
             f"learned from {t['rows']:,} conversations with upload bursts ({t['conversations']:,} conversations "
             f"in all) from {t['hosts']:,} distinct hosts, horizon {t['horizon_hours']:g} h"]
    for source, rows in parts:
        lines.append(f"  {source}: {int(rows.scored.sum()):,} rows over {rows.horizons} horizon(s)")
    ceiling = model.calibration_.ceiling
    lines.append(f"highest possible score {ceiling:.4f} (a model of n rows cannot score above n / (n + 1))")
    for what, threshold in ((f"alone opens a case at {SITE_MODEL_LEVEL}", ANOMALY_THRESHOLD),
                            ("raises a rule's level one step", RAISE_THRESHOLD)):
        if ceiling < threshold:
            needed = math.ceil(threshold / (1 - threshold) - 1e-9)
            lines.append(f"  warning: no conversation can reach {threshold} (which {what}): "
                         f"learn from at least {needed:,} conversations with upload bursts")
        else:
            lines.append(f"score >= {threshold} {what}; about {1 - threshold:.1%} of conversations like "
                         "these reach it")
    return lines
