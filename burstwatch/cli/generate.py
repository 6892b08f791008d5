"""`burstwatch generate ...`: the deterministic capture generator (same as python -m burstwatch.synth)."""

from __future__ import annotations

import argparse
from typing import Any

from burstwatch.errors import BurstwatchError


class GenerateError(BurstwatchError):
    """The generator was asked for something it cannot write."""


def register(sub: Any) -> None:
    p = sub.add_parser("generate", help="write synthetic captures (demo, scenarios, bulk benchmark input)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="pcaps | scenario NAME PATH | bulk PATH (see --help)")
    p.set_defaults(handler=run, passes_options_on=True)  # its own parser reads them, --help too


def run(args: argparse.Namespace) -> int:
    # Imported here, not above: the parser is built without loading the generator.
    from burstwatch.cli.options import OneLineParser
    from burstwatch.synth.cli import build_parser
    from burstwatch.synth.cli import main as synth_main

    rest = list(args.extra) + list(args.rest)
    try:
        return synth_main(rest, build_parser(OneLineParser, "burstwatch generate"))
    except SystemExit as exc:  # a usage error (one line, said already), --help, or a message
        if isinstance(exc.code, str):
            raise GenerateError(exc.code) from None
        return int(exc.code or 0)
    except OSError as exc:
        raise GenerateError(f"{exc.filename or 'output'}: cannot write ({exc.strerror or exc})") from None
