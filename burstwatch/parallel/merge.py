"""The shards' batches of one step, as the one batch a single process would have made."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from burstwatch.features import FeatureMatrix
from burstwatch.flows import BurstRows, FlowRows
from burstwatch.flows.records import burst_order, row_order
from burstwatch.records import FlowBatch, RunStats


def _columns(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def merge_batches(parts: list[FlowBatch | None]) -> FlowBatch | None:
    """One batch from the shards' batches of the same step (rows of different flows, each
    already enriched), rows in ``row_order`` and bursts in ``burst_order`` as
    ``Pipeline.finish`` gives them; None when no shard emitted anything."""
    found = [p for p in parts if p is not None and (len(p.rows) or len(p.bursts))]
    if len(found) <= 1:
        return found[0] if found else None
    with_rows = [p for p in found if len(p.rows)]
    with_bursts = [p for p in found if len(p.bursts)]
    rows = FlowRows.concat([p.rows for p in with_rows])
    bursts = BurstRows.concat([p.bursts for p in with_bursts])
    names = found[0].features.names
    values = (np.concatenate([p.features.values for p in with_rows]) if with_rows
              else found[0].features.values)
    extra = _columns([p.extra for p in with_rows])
    burst_extra = _columns([p.burst_extra for p in with_bursts])
    ri, bi = row_order(rows), burst_order(bursts)
    return FlowBatch(
        found[0].source, rows.take(ri), FeatureMatrix(values[ri], names), bursts.take(bi),
        {k: v[ri] for k, v in extra.items()}, {k: v[bi] for k, v in burst_extra.items()},
    )


def merge_steps(steps: Iterable[list[FlowBatch | None]], stats: RunStats) -> Iterator[FlowBatch]:
    """The merged batch of every step that emitted something, counted in ``stats``."""
    for parts in steps:
        batch = merge_batches(parts)
        if batch is not None:
            stats.add_rows(batch.rows, batch.bursts)
            yield batch


def add_totals(stats: RunStats, workers: list[RunStats], enrich_counts: list[Any],
               enricher_factory: Callable[[], Any] | None) -> None:
    """The run's totals from the workers': what every worker counted alike (it read every
    packet) from the first one; the enrichment counts of all of them to the enricher
    factory's ``absorb``, if it has one."""
    first = workers[0]
    stats.files += first.files
    stats.packets += first.packets
    stats.wire_bytes += first.wire_bytes
    for mine, theirs in ((stats.decode, first.decode), (stats.encap, first.encap),
                         (stats.undecoded, first.undecoded),
                         (stats.reassembly, first.reassembly)):
        for name, n in theirs.items():
            mine[name] = mine.get(name, 0) + n
    stats.warnings.extend(first.warnings)
    # Each shard's table has its own ceiling, so evictions are each worker's own.
    stats.flows_evicted += sum(w.flows_evicted for w in workers)
    absorb = getattr(enricher_factory, "absorb", None)
    if absorb is not None:
        for counts in enrich_counts:
            if counts is not None:
                absorb(counts)
