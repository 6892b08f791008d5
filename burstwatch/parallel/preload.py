"""What the ``-j`` workers' fork server loads once, so that a worker starts with nothing to load.

A worker started cold spends about 1.3 s of CPU importing the package and loading its numba
kernels from the cache before it reads a packet. The fork server (``parallel.plan``)
imports this module once per run: the pipeline's modules and the kernels built ahead of time
(where the command has that build: ``aot.ready``), then a short generated capture read from
a file through one shard of the pipeline with enrichment, which loads (or, without a build,
compiles or loads from numba's cache) every kernel a shard's run calls. Each worker forked from the server
inherits all of it. Nothing here keeps state a run could see: the warm-up's pipeline, table
and annotator are dropped, and flow ids, clocks and counts belong to each run's own objects.
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
from pathlib import Path

from burstwatch.aot import ready
from burstwatch.config.settings import Settings
from burstwatch.enrich.annotate import FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.ingest.timeline import Timeline
from burstwatch.pipeline import Pipeline
from burstwatch.synth import Endpoint, run_scenario, write_capture


def warm_up() -> int:
    """One shard of a two-worker run over a generated capture file; returns its rows."""
    session = run_scenario("exfil_tls", 0, quiet_s=1, bursts=2, gap_s=1, burst_bytes=40_000,
                           rate=1e6, tail_s=1, client=Endpoint("10.0.0.10"))
    rows = 0
    with tempfile.TemporaryDirectory(prefix="burstwatch-warm-") as folder:
        path = str(Path(folder) / "warm.pcap")
        write_capture(path, session.packets())
        for shard in (0, 1):  # one of the two holds the session, the other only the clock
            pipe = Pipeline("warm-up", None, FlowAnnotator(GeoDatabase.bundled(), Settings()),
                            shard=(shard, 2))
            timeline = Timeline([path])
            try:
                outs = [pipe.table_step(records) for records in timeline.batches()]
            finally:
                timeline.close()
            for out in [*outs, pipe.table.flush()]:
                batch = pipe.finish(out)
                rows += len(batch.rows) if batch is not None else 0
    return rows


# Only a head start: if it fails, each worker loads what it needs itself.
with contextlib.suppress(Exception):
    ready(build_later=False)  # the kernels built ahead of time, where the command has them
    warm_up()
# What is loaded now lives as long as the server: the collector leaves it alone, so a forked
# worker's collections do not write to (and copy) the pages it shares with the server.
gc.collect()
gc.freeze()
