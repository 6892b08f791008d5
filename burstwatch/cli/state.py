"""`burstwatch state info|prune|export PATH`: look after a burst ledger file.

The ledger modules (DuckDB, pyarrow) are imported by the handlers, not here, so the other
commands do not pay for loading them.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import days
from burstwatch.errors import LedgerError
from burstwatch.outputs.jsonline import json_line


def register(sub: Any) -> None:
    p = sub.add_parser("state", help="inspect, prune or export a burst ledger")
    ss = p.add_subparsers(dest="state_command", metavar="ACTION")
    ip = ss.add_parser("info", help="what the ledger holds: bursts, flows, hosts, time span, size")
    ip.add_argument("path", metavar="PATH", help="ledger file")
    ip.add_argument("--json", action="store_true", help="one JSON object")
    ip.set_defaults(handler=run_info)
    pp = ss.add_parser("prune", help="delete bursts and flow rows older than the retention")
    pp.add_argument("path", metavar="PATH", help="ledger file")
    pp.add_argument("--older-than", type=days, metavar="DAYS",
                    help="age counted back from the newest record (default: the ledger's retention)")
    pp.set_defaults(handler=run_prune)
    ep = ss.add_parser("export", help="write the ledger as Parquet, one directory per table, by day")
    ep.add_argument("path", metavar="PATH", help="ledger file")
    ep.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    ep.set_defaults(handler=run_export)


def _ts(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _existing(path: str) -> str:
    if not Path(path).is_file():
        raise LedgerError(f"{path}: no such ledger file")
    return path


def run_info(args: argparse.Namespace) -> int:
    from burstwatch.cli.console import TextTable, stdout_console
    from burstwatch.ledger import Ledger, summary

    with Ledger.open(_existing(args.path), read_only=True) as ledger:
        s = summary(ledger)
    if args.json:
        print(json_line(s.to_json(), compact=False))
        return ExitCode.OK
    t = TextTable(title=s.path, show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("file size", f"{s.file_bytes:,} bytes")
    t.add_row("schema version", str(s.schema_version))
    t.add_row("retention", f"{s.retention_days:g} days" if s.retention_days is not None else "-")
    t.add_row("bursts", f"{s.bursts:,}")
    t.add_row("flow rows", f"{s.flow_rows:,}")
    t.add_row("hosts", f"{s.hosts:,}")
    t.add_row("conversations", f"{s.conversations:,}")
    t.add_row("first record", _ts(s.first_ns))
    t.add_row("last record", _ts(s.last_ns))
    t.add_row("pruned before", _ts(s.pruned_before_ns))
    t.add_row("carried state", ", ".join(f"{k}: {v:,} bytes" for k, v in s.state.items()) or "-")
    stdout_console().print(t)
    return ExitCode.OK


def run_prune(args: argparse.Namespace) -> int:
    from burstwatch.cli.console import clean
    from burstwatch.ledger import Ledger

    with Ledger.open(_existing(args.path), retention_days=None) as ledger:
        days = ledger.retention_days if args.older_than is None else args.older_than
        cutoff = ledger.cutoff_for(days)
        if cutoff is None:
            print(clean(f"{args.path}: empty, nothing to prune"))
            return ExitCode.OK
        deleted = ledger.prune(cutoff)
    print(clean(f"{args.path}: deleted {deleted:,} bursts and flow rows that ended before "
                f"{_ts(cutoff)} (older than {days:g} days)"))
    return ExitCode.OK


def run_export(args: argparse.Namespace) -> int:
    from burstwatch.cli.console import clean
    from burstwatch.ledger import Ledger, export_parquet

    with Ledger.open(_existing(args.path), read_only=True) as ledger:
        counts = export_parquet(ledger, args.output)
    for name, rows in counts.items():
        print(clean(f"{Path(args.output) / name}: {rows:,} rows"))
    return ExitCode.OK
