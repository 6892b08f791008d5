"""`scan -j N`: wall time, CPU time per worker and peak memory, and a projection to more cores.

    python bench/bench_parallel.py CAPTURE [--jobs 1,2,4] [--rounds 3] [--rss-check]

Each run is `burstwatch scan CAPTURE -j N --format jsonl` in a child process of its own. The
jobs of one round run back to back, in an order that alternates between rounds, so a busy
machine's load falls on all of them alike; medians over rounds are reported with the load
average before each round. Wall-time efficiency is T(1) / (N * T(N)).

CPU time is measured too (it does not depend on what else runs on the machine): the parent's
(ledger, rules, judgement, merging) and the workers' total, which includes the fork server the
workers are forked from (it reaps them; the runner stops it to collect its times). The fork
server's own CPU (importing the package, loading the kernels) is measured on its own, as
``python -c "import burstwatch.parallel.preload"``, and taken off to give the CPU per worker.
Every worker decodes every packet and runs the flow table and enrichment for its share, so a
worker's CPU time is modelled as c(N) = a + b / N, fitted to the two largest N measured. On a
machine with K free cores the fork server starts first, then the workers run in parallel and
the parent alongside them, so a run takes about max(server + c(K), parent CPU); the projection
gives packets per second from that. It assumes the capture is in the page cache (or storage
keeps up), memory bandwidth is not the limit, and the per-worker costs stay as measured.

Python must be able to keep its bytecode cache (an installed package has it; with
``PYTHONDONTWRITEBYTECODE=1`` every process compiles the package's sources again, which
inflates every start-up figure).

``--rss-check``: exit 1 unless every worker's peak resident set stays within that of the
``-j 1`` run (memory is bounded per worker as it is for one process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RUNNER = r"""
import json, resource, sys, time
from burstwatch.cli.main import main
if sys.argv[4] == "spawn":  # workers started cold, each importing the package (for comparison)
    import multiprocessing
    import burstwatch.parallel.local as local
    import burstwatch.parallel.plan as plan
    local.worker_context = lambda: multiprocessing.get_context("spawn")
    plan.start_fork_server = lambda *args: None
t0 = time.perf_counter()
code = main(["scan", sys.argv[1], "-j", sys.argv[2], "--format", "jsonl", "--alerts", sys.argv[3]])
wall = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF)
from multiprocessing import forkserver
server = forkserver._forkserver
if server._forkserver_pid is not None:  # its time and its workers' (it reaps them) count once it ends
    server._stop()
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": int(code), "wall": wall, "parent_cpu": me.ru_utime + me.ru_stime,
                  "workers_cpu": kids.ru_utime + kids.ru_stime,
                  "parent_rss": me.ru_maxrss * 1024, "worker_rss": kids.ru_maxrss * 1024}),
      file=sys.stderr)
