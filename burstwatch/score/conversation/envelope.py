"""Monotone isolation depth: a row is at least as isolated as any row it dominates.

An isolation forest is not monotone: a value in an empty gap between the baseline's typical
rows and a cluster of large ones is isolated sooner than a value inside that cluster, so
raising a feature can lower the score. For a score that must only ever grow as a conversation
moves toward exfiltration, each tree's path length is replaced by its *envelope*: the
shortest path length of any point ``y`` with ``floor <= y <= x`` in every column (the box
between the baseline's medians and the row). Raising a value only enlarges that box, so the
envelope can only shorten and the score only grow; lowering a value can never raise it.

The box is searched by a depth-first walk of each tree: the left child of a split ``(f, t)``
is reachable when ``floor[f] <= t``, the right when ``x[f] > t``; a subtree is skipped once
its depth reaches the best leaf found so far (a leaf's path length is at least its depth).
Every row's own path lies in the box, so the envelope is never longer than the plain path
length.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from burstwatch.jit import njit
from burstwatch.score.trees import TreeArrays

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def envelope_raw(trees: TreeArrays, X: F32, floor: F32) -> F64:
    """2^(-mean envelope path length / norm) per row: higher = more anomalous, monotone in ``X``."""
    X = np.ascontiguousarray(X, np.float32)
    if X.shape[0] == 0:
        return np.zeros(0)
    total, _ = _walk(X, np.ascontiguousarray(floor, np.float32), trees.offsets, trees.left, trees.right,
                     trees.feature, trees.threshold, trees.leaf, np.zeros((0, 0), np.bool_))
    return np.power(2.0, -total / (trees.n_trees * trees.norm))


def envelope_raw_oob(trees: TreeArrays, X: F32, floor: F32, inbag: npt.NDArray[np.bool_]) -> F64:
    """As :func:`envelope_raw`, for training rows, from the trees that did not see each row.

    ``inbag[k, i]`` is True when tree ``k`` was fitted on row ``i``. A row no tree left out
    gets NaN.
    """
    X = np.ascontiguousarray(X, np.float32)
    total, count = _walk(X, np.ascontiguousarray(floor, np.float32), trees.offsets, trees.left, trees.right,
                         trees.feature, trees.threshold, trees.leaf, np.ascontiguousarray(inbag))
    out = np.full(X.shape[0], np.nan)
    ok = count > 0
    out[ok] = np.power(2.0, -(total[ok] / count[ok]) / trees.norm)
    return out


@njit(cache=True, nogil=True)
def _walk(
    X: F32,
    floor: F32,
    offsets: npt.NDArray[np.int64],
    left: npt.NDArray[np.int16],
    right: npt.NDArray[np.int16],
    feature: npt.NDArray[np.int16],
    threshold: F32,
    leaf: F32,
    inbag: npt.NDArray[np.bool_],
) -> tuple[F64, F64]:  # pragma: no cover - compiled
    """Per row, the sum over trees (those not in bag, when ``inbag`` is given) of the envelope
    path length, and how many trees were summed."""
    n = X.shape[0]
    n_trees = offsets.shape[0] - 1
    use_bag = inbag.shape[0] > 0
    total = np.zeros(n)
    count = np.zeros(n)
    biggest = 1
    for k in range(n_trees):
        biggest = max(biggest, offsets[k + 1] - offsets[k])
    stack = np.empty(biggest + 1, np.int64)
    depth = np.empty(biggest + 1, np.int64)
    for k in range(n_trees):
        base = offsets[k]
        for i in range(n):
            if use_bag and inbag[k, i]:
                continue
            best = np.inf
            top = 0
            stack[0] = 0
            depth[0] = 0
            top = 1
            while top > 0:
                top -= 1
                node = base + stack[top]
                d = depth[top]
                if d >= best:
                    continue
                if left[node] == -1:
                    if leaf[node] < best:
                        best = leaf[node]
                    continue
                f = feature[node]
                t = threshold[node]
                if X[i, f] > t:
                    stack[top] = right[node]
                    depth[top] = d + 1
                    top += 1
                if floor[f] <= t:
                    stack[top] = left[node]
                    depth[top] = d + 1
                    top += 1
            total[i] += best
            count[i] += 1.0
    return total, count
