"""The one module that knows every stage: capture -> decode -> flows -> features -> enrich.

Each input file is read with its own flow table (captures from different places or times
must not be merged into one flow). Everything streams: batches in, finished flow/window rows
out, so memory follows the number of active flows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from burstwatch.decode import decode
from burstwatch.decode.batch import STATUS_NAMES
from burstwatch.features import FeatureMatrix, compute_features
from burstwatch.flows import BurstRows, FlowConfig, FlowOutput, FlowRows, FlowTable
from burstwatch.ingest import CaptureWarning, open_capture

Progress = Callable[[int, int], None]  # (bytes consumed so far, total bytes or 0 if unknown)


@dataclass
class RunStats:
    """Totals over a run, for headers, summaries and `info`-like reporting."""

    files: int = 0
    packets: int = 0
    wire_bytes: int = 0
    decode: dict[str, int] = field(default_factory=dict)
    flow_rows: int = 0
    window_rows: int = 0
    bursts: int = 0
    warnings: list[CaptureWarning] = field(default_factory=list)

    def add_decode(self, counts: np.ndarray) -> None:
        for i, c in enumerate(counts.tolist()):
            if c:
                self.decode[STATUS_NAMES[i]] = self.decode.get(STATUS_NAMES[i], 0) + c


@dataclass
class FlowBatch:
    """Finished flow/window rows with their features (and, once enriched, their context)."""

    source: str
    rows: FlowRows
    features: FeatureMatrix
    bursts: BurstRows
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx: np.ndarray) -> FlowBatch:
        """The rows ``idx`` (bursts are kept whole: they are not per row)."""
        return FlowBatch(
            self.source,
            self.rows.take(idx),
            FeatureMatrix(self.features.values[idx], self.features.names),
            self.bursts,
            {k: v[idx] for k, v in self.extra.items()},
        )


Enricher = Callable[[FlowOutput], dict[str, np.ndarray]]


def run_flows(
    paths: list[str],
    config: FlowConfig | None = None,
    stats: RunStats | None = None,
    enricher_factory: Callable[[], Enricher] | None = None,
    progress: Progress | None = None,
) -> Iterator[FlowBatch]:
    """Stream finished flow/window rows, file by file."""
    stats = stats if stats is not None else RunStats()
    for path in paths:
        reader = open_capture(path)
        stats.files += 1
        enrich = enricher_factory() if enricher_factory else None
        table = FlowTable(config, sample_payloads=enrich is not None)
        total = reader.size_hint
        try:
            for records in reader.batches():
                packets = decode(records)
                stats.packets += len(packets)
                stats.wire_bytes += int(packets.wire_len.sum(dtype=np.int64))
                stats.add_decode(np.bincount(packets.status, minlength=len(STATUS_NAMES)))
                out = table.update(packets)
                batch = _finish(reader.name, out, enrich, stats)
                if batch is not None:
                    yield batch
                if progress:
                    progress(reader.bytes_consumed, total)
            batch = _finish(reader.name, table.flush(), enrich, stats)
            if batch is not None:
                yield batch
        finally:
            stats.warnings.extend(reader.warnings)


def _finish(
    source: str, out: FlowOutput, enrich: Enricher | None, stats: RunStats
) -> FlowBatch | None:
    extra = enrich(out) if enrich else {}
    stats.bursts += len(out.bursts)
    if not len(out.rows) and not len(out.bursts):
        return None
    kinds = out.rows.kind
    stats.flow_rows += int((kinds == 0).sum())
    stats.window_rows += int((kinds == 1).sum())
    return FlowBatch(source, out.rows, compute_features(out.rows), out.bursts, extra)
