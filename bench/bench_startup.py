"""Start-up: wall time of whole `burstwatch` processes, warm (numba's cache filled).

    python bench/bench_startup.py [--runs N] [--check]

Each command is run N times, interleaved round by round with the others (so a burst of load
on a shared machine hits all of them alike), after one unmeasured run that fills numba's
cache, the page cache and Python's bytecode cache (as an installed package has: pip compiles
it at install, so PYTHONDONTWRITEBYTECODE is dropped for the children). Reported: median and minimum wall seconds, and the load average.
``--check`` exits 1 when a median misses its target (--version 0.15 s, scan of the demo
0.6 s).
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
COMMANDS: dict[str, tuple[list[str], float | None]] = {
    "--version": (["--version"], 0.15),
    "--help": (["--help"], None),
    "lookup 8.8.8.8": (["lookup", "8.8.8.8"], None),
    "rules lint rules": (["rules", "lint", "rules"], None),
    "scan pcaps/demo.pcap": (["scan", "pcaps/demo.pcap"], 0.6),
}


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "burstwatch", *argv], cwd=ROOT, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    for argv, _ in COMMANDS.values():
        wall(argv)  # fills numba's cache and the page cache
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, (argv, _) in COMMANDS.items():
            times[name].append(wall(argv))
    load = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {args.runs} runs each")
    print(f"{'command':<32} {'median s':>9} {'min s':>7} {'target s':>9}")
    missed = []
    for name, (_, target) in COMMANDS.items():
        med = statistics.median(times[name])
        print(f"{'burstwatch ' + name:<32} {med:9.3f} {min(times[name]):7.3f} "
              f"{'' if target is None else f'{target:.2f}':>9}")
        if target is not None and med > target:
            missed.append(name)
    if missed:
        print("missed:", ", ".join(missed))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
