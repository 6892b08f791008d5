"""Address helpers shared by enrichment and output."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from burstwatch.netaddr import format_addresses, unique_pairs

u64 = st.integers(0, 2**64 - 1)


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2**64 - 1]), u64 | st.integers(0, 3)), max_size=60))
def test_unique_pairs_matches_numpy_unique(pairs: list[tuple[int, int]]) -> None:
    hi = np.array([p[0] for p in pairs], np.uint64)
    lo = np.array([p[1] for p in pairs], np.uint64)
    uh, ul, inverse = unique_pairs(hi, lo)
    want = sorted(set(pairs))
    assert list(zip(uh.tolist(), ul.tolist(), strict=True)) == want
    assert [want[i] for i in inverse.tolist()] == pairs


def test_format_addresses_repeats_and_mixes_families() -> None:
    v4 = (0, (0xFFFF << 32) | 0x08080808)
    v6 = (0x20014860_48600000, 0x8888)
    hi = np.array([v4[0], v6[0], v4[0]], np.uint64)
    lo = np.array([v4[1], v6[1], v4[1]], np.uint64)
    assert format_addresses(hi, lo) == ["8.8.8.8", "2001:4860:4860::8888", "8.8.8.8"]
