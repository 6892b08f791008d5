"""Which of `burstwatch scan`'s threads decides its wall time: each stage slowed in turn.

    python bench/bench_critical_path.py CAPTURE [--rounds 4] [--delay-ms 2]

Runs the scan in a child process once per stage and round, with a sleep of ``--delay-ms``
(which lets go of the GIL, so it costs no CPU) added to every call of one stage: decoding
(`Pipeline.decode_part`, the decoding thread), the flow table (`Pipeline.table_part`, its
thread), enrichment and rules (`Pipeline.finish`, the main thread) or the ledger's tables
(`Ledger._tables`, its writer thread); and once with no delay. A stage on the critical path
lengthens the run by about its calls times the delay; one off it, by nothing. Causal
profiling by hand: a sampling profiler shows where the CPU goes, not what the others wait
for.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import time
from typing import Any

STAGES = {
    "decode": ("burstwatch.pipeline", "Pipeline", "decode_part"),
    "table": ("burstwatch.pipeline", "Pipeline", "table_part"),
    "enrich and rules": ("burstwatch.pipeline", "Pipeline", "finish"),
    "ledger tables": ("burstwatch.ledger.store", "Ledger", "_tables"),
}


def child(capture: str, stage: str, delay_s: float) -> None:
    """One scan, ``stage`` slowed; prints its wall time and the slowed calls."""
    import importlib

    calls = [0]
    if stage in STAGES:
        module, owner_name, name = STAGES[stage]
        owner = getattr(importlib.import_module(module), owner_name)
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def slowed(*args: Any, **kw: Any) -> Any:
            calls[0] += 1
            time.sleep(delay_s)
            return inner(*args, **kw)

        setattr(owner, name, slowed)
    from burstwatch.cli.main import main

    t = time.perf_counter()
    main(["scan", "--format", "jsonl", capture])
    print(f"{time.perf_counter() - t:.3f} {calls[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--delay-ms", type=float, default=2.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.capture, args.child, args.delay_ms / 1000)
        return
    walls: dict[str, list[float]] = {s: [] for s in ["none", *STAGES]}
    calls: dict[str, int] = {}
    for _ in range(args.rounds):
        for stage in walls:  # alternating, so a slow spell of the machine hits all alike
            out = subprocess.run(
                [sys.executable, __file__, args.capture, "--delay-ms", str(args.delay_ms),
                 "--child", stage], capture_output=True, text=True, check=False)
            if out.returncode not in (0, 1):  # 1: cases found
                sys.exit(f"bench_critical_path: the scan with {stage} slowed failed "
                         f"(exit {out.returncode}): {out.stderr.strip().splitlines()[-1:]}")
            wall, n = out.stdout.split()[-2:]
            walls[stage].append(float(wall))
            calls[stage] = int(n)
    base = statistics.median(walls["none"])
    print(f"capture: {args.capture}; {args.rounds} rounds; delay {args.delay_ms:g} ms per call\n")
    print("| stage slowed | calls | delay added s | wall s (median) | wall added s | each round s |")
    print("|---|---:|---:|---:|---:|---|")
    for stage, w in walls.items():
        added = calls[stage] * args.delay_ms / 1000
        med = statistics.median(w)
        print(f"| {stage} | {calls[stage]} | {added:.2f} | {med:.2f} | {med - base:+.2f} | "
              f"{', '.join(f'{x:.2f}' for x in w)} |")


if __name__ == "__main__":
    main()
