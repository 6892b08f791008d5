"""Byte-histogram statistics for short samples, corrected for small-sample bias.

The plug-in Shannon entropy of n uniformly random bytes is below 8 bits on average (n = 128
gives about 6.55 bits, n = 1024 about 7.81), because a short sample cannot fill 256 bins
evenly. Comparing a sample with that exact expectation, rather than with 8, is what makes one
threshold work for every sample length.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

_P = 1.0 / 256.0


def shannon(data: bytes) -> float:
    """Plug-in Shannon entropy of ``data`` in bits per byte (0.0 for empty input)."""
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: a one-symbol sample gives 0.0, not -0.0


@lru_cache(maxsize=2048)
def expected_uniform_entropy(n: int) -> float:
    """Exact mean plug-in entropy of ``n`` independent uniform bytes (binomial bin counts)."""
    if n <= 0:
        return 0.0
    total = 0.0
    log_p, log_q = math.log(_P), math.log1p(-_P)
    log_n_fact = math.lgamma(n + 1)
    for k in range(1, min(n, 256) + 1):  # beyond k = 256 the terms are below 1e-300
        log_prob = (
            log_n_fact - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
        )
        total += math.exp(log_prob) * (k / n) * math.log2(k / n)
    return -256.0 * total


def deficit_ratio(data: bytes) -> float:
    """How far below 8 bits ``data`` falls, in units of what uniform bytes of that length lose.

    About 1.0 for random bytes at any length (8 - H is the G-test statistic over 256 bins, up to
    a constant), well above 1 for text, headers and framed binary data.
    """
    if not data:
        return math.inf
    return (8.0 - shannon(data)) / (8.0 - expected_uniform_entropy(len(data)))


@lru_cache(maxsize=1)
def expected_table(size: int = 1024) -> npt.NDArray[np.float64]:
    """``expected_uniform_entropy(n)`` for n = 0..size, all at once.

    The same binomial sum, vectorised: a few ms once instead of ~0.3 ms for each distinct
    sample size (short flows bring hundreds of them). It agrees with the scalar function to
    ~1e-14 (a test checks it).
    """
    sizes = np.arange(size + 1)[:, None]
    # Counts far above the mean (size / 256) add nothing: for 1024 bytes a byte value seen 80
    # times has probability below 1e-60. Summing up to there, not to 256, took a third as long.
    k = np.arange(1, min(256, size // 64 + 64) + 1)[None, :]
    valid = k <= sizes
    rest = np.where(valid, sizes - k, 0)
    lgam = np.array([math.lgamma(m + 1) for m in range(size + 1)])
    log_prob = lgam[sizes] - lgam[k] - lgam[rest] + k * math.log(_P) + rest * math.log1p(-_P)
    frac = k / np.maximum(sizes, 1)
    terms = np.where(valid, np.exp(log_prob) * frac * np.log2(frac), 0.0)
    out: npt.NDArray[np.float64] = -256.0 * terms.sum(axis=1)
    out[0] = 0.0  # an empty sum: the scalar function's 0.0, not -0.0
    return out
