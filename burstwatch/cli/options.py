"""Command-line options shared by the commands that build flows."""

from __future__ import annotations

import argparse

from burstwatch.flows import FlowConfig


def add_input_options(p: argparse.ArgumentParser) -> None:
    """Capture inputs: files given together are one capture unless ``--separate``."""
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="capture file, directory (read recursively), glob pattern, or - for stdin")
    p.add_argument("--separate", action="store_true",
                   help="read each file as a capture of its own (default: all files are one "
                        "capture, merged by time, as rotated files of one sensor are)")


def add_jobs_option(p: argparse.ArgumentParser) -> None:
    """``-j N``: worker processes for one capture (``burstwatch.parallel``)."""
    p.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                   help="worker processes, each with a share of the flows, 0 for every core "
                        "(default 1); standard input, --separate and --state runs use one")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of processes (0: every core), not {text!r}")
    return value


def add_flow_options(p: argparse.ArgumentParser) -> None:
    d = FlowConfig()
    g = p.add_argument_group("flows and bursts")
    g.add_argument("--idle-timeout", type=float, default=d.idle_timeout, metavar="S",
                   help=f"end a flow after this many idle seconds (default {d.idle_timeout:g})")
    g.add_argument("--active-timeout", type=float, default=d.active_timeout, metavar="S",
                   help=f"end a flow record after this long (default {d.active_timeout:g})")
    g.add_argument("--window", type=float, default=d.window, metavar="S",
                   help=f"report long flows per window of this length (default {d.window:g})")
    g.add_argument("--burst-gap", type=float, default=d.burst_gap, metavar="S",
                   help=f"largest gap inside a burst (default {d.burst_gap:g})")
    g.add_argument("--burst-min-bytes", type=int, default=d.burst_min_bytes, metavar="N",
                   help=f"smallest burst, in payload bytes (default {d.burst_min_bytes})")


def flow_config(args: argparse.Namespace) -> FlowConfig:
    return FlowConfig(
        idle_timeout=args.idle_timeout,
        active_timeout=args.active_timeout,
        window=args.window,
        burst_gap=args.burst_gap,
        burst_min_bytes=args.burst_min_bytes,
    )
