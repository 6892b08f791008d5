"""Every command-line option that more than one command takes, and every check of an option's
value: the one place where what the user typed becomes settings.

Values are checked by argparse ``type=`` functions as they are parsed, so a value that makes
no sense (``--window -5``, ``--interval 0``, ``--duration nan``, ``--home XX``) is one line on
standard error and exit status 2 (``OneLineParser``) before any input is opened.

The parser of every command is built from these declarations, so this module imports nothing
heavy: what reads the options (settings, the geography database) is imported when a command
runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, NoReturn

from burstwatch.flows.config import FlowConfig
from burstwatch.ledger.schema import DEFAULT_RETENTION_DAYS

if TYPE_CHECKING:
    from burstwatch.config import Settings
    from burstwatch.decode.config import DecodeConfig
    from burstwatch.enrich.annotate import AnnotatorFactory, EnrichStats
    from burstwatch.enrich.geo import GeoDatabase

# Upper bounds keep every duration inside the int64 nanoseconds the kernels count in (and far
# beyond any sensible setting).
MAX_SECONDS = 10 * 365 * 86_400.0  # flow timeouts and windows, live intervals
MAX_DAYS = 100 * 365.25  # horizons and retention
MAX_HOURS = MAX_DAYS * 24
MAX_COUNT = 1 << 62
MAX_JOBS = 64  # worker processes: each is a whole pipeline (a process and its flow table)


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its usage errors as one line (``burstwatch scan: error: ...``) and
    exit status 2; ``--help`` still prints the usage."""

    def error(self, message: str) -> NoReturn:
        from burstwatch.cli.console import clean

        self.exit(2, f"{self.prog}: error: {clean(message)} (see '{self.prog} --help')\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


def positive(unit: str, upper: float) -> Callable[[str], float]:
    """An option type: a finite number above 0 and at most ``upper`` of ``unit``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 < value <= upper:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(
                f"expected a positive number of {unit} up to {upper:g}, not {text!r}")
        return value

    parse.__name__ = f"positive {unit}"
    return parse


def whole(least: int, most: int = MAX_COUNT) -> Callable[[str], int]:
    """An option type: a whole number from ``least`` to ``most``."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            value = least - 1
        if not least <= value <= most:
            upto = f" up to {most}" if most < MAX_COUNT else ""
            raise argparse.ArgumentTypeError(
                f"expected a whole number of at least {least}{upto}, not {text!r}")
        return value

    parse.__name__ = "whole number"
    return parse


seconds = positive("seconds", MAX_SECONDS)
hours = positive("hours", MAX_HOURS)
days = positive("days", MAX_DAYS)


def countries(text: str) -> str:
    """``--home CC[,CC...]``: ISO 3166-1 alpha-2 codes, any case."""
    from burstwatch.config.countries import is_country

    codes = [c.strip().upper() for c in text.split(",") if c.strip()]
    if not codes:
        raise argparse.ArgumentTypeError("expected country codes such as US or US,CA")
    for code in codes:
        if not is_country(code):
            hint = " (GB is the United Kingdom)" if code == "UK" else ""
            raise argparse.ArgumentTypeError(
                f"{code!r} is not an ISO 3166-1 alpha-2 country code{hint}")
    return ",".join(codes)


def network(text: str) -> str:
    """``--internal-nets CIDR...``: an IPv4 or IPv6 network (host bits allowed)."""
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP network (CIDR)") from None
    return text.strip()


def add_input_options(p: argparse.ArgumentParser) -> None:
    """Capture inputs: files given together are one capture unless ``--separate``."""
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="capture file, directory (read recursively), glob pattern, or - for stdin")
    p.add_argument("--separate", action="store_true",
                   help="read each file as a capture of its own (default: all files are one "
                        "capture, merged by time, as rotated files of one sensor are)")


def add_jobs_option(p: argparse.ArgumentParser) -> None:
    """``-j N``: worker processes for one capture (``burstwatch.parallel``)."""
    p.add_argument("-j", "--jobs", type=whole(0, MAX_JOBS), default=None, metavar="N",
                   help="worker processes, each with a share of the flows, 0 for every core "
                        "(default 1); with --separate each file in turn; standard input, "
                        "other streams and --state runs use one")


def add_decode_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-decap", action="store_true",
                   help="do not open tunnels (GRE, IP-in-IP, VXLAN, Geneve, GTP-U, Teredo): "
                        "flows are keyed on the outer IP header")


def decode_config(args: argparse.Namespace, settings: Settings | None = None) -> DecodeConfig:
    """The configuration file's decode settings, if given, with the flags applied."""
    from burstwatch.decode.config import DecodeConfig

    base = settings.decode if settings is not None else DecodeConfig()
    return replace(base, decap=base.decap and not args.no_decap)


