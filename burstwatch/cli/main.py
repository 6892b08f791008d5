"""Entry point: parse arguments, dispatch to a command, turn errors into exit codes.

This is the only place that catches exceptions for the user: a BurstwatchError becomes a
one-line message and exit status 2; nothing reaches the user as a traceback.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence

from burstwatch import __version__
from burstwatch.cli import (
    flows,
    generate,
    info,
    live,
    lookup,
    report,
    rules_cmd,
    scan,
    state,
    train,
)
from burstwatch.cli.exit_codes import ExitCode
from burstwatch.errors import BurstwatchError

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="burstwatch",
        description="Find burst transmissions: quiet hosts sending short, high-bandwidth, "
        "encrypted bursts to endpoints abroad.",
        epilog="Exit status: 0 nothing flagged, 1 something flagged (scan/live), 2 error.",
    )
    parser.add_argument("--version", action="version", version=f"burstwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info.register(sub)
    flows.register(sub)
    lookup.register(sub)
    scan.register(sub)
    report.register(sub)
    live.register(sub)
    rules_cmd.register(sub)
    generate.register(sub)
    train.register(sub)
    state.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    # Flows create short-lived per-flow objects by the hundred thousand; with the defaults the
    # collector rescans every long-lived module object again and again. Freeze what import
    # created and collect the young generation less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ExitCode.ERROR
    from burstwatch.cli.console import stderr_console  # not for --version or --help

    err = stderr_console()
    try:
        if getattr(args, "compiles_kernels", False):  # numba is loaded by these commands only
            from burstwatch.cli.compiling import compile_notice

            with compile_notice():
                return handler(args)
        return handler(args)
    except BurstwatchError as exc:
        err.print(f"burstwatch: error: {exc}", markup=False)
        return ExitCode.ERROR
    except KeyboardInterrupt:
        err.print("burstwatch: interrupted", markup=False)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()
        return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
