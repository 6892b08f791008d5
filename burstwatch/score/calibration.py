"""Calibration: raw isolation scores -> the share of benign traffic that was less anomalous.

Raw isolation scores have no fixed meaning (0.6 can be routine for one baseline and rare for
another). Mapping each raw score through the empirical CDF of benign rows the forest did *not*
train on gives a number with one: a threshold ``t`` passes about ``1 - t`` of benign rows,
whatever the baseline. The table is the sorted held-out raw scores, thinned to at most
``MAX_POINTS`` quantiles so a large baseline still gives a small model file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
MAX_POINTS = 4096


@dataclass
class Calibration:
    """Sorted held-out benign raw scores (or evenly spaced quantiles of them)."""

    table: F64
    rows: int  # held-out rows the table was built from

    @classmethod
    def fit(cls, raw: npt.ArrayLike, max_points: int = MAX_POINTS) -> Calibration:
        raw = np.sort(np.asarray(raw, np.float64))
        if raw.size == 0:
            raise ValueError("calibration needs at least one held-out row")
        table = raw if raw.size <= max_points else np.quantile(raw, np.linspace(0.0, 1.0, max_points))
        return cls(np.ascontiguousarray(table), int(raw.size))

    def __call__(self, raw: npt.ArrayLike) -> F64:
        """Fraction of held-out benign rows whose raw score is strictly lower."""
        idx = np.searchsorted(self.table, np.asarray(raw, np.float64), side="left")
        return idx / float(self.table.size)

    @property
    def resolution(self) -> float:
        """Smallest step of the calibrated score: thresholds finer than this mean nothing."""
        return 1.0 / max(self.rows, 1)
