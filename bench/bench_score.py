"""Cost of the anomaly score: seconds per 100,000 flow-windows with bursts (all of them judged).

    python bench/bench_score.py

Rows are drawn from the generated benign corpus (the same generator the shipped model was
trained on), so the trees walk realistic paths.
"""

from __future__ import annotations

import time

import numpy as np

from burstwatch.score import BurstScorer, has_burst
from burstwatch.score.corpus import corpus_rows


def main() -> int:
    plan = {"browsing": 10, "video_stream": 10, "backup_upload": 10, "encrypted_call": 5}
    rows, _ = corpus_rows(plan, seeds=[901])
    values = rows.values
    judged = values[has_burst(values)]
    sample = judged[np.random.default_rng(0).integers(0, len(judged), 100_000)]
    scorer = BurstScorer.default()
    scorer.score(sample[:10])
    best = min(_timed(scorer, sample) for _ in range(3))
    print(f"scoring 100,000 flow-windows with bursts: {best:.3f} s ({best * 10:.1f} µs per row)")
    return 0


def _timed(scorer: BurstScorer, rows: np.ndarray) -> float:
    started = time.perf_counter()
    scorer.score(rows)
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
