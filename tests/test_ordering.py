"""ordering.stable_argsort gives numpy's stable order, whatever the keys."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.ordering import stable_argsort

DTYPES = (np.int64, np.uint64, np.int32, np.uint16, np.int8)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DTYPES), st.integers(0, 3000), st.integers(0, 2**32), st.data())
def test_the_order_is_numpys_stable_order(dtype: type, n: int, seed: int,
                                          data: st.DataObject) -> None:
    info = np.iinfo(dtype)
    lo = data.draw(st.integers(int(info.min), int(info.max)))
    hi = data.draw(st.integers(lo, int(info.max)))
    rng = np.random.default_rng(seed)
    key = rng.integers(lo, hi, n, dtype=dtype, endpoint=True)
    assert stable_argsort(key).tolist() == np.argsort(key, kind="stable").tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_extremes_and_ties(dtype: type) -> None:
    info = np.iinfo(dtype)
    key = np.array([info.max, info.min, 0, info.max, info.min, 0] * 100, dtype=dtype)
    assert stable_argsort(key).tolist() == np.argsort(key, kind="stable").tolist()
    few = np.array([3, 1, 3, 1, 2] * 200, dtype=dtype)  # a narrow range: the quick path
    assert stable_argsort(few).tolist() == np.argsort(few, kind="stable").tolist()


@pytest.mark.parametrize("runs", [1, 2, 9])
def test_keys_in_sorted_runs(runs: int) -> None:
    """Keys in a few sorted runs (merged sample-store runs, files' times) take timsort's
    path; ties across runs keep the runs' order."""
    rng = np.random.default_rng(runs)
    key = np.concatenate([np.sort(rng.integers(0, 1000, 3000)) for _ in range(runs)])
    assert stable_argsort(key).tolist() == np.argsort(key, kind="stable").tolist()
