"""The shards' batches of one step, as the one batch a single process would have made."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from burstwatch.features import FeatureMatrix
from burstwatch.flows.records import burst_order, row_order
from burstwatch.records import FlowBatch, RunStats


def merge_batches(parts: list[FlowBatch | None]) -> FlowBatch | None:
    """One batch from the shards' batches of the same step (rows of different flows, each
    already enriched), rows in ``row_order`` and bursts in ``burst_order`` as
    ``Pipeline.finish`` gives them; None when no shard emitted anything."""
    found = [p for p in parts if p is not None and (len(p.rows) or len(p.bursts))]
    if len(found) <= 1:
        return found[0] if found else None
    joined = FlowBatch.concat(found)
    ri, bi = row_order(joined.rows), burst_order(joined.bursts)
    return FlowBatch(
        joined.source, joined.rows.take(ri),
        FeatureMatrix(joined.features.values[ri], joined.features.names),
        joined.bursts.take(bi),
        {k: v[ri] for k, v in joined.extra.items()},
        {k: v[bi] for k, v in joined.burst_extra.items()},
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
