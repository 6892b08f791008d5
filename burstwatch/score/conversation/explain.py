"""Why a conversation scored high: its departures toward exfiltration, in words with units.

Only departures the model can see are named: a used feature on the exfiltration side of the
baseline's median (above it for direction +1, below for -1). They are ranked by how few
baseline conversations go at least as far (the tail share), then by how far past the
baseline's extreme the value lies. The first is always named; up to two more when they lie
beyond the baseline's 95th percentile (5th for direction -1). Each becomes a sentence such as
"upload_bytes_total 80.0 MB is above every baseline row (max 5.1 MB)". A row with no value on
the exfiltration side of any median gets no reason (and a typical score).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.alerts.record import human
from burstwatch.score.conversation.transform import SIDES, USED, signed
from burstwatch.score.units import format_value

F64 = npt.NDArray[np.float64]

LEVELS: F64 = np.unique(np.concatenate([np.linspace(0.0, 1.0, 101), [0.001, 0.005, 0.995, 0.999]]))
_UPPER_NAMED = (0.999, 0.99, 0.95, 0.9, 0.75, 0.5)
_LOWER_NAMED = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5)
REPORT_TAIL = 0.05  # beyond the baseline's 95th percentile (5th for direction -1)
TOP = 3
NOT_SCORED = "not scored: the conversation has no upload burst within the horizon"


def show(value: float, unit: str) -> str:
    """A value as a person reads it (``alerts.record.human``; durations in s, min or h)."""
    if unit == "s":
        return format_value(value, "s")
    if unit in ("score 0-1", "ratio"):
        return human(value, "ratio")
    if unit in ("bursts", "connections"):
        return f"{value:,.0f}"
    return human(value, unit)


def _pair(value: float, ref: float, unit: str) -> tuple[str, str]:
    """Both values, with more digits when they would otherwise read the same."""
    a, b = show(value, unit), show(ref, unit)
    if a == b and value != ref:
        plain = unit if unit in ("bytes", "bytes/s", "s") else ""
        for digits in (3, 4, 5, 6):
            a, b = format_value(value, plain, digits), format_value(ref, plain, digits)
            if a != b:
                break
    return a, b


def _ordinal(level: float) -> str:
    pct = f"{level * 100:.1f}".rstrip("0").rstrip(".")
    last = pct[-1]
    teen = len(pct) > 1 and pct[-2] == "1"
    suffix = "th" if teen else {"1": "st", "2": "nd", "3": "rd"}.get(last, "th")
    return pct + suffix


def _cdf(q: F64, x: F64, side: str) -> F64:
    """Share of baseline (defined) values <= x (side "right") or < x (side "left")."""
    k = np.searchsorted(q, x, side=side)  # type: ignore[call-overload]
    out = np.where(k >= q.size, 1.0, 0.0)
    mid = (k > 0) & (k < q.size)
    lo, hi = k[mid] - 1, k[mid]
    span = q[hi] - q[lo]
    frac = np.divide(x[mid] - q[lo], span, out=np.zeros_like(span), where=span > 0)
    out[mid] = LEVELS[lo] + frac * (LEVELS[hi] - LEVELS[lo])
    return out


@dataclass
class Departures:
    """Per used feature, the baseline's quantiles (raw units, at ``LEVELS``) and defined share."""

    quantiles: F64  # [len(LEVELS), len(USED)]; NaN columns: never defined in the baseline
    defined: F64  # [len(USED)]

    @classmethod
    def fit(cls, values: F64) -> Departures:
        used = values[:, USED]
        q = np.full((LEVELS.size, used.shape[1]), np.nan)
        ok = ~np.isnan(used)
        for j in range(used.shape[1]):
            col = used[ok[:, j], j]
            if col.size:
                q[:, j] = np.quantile(col, LEVELS)
        return cls(q, ok.mean(axis=0) if used.shape[0] else np.zeros(used.shape[1]))

    def reasons(self, values: F64, medians: F64, top: int = TOP) -> list[list[dict[str, Any]]]:
        """Per row (all scored rows), the ``top`` largest departures as reason dicts.

        A value departs when the model sees it above its column's median (``medians``, the
        model's own, in signed space): exactly the values the clip leaves alone.
        """
        n = values.shape[0]
        k = USED.size
        above_median = signed(values) > medians  # NaN compares False: undefined never departs
        tail = np.ones((n, k))
        excess = np.zeros((n, k))
        for j, col_index in enumerate(USED.tolist()):
            q = self.quantiles[:, j]
            if np.isnan(q).any():
                continue  # the model cannot use a feature its baseline never defined
            sign = SIDES[col_index].direction
            x = values[:, col_index]
            ok = ~np.isnan(x)
            v = x[ok]
            beyond = above_median[ok, j]
            if sign > 0:
                share = self.defined[j] * (1.0 - _cdf(q, v, "left"))  # baseline rows >= v
            else:
                share = self.defined[j] * _cdf(q, v, "right")  # baseline rows <= v
            t = np.where(beyond, share, 1.0)
            tail[ok, j] = t
            tq, tv = _scaled(q, col_index), _scaled(v, col_index)
            spread = max(float(tq[-2] - tq[1]), 1e-9)
            past = (tv - tq[-1]) if sign > 0 else (tq[0] - tv)
            excess[ok, j] = np.where(beyond, np.maximum(past, 0.0) / spread, 0.0)
        order = np.lexsort((-excess, tail), axis=-1) if n else np.zeros((0, k), np.intp)
        out: list[list[dict[str, Any]]] = []
        for i in range(n):
            picked: list[dict[str, Any]] = []
            for j in order[i, :top].tolist():
                rare = float(tail[i, j])
                if rare >= 1.0 or (picked and rare > REPORT_TAIL):
                    break
                picked.append(self._reason(j, float(values[i, USED[j]]), rare))
            out.append(picked)
        return out

    def _reason(self, j: int, value: float, tail: float) -> dict[str, Any]:
        side = SIDES[int(USED[j])]
        q = self.quantiles[:, j]
        up = side.direction > 0
        if side.unit == "flag":
            text = (f"{side.name} = {value:g}: {'new' if value >= 1 else 'seen before'} within the horizon, "
                    f"as in {tail:.1%} of baseline rows")
            level, ref = None, None
        elif up and value > q[-1]:
            level, ref = 1.0, float(q[-1])
            a, b = _pair(value, ref, side.unit)
            text = f"{side.name} {a} is above every baseline row (max {b})"
        elif not up and value < q[0]:
            level, ref = 0.0, float(q[0])
            a, b = _pair(value, ref, side.unit)
            text = f"{side.name} {a} is below every baseline row (min {b})"
        else:
            named = _UPPER_NAMED if up else _LOWER_NAMED
            level = next((lv for lv in named if (value > self._at(lv, j) if up else value < self._at(lv, j))), 0.5)
            ref = self._at(level, j)
            a, b = _pair(value, ref, side.unit)
            text = f"{side.name} {a} is {'above' if up else 'below'} the {_ordinal(level)} percentile of baseline ({b})"
        return {
            "feature": side.name,
            "unit": side.unit,
            "value": None if math.isnan(value) else value,
            "direction": "above" if up else "below",
            "baseline_quantile": level,
            "baseline_value": ref,
            "baseline_tail_share": round(tail, 6),
            "text": text,
        }

    def _at(self, level: float, j: int) -> float:
        return float(self.quantiles[int(np.argmin(np.abs(LEVELS - level))), j])


def _scaled(v: F64, col_index: int) -> F64:
    return np.log1p(np.maximum(v, 0.0)) if SIDES[col_index].op == "log1p" else np.asarray(v, np.float64)
