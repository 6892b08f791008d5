"""Feature rows from capture files, with where each row came from: the scorer's training input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from burstwatch.features import FEATURE_NAMES
from burstwatch.flows import FlowConfig
from burstwatch.pipeline import Progress, RunStats, run_flows


@dataclass
class CaptureRows:
    """Flow/window feature rows of several captures; ``source[i]`` indexes ``captures``."""

    values: npt.NDArray[np.float64]  # [n, F], registry order
    kind: npt.NDArray[np.int8]  # 0 whole flow, 1 window
    source: npt.NDArray[np.int32]
    orig: npt.NDArray[np.uint64]  # [n, 2]: originator address (hi, lo), to group rows by host
    captures: list[str]

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @staticmethod
    def empty() -> CaptureRows:
        return CaptureRows(np.zeros((0, len(FEATURE_NAMES))), np.zeros(0, np.int8), np.zeros(0, np.int32),
                           np.zeros((0, 2), np.uint64), [])

    @staticmethod
    def concat(parts: Sequence[CaptureRows]) -> CaptureRows:
        """One table from several, capture indices renumbered in order."""
        if not parts:
            return CaptureRows.empty()
        offsets = np.cumsum([0] + [len(p.captures) for p in parts[:-1]])
        return CaptureRows(
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.kind for p in parts]),
            np.concatenate([p.source + off for p, off in zip(parts, offsets, strict=True)]).astype(np.int32),
            np.concatenate([p.orig for p in parts]),
            [c for p in parts for c in p.captures],
        )

    def labels(self, names: Sequence[str] | None = None) -> list[str]:
        """Each row's capture name (or ``names[source]``): a class label for per-class counts."""
        names = list(names) if names is not None else self.captures
        return [names[s] for s in self.source.tolist()]


def read_rows(
    paths: Sequence[str],
    config: FlowConfig | None = None,
    stats: RunStats | None = None,
    progress: Progress | None = None,
) -> CaptureRows:
    """Run the flow pipeline over ``paths`` and keep every finished row's features.

    ``captures`` lists every path in order (standard input as ``<stdin>``), rows or not.
    """
    values, kinds, sources, origs = [], [], [], []
    names = ["<stdin>" if p == "-" else str(p) for p in paths]
    index = {name: k for k, name in enumerate(names)}
    # Baseline captures are unrelated samples of normal traffic: each is read on its own.
    for batch in run_flows(list(paths), config, stats, None, progress, separate=True):
        if batch.source not in index:
            index[batch.source] = len(names)
            names.append(batch.source)
        n = len(batch.rows)
        values.append(batch.features.values)
        kinds.append(batch.rows.kind)
        sources.append(np.full(n, index[batch.source], np.int32))
        origs.append(np.stack([batch.rows.orig_hi, batch.rows.orig_lo], axis=1))
    if not values:
        return replace(CaptureRows.empty(), captures=names)
    return CaptureRows(np.concatenate(values), np.concatenate(kinds), np.concatenate(sources),
                       np.concatenate(origs).astype(np.uint64), names)
