"""The one module that knows every stage: capture -> decode -> flows -> features -> enrich.

Each input file is read with its own flow table (captures from different places or times
must not be merged into one flow). Everything streams: batches in, finished flow/window rows
out, so memory follows the number of active flows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from burstwatch.decode import decode
from burstwatch.decode.batch import STATUS_NAMES
from burstwatch.features import compute_features
from burstwatch.flows import FlowConfig, FlowOutput, FlowTable
from burstwatch.flows.sampling import SamplePolicy
from burstwatch.ingest import open_capture
from burstwatch.readahead import read_ahead
from burstwatch.records import FlowBatch, Progress, RunStats

Enricher = Callable[[FlowOutput], dict[str, np.ndarray]]


def run_flows(
    paths: list[str],
    config: FlowConfig | None = None,
    stats: RunStats | None = None,
    enricher_factory: Callable[[], Enricher] | None = None,
    progress: Progress | None = None,
    whole_samples: bool = False,
    on_features: Callable[[FlowBatch], None] | None = None,
) -> Iterator[FlowBatch]:
    """Stream finished flow/window rows, file by file. With an enricher, payload samples are
    kept as the encryption classifier's sample policy says, or whole with ``whole_samples``. ``on_features`` sees each batch as soon as
    its features exist, before enrichment (a scorer can start there, in another thread).

    With an enricher, reading, decoding and the flow table run one step ahead in a thread of
    their own, while this generator's caller enriches, matches and writes the rows before.
    """
    stats = stats if stats is not None else RunStats()
    sample = enricher_factory is not None
    enrich: Enricher | None = None
    current = -1
    policy = None
    if sample and not whole_samples:
        # Imported here: a flows-only run does not load the classifier (nor its libraries).
        from burstwatch.enrich.encryption.opening import SAMPLE_POLICY

        policy = SAMPLE_POLICY
    outputs = _table_outputs(paths, config, stats, sample, policy, progress)
    # Enrichment and what follows run behind the flow table; without them there is nothing
    # to overlap, and a second thread would only add its own malloc arena to the peak RSS.
    for index, name, out in read_ahead(outputs) if sample else outputs:
        if index != current:  # each file gets its own enricher, as it gets its own flow table
            current = index
            enrich = enricher_factory() if enricher_factory else None
        batch = _finish(name, out, enrich, stats, on_features)
        if batch is not None:
            yield batch


def _table_outputs(
    paths: list[str], config: FlowConfig | None, stats: RunStats, sample: bool,
    policy: SamplePolicy | None, progress: Progress | None,
) -> Iterator[tuple[int, str, FlowOutput]]:
    """(file index, source name, flow table output) for every batch of every file, in order."""
    for index, path in enumerate(paths):
        reader = open_capture(path)
        stats.files += 1
        table = FlowTable(config, sample_payloads=sample, sample_policy=policy)
        total = reader.size_hint
        try:
            for records in reader.batches():
                packets = decode(records)
                stats.packets += len(packets)
                stats.wire_bytes += int(packets.wire_len.sum(dtype=np.int64))
                stats.add_decode(np.bincount(packets.status, minlength=len(STATUS_NAMES)))
                yield index, reader.name, table.update(packets)
                if progress:
                    progress(reader.bytes_consumed, total)
            yield index, reader.name, table.flush()
        finally:
            stats.warnings.extend(reader.warnings)


def _finish(
    source: str, out: FlowOutput, enrich: Enricher | None, stats: RunStats,
    on_features: Callable[[FlowBatch], None] | None = None,
) -> FlowBatch | None:
    stats.bursts += len(out.bursts)
    if not len(out.rows) and not len(out.bursts):
        if enrich:
            enrich(out)  # it files the samples of flows that have no row yet
        return None
    kinds = out.rows.kind
    stats.flow_rows += int((kinds == 0).sum())
    stats.window_rows += int((kinds == 1).sum())
    batch = FlowBatch(source, out.rows, compute_features(out.rows), out.bursts, {})
    if on_features is not None and len(out.rows):
        on_features(batch)
    if enrich:
        batch.extra.update(enrich(out))
    return batch