"""


def run_once(capture: str, jobs: int, alerts: Path, start: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", RUNNER, capture, str(jobs), str(alerts), start],
                          capture_output=True, text=True, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(last)
    result["packets"] = next(int(w.replace(",", "")) for line in proc.stderr.splitlines()
                             if line.startswith("summary:") for w in [line.split()[1]])
    return result


def server_cpu() -> float:
    """CPU seconds of what the fork server does before it forks a worker."""
    code = ("import resource, burstwatch.parallel.preload; "
            "r = resource.getrusage(resource.RUSAGE_SELF); print(r.ru_utime + r.ru_stime)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--jobs", default="1,2,4")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--project", type=int, default=16, help="cores to project to")
    ap.add_argument("--start", choices=("forkserver", "spawn"), default="forkserver",
                    help="how workers start: forked from the preloaded server (as scan does), "
                         "or spawned cold (the earlier scheme, for comparison)")
    ap.add_argument("--rss-check", action="store_true",
                    help="fail unless each worker's peak RSS is within the -j 1 run's")
    args = ap.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    runs: dict[int, list[dict[str, Any]]] = {j: [] for j in jobs}
    alerts: dict[int, str] = {}
    servers: list[float] = []
    for r in range(args.rounds):
        load = os.getloadavg()[0]
        if args.start == "forkserver":
            servers.append(server_cpu())
        for j in (jobs if r % 2 == 0 else jobs[::-1]):
            out = Path(f"/tmp/bench_parallel_alerts_{os.getpid()}_{j}.jsonl")
            res = run_once(args.capture, j, out, args.start)
            res["load"] = load
            runs[j].append(res)
            alerts[j] = out.read_text()
            out.unlink()
            print(f"round {r + 1} -j {j}: {res['wall']:.1f} s wall, parent CPU "
                  f"{res['parent_cpu']:.1f} s, workers CPU {res['workers_cpu']:.1f} s, "
                  f"load {load:.1f}", flush=True)
    same = len(set(alerts.values())) == 1
    packets = runs[jobs[0]][0]["packets"]
    med = {j: {k: statistics.median(x[k] for x in runs[j])
               for k in ("wall", "parent_cpu", "workers_cpu", "parent_rss", "worker_rss")}
           for j in jobs}
    t1 = med[1]["wall"] if 1 in med else None
    server = statistics.median(servers) if servers else 0.0
    print(f"\n{packets:,} packets, {args.rounds} rounds, load before rounds: "
          + ", ".join(f"{x['load']:.1f}" for x in runs[jobs[0]])
          + f"; workers started by {args.start}"
          + (f", fork server CPU {server:.1f} s (median)" if servers else ""))
    print("| -j | wall (median) | packets/s | efficiency | parent CPU | CPU per worker "
          "| all CPU | peak RSS parent / worker |")
    print("|---|---|---|---|---|---|---|---|")

    def per_worker(j: int) -> float:
        return (med[j]["workers_cpu"] - server) / j if j > 1 else med[j]["parent_cpu"]

    for j in jobs:
        m = med[j]
        eff = f"{t1 / (j * m['wall']):.0%}" if t1 else "-"
        print(f"| {j} | {m['wall']:.1f} s | {packets / m['wall'] / 1e3:.0f} k | {eff} "
              f"| {m['parent_cpu']:.1f} s | {per_worker(j):.1f} s | "
              f"{m['parent_cpu'] + m['workers_cpu']:.1f} s | "
              f"{m['parent_rss'] / 2**20:.0f} / {m['worker_rss'] / 2**20:.0f} MiB |")
    sharded = sorted(j for j in jobs if j > 1)
    if len(sharded) >= 2:
        n1, n2 = sharded[-2], sharded[-1]
        c1, c2 = per_worker(n1), per_worker(n2)
        b = (c1 - c2) / (1 / n1 - 1 / n2)
        a = c1 - b / n1
        k = args.project
        parent = statistics.median(med[j]["parent_cpu"] for j in sharded)
        wall = max(server + a + b / k, parent)
        print(f"\nper worker CPU c(N) = {a:.1f} s + {b:.1f} s / N (fitted to -j {n1}, -j {n2}); "
              f"parent CPU {parent:.1f} s; fork server {server:.1f} s")
        print(f"projected to {k} free cores: about {wall:.1f} s, {packets / wall / 1e6:.2f} M "
              f"packets/s ({packets / wall / k / 1e3:.0f} k packets/s per core)")
    print(f"\nalerts identical across -j: {same}")
    bounded = True
    if args.rss_check and 1 in med:
        worst = max(x["worker_rss"] for j in jobs if j > 1 for x in runs[j])
        bounded = worst <= min(x["parent_rss"] for x in runs[1])
        print(f"largest worker peak RSS {worst / 2**20:.0f} MiB, within the -j 1 run's: {bounded}")
    return 0 if same and bounded else 1


if __name__ == "__main__":
    t = time.time()
    code = main()
    print(f"(bench took {time.time() - t:.0f} s)")
    sys.exit(code)
