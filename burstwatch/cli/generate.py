"""`burstwatch generate ...`: the deterministic capture generator (same as python -m burstwatch.synth)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("generate", help="write synthetic captures (demo, scenarios, bulk benchmark input)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="pcaps | scenario NAME PATH | bulk PATH (see --help)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from burstwatch.synth.cli import main as synth_main

    return synth_main(list(args.rest))
