"""Command line: ``python -m burstwatch.synth [pcaps|scenario|bulk] ...``.

With no subcommand it regenerates the project's own captures in ``./pcaps``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from burstwatch.cli.options import positive, whole
from burstwatch.synth.bulk import parse_size, write_bulk
from burstwatch.synth.linklayer import LINK_NAMES
from burstwatch.synth.office import DEMO_SEED, write_project_pcaps
from burstwatch.synth.scenarios import ALL_SCENARIOS, write_scenario

SUBCOMMANDS = ("pcaps", "scenario", "bulk")
MAX_SNAPLEN = 262_144  # libpcap's largest snapshot length


def build_parser(
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
    prog: str = "python -m burstwatch.synth",
) -> argparse.ArgumentParser:
    """Argument parser for the generator (also mounted by the main CLI as ``generate``, with
    its one-line usage errors)."""
    parser = parser_class(
        prog=prog,
        description="Generate deterministic synthetic captures.",
    )
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("pcaps", help="regenerate the project's captures (default)")
    p.add_argument(
        "--out", type=Path, default=Path("pcaps"), help="output folder (default ./pcaps)"
    )
    p.add_argument("--seed", type=whole(0), default=DEMO_SEED)

    s = sub.add_parser("scenario", help="write one scenario to a capture")
    s.add_argument("name", choices=sorted(ALL_SCENARIOS))
    s.add_argument("path", type=Path)
    s.add_argument("--seed", type=whole(0), default=0)
    s.add_argument("--link", choices=sorted(LINK_NAMES), default="ethernet")
    s.add_argument("--nanosecond", action="store_true")
    s.add_argument("--big-endian", action="store_true")
    s.add_argument("--snaplen", type=whole(1, MAX_SNAPLEN), default=MAX_SNAPLEN)
    s.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a scenario parameter, VALUE in JSON (a list is a (lo, hi) range), e.g. "
        "--param burst_bytes=[5000000,30000000]; repeatable",
    )

    b = sub.add_parser("bulk", help="write a large benchmark capture fast")
    b.add_argument("path", type=Path)
    size = b.add_mutually_exclusive_group()
    size.add_argument("--packets", type=whole(1), help="number of packets (default 5,000,000)")
    size.add_argument("--bytes", dest="size", type=_size,
                      help="target file size, e.g. 5G or 500M")
    b.add_argument("--flows", type=whole(1), default=20_000, help="concurrent flows")
    b.add_argument("--seed", type=whole(0), default=1)
    b.add_argument("--pps", type=positive("packets per second", 1e9), default=250_000.0,
                   help="mean packet rate of the capture clock")
    b.add_argument("--nanosecond", action="store_true")
    return parser


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs to keyword arguments: VALUE as JSON (lists become tuples), else text."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"--param wants NAME=VALUE, not {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        params[name] = tuple(value) if isinstance(value, list) else value
    return params


def main(argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """Run the generator; returns the process exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or args_in[0] not in (*SUBCOMMANDS, "-h", "--help"):
        args_in.insert(0, "pcaps")
    args = (parser or build_parser()).parse_args(args_in)
    if args.command == "pcaps":
        manifest = write_project_pcaps(args.out, args.seed)
        demo = manifest["files"]["demo.pcap"]
        print(
            f"wrote {len(manifest['files'])} captures to {args.out}/ (seed {args.seed}); "
            f"demo.pcap: {demo['packets']} packets"
        )
    elif args.command == "scenario":
        try:
            session = write_scenario(
                str(args.path),
                args.name,
                args.seed,
                link=args.link,
                nanosecond=args.nanosecond,
                big_endian=args.big_endian,
                snaplen=args.snaplen,
                **parse_params(args.param),
            )
        except (TypeError, ValueError) as exc:  # a --param the scenario does not take
            raise SystemExit(f"scenario {args.name}: {exc}") from None
        truth = [
            {"start_ns": b.start_ns, "end_ns": b.end_ns, "payload_bytes": b.payload_bytes}
            for b in session.bursts
        ]
        print(json.dumps({"packets": len(session), "bursts": truth}))
    else:
        target = args.size
        packets = args.packets if args.packets is not None else (None if target else 5_000_000)
        stats = write_bulk(
            args.path,
            packets,
            target_bytes=target,
            seed=args.seed,
            flows=args.flows,
            pps=args.pps,
            nanosecond=args.nanosecond,
        )
        print(
            f"wrote {stats.packets:,} packets, {stats.bytes / 1e6:,.1f} MB in {stats.seconds:.1f} s "
            f"({stats.mb_per_s:,.0f} MB/s, {stats.packets_per_s:,.0f} packets/s)"
        )
    return 0
