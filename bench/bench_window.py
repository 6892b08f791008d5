"""What the size of a reading step costs and buys: `burstwatch scan` with other capture
windows, release lags and enrichment groups.

    python bench/bench_window.py CAPTURE [--rounds 8] [--variants 16:32:8,32:48:8,...]

A variant is WINDOW_MiB:LAG_MiB:STEPS[:AHEAD:DECODED]: the bytes of capture read per step
(`read_pcap`'s ``window_bytes``, `bytesource.WINDOW_BYTES` = 24 MiB as shipped), how far behind the reading
position the reader releases mapped pages (`bytesource._RELEASE_LAG`, 8 MiB; the flow table
also releases each batch's pages once done with it, in every variant) and how many steps
enrichment takes at once (`FlowConfig.steps_per_batch`, 16); optionally how many groups the
flow table's thread may have ready for enrichment (AHEAD) and how many decoded batches the
decoding thread may have ready for the flow table (DECODED), both `read_ahead`'s depth, 2.
Each round runs every variant once in a child process
(alternating, so a slow spell of the machine hits all alike) and records its wall time, its
CPU time (user + system) and its peak resident memory; the table gives the medians and the
peak's maximum. Per-step work (numpy calls, GIL hand-overs, page hints) is paid per window,
while the mapped pages and the batches in flight grow with it: this measures that trade.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

DEFAULT_VARIANTS = "16:32:8,24:8:8,24:8:16,32:8:8"


def child(capture: str, variant: str) -> None:
    """One scan with ``variant``'s settings; prints wall s, CPU s and peak RSS MiB."""
    window, lag, steps, *depths = (int(x) for x in variant.split(":"))
    import burstwatch.flows.config as flow_config
    import burstwatch.ingest.bytesource as bytesource
    import burstwatch.ingest.pcap as pcap
    import burstwatch.pipeline as pipeline

    defaults = list(pcap.read_pcap.__defaults__ or ())
    defaults[-1] = window << 20  # window_bytes, the last parameter
    pcap.read_pcap.__defaults__ = tuple(defaults)
    bytesource._RELEASE_LAG = lag << 20
    made = flow_config.FlowConfig.__init__

    def init(self: flow_config.FlowConfig, *args: object, **kw: object) -> None:
        made(self, *args, **kw)  # type: ignore[arg-type]
        object.__setattr__(self, "steps_per_batch", steps)

    flow_config.FlowConfig.__init__ = init  # type: ignore[method-assign]
    ahead, decoded = (depths + [2, 2])[:2]
    read_ahead = pipeline.read_ahead

    def deeper(items: Any, depth: int = 2, name: str = "burstwatch-read-ahead") -> Any:
        return read_ahead(items, decoded if name == "burstwatch-decode" else ahead, name=name)

    pipeline.read_ahead = deeper  # type: ignore[assignment]
    from burstwatch.cli.main import main

    start = time.perf_counter()
    main(["scan", "--format", "jsonl", capture])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{time.perf_counter() - start:.3f} {usage.ru_utime + usage.ru_stime:.3f} "
          f"{usage.ru_maxrss // 1024}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--variants", default=DEFAULT_VARIANTS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.capture, args.child)
        return
    runs: dict[str, list[tuple[float, float, int]]] = {v: [] for v in args.variants.split(",")}
    for _ in range(args.rounds):
        for variant, got in runs.items():
            out = subprocess.run([sys.executable, __file__, args.capture, "--child", variant],
                                 capture_output=True, text=True, check=False)
            if out.returncode not in (0, 1):  # 1: cases found
                sys.exit(f"bench_window: the scan with {variant} failed (exit "
                         f"{out.returncode}): {out.stderr.strip().splitlines()[-1:]}")
            wall, cpu, rss = out.stdout.split()[-3:]
            got.append((float(wall), float(cpu), int(rss)))
    print(f"capture: {args.capture}; {args.rounds} rounds\n")
    print("| window:lag:steps | wall s (median) | CPU s (median) | peak RSS MiB (max) | "
          "each round's wall s |")
    print("|---|---:|---:|---:|---|")
    for variant, got in runs.items():
        walls = [g[0] for g in got]
        print(f"| {variant} | {statistics.median(walls):.2f} | "
              f"{statistics.median(g[1] for g in got):.2f} | {max(g[2] for g in got)} | "
              f"{', '.join(f'{w:.2f}' for w in walls)} |")


if __name__ == "__main__":
    main()
