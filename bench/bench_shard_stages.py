"""CPU seconds of each stage of one `-j` shard, run in this process: what is fixed per worker.

    python bench/bench_shard_stages.py CAPTURE [--shards 1,4]

Runs shard 0 of N (``parallel.local.run_shard``, with the default enrichment) for each N, after
the fork server's warm-up (``parallel.preload``), and times the stages with
``time.process_time`` around them: decoding, choosing the shard's packets, the flow table,
enrichment, features. What is left is reading (walking the capture's records) and the loop
itself. A stage whose time does not shrink with N is paid by every worker.
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Callable
from typing import Any

import burstwatch.parallel.preload  # noqa: F401  (the kernels loaded, as in a worker)
import burstwatch.pipeline as pipeline
from burstwatch.config.settings import Settings
from burstwatch.decode.decoder import Decoder
from burstwatch.enrich.annotate import AnnotatorFactory, FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows.table import FlowTable
from burstwatch.parallel.local import ShardJob, run_shard

SPENT: collections.Counter[str] = collections.Counter()


def timed(owner: Any, name: str, label: str) -> None:
    inner: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kw: Any) -> Any:
        t = time.process_time()
        try:
            return inner(*args, **kw)
        finally:
            SPENT[label] += time.process_time() - t

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--shards", default="1,4")
    args = ap.parse_args()
    for owner, name, label in ((Decoder, "__call__", "decode"),
                               (pipeline, "keep_shard", "choose shard"),
                               (FlowTable, "update", "flow table"),
                               (FlowTable, "flush", "flow table"),
                               (FlowAnnotator, "__call__", "enrich"),
                               (FlowAnnotator, "burst_columns", "enrich"),
                               (pipeline, "compute_features", "features"),
                               (pipeline, "emission_order", "features")):
        timed(owner, name, label)
    factory = AnnotatorFactory(GeoDatabase.bundled(), Settings())
    for n in (int(x) for x in args.shards.split(",")):
        SPENT.clear()
        t = time.process_time()
        run_shard(ShardJob([args.capture], 0, n, None, factory, None, False), lambda msg: None)
        total = time.process_time() - t
        parts = " | ".join(f"{k} {v:.2f}" for k, v in sorted(SPENT.items()))
        print(f"shard 0 of {n}: {total:.2f} s CPU | {parts} | "
              f"reading and the rest {total - sum(SPENT.values()):.2f}", flush=True)


if __name__ == "__main__":
    main()
