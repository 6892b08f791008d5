"""The one-sided transform: conversation features -> the matrix the isolation forest sees.

Each feature declares its exfiltration direction (:data:`DIRECTIONS`): +1 when a higher value
is further toward a burst transmission (more upload, more quiet, more regular, newer party),
-1 when a lower value is (the largest burst's share of the upload: small for many similar
bursts), 0 when it is not used (it restates another, or it has no direction). Before the
forest sees a row, every used value is moved to the baseline's median when it lies on the
benign side of it (``x' = max(x, median)`` for +1, ``min`` for -1), and an undefined value
(NaN: too few bursts for an interval, no history for novelty) is set to the median too. So a
conversation that is smaller, shorter, less regular or more familiar than the baseline's
typical one is, to the model, exactly typical: only departures toward exfiltration can make
a row rare. (The scorer's walk over the trees then makes the score monotone as well; see
:mod:`burstwatch.score.conversation.envelope`.)

Scaling follows the flow transform: ``log1p`` for heavy-tailed units (bytes, rates,
durations, counts), identity for bounded ones (ratios, 0-1 scores, flags). Features of
direction -1 are negated after scaling, so in the forest's space higher is always further
toward exfiltration. A feature added to the registry without a direction here fails at
import, until someone decides which way it points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.conversations.features import ConversationFeatures
from burstwatch.conversations.registry import CONVERSATION_FEATURE_INDEX, CONVERSATION_FEATURES

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

LOG1P = "log1p"
IDENTITY = "identity"

_OP_BY_UNIT: dict[str, str] = {
    "bytes": LOG1P,
    "bytes/s": LOG1P,
    "s": LOG1P,
    "bursts": LOG1P,
    "connections": LOG1P,
    "ratio": IDENTITY,
    "score 0-1": IDENTITY,
    "flag": IDENTITY,
}

# +1: higher is further toward exfiltration; -1: lower is; 0: not used (why, for the docs).
DIRECTIONS: dict[str, int] = {
    "burst_count": +1,
    "upload_bytes_total": +1,
    "upload_bytes_median": +1,
    "upload_bytes_max": +1,
    "download_bytes_total": 0,  # upload_share says how one-sided the conversation is
    "connections": +1,
    "bursts_per_connection": 0,  # one per connection and many per session both exfiltrate
    "active_span": +1,
    "quiet_share": +1,
    "upload_share": +1,
    "interval_median": +1,
    "interval_mad_ratio": 0,  # folded into regularity
    "interval_bowley_skew": 0,  # folded into regularity
    "periodicity": +1,
    "regularity": +1,
    "upload_peak_rate": +1,
    "rate_vs_host_peak": +1,
    "party_new": +1,
    "asn_new": +1,
    "country_new": +1,
    "host_history_span": 0,  # about the host, not the conversation
    "hour_concentration": 0,  # a schedule over the day spreads; a working-hours habit concentrates
    "largest_burst_share": -1,
    "repetition": +1,
}
NOT_USED_WHY: dict[str, str] = {
    "download_bytes_total": "upload_share says how one-sided the conversation is",
    "bursts_per_connection": "one connection per burst and many bursts per session both occur in exfiltration",
    "interval_mad_ratio": "folded into regularity",
    "interval_bowley_skew": "folded into regularity",
    "host_history_span": "describes the host, not the conversation",
    "hour_concentration": "a schedule spreads over the day, a working-hours habit concentrates: no direction",
}


@dataclass(frozen=True)
class FeatureSide:
    """One conversation feature as the scorer treats it."""

    name: str
    unit: str
    direction: int
    op: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "direction": self.direction, "op": self.op}


def _build() -> tuple[FeatureSide, ...]:
    out = []
    for f in CONVERSATION_FEATURES:
        if f.name not in DIRECTIONS:
            raise KeyError(f"conversation feature {f.name!r} has no exfiltration direction; add it to "
                           "DIRECTIONS in burstwatch/score/conversation/transform.py")
        if f.unit not in _OP_BY_UNIT:
            raise KeyError(f"conversation feature {f.name!r} has unit {f.unit!r}, which the scorer cannot "
                           "scale; add it to burstwatch/score/conversation/transform.py")
        out.append(FeatureSide(f.name, f.unit, DIRECTIONS[f.name], _OP_BY_UNIT[f.unit]))
    return tuple(out)


SIDES: tuple[FeatureSide, ...] = _build()
USED: npt.NDArray[np.intp] = np.array([i for i, s in enumerate(SIDES) if s.direction != 0], np.intp)
USED_NAMES: tuple[str, ...] = tuple(SIDES[i].name for i in USED)
_LOG = np.array([SIDES[i].op == LOG1P for i in USED])
_SIGN = np.array([float(SIDES[i].direction) for i in USED])
_F32_MAX = float(np.finfo(np.float32).max)
BURST_COUNT = CONVERSATION_FEATURE_INDEX["burst_count"]


def schema() -> list[dict[str, Any]]:
    """The transform as plain data, stored in model files and compared on load."""
    return [s.as_dict() for s in SIDES]


def as_values(X: ConversationFeatures | npt.ArrayLike) -> F64:
    """The raw feature values of ``X`` as float64 [n, F], checked against the registry."""
    if isinstance(X, ConversationFeatures):
        if tuple(X.names) != tuple(s.name for s in SIDES):
            raise ValueError("conversation feature columns differ from the feature registry")
        X = X.values
    values = np.asarray(X, np.float64)
    if values.ndim != 2 or values.shape[1] != len(SIDES):
        raise ValueError(f"expected conversation feature rows of width {len(SIDES)}, got shape {values.shape}")
    return values


def scored(values: F64) -> npt.NDArray[np.bool_]:
    """Rows the scorer judges: conversations with at least one upload burst."""
    return np.nan_to_num(values[:, BURST_COUNT]) >= 1


def signed(values: F64) -> F64:
    """The used columns, scaled and signed so higher is further toward exfiltration (NaN kept)."""
    out = values[:, USED].astype(np.float64, copy=True)
    out[:, _LOG] = np.log1p(np.maximum(out[:, _LOG], 0.0))
    out *= _SIGN
    return out


def fit_medians(values: F64) -> F64:
    """Per used column, the baseline's median in signed space (NaN where never defined)."""
    s = signed(values)
    med = np.full(s.shape[1], np.nan)
    for j in range(s.shape[1]):
        col = s[~np.isnan(s[:, j]), j]
        if col.size:
            med[j] = float(np.median(col))
    return med


def floor32(medians: F64) -> F32:
    """The medians as the float32 floor every transformed row is clipped to (0 where undefined)."""
    m = np.where(np.isnan(medians), 0.0, medians)
    return np.clip(m, -_F32_MAX, _F32_MAX).astype(np.float32)


def transform(values: F64, medians: F64) -> F32:
    """Scaled, signed, clipped float32 rows [n, len(USED)]: every value >= its column's median.

    A column the baseline never defined is constant (its floor): the model cannot use it.
    """
    s = signed(values)
    floor = floor32(medians)
    never = np.isnan(medians)
    s[:, never] = np.nan
    np.clip(s, -_F32_MAX, _F32_MAX, out=s)
    x = s.astype(np.float32)
    x = np.where(np.isnan(x), floor, np.maximum(x, floor))
    return np.ascontiguousarray(x, np.float32)


def raw_median(j_used: int, medians: F64) -> float:
    """Column ``j_used``'s median back in the feature's own units (for explanations)."""
    m = float(medians[j_used]) * float(_SIGN[j_used])
    return float(np.expm1(m)) if _LOG[j_used] else m
