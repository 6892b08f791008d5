"""Command-line options shared by the commands that build flows."""

from __future__ import annotations

import argparse

from burstwatch.config.settings import load_settings, memory_mb
from burstwatch.flows import FlowConfig


def add_input_options(p: argparse.ArgumentParser) -> None:
    """Capture inputs: files given together are one capture unless ``--separate``."""
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="capture file, directory (read recursively), glob pattern, or - for stdin")
    p.add_argument("--separate", action="store_true",
                   help="read each file as a capture of its own (default: all files are one "
                        "capture, merged by time, as rotated files of one sensor are)")


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
    g.add_argument("--flow-memory", default=None, metavar="MB",
                   help="ceiling on the flow table's memory, in MiB; at it flows are evicted, "
                        f"half-open ones first (default: the configuration's "
                        f"limits.flow_memory_mb, else {d.flow_memory_mb:g})")


def flow_config(args: argparse.Namespace) -> FlowConfig:
    if args.flow_memory is not None:
        flow_memory = memory_mb(args.flow_memory, "--flow-memory")
    else:
        configured = load_settings(getattr(args, "config", None)).limits.flow_memory_mb
        flow_memory = configured if configured is not None else FlowConfig.flow_memory_mb
    return FlowConfig(
        flow_memory_mb=flow_memory,
        idle_timeout=args.idle_timeout,
        active_timeout=args.active_timeout,
        window=args.window,
        burst_gap=args.burst_gap,
        burst_min_bytes=args.burst_min_bytes,
    )


def ceiling_note(evicted: int, samples_dropped: int = 0) -> str:
    """What the memory ceilings turned away, for a summary line ("" when nothing)."""
    note = f"; {evicted:,} flows evicted at the flow table's ceiling (--flow-memory)" if evicted else ""
    if samples_dropped:
        note += (f"; {samples_dropped:,} payload samples over the sample store's ceiling "
                 "(limits.sample_memory_mb)")
    return note
