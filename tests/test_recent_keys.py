"""Keys of flows that left the flow table (flows.table.RecentKeys): a look-up finds each key's
latest entry, across however many chunks the releases filed, and nothing older than the
timeout; checked against a dict kept beside it, and after export and load."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.flows.table import RecentKeys

TIMEOUT = 100


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 30), st.integers(-1, 3)), max_size=10),
                min_size=1, max_size=40),
       st.booleans())
def test_the_latest_entry_of_each_key(releases: list[list[tuple[int, int]]], reload: bool) -> None:
    recent = RecentKeys(TIMEOUT)
    model: dict[int, tuple[int, int]] = {}  # key -> (initiator, end)
    now = 0
    for step, released in enumerate(releases):
        now = step * 10
        keys = np.array([k for k, _ in released], np.uint64)
        init = np.array([i for _, i in released], np.int64)
        end = np.full(len(released), now, np.int64)
        recent.add(keys, init, end, now)
        for k, i in released:
            if i >= 0:  # an unknown initiator is not kept
                model[k] = (i, now)
        model = {k: v for k, v in model.items() if v[1] >= now - TIMEOUT}
        if reload:
            again = RecentKeys(TIMEOUT)
            again.load(*recent.export())
            recent = again
        probe = np.arange(31, dtype=np.uint64)
        found, got_init, got_end = recent.find(probe)
        # entries past the timeout may linger until their chunk expires whole: only those
        # the model still holds must be found, with their latest values
        for k in range(31):
            if k in model:
                assert found[k], (k, model[k])
        hits = np.flatnonzero(found)
        for k, i, e in zip(hits.tolist(), got_init.tolist(), got_end.tolist(), strict=True):
            if k in model:
                assert (i, e) == model[k]


def test_newest_chunk_wins_by_hand() -> None:
    recent = RecentKeys(1000)
    recent.add(np.array([5, 7], np.uint64), np.array([1, 0], np.int64), np.array([10, 10], np.int64), 10)
    recent.add(np.array([7, 9], np.uint64), np.array([1, 1], np.int64), np.array([20, 20], np.int64), 20)
    found, init, end = recent.find(np.array([9, 7, 6, 5], np.uint64))
    assert found.tolist() == [True, True, False, True]
    assert init.tolist() == [1, 1, 1] and end.tolist() == [20, 20, 10]
