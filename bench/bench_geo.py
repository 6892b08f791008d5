"""Measure GeoDatabase.lookup throughput (lookups/s) on synthetic address columns.

Run: python bench/bench_geo.py [N]. Several workloads, because cache behaviour dominates:
fully random addresses touch the whole table; packet columns repeat a few endpoints.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from burstwatch.enrich.geo import GeoDatabase

V4_BASE = np.uint64(0xFFFF << 32)


def v4_columns(v4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IPv4-mapped (hi, lo) columns for uint32 addresses."""
    return np.zeros(v4.shape[0], dtype=np.uint64), V4_BASE | v4.astype(np.uint64)


def v6_columns(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random IPv6 addresses inside the RIRs' densely allocated /12s (2001::, 2400::, ...)."""
    tops = np.array(
        [0x2001]
        + [base + i for base in (0x2400, 0x2600, 0x2800, 0x2A00, 0x2C00) for i in range(16)],
        dtype=np.uint64,
    )
    hi = (tops[rng.integers(0, tops.shape[0], n)] << np.uint64(48)) | rng.integers(
        0, 1 << 48, n, dtype=np.uint64
    )
    lo = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    return hi, lo


def timed(db: GeoDatabase, hi: np.ndarray, lo: np.ndarray, repeat: int = 7) -> float:
    """Best-of-``repeat`` lookups per second."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        db.lookup(hi, lo)
        best = min(best, time.perf_counter() - t0)
    return hi.shape[0] / best


def main() -> None:
    """Print lookups/s per workload."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(7)
    t0 = time.perf_counter()
    db = GeoDatabase.bundled()
    print(f"load bundled tables: {time.perf_counter() - t0:.3f} s")
    db.lookup(*v4_columns(np.array([0x08080808], dtype=np.uint32)))  # warm caches

    rand_v4 = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    endpoints = rng.integers(0, 1 << 32, 5_000, dtype=np.uint64).astype(np.uint32)
    packets_v4 = endpoints[rng.integers(0, endpoints.shape[0], n)]
    h6, l6 = v6_columns(rng, n)
    mix_hi, mix_lo = v4_columns(rand_v4)
    pick = rng.random(n) < 0.1
    mix_hi[pick], mix_lo[pick] = h6[pick], l6[pick]

    workloads = {
        "random IPv4 (all distinct)": v4_columns(rand_v4),
        "IPv4 packets, 5k endpoints": v4_columns(packets_v4),
        "random IPv6 (allocated /16s)": (h6, l6),
        "mixed 90% IPv4 / 10% IPv6": (mix_hi, mix_lo),
    }
    for name, (hi, lo) in workloads.items():
        rate = timed(db, hi, lo)
        print(f"{name:32s} {rate / 1e6:6.2f} M lookups/s  (n={n})")


if __name__ == "__main__":
    main()
