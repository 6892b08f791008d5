"""Start-up: wall time of whole `burstwatch` processes, warm (kernels built, caches filled).

    python bench/bench_startup.py [--runs N] [--check] [--baseline TREE]

`burstwatch warmup` builds the kernels ahead of time first (burstwatch/aot.py). Each command
is then run N times, interleaved round by round with the others (so a burst of load on a
shared machine hits all of them alike), after one unmeasured run that fills numba's cache,
the page cache and Python's bytecode cache (as an installed package has: pip compiles it at
install, so PYTHONDONTWRITEBYTECODE is dropped for the children). The demo's scan is also
run with BURSTWATCH_AHEAD=0 (numba's JIT, loading the kernels from numba's cache), as a
machine without a C compiler runs it. Reported: median and minimum wall seconds, and the
load average.
``--check`` exits 1 when a median misses its target (--version 0.15 s, scan of the demo
0.6 s). ``--baseline TREE`` also runs each command from another source tree (an older commit
checked out with ``git worktree add``), in the same rounds, and gives the median of the
rounds' time ratios (this tree / the baseline): a change of a few per cent is measured
against what it replaced under the same load, which the machine's spells would swamp.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JIT = "BURSTWATCH_AHEAD=0 "  # a command name starting so runs with numba's JIT
COMMANDS: dict[str, tuple[list[str], float | None]] = {
    "--version": (["--version"], 0.15),
    "--help": (["--help"], None),
    "lookup 8.8.8.8": (["lookup", "8.8.8.8"], None),
    "rules lint rules": (["rules", "lint", "rules"], None),
    "info pcaps/demo.pcap": (["info", "pcaps/demo.pcap"], None),
    "flows pcaps/demo.pcap -o -": (["flows", "pcaps/demo.pcap", "-o", "-"], None),
    "scan pcaps/demo.pcap": (["scan", "pcaps/demo.pcap"], 0.6),
    f"{JIT}scan pcaps/demo.pcap": (["scan", "pcaps/demo.pcap"], None),
}


ENV = {k: v for k, v in os.environ.items()
       if k not in ("PYTHONDONTWRITEBYTECODE", "BURSTWATCH_AHEAD", "BURSTWATCH_KERNELS")}


def wall(argv: list[str], jit: bool = False, tree: Path = ROOT) -> float:
    """One command's wall time, run from ``tree`` (``python -m`` imports the package there)."""
    env = dict(ENV, BURSTWATCH_AHEAD="0") if jit else ENV
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "burstwatch", *argv], cwd=tree, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def warm_up(tree: Path) -> str:
    """Build ``tree``'s kernels ahead of time; what the build said."""
    built = subprocess.run([sys.executable, "-m", "burstwatch", "warmup"], cwd=tree, env=ENV,
                           capture_output=True, text=True, check=False)
    return built.stdout.strip() or f"no ahead-of-time build: {built.stderr.strip()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="also run every command from this source tree, in the same rounds")
    args = ap.parse_args()
    trees = {"": ROOT} if args.baseline is None else {"": ROOT, "baseline ": args.baseline}
    for prefix, tree in trees.items():
        print(f"{prefix}{warm_up(tree)}")
    runs = [(prefix, tree, name, argv) for name, (argv, _) in COMMANDS.items()
            for prefix, tree in trees.items()]
    for _, tree, name, argv in runs:
        wall(argv, name.startswith(JIT), tree)  # fills numba's cache and the page cache
    times: dict[str, list[float]] = {prefix + name: [] for prefix, _, name, _ in runs}
    for k in range(args.runs):
        order = runs if k % 2 == 0 else runs[::-1]  # neither tree always runs first
        for prefix, tree, name, argv in order:
            times[prefix + name].append(wall(argv, name.startswith(JIT), tree))
    load = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {args.runs} runs each")
    print(f"{'command':<45} {'median s':>9} {'min s':>7} {'target s':>9}")
    missed = []
    for name, (_, target) in COMMANDS.items():
        med = statistics.median(times[name])
        label = f"{JIT}burstwatch {name[len(JIT):]}" if name.startswith(JIT) else f"burstwatch {name}"
        print(f"{label:<45} {med:9.3f} {min(times[name]):7.3f} "
              f"{'' if target is None else f'{target:.2f}':>9}")
        if target is not None and med > target:
            missed.append(name)
    if args.baseline is not None:
        print(f"\nagainst {args.baseline} (median of the rounds' ratios; below 1: faster)")
        for name in COMMANDS:
            base = times["baseline " + name]
            ratio = statistics.median(a / b for a, b in zip(times[name], base, strict=True))
            print(f"{name:<45} {statistics.median(base):9.3f} {ratio:7.3f}")
    if missed:
        print("missed:", ", ".join(missed))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
