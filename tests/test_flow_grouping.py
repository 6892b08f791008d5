"""Grouping a batch's packets by flow (flows.key.group_by_hash, through group_hashes): the
same groups, numbering and order as a stable sort of the key hashes would give, whatever the
hashes' low bits."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.flows.key import group_hashes


def grouped(h: npt.NDArray[np.uint64]) -> tuple[int, npt.NDArray[np.intp], npt.NDArray[np.int64],
                                                npt.NDArray[np.intp]]:
    order, inverse, first = group_hashes(h)
    return first.shape[0], order, inverse, first


def reference(h: npt.NDArray[np.uint64]) -> tuple[int, npt.NDArray[np.intp], npt.NDArray[np.int64],
                                                  npt.NDArray[np.intp]]:
    """The same by sorting: groups numbered by first packet, packets in capture order."""
    distinct, first_seen, inverse_sorted = np.unique(h, return_index=True, return_inverse=True)
    rank = np.empty(distinct.shape[0], np.int64)
    rank[np.argsort(first_seen, kind="stable")] = np.arange(distinct.shape[0])
    inverse = rank[inverse_sorted]
    order = np.argsort(inverse, kind="stable")
    return distinct.shape[0], order, inverse, np.sort(first_seen)


def test_a_hand_made_batch() -> None:
    h = np.array([7, 3, 7, 9, 3, 3, 7], np.uint64)
    groups, order, inverse, first = grouped(h)
    assert groups == 3
    assert inverse.tolist() == [0, 1, 0, 2, 1, 1, 0]
    assert first.tolist() == [0, 1, 3]
    assert order.tolist() == [0, 2, 6, 1, 4, 5, 3]


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.integers(0, 40), min_size=1, max_size=300),
    low_bits_alike=st.booleans(),
)
def test_it_matches_a_stable_sort(keys: list[int], low_bits_alike: bool) -> None:
    """With ``low_bits_alike`` every hash has the same low 32 bits, so all of them land on
    one slot and probe past each other."""
    h = np.array(keys, np.uint64)
    h = (h << np.uint64(32)) | np.uint64(0x1234) if low_bits_alike else h * np.uint64(0x9E3779B97F4A7C15)
    got, want = grouped(h), reference(h)
    assert got[0] == want[0]
    for a, b in zip(got[1:], want[1:], strict=True):
        assert a.tolist() == b.tolist()
