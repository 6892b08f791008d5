"""Isolation trees as plain arrays, and a compiled walk that scores rows with them.

A fitted scikit-learn IsolationForest is reduced to five flat arrays (children, split
feature, split threshold, leaf path length). That is all scoring needs, so a model file holds
numbers only (no pickled objects), loads without scikit-learn, and scores the same on any
scikit-learn version. The walk reproduces ``IsolationForest.score_samples`` exactly; ``fit``
checks that on the training rows.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.jit import njit

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
LEAF = -1


def average_path_length(n: npt.ArrayLike) -> F64:
    """Expected depth of an unsuccessful search in a binary tree of ``n`` points (c(n))."""
    n = np.asarray(n, np.float64)
    out = np.zeros(n.shape)
    big = n > 2
    out[n == 2] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _floor_f32(t: F64) -> F32:
    """Largest float32 <= t: for float32 x, ``x <= floor32(t)`` exactly when ``x <= t``."""
    t32 = t.astype(np.float32)
    over = t32.astype(np.float64) > t
    t32[over] = np.nextafter(t32[over], np.float32(-np.inf))
    return t32


@dataclass
class TreeArrays:
    """Every tree's nodes, concatenated; tree ``k`` is ``offsets[k]:offsets[k+1]``.

    ``left``/``right`` are node numbers within the tree (``LEAF`` at leaves), ``feature`` the
    column a node splits on, ``threshold`` its split (go left when ``x <= threshold``), ``leaf``
    the path length a row ending at that node gets (depth + c(training rows in the leaf)).
    ``norm`` is c(max_samples), the path length that maps to a raw score of 0.5.
    """

    offsets: npt.NDArray[np.int64]
    left: npt.NDArray[np.int16]
    right: npt.NDArray[np.int16]
    feature: npt.NDArray[np.int16]
    threshold: F32
    leaf: F32
    norm: float

    @property
    def n_trees(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"tree_offsets": self.offsets, "tree_left": self.left, "tree_right": self.right,
                "tree_feature": self.feature, "tree_threshold": self.threshold, "tree_leaf": self.leaf}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], norm: float) -> TreeArrays:
        return cls(
            np.ascontiguousarray(arrays["tree_offsets"], np.int64),
            np.ascontiguousarray(arrays["tree_left"], np.int16),
            np.ascontiguousarray(arrays["tree_right"], np.int16),
            np.ascontiguousarray(arrays["tree_feature"], np.int16),
            np.ascontiguousarray(arrays["tree_threshold"], np.float32),
            np.ascontiguousarray(arrays["tree_leaf"], np.float32),
            float(norm),
        )

    @classmethod
    def from_sklearn(cls, forest: Any, n_features: int) -> TreeArrays:
        """Flatten a fitted ``IsolationForest``."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left", "right", "feature", "threshold", "leaf")}
        offsets = [0]
        for est, cols in zip(forest.estimators_, forest.estimators_features_, strict=True):
            t = est.tree_
            left = t.children_left.astype(np.int64)
            right = t.children_right.astype(np.int64)
            if t.node_count > np.iinfo(np.int16).max:
                raise ValueError("isolation tree too large for the model format; lower max_samples")
            depth = np.zeros(t.node_count, np.int64)
            for node in range(t.node_count):  # parents precede children in sklearn's layout
                if left[node] != LEAF:
                    depth[left[node]] = depth[right[node]] = depth[node] + 1
            is_leaf = left == LEAF
            feature = np.where(is_leaf, 0, t.feature)
            # A tree fitted on a column subset numbers its features within that subset.
            if len(cols) != n_features or np.any(np.asarray(cols) != np.arange(n_features)):
                feature = np.where(is_leaf, 0, np.asarray(cols)[feature])
            parts["left"].append(left)
            parts["right"].append(right)
            parts["feature"].append(feature)
            parts["threshold"].append(_floor_f32(np.where(is_leaf, 0.0, t.threshold)))
            leaf_len = depth + average_path_length(t.n_node_samples)
            parts["leaf"].append(np.where(is_leaf, leaf_len, 0.0))
            offsets.append(offsets[-1] + t.node_count)
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(
            np.asarray(offsets, np.int64),
            cat["left"].astype(np.int16),
            cat["right"].astype(np.int16),
            cat["feature"].astype(np.int16),
            cat["threshold"].astype(np.float32),
            cat["leaf"].astype(np.float32),
            float(average_path_length([forest.max_samples_])[0]),
        )

    def validate(self, n_features: int) -> None:
        """Raise ValueError unless every walk stays inside its tree and ends at a leaf.

        Children must come after their parent (so walks terminate) and within the tree, and
        split features within the row; the compiled walk does no bounds checks of its own.
        """
        off = self.offsets
        n = self.left.shape[0]
        if any(a.ndim != 1 for a in (self.left, self.right, self.feature, self.threshold, self.leaf)):
            raise ValueError("tree arrays must be one-dimensional")
        if off.ndim != 1 or off.size < 2 or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 1):
            raise ValueError("tree offsets are inconsistent")
        if not (self.right.shape[0] == self.feature.shape[0] == self.threshold.shape[0] == self.leaf.shape[0] == n):
            raise ValueError("tree arrays differ in length")
        if not (np.isfinite(self.norm) and self.norm > 0):
            raise ValueError("path-length normaliser must be positive")
        size = np.repeat(np.diff(off), np.diff(off))
        node = np.arange(n) - np.repeat(off[:-1], np.diff(off))
        inner = self.left != LEAF
        for child in (self.left, self.right):
            c = child.astype(np.int64)
            if np.any(inner & ((c <= node) | (c >= size))):
                raise ValueError("tree children out of order or out of range")
        if np.any((self.right != LEAF) != inner):
            raise ValueError("tree has a node with one child")
        if np.any(inner & ((self.feature < 0) | (self.feature >= n_features))):
            raise ValueError("tree splits on a feature that does not exist")
        if not (np.all(np.isfinite(self.leaf)) and np.all(np.isfinite(self.threshold[inner]))):
            raise ValueError("tree holds non-finite numbers")

    def raw_scores(self, X: F32) -> F64:
        """2^(-mean path length / norm) per row, in (0, 1]; higher = isolated sooner = more anomalous."""
        X = np.ascontiguousarray(X, np.float32)
        if X.shape[0] == 0:
            return np.zeros(0)
        args = (self.offsets, self.left, self.right, self.feature, self.threshold, self.leaf)
        if X.shape[0] < _SPLIT_ROWS or _WORKERS < 2:
            total = _path_lengths(X, *args)
        else:  # the walk releases the GIL: halves of a large batch run on two cores
            parts = np.array_split(X, _WORKERS)
            total = np.concatenate(list(_pool().map(lambda part: _path_lengths(part, *args), parts)))
        return np.power(2.0, -total / (self.n_trees * self.norm))


_SPLIT_ROWS = 2048  # below this a thread hand-off costs more than it saves
_WORKERS = min(4, os.cpu_count() or 1)


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_WORKERS, thread_name_prefix="burstwatch-score")


@njit(cache=True, nogil=True)
def _path_lengths(
    X: F32,
    offsets: npt.NDArray[np.int64],
    left: npt.NDArray[np.int16],
    right: npt.NDArray[np.int16],
    feature: npt.NDArray[np.int16],
    threshold: F32,
    leaf: F32,
) -> F64:  # pragma: no cover - compiled
    n = X.shape[0]
    out = np.zeros(n)
    for k in range(offsets.shape[0] - 1):
        base = offsets[k]
        for i in range(n):
            node = base
            while left[node] != -1:
                if X[i, feature[node]] <= threshold[node]:
                    node = base + left[node]
                else:
                    node = base + right[node]
            out[i] += leaf[node]
    return out
