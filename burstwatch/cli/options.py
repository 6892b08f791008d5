"""Command-line options shared by the commands that build flows.

The parser of every command is built from these declarations, so this module imports
nothing heavy: what reads the options (settings, the geography database) is imported when
a command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from burstwatch.flows.config import FlowConfig

if TYPE_CHECKING:
    from burstwatch.config import Settings
    from burstwatch.enrich.geo import GeoDatabase


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


def flow_config(args: argparse.Namespace) -> FlowConfig:
    return FlowConfig(
        idle_timeout=args.idle_timeout,
        active_timeout=args.active_timeout,
        window=args.window,
        burst_gap=args.burst_gap,
        burst_min_bytes=args.burst_min_bytes,
    )


def add_enrich_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("enrichment")
    g.add_argument("--config", metavar="PATH", help="YAML configuration (default: the shipped one)")
    g.add_argument("--home", metavar="CC[,CC...]", help="home countries (default from config: US)")
    g.add_argument("--internal-nets", nargs="+", metavar="CIDR", default=None,
                   help="the site's own public ranges: internal, never foreign")
    g.add_argument("--geoip", metavar="PATH", help="a MaxMind/DB-IP/IPinfo .mmdb to use instead of the bundled data")


def settings_from_args(args: argparse.Namespace) -> Settings:
    from burstwatch.config import load_settings

    return load_settings(args.config, args.home, args.internal_nets)


def geo_from_args(args: argparse.Namespace) -> GeoDatabase:
    from burstwatch.enrich.geo import GeoDatabase

    return GeoDatabase.from_mmdb(args.geoip) if args.geoip else GeoDatabase.bundled()
