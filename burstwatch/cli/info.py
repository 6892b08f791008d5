"""`burstwatch info FILE...`: a capinfos-like summary per capture."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import add_decode_options, decode_config
from burstwatch.errors import BurstwatchError
from burstwatch.outputs.jsonline import json_line

if TYPE_CHECKING:  # the rest is imported where it runs: the parser is built without it
    from burstwatch.cli.console import TextTable
    from burstwatch.decode.summary import CaptureSummary


def register(sub: Any) -> None:
    p = sub.add_parser("info", help="summarise capture files (format, packets, time span, decode)")
    p.add_argument("files", nargs="+", metavar="FILE", help="capture file, or - for stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    add_decode_options(p)
    # info decodes only: no side compiler for the enrichment kernels it never reaches
    p.set_defaults(handler=run, compiles_kernels=True, side_compiler=False)


def _ts(ns: int | None) -> str:
    if ns is None:
        return "-"
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%S") + f".{ns % 1_000_000_000:09d} UTC"


def _table(s: CaptureSummary) -> TextTable:
    from burstwatch.cli.console import TextTable
    from burstwatch.decode.summary import linktype_name

    t = TextTable(title=s.path, show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("format", s.format + (" (gzip)" if s.compressed else ""))
    t.add_row("link types", ", ".join(f"{linktype_name(k)}: {v}" for k, v in sorted(s.linktypes.items())) or "-")
    t.add_row("packets", f"{s.packets:,}")
    t.add_row("captured bytes", f"{s.captured_bytes:,}")
    t.add_row("wire bytes", f"{s.wire_bytes:,}")
    t.add_row("first packet", _ts(s.first_ts_ns))
    t.add_row("last packet", _ts(s.last_ts_ns))
    t.add_row("duration", f"{s.duration_s:.6f} s")
    t.add_row("decode", ", ".join(f"{k}: {v:,}" for k, v in s.decode.items()) or "-")
    t.add_row("encapsulation", ", ".join(f"{k}: {v:,}" for k, v in s.encap.items()) or "-")
    if s.undecoded:
        t.add_row("not IP", ", ".join(f"{k}: {v:,}" for k, v in s.undecoded.items()))
    frags = {k: v for k, v in s.reassembly.items() if v}
    if frags:
        t.add_row("fragments", ", ".join(f"{k}: {v:,}" for k, v in frags.items()))
    return t


def run(args: argparse.Namespace) -> int:
    from burstwatch.cli.console import clean, stderr_console, stdout_console
    from burstwatch.decode.summary import summarize_capture
    from burstwatch.ingest.timeline import expand_inputs

    out = stdout_console()
    err = stderr_console()
    status = ExitCode.OK
    for path in expand_inputs(args.files):
        try:
            summary = summarize_capture(path, decode_config(args))
        except BurstwatchError as exc:
            err.print(f"burstwatch: error: {clean(exc)}")
            status = ExitCode.ERROR
            continue
        for w in summary.warnings:
            err.print(f"burstwatch: warning: {clean(w)}")
        if summary.decode_warning:
            err.print(f"burstwatch: warning: {clean(summary.path)}: {summary.decode_warning}")
        if args.json:
            print(json_line(summary.to_json(), compact=False), flush=True)
        else:
            out.print(_table(summary))
    return status
