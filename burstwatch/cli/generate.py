"""`burstwatch generate ...`: the deterministic capture generator (same as python -m burstwatch.synth)."""

from __future__ import annotations

import argparse
from typing import Any

from burstwatch.cli.options import OneLineParser
from burstwatch.synth.cli import build_parser
from burstwatch.synth.cli import main as synth_main


def register(sub: Any) -> None:
    p = sub.add_parser("generate", help="write synthetic captures (demo, scenarios, bulk benchmark input)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="pcaps | scenario NAME PATH | bulk PATH (see --help)")
    p.set_defaults(handler=run, passes_options_on=True)  # its own parser reads them, --help too


def run(args: argparse.Namespace) -> int:
    rest = list(args.extra) + list(args.rest)
    try:
        return synth_main(rest, build_parser(OneLineParser, "burstwatch generate"))
    except SystemExit as exc:  # its parser's usage error (one line, said already) or --help
        return int(exc.code or 0)
