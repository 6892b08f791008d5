"""Measure rule wildcard and regex matching over many distinct server names.

Run: python bench/bench_rule_patterns.py [N]. Matching is per distinct value of a column, so
N distinct names is the worst case of one batch. Wildcards use the linear matcher, regexes
RE2; both take time linear in each value whatever the pattern (tests/test_rule_patterns.py).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from burstwatch.rules import FieldTest
from burstwatch.rules.columns import Columns

TESTS = [
    FieldTest("s", "wildcard", ("*.cdn1*.example.com", "*.backup.*"), "string"),
    FieldTest("s", "wildcard", ("*.cdn1?.example.com", "*.backup.*"), "string"),
    FieldTest("s", "regex", (r"^host\d+\.cdn(1|2)\d\.", r"example\.net$"), "string"),
]


def names(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    tld = ("com", "net", "org")
    return np.array([f"host{rng.integers(10**9)}.cdn{rng.integers(100)}.example.{tld[i % 3]}"
                     for i in range(n)], dtype=object)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    col = names(n)
    for test in TESTS:
        best = float("inf")
        for _ in range(3):
            columns = Columns({"s": col})
            columns.distinct("s", "bench")  # the column's distinct values, as evaluation has them
            t = time.perf_counter()
            hits = int(columns.mask(test, "bench").sum())
            best = min(best, time.perf_counter() - t)
        print(f"{test.op:8} {test.value}: {best * 1e3:7.0f} ms for {n:,} distinct values "
              f"({best / n * 1e9:,.0f} ns each), {hits:,} hits")


if __name__ == "__main__":
    main()
