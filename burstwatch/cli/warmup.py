"""Compile (or load from numba's cache) every kernel before a live capture opens its ring.

The first call of a numba kernel compiles it, which on a fresh install takes seconds; on a
span port those seconds would fill the ring and drop packets. Running a few generated packets
through the whole pipeline first moves that cost to before the capture starts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from burstwatch.config import Settings
from burstwatch.decode import decode
from burstwatch.enrich.annotate import EnrichStats, FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows import FlowConfig, FlowTable
from burstwatch.flows.roles import local_nets
from burstwatch.ingest.records import RecordBatch
from burstwatch.pipeline import Pipeline
from burstwatch.synth.scenarios import run_scenario

LINKTYPE_RAW = 101


def warm_up_records(seed: int = 0) -> RecordBatch:
    """A short quiet-then-burst TLS session as raw-IP records (no link header needed)."""
    session = run_scenario("exfil_tls", seed, quiet_s=1, bursts=2, gap_s=1,
                           burst_bytes=40_000, rate=1e6, tail_s=1)
    frames = [bytes(p.data) for p in session.packets()]
    ts = np.array([p.ts_ns for p in session.packets()], np.int64)
    lengths = np.array([len(f) for f in frames], np.uint32)
    offsets = np.zeros(len(frames), np.int64)
    offsets[1:] = np.cumsum(lengths[:-1], dtype=np.int64)
    return RecordBatch(
        data=np.frombuffer(b"".join(frames), np.uint8),
        offset=offsets, caplen=lengths, wirelen=lengths.copy(), ts_ns=ts,
        linktype=np.full(len(frames), LINKTYPE_RAW, np.uint16),
        iface=np.zeros(len(frames), np.uint16), file_offset=offsets.copy(),
    )


def warm_up(config: FlowConfig, geo: GeoDatabase, settings: Settings, detector: Any) -> int:
    """Run the pipeline once on generated packets; returns the rows evaluated (for tests)."""
    pipe = Pipeline("warm-up", config, FlowAnnotator(geo, settings, EnrichStats()),
                    local=local_nets(settings.internal_nets))
    records = warm_up_records()
    rows = 0
    for batch in (pipe.step(records), pipe.advance(int(records.ts_ns[-1]) + 1_000_000_000),
                  pipe.snapshot(), pipe.flush()):
        if batch is not None and len(batch):
            rows += len(batch)
            list(detector(batch))
    # Eviction runs only at the table's ceiling, which a flood reaches at the worst moment:
    # a table with room for one flow, given a second, runs it now.
    table = FlowTable(replace(config, flow_memory_mb=FlowTable.FLOW_BYTES / 2**20),
                      sample_payloads=False)
    for seed in (0, 1):
        table.update(decode(warm_up_records(seed)))
    warm_up_capture_kernels()
    return rows


def warm_up_capture_kernels() -> None:
    """The ring's walk and the pcap writer's packing, on nothing, with the argument types
    their callers give them (``LiveCapture._read_ring``, ``RotatingPcapWriter.write``)."""
    from burstwatch.ingest.live import walk_blocks
    from burstwatch.outputs.capture import _pack

    none = np.zeros(0, np.int64)
    u32 = np.zeros(0, np.uint32)
    walk_blocks(np.zeros(0, np.uint8), none, none.copy(), False, 0, none.copy(), u32,
                u32.copy(), none.copy(), none.copy())
    _pack(np.zeros(0, np.uint8), none, u32, u32.copy(), none.copy(), np.zeros(0, np.uint8))
