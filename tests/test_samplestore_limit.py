"""The sample store's ceiling: what passes it is dropped and counted, and a flow keeps only
its first samples, never a set with a gap."""

from __future__ import annotations

import numpy as np

from burstwatch.enrich.samplestore import SampleStore
from burstwatch.flows.records import PayloadSamples


def samples(fids: list[int], size: int, fill: int) -> PayloadSamples:
    n = len(fids)
    return PayloadSamples(
        flow_id=np.array(fids, np.int64), direction=np.zeros(n, np.int8),
        data=np.full(n * size, fill, np.uint8), offset=np.arange(n, dtype=np.int64) * size,
        length=np.full(n, size, np.int64), whole=np.ones(n, np.bool_),
    )


def test_ceiling_drops_and_counts_and_never_leaves_a_gap() -> None:
    store = SampleStore(limit_bytes=1000)
    store.add(samples([1, 2, 3], 300, 1))  # 900 bytes
    assert len(store) == 3 and store.dropped == 0
    # 300 more would pass 1000: flow 4's sample and flow 1's second one are dropped.
    store.add(samples([4, 1], 300, 2))
    assert store.live_bytes == 900 and store.dropped == 2 and store.dropped_bytes == 600
    # Flow 2 is classified: room again, but flow 1 (cut) gets nothing more; flow 5 fits.
    fid, _, _, length, _ = store.take(np.array([2], np.int64))
    assert fid.tolist() == [2] and length.tolist() == [300]
    store.add(samples([1, 5], 100, 3))
    fid, _, off, length, _ = store.take(np.array([1, 5], np.int64))
    assert fid.tolist() == [1, 5] and length.tolist() == [300, 100]
    assert store.arena[off[0]] == 1  # flow 1 keeps its first sample only
    assert store.dropped == 3
    # Once flow 1 has been taken (classified), the store forgets it was cut.
    assert store._cut.tolist() == [4]


def test_samples_with_the_bytes_only_survive_the_ceiling() -> None:
    store = SampleStore(limit_bytes=500)
    store.load({"fid": np.array([1, 2]), "dir": np.zeros(2, np.int8), "len": np.array([400, 400]),
                "whole": np.ones(2, np.bool_), "data": np.zeros(800, np.uint8)})
    assert len(store) == 1 and store.dropped == 1
