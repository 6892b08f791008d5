"""Stable orders of integer keys, quicker than numpy's stable sort.

``np.argsort(kind="stable")`` sorts integers wider than 16 bits with a timsort; its default
sort is vectorised (AVX2/AVX-512) but not stable. Keys made unique by their positions
(``key * n + position``) sort to the same order either way, 2-3 times quicker with the
vectorised sort (73 k keys: 2.3 ms against 5.3). That needs the keys' range times their
count to fit in 63 bits, as it does for codes, flow ids and slots; wider keys (hashes,
times in ns over a long capture) take the stable sort. So do keys already in long sorted
runs (merging a few sorted runs, nearly sorted times): timsort finds the runs and merges
them in close to one pass, where the vectorised sort starts over (nine sorted runs of 20 k
flow ids: 3.0 ms against 7.0; two of 32 k times: 0.4 against 1.7). One pass counting where
the keys step down tells the two apart (0.02 ms for 60 k keys).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_SMALL = 256  # below this many keys, the plain stable sort is quicker than setting up
_LONG_RUNS = 256  # sorted runs this long on average: timsort's merging is the quicker


def stable_argsort(key: npt.NDArray[np.integer]) -> npt.NDArray[np.intp]:
    """``np.argsort(key, kind="stable")`` for a 1-d integer array."""
    n = key.shape[0]
    if n < _SMALL or key.dtype.kind not in "iu":
        return np.argsort(key, kind="stable")
    if np.count_nonzero(key[1:] < key[:-1]) * _LONG_RUNS < n:
        return np.argsort(key, kind="stable")
    lo, hi = key.min(), key.max()
    span = int(hi) - int(lo) + 1
    if span * n >= 1 << 63:
        return np.argsort(key, kind="stable")
    # From the lowest key up: exact in int64 for signed keys (the span fits), in the keys'
    # own type for unsigned ones (never below zero), then widened.
    unique = (key.astype(np.int64, copy=False) - np.int64(lo) if key.dtype.kind == "i"
              else (key - lo).astype(np.int64))
    unique *= n
    unique += np.arange(n, dtype=np.int64)
    return np.argsort(unique)
