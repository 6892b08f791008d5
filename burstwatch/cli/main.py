"""Entry point: parse arguments, dispatch to a command, turn errors into exit codes.

This is the only place that catches exceptions for the user: a BurstwatchError becomes a
one-line message and exit status 2; nothing reaches the user as a traceback.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from burstwatch import __version__, priority
from burstwatch.cli import (
    flows,
    generate,
    info,
    kernels,
    live,
    lookup,
    report,
    rules_cmd,
    scan,
    state,
    train,
)
from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import OneLineParser
from burstwatch.cli.streams import finish_stdout, guard_stdout
from burstwatch.errors import BurstwatchError

if TYPE_CHECKING:
    from rich.console import Console

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    kernels.register(sub)
    return parser


def run() -> NoReturn:
    """The command line's entry point: :func:`main`, then an exit without the interpreter's
    teardown.

    When a command returns, what it wrote is closed and its threads have ended; what the
    teardown would still do is free memory object by object (a last full collection, every
    module's objects, DuckDB's and numpy's buffers): 0.1-0.2 s after a scan, a sixth of the
    demo's run, for what the operating system takes back at once. Exit handlers still run and
    the standard streams are flushed. While another thread still works, a profiler or
    tracer watches (``python -m cProfile``, a debugger: they write what they found after the
    program ends), or a flush fails, the interpreter's own exit handles it as it always did.
    """
    priority.enable()  # the reading thread first (this process is the command's own)
    code = main()
    main_thread = threading.main_thread()
    if (any(t.is_alive() and not t.daemon and t is not main_thread for t in threading.enumerate())
            or sys.getprofile() is not None or sys.gettrace() is not None):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    saved = sys.stdout, sys.stderr
    guard_stdout()  # a full disk, a closed pipe or a closed stdout: one line, exit 2
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = saved


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "passes_options_on", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.extra = extra
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    except BurstwatchError as exc:  # --help to a standard output that cannot be written
        from burstwatch.cli.console import clean, stderr_console

        stderr_console().print(f"burstwatch: error: {clean(exc)}")
        return ExitCode.ERROR
    # Flows create short-lived per-flow objects by the hundred thousand; with the defaults the
    # collector rescans every long-lived module object again and again. Freeze what import
    # created and collect the young generation less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:  # no command, or `rules`/`state` without an action
        what = " ".join(x for x in ("burstwatch", args.command) if x)
        _err().print(f"{what}: error: say what to do (see '{what} --help')")
        return ExitCode.ERROR
    try:
        if getattr(args, "compiles_kernels", False):  # numba is loaded by these commands only
            from burstwatch.cli.compiling import compile_notice

            with compile_notice(side_compiler=getattr(args, "side_compiler", True)):
                code = handler(args)
        else:
            code = handler(args)
        finish_stdout()
        return code
    except BurstwatchError as exc:
        from burstwatch.cli.console import error_lines

        err = _err()
        first, *more = error_lines(exc)
        err.print(f"burstwatch: error: {first}")
        for line in more:  # the findings of rule files, each with its place
            err.print(line)
        return ExitCode.ERROR
    except KeyboardInterrupt:
        _err().print("burstwatch: interrupted")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        if not _from_database(exc):
            raise
        # The ledger's database refused (most often its memory limit): one line, not a trace.
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ("; raise limits.ledger_memory_mb in the configuration"
                if "out of memory" in text.lower() else "")
        _err().print(f"burstwatch: error: ledger: {text}{hint}", markup=False)
        return ExitCode.ERROR


def _err() -> Console:
    """The console for errors. rich is imported only when one is said: --version and --help
    do not load it, and a scan loads it while its input is being read."""
    from burstwatch.cli.console import stderr_console

    return stderr_console()


def _from_database(exc: BaseException) -> bool:
    """Whether ``exc`` is an error of the embedded database (DuckDB), without importing it."""
    return any(c.__module__.split(".")[0] in ("duckdb", "_duckdb") for c in type(exc).__mro__)

if __name__ == "__main__":
    run()
