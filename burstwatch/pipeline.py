"""The one module that knows every stage: decode -> flow table -> enrich -> features -> ledger.

``Pipeline`` is that chain for one timeline of packets; ``scan``, ``flows``, ``train``,
``live`` and the warm-up all drive one. It has two halves: ``table_step`` (decode and the
flow table: compiled kernels that release the GIL) and ``finish`` (features, enrichment, the
ledger: mostly Python), so ``run_flows`` can run the first half one batch ahead in a thread of
its own. Everything streams: batches in, finished flow/window rows out, so memory follows
the number of active flows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from burstwatch.decode import decode
from burstwatch.decode.batch import STATUS_NAMES
from burstwatch.enrich.nets import NetSet
from burstwatch.features import compute_features
from burstwatch.flows import BurstRows, FlowConfig, FlowOutput, FlowTable, PayloadSamples
from burstwatch.flows.sampling import SamplePolicy
from burstwatch.ingest import RecordBatch, open_capture
from burstwatch.readahead import read_ahead
from burstwatch.records import FlowBatch, Progress, RunStats

Columns = dict[str, np.ndarray]
Enricher = Callable[[FlowOutput], Columns]


class BatchSink(Protocol):
    """Where finished batches are kept (the ledger)."""

    def append(self, batch: FlowBatch) -> None: ...


def sample_policy(enriched: bool, whole_samples: bool) -> SamplePolicy | None:
    """The payload sample policy for a run: the classifier's, unless samples are kept whole."""
    if not enriched or whole_samples:
        return None
    # Imported here: a flows-only run does not load the classifier (nor its libraries).
    from burstwatch.enrich.encryption.opening import SAMPLE_POLICY

    return SAMPLE_POLICY


class Pipeline:
    """decode -> flow table -> enrich -> features -> ledger, for one timeline of packets."""

    def __init__(
        self, source: str, config: FlowConfig | None = None, enricher: Enricher | None = None,
        ledger: BatchSink | None = None, stats: RunStats | None = None,
        local: NetSet | None = None, whole_samples: bool = False,
        on_features: Callable[[FlowBatch], None] | None = None,
    ) -> None:
        """``local``: the networks whose hosts are the local side (``flows.roles``).
        ``on_features`` sees each batch as soon as its features exist, before enrichment (a
        scorer can start there, in another thread)."""
        self.source = source
        self.enricher = enricher
        self.ledger = ledger
        self.stats = stats if stats is not None else RunStats()
        self.on_features = on_features
        self.table = FlowTable(
            config, sample_payloads=enricher is not None,
            sample_policy=sample_policy(enricher is not None, whole_samples), local=local,
        )

    # ---- the first half: decode and the flow table ----
    def table_step(self, records: RecordBatch) -> FlowOutput:
        packets = decode(records)
        stats = self.stats
        stats.packets += len(packets)
        stats.wire_bytes += int(packets.wire_len.sum(dtype=np.int64))
        stats.add_decode(np.bincount(packets.status, minlength=len(STATUS_NAMES)))
        return self.table.update(packets)

    # ---- the second half: features, enrichment, ledger ----
    def finish(self, out: FlowOutput) -> FlowBatch | None:
        """Features and context for what the table emitted; kept in the ledger. None when the
        step emitted nothing."""
        stats = self.stats
        stats.bursts += len(out.bursts)
        enrich = self.enricher
        if not len(out.rows) and not len(out.bursts):
            if enrich is not None:
                enrich(out)  # it files the samples of flows that have no row yet
            return None
        kinds = out.rows.kind
        stats.flow_rows += int((kinds == 0).sum())
        stats.window_rows += int((kinds == 1).sum())
        batch = FlowBatch(self.source, out.rows, compute_features(out.rows), out.bursts)
        if self.on_features is not None and len(out.rows):
            self.on_features(batch)
        if enrich is not None:
            batch.extra.update(enrich(out))
            burst_columns = getattr(enrich, "burst_columns", None)
            if burst_columns is not None and len(out.bursts):
                batch.burst_extra.update(burst_columns(out.bursts))
        if self.ledger is not None:
            self.ledger.append(batch)
        return batch

    # ---- both halves, for callers that do not overlap them ----
    def step(self, records: RecordBatch) -> FlowBatch | None:
        return self.finish(self.table_step(records))

    def advance(self, now_ns: int) -> FlowBatch | None:
        """Move the clock without packets (a quiet link): flows may expire, bursts end."""
        return self.finish(self.table.advance(now_ns))

    def flush(self) -> FlowBatch | None:
        """End every open flow (end of input)."""
        return self.finish(self.table.flush())

    def snapshot(self) -> FlowBatch | None:
        """The current window of every open flow, enriched, without closing anything and
        without keeping it in the ledger (live capture judges these between windows)."""
        rows = self.table.snapshot()
        if not len(rows):
            return None
        out = FlowOutput(rows, BurstRows.empty(), PayloadSamples.empty())
        batch = FlowBatch(self.source, rows, compute_features(rows), out.bursts)
        if self.enricher is not None:
            batch.extra.update(self.enricher(out))
        return batch


def run_flows(
    paths: list[str],
    config: FlowConfig | None = None,
    stats: RunStats | None = None,
    enricher_factory: Callable[[], Enricher] | None = None,
    progress: Progress | None = None,
    whole_samples: bool = False,
    on_features: Callable[[FlowBatch], None] | None = None,
    local: NetSet | None = None,
    ledger: BatchSink | None = None,
) -> Iterator[FlowBatch]:
    """Stream finished flow/window rows of the captures ``paths``, each file with a pipeline
    of its own. With an enricher, reading, decoding and the flow table run one step ahead in
    a thread of their own, while this generator's caller enriches, matches and writes the
    rows before.
    """
    stats = stats if stats is not None else RunStats()

    def make(name: str) -> Pipeline:
        enrich = enricher_factory() if enricher_factory is not None else None
        return Pipeline(name, config, enrich, ledger, stats, local, whole_samples, on_features)

    steps = _table_steps(paths, make, stats, progress)
    # Enrichment and what follows run behind the flow table; without them there is nothing
    # to overlap, and a second thread would only add its own malloc arena to the peak RSS.
    for pipe, out in read_ahead(steps) if enricher_factory is not None else steps:
        batch = pipe.finish(out)
        if batch is not None:
            yield batch


def _table_steps(
    paths: list[str], make: Callable[[str], Pipeline], stats: RunStats, progress: Progress | None,
) -> Iterator[tuple[Pipeline, FlowOutput]]:
    """(pipeline, flow table output) for every batch of every file, in order."""
    for path in paths:
        reader = open_capture(path)
        stats.files += 1
        pipe = make(reader.name)
        total = reader.size_hint
        try:
            for records in reader.batches():
                yield pipe, pipe.table_step(records)
                if progress:
                    progress(reader.bytes_consumed, total)
            yield pipe, pipe.table.flush()
        finally:
            stats.warnings.extend(reader.warnings)
