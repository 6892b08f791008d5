"""The scorer as the alert stage calls it: one flow batch in, scores and reasons out.

Reasons are built only when asked for: an explanation costs about three times a score, and
only the few rows that become alerts ever need one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from burstwatch.records import FlowBatch
from burstwatch.score.iforest import BurstScorer

F64 = npt.NDArray[np.float64]
ReasonDicts = list[dict[str, Any]]
BatchScorer = Callable[[FlowBatch], tuple[F64, Sequence[ReasonDicts]]]
EXPLAIN_FROM = 0.9  # below this the reasons would describe ordinary traffic


class LazyReasons(Sequence[ReasonDicts]):
    """Per-row reasons (as dicts) for rows scoring ``explain_from`` or more, built on first access."""

    def __init__(self, scorer: BurstScorer, values: F64, scores: F64, explain_from: float, top: int) -> None:
        self._scorer = scorer
        self._values = values
        self._scores = scores
        self._explain_from = explain_from
        self._top = top
        self._cache: dict[int, ReasonDicts] = {}

    def __len__(self) -> int:
        return int(self._scores.shape[0])

    def prefetch(self, rows: npt.NDArray[np.intp]) -> None:
        """Explain the rows of ``rows`` that will have reasons, in one pass (the caller knows
        which rows it will read: explaining them together costs a fraction of one by one)."""
        rows = np.asarray(rows, np.intp)
        want = [i for i in rows[self._scores[rows] >= self._explain_from].tolist() if i not in self._cache]
        if want:
            explained = self._scorer.explain(self._values[want], self._top)
            for i, e in zip(want, explained, strict=True):
                self._cache[i] = e.as_dicts()

    @overload
    def __getitem__(self, index: int) -> ReasonDicts: ...

    @overload
    def __getitem__(self, index: slice) -> list[ReasonDicts]: ...

    def __getitem__(self, index: int | slice) -> ReasonDicts | list[ReasonDicts]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]  # bounds check, negative indices
        if self._scores[i] < self._explain_from:
            return []
        if i not in self._cache:
            self._cache[i] = self._scorer.explain(self._values[i : i + 1], self._top)[0].as_dicts()
        return self._cache[i]


class PrefetchingScorer:
    """A :data:`BatchScorer` that can start on a batch early: :meth:`prefetch` hands the forest
    walk (which releases the GIL) to a worker thread as soon as a batch's features exist, so it
    runs while enrichment works on the same batch; calling the scorer then collects it."""

    def __init__(self, scorer: BurstScorer, explain_from: float, top: int) -> None:
        self.scorer = scorer
        self.explain_from = explain_from
        self.top = top
        self._pending: dict[int, tuple[FlowBatch, Future[F64]]] = {}

    def prefetch(self, batch: FlowBatch) -> None:
        while len(self._pending) >= _MAX_PENDING:  # batches started but never scored
            self._pending.pop(next(iter(self._pending)))
        self._pending[id(batch)] = (batch, _pool().submit(self.scorer.score, batch.features))

    def __call__(self, batch: FlowBatch) -> tuple[F64, Sequence[ReasonDicts]]:
        pending = self._pending.pop(id(batch), None)
        if pending is not None and pending[0] is batch:
            scores = pending[1].result()
        else:
            scores = self.scorer.score(batch.features)
        return scores, LazyReasons(self.scorer, batch.features.values, scores, self.explain_from, self.top)


_MAX_PENDING = 8


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="burstwatch-prescore")


def batch_scorer(scorer: BurstScorer, *, explain_from: float = EXPLAIN_FROM, top: int = 3) -> PrefetchingScorer:
    """Score every row of a batch; reasons for rows scoring ``explain_from`` or more, on demand."""
    return PrefetchingScorer(scorer, explain_from, top)
