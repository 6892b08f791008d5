"""Export speed: flow records written as JSON lines, CSV and Parquet, in rows per second.

    python bench/bench_export.py [--rows N] [--formats jsonl,csv,parquet] [CAPTURE]

The capture's enriched flow rows (default: pcaps/demo.pcap) are cycled until N rows
(default 200 000), in the chunks `burstwatch flows -o` writes, then written exactly as it
writes them (record formatting included). Only the writing is timed (after one small untimed write that loads
compiled code and libraries); reading and enrichment are not.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from burstwatch.cli.flows import EXPORT_CHUNK
from burstwatch.config import load_settings
from burstwatch.enrich.annotate import FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.outputs.ecs import flow_columns
from burstwatch.outputs.writers import write_records
from burstwatch.pipeline import RunStats, run_flows
from burstwatch.records import FlowBatch

ROOT = Path(__file__).resolve().parent.parent


def repeated(capture: str, rows: int) -> list[FlowBatch]:
    """The capture's flow rows in order, cycled until ``rows``, in the chunks of
    ``EXPORT_CHUNK`` records ``flows -o`` writes: a chunk holds as many distinct rows as the
    capture has, so per-distinct-value work costs what it costs on real traffic."""
    settings, geo = load_settings(), GeoDatabase.bundled()
    batches = [b for b in run_flows([capture], None, RunStats(), lambda: FlowAnnotator(geo, settings))
               if len(b)]
    whole = FlowBatch.concat(batches)
    order = np.resize(np.arange(len(whole.rows)), rows)
    return [whole.take(order[at:at + EXPORT_CHUNK]) for at in range(0, rows, EXPORT_CHUNK)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", nargs="?", default=str(ROOT / "pcaps" / "demo.pcap"))
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--formats", default="jsonl,csv,parquet")
    args = ap.parse_args()
    batches = repeated(args.capture, args.rows)
    n = sum(len(b) for b in batches)
    print(f"{n:,} flow rows from {args.capture}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            path = str(Path(tmp) / f"out.{fmt}")
            # Once untimed, on a few rows: a command has loaded its compiled code and its
            # libraries before it writes, so loading them is not the writer's speed.
            write_records("flow", [flow_columns(batches[0].take(np.arange(10)))], path)
            start = time.perf_counter()
            written = write_records("flow", (flow_columns(b) for b in batches), path)
            secs = time.perf_counter() - start
            assert written == n
            size = Path(path).stat().st_size
            print(f"{fmt:8} {secs:7.2f} s {n / secs:12,.0f} rows/s {size / 1e6:8.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