def add_flow_options(p: argparse.ArgumentParser) -> None:
    d = FlowConfig()
    add_decode_options(p)
    g = p.add_argument_group("flows and bursts")
    g.add_argument("--idle-timeout", type=seconds, default=d.idle_timeout, metavar="S",
                   help=f"end a flow after this many idle seconds (default {d.idle_timeout:g})")
    g.add_argument("--active-timeout", type=seconds, default=d.active_timeout, metavar="S",
                   help=f"end a flow record after this long (default {d.active_timeout:g})")
    g.add_argument("--window", type=seconds, default=d.window, metavar="S",
                   help=f"report long flows per window of this length (default {d.window:g})")
    g.add_argument("--burst-gap", type=seconds, default=d.burst_gap, metavar="S",
                   help=f"largest gap inside a burst (default {d.burst_gap:g})")
    g.add_argument("--burst-min-bytes", type=whole(1), default=d.burst_min_bytes, metavar="N",
                   help=f"smallest burst, in payload bytes (default {d.burst_min_bytes})")
    g.add_argument("--flow-memory", default=None, metavar="MB",
                   help="ceiling on the flow table's memory, in MiB; at it flows are evicted, "
                        f"half-open ones first (default: the configuration's "
                        f"limits.flow_memory_mb, else {d.flow_memory_mb:g})")


def flow_config(args: argparse.Namespace, settings: Settings | None = None) -> FlowConfig:
    """The flow settings from the options, the configuration file's where an option is not given."""
    from burstwatch.config import load_settings
    from burstwatch.config.settings import memory_mb

    if settings is None and getattr(args, "config", None):
        settings = load_settings(args.config)
    if args.flow_memory is not None:
        flow_memory = memory_mb(args.flow_memory, "--flow-memory")
    else:
        configured = settings.limits.flow_memory_mb if settings is not None else None
        flow_memory = configured if configured is not None else FlowConfig.flow_memory_mb
    return FlowConfig(
        flow_memory_mb=flow_memory,
        idle_timeout=args.idle_timeout,
        active_timeout=args.active_timeout,
        window=args.window,
        burst_gap=args.burst_gap,
        burst_min_bytes=args.burst_min_bytes,
        decode=decode_config(args, settings),
    )


def ceiling_note(evicted: int, samples_dropped: int = 0) -> str:
    """What the memory ceilings turned away, for a summary line ("" when nothing)."""
    note = f"; {evicted:,} flows evicted at the flow table's ceiling (--flow-memory)" if evicted else ""
    if samples_dropped:
        note += (f"; {samples_dropped:,} payload samples over the sample store's ceiling "
                 "(limits.sample_memory_mb)")
    return note


def add_enrich_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("enrichment")
    g.add_argument("--config", metavar="PATH", help="YAML configuration (default: the shipped one)")
    g.add_argument("--home", type=countries, metavar="CC[,CC...]",
                   help="home countries, ISO 3166-1 alpha-2 (default from config: US)")
    g.add_argument("--internal-nets", nargs="+", type=network, metavar="CIDR", default=None,
                   help="the site's own public ranges: internal, never foreign")
    g.add_argument("--geoip", metavar="PATH", help="a MaxMind/DB-IP/IPinfo .mmdb to use instead of the bundled data")


def add_conversation_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("conversations")
    g.add_argument("--state", metavar="PATH",
                   help="keep the burst ledger in this file, so history builds up over runs "
                        "(scan: in memory by default; live: under the user's state directory)")
    g.add_argument("--horizon", type=hours, default=24.0, metavar="HOURS",
                   help="judge each conversation over this much history (default 24)")
    g.add_argument("--retention", type=days, default=DEFAULT_RETENTION_DAYS,
                   metavar="DAYS", help="drop ledger records older than this "
                   f"(default {DEFAULT_RETENTION_DAYS:g})")


def settings_from_args(args: argparse.Namespace) -> Settings:
    from burstwatch.config import load_settings

    return load_settings(args.config, args.home, args.internal_nets)


def geo_from_args(args: argparse.Namespace) -> GeoDatabase:
    from burstwatch.enrich.geo import GeoDatabase

    return GeoDatabase.from_mmdb(args.geoip) if args.geoip else GeoDatabase.bundled()


def enricher_factory_from_args(
    args: argparse.Namespace, stats: EnrichStats | None = None
) -> AnnotatorFactory:
    from burstwatch.enrich.annotate import AnnotatorFactory

    return AnnotatorFactory(geo_from_args(args), settings_from_args(args), stats)
