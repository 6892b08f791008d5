"""End-to-end throughput and peak memory: flows, flows + enrichment, and scan, against peers.

    python bench/bench_pipeline.py [--packets N | CAPTURE] [--runs R] [--systems a,b,...]
    python bench/bench_pipeline.py CAPTURE --rss-check 256M --systems flows
    python bench/bench_pipeline.py CAPTURE --systems flows,enrich,scan --rounds 3 --overhead-check 15

Systems, each in its own child process (so each peak RSS is its own):
  flows   read -> decode -> flows -> bursts -> features (burstwatch.pipeline.run_flows)
  enrich  the same plus encryption verdicts, geography, scopes and allow-lists
  scan-rules  the same plus the shipped flow rules (no ledger: what scan ran before it had one)
  scan-ledger the same plus every burst and flow row into an in-memory ledger (what the
          ledger alone costs)
  scan    what `burstwatch scan` runs: flow rules, the ledger, then the conversations judged
          (the ledger query, conversation rules and the shipped conversation score)
  dpkt    a plain dpkt loop decoding every packet to its 5-tuple and payload length
  nfstream NFStreamer(source, statistical_analysis=True), when nfstream is installed
Ratios are against dpkt and nfstream from the same invocation, on the same file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import os  # noqa: E402

from bench_ingest import parse_size, peak_rss_bytes, run_dpkt  # noqa: E402

ALL = ("flows", "enrich", "scan-rules", "scan-ledger", "scan", "dpkt", "nfstream")


def _flows(path: str, with_enrich: bool, with_scan: bool, with_ledger: bool = True,
           with_judge: bool = True) -> tuple[int, int]:
    from burstwatch.alerts.detect import Detector
    from burstwatch.alerts.frame import rule_catalog
    from burstwatch.config import load_settings
    from burstwatch.enrich.annotate import FlowAnnotator
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.pipeline import RunStats, run_flows
    from burstwatch.rules import load_rules
    from burstwatch.rules_path import bundled_rules_dir

    stats = RunStats()
    factory = None
    detector = None
    rules = []
    settings = load_settings()
    if with_enrich or with_scan:
        geo = GeoDatabase.bundled()
        factory = lambda: FlowAnnotator(geo, settings)  # noqa: E731
    if with_scan:
        rules = load_rules([str(bundled_rules_dir())], rule_catalog())
        detector = Detector(rules)
    ledger = None
    if with_scan and with_ledger:
        from burstwatch.ledger import Ledger

        ledger = Ledger.open(None)
        ledger.write_behind()  # as `burstwatch scan` does
    rows = 0
    alerts = []
    for batch in run_flows([path], None, stats, factory, ledger=ledger):
        rows += len(batch)
        if detector is not None:
            alerts.extend(detector(batch))
    if ledger is not None and not with_judge:
        ledger.sync()
        ledger.close()
    elif ledger is not None:
        from burstwatch.cli.scoring import conversation_scorer_from_args
        from burstwatch.conversations.judge import Judge, judge_ledger
        from burstwatch.ledger import DAY_NS

        scorer = conversation_scorer_from_args(argparse.Namespace(no_score=False, model=None))[0]
        judge_ledger(Judge(rules, settings, scorer), ledger, alerts, DAY_NS)
        ledger.close()
    return stats.packets, rows


def _nfstream(path: str) -> tuple[int, int]:
    from nfstream import NFStreamer  # type: ignore[import-not-found]

    packets = flows = 0
    for flow in NFStreamer(source=path, statistical_analysis=True):
        flows += 1
        packets += flow.bidirectional_packets
    return packets, flows


RUNNERS = {
    "flows": lambda p: _flows(p, False, False),
    "enrich": lambda p: _flows(p, True, False),
    "scan": lambda p: _flows(p, True, True),
    "scan-rules": lambda p: _flows(p, True, True, with_ledger=False),
    "scan-ledger": lambda p: _flows(p, True, True, with_judge=False),
    "dpkt": run_dpkt,
    "nfstream": _nfstream,
}


def available(system: str) -> bool:
    if system != "nfstream":
        return True
    try:
        import nfstream  # type: ignore[import-not-found]  # noqa: F401
    except Exception:
        return False
    return True


def worker(system: str, path: str, runs: int) -> None:
    """Child process: warm up (compile, load data) on a tiny prefix, then time ``runs`` passes."""
    if system in ("flows", "enrich", "scan", "scan-rules", "scan-ledger"):  # as cli/main.py does
        import gc

        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
    if system in ("flows", "enrich", "scan", "scan-rules", "scan-ledger"):
        from burstwatch.pipeline import run_flows

        for _ in run_flows([str(Path(__file__).resolve().parent.parent / "pcaps" / "demo.pcap")]):
            pass
        if system != "flows":
            from burstwatch.enrich.geo import GeoDatabase

            GeoDatabase.bundled()
        if system.startswith("scan"):  # rules, DuckDB and the conversation model, once
            RUNNERS[system](str(Path(__file__).resolve().parent.parent / "pcaps" / "demo.pcap"))
    startup = peak_rss_bytes()
    times, result = [], (0, 0)
    for _ in range(runs):
        t0 = time.perf_counter()
        result = RUNNERS[system](path)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"system": system, "packets": result[0], "units": result[1], "times": times,
                      "peak_rss": peak_rss_bytes(), "startup_rss": startup}))


def measure(system: str, path: Path, runs: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--worker", system, str(path), "--runs", str(runs)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{system} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def table(results: list[dict[str, Any]], size: int) -> str:
    best = {r["system"]: min(r["times"]) for r in results}
    lines = ["| system | packets | best s | packets/s | MB/s | peak RSS MiB | startup RSS MiB | vs dpkt | vs nfstream | vs flows |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        t = best[r["system"]]

        def vs(base: str, t: float = t, name: str = r["system"]) -> str:
            return f"{best[base] / t:.1f}x" if base in best and base != name else "-"

        over = (f"+{(t / best['flows'] - 1) * 100:.0f}%"
                if "flows" in best and r["system"] in ("enrich", "scan", "scan-rules", "scan-ledger") else "-")
        lines.append(f"| {r['system']} | {r['packets']:,} | {t:.3f} | {r['packets'] / t / 1e6:.2f} M | "
                     f"{size / t / 1e6:.0f} | {r['peak_rss'] / 2**20:.0f} | {r['startup_rss'] / 2**20:.0f} | "
                     f"{vs('dpkt')} | {vs('nfstream')} | {over} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture", nargs="?")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--systems", default=",".join(ALL))
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure the systems in turn this many times (best of all rounds): "
                         "drift on a shared machine then hits every system alike")
    ap.add_argument("--overhead-check", type=float, metavar="PCT",
                    help="exit 1 if enrich, scan-rules or scan is more than PCT %% slower than flows")
    ap.add_argument("--rss-check", type=parse_size, metavar="BYTES",
                    help="exit 1 if any measured system's peak RSS exceeds BYTES")
    ap.add_argument("--worker", choices=ALL, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.capture, args.runs)
        return 0
    systems = [s for s in args.systems.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="bw-bench-") as tmp:
        path = Path(args.capture) if args.capture else Path(tmp) / "bench.pcap"
        if not args.capture:
            # In a child: Linux carries a parent's peak RSS into the children it starts.
            ingest = Path(__file__).resolve().parent / "bench_ingest.py"
            who = subprocess.run(
                [sys.executable, str(ingest), "--generate-only", "--packets", str(args.packets),
                 "--seed", str(args.seed), "--out", str(path)],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
            print(f"generated {args.packets:,} packets with {who}", flush=True)
        size = path.stat().st_size
        merged: dict[str, dict[str, Any]] = {}
        for _ in range(args.rounds):
            for s in systems:
                if not available(s):
                    print(f"{s}: not installed, skipped", flush=True)
                    continue
                r = measure(s, path, args.runs)
                print(f"{s}: {min(r['times']):.2f} s, peak RSS {r['peak_rss'] / 2**20:.0f} MiB", flush=True)
                if s in merged:
                    m = merged[s]
                    m["times"] += r["times"]
                    m["peak_rss"] = max(m["peak_rss"], r["peak_rss"])
                    m["startup_rss"] = max(m["startup_rss"], r["startup_rss"])
                else:
                    merged[s] = r
        results = list(merged.values())
        print(f"\ncapture: {path.name}, {size / 1e9:.2f} GB, {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.2f}\n")
        print(table(results, size))
        if args.overhead_check is not None and "flows" in merged:
            base = min(merged["flows"]["times"])
            slow = [f"{r['system']} +{(min(r['times']) / base - 1) * 100:.0f}%" for r in results
                    if r["system"] in ("enrich", "scan-rules", "scan-ledger", "scan")
                    and min(r["times"]) > base * (1 + args.overhead_check / 100)]
            if slow:
                print(f"over the flows benchmark by more than {args.overhead_check:g}%: {', '.join(slow)}")
                return 1
        if args.rss_check is not None:
            over = [r["system"] for r in results if r["peak_rss"] > args.rss_check]
            if over:
                print(f"peak RSS above {args.rss_check / 2**20:.0f} MiB: {', '.join(over)}")
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
