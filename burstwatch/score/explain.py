"""Why a row scored high: its features set against the baseline's quantiles, in words.

An isolation forest isolates a row sooner when some of its values sit where baseline rows are
scarce, so the features whose values are rarest in the baseline are the ones a person should
look at. For each feature we take the share of baseline rows at least as extreme (the tail
share) and report the rarest, e.g. "peak_burst_rate 9.8 MB/s is above every baseline row
(max 4.1 MB/s)". Undefined values (NaN) rank below every defined value, as in the transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.features import FEATURES
from burstwatch.score.transform import USED, transform_column
from burstwatch.score.units import format_pair, format_value

F64 = npt.NDArray[np.float64]

# Quantile levels kept from the baseline: fine in the middle for ranking, and the tail levels
# the text names.
LEVELS: F64 = np.unique(np.concatenate([np.linspace(0.0, 1.0, 101), [0.001, 0.005, 0.995, 0.999]]))
_UPPER_NAMED = (0.999, 0.99, 0.95, 0.9, 0.75, 0.5)
_LOWER_NAMED = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5)
REPORT_TAIL = 0.05  # report features rarer than this: outside the baseline's 5th-95th percentile


@dataclass(frozen=True)
class Reason:
    """One feature that sets a row apart from the baseline."""

    feature: str
    unit: str
    value: float | None  # None: undefined
    direction: str  # "above", "below" or "undefined"
    quantile: float | None  # baseline quantile level the text compares with (0 = min, 1 = max)
    baseline_value: float | None  # the baseline's value at that level
    tail: float  # share of baseline rows at least as extreme
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "unit": self.unit,
            "value": self.value,
            "direction": self.direction,
            "baseline_quantile": self.quantile,
            "baseline_value": self.baseline_value,
            "baseline_tail_share": round(self.tail, 6),
            "text": self.text,
        }


@dataclass(frozen=True)
class Explanation:
    """A row's reasons, rarest first; ``text`` joins them for a one-line alert."""

    reasons: tuple[Reason, ...]
    judged: bool = True  # False: a row without bursts, which the scorer does not judge

    @property
    def text(self) -> str:
        if not self.judged:
            return "not scored: the flow-window has no burst"
        if not self.reasons:
            return "no single feature is outside the baseline's 5th-95th percentile; the combination is unusual"
        return "; ".join(r.text for r in self.reasons)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.reasons]


def _ordinal(level: float) -> str:
    pct = f"{level * 100:.1f}".rstrip("0").rstrip(".")
    if pct.endswith("1") and not pct.endswith("11"):
        return pct + "st"
    if pct.endswith("2") and not pct.endswith("12"):
        return pct + "nd"
    if pct.endswith("3") and not pct.endswith("13"):
        return pct + "rd"
    return pct + "th"


def _cdf(q: F64, x: F64, side: str) -> F64:
    """Share of baseline (defined) values <= x (side "right") or < x (side "left"), from its quantiles."""
    k = np.searchsorted(q, x, side=side)  # type: ignore[call-overload]
    out = np.where(k >= q.size, 1.0, 0.0)
    mid = (k > 0) & (k < q.size)
    lo, hi = k[mid] - 1, k[mid]
    span = q[hi] - q[lo]
    frac = np.divide(x[mid] - q[lo], span, out=np.zeros_like(span), where=span > 0)
    out[mid] = LEVELS[lo] + frac * (LEVELS[hi] - LEVELS[lo])
    return out


@dataclass
class Baseline:
    """Per-feature quantiles (at ``LEVELS``) of the baseline's defined values, and its NaN share."""

    quantiles: F64  # [len(LEVELS), F], raw units; NaN where a feature was never defined
    nan_share: F64  # [F]

    @classmethod
    def fit(cls, values: F64) -> Baseline:
        nan = np.isnan(values)
        q = np.full((LEVELS.size, values.shape[1]), np.nan)
        for j in range(values.shape[1]):
            col = values[~nan[:, j], j]
            if col.size:
                q[:, j] = np.quantile(col, LEVELS)
        return cls(q, nan.mean(axis=0))

    def explain(self, values: F64, top: int = 3) -> list[Explanation]:
        """The ``top`` rarest features of each row (only those outside the 5th-95th percentile).

        Only the features the forest sees are ranked: a dropped restatement would repeat one.
        """
        n, nf = values.shape
        tail = np.ones((n, nf))
        excess = np.zeros((n, nf))
        above = np.zeros((n, nf), bool)
        for j in USED.tolist():
            col = values[:, j]
            q = self.quantiles[:, j]
            undefined = np.isnan(col)
            defined_share = 1.0 - self.nan_share[j]
            tail[undefined, j] = self.nan_share[j]
            if np.isnan(q).any():  # never defined in the baseline: any defined value is new
                tail[~undefined, j] = 0.0
                above[~undefined, j] = True
                continue
            x = col[~undefined]
            low = self.nan_share[j] + defined_share * _cdf(q, x, "right")  # share <= x
            high = defined_share * (1.0 - _cdf(q, x, "left"))  # share >= x
            tail[~undefined, j] = np.minimum(low, high)
            above[~undefined, j] = high < low
            # how far past the baseline's extremes, in transformed units per transformed spread
            tq = transform_column(q, j)
            spread = max(float(tq[-2] - tq[1]), 1e-9)  # 99.9th - 0.1st percentile
            tx = transform_column(x, j)
            excess[~undefined, j] = np.maximum(tx - tq[-1], tq[0] - tx) / spread
        order = np.lexsort((-excess, tail), axis=-1) if n else np.zeros((0, nf), np.intp)
        out = []
        for i in range(n):
            reasons = []
            for j in order[i, :top]:
                if tail[i, j] > REPORT_TAIL:
                    break
                reasons.append(self._reason(int(j), float(values[i, j]), bool(above[i, j]), float(tail[i, j])))
            out.append(Explanation(tuple(reasons)))
        return out

    def _reason(self, j: int, value: float, above: bool, tail: float) -> Reason:
        f = FEATURES[j]
        q = self.quantiles[:, j]
        if np.isnan(value):
            text = f"{f.name} is undefined, as in only {self.nan_share[j]:.1%} of baseline rows"
            return Reason(f.name, f.unit, None, "undefined", None, None, tail, text)
        if np.isnan(q).any():
            text = f"{f.name} is {format_value(value, f.unit)}, and no baseline row has a value for it"
            return Reason(f.name, f.unit, value, "above", None, None, tail, text)
        if above and value > q[-1]:
            level, ref = 1.0, float(q[-1])
            shown, ref_text = format_pair(value, ref, f.unit)
            text = f"{f.name} {shown} is above every baseline row (max {ref_text})"
        elif not above and value < q[0]:
            level, ref = 0.0, float(q[0])
            shown, ref_text = format_pair(value, ref, f.unit)
            text = f"{f.name} {shown} is below every baseline row (min {ref_text})"
        else:
            named = _UPPER_NAMED if above else _LOWER_NAMED
            level = next((lv for lv in named if (value > self._at(lv, j) if above else value < self._at(lv, j))),
                         0.5)
            ref = self._at(level, j)
            shown, ref_text = format_pair(value, ref, f.unit)
            side = "above" if above else "below"
            text = f"{f.name} {shown} is {side} the {_ordinal(level)} percentile of baseline ({ref_text})"
        return Reason(f.name, f.unit, value, "above" if above else "below", level, ref, tail, text)

    def _at(self, level: float, j: int) -> float:
        return float(self.quantiles[int(np.argmin(np.abs(LEVELS - level))), j])
