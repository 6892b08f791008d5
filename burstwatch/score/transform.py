"""The feature transform: registry features -> the matrix the isolation forest sees.

Isolation trees split uniformly between a feature's smallest and largest value, so a
heavy-tailed feature (bytes, rates, durations span six or more decades) would have nearly
every split land in its empty upper range. ``log1p`` spreads those evenly; bounded ratios
(0..1) are already even and stay as they are. The op is chosen by the registry unit, so a
feature added with a new unit fails here, at import, until someone decides how to scale it.

Some registry features restate others (wire bytes are payload bytes plus headers, packets are
bytes over packet size, ``burst_count`` is up plus down bursts): they are left out (op
``drop``). An isolation tree picks the feature to split on at random, so every restatement of
"how much data" would take splits away from the timing and direction features that tell a
quiet-then-burst upload from an ordinary transfer (docs/scoring.md shows the effect).

Undefined values (NaN) get a per-feature fill value, in transformed space. Every transformed
value is >= 0, so the default fill, -1, puts "undefined" (an interval with fewer than two
bursts, a share with nothing to divide) just below every real value: the trees can separate
"undefined" from "small" with a single split.

Only the registry's burst-shape columns enter; addresses, ports and protocol never do, so a
model says nothing about *where* traffic goes, only about its shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.features import FEATURES, FeatureMatrix

F32 = npt.NDArray[np.float32]

LOG1P = "log1p"
IDENTITY = "identity"
DROP = "drop"

# How each registry unit is scaled.
_OP_BY_UNIT: dict[str, str] = {
    "s": LOG1P,
    "packets": LOG1P,
    "bytes": LOG1P,
    "bursts": LOG1P,
    "bytes/s": LOG1P,
    "ratio": IDENTITY,
}
# Ratios that are not bounded by 1 (hundreds for a quiet-then-burst flow) are heavy-tailed too.
_UNBOUNDED_RATIOS = frozenset({"peak_to_mean_rate", "inter_burst_cv"})

# Restatements of kept features (see the module docstring), each with what it restates.
_DROPPED: dict[str, str] = {
    "orig_packets": "orig_payload_bytes / packet size",
    "resp_packets": "resp_payload_bytes / packet size",
    "orig_bytes": "orig_payload_bytes plus headers",
    "resp_bytes": "resp_payload_bytes plus headers",
    "burst_count": "up_burst_count + down_burst_count",
    "burst_bytes_sum": "burst_byte_share x payload bytes",
    "burst_bytes_mean": "burst_bytes_max for the few bursts a flow has",
    "burst_duration_mean": "burst_duration_max for the few bursts a flow has",
    "packet_size_std": "the mix of data segments and bare ACKs (upload_share, packet_size_mean)",
}

UNDEFINED = -1.0
# Every kept feature that can be undefined means "undefined" by it (fewer than two bursts, no
# burst yet, nothing to divide), so all use the sentinel; a feature needing another fill goes here.
_NAN_FILL: dict[str, float] = {}

# Keep transformed values inside float32 (the trees compare float32 inputs).
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class FeatureTransform:
    """How one registry feature is scaled and what an undefined value becomes."""

    name: str
    unit: str
    op: str
    nan_fill: float

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "op": self.op, "nan_fill": self.nan_fill}


def _build() -> tuple[FeatureTransform, ...]:
    out = []
    for f in FEATURES:
        if f.unit not in _OP_BY_UNIT:
            raise KeyError(f"feature {f.name!r} has unit {f.unit!r}, which the scorer cannot scale; "
                           "add it to burstwatch/score/transform.py")
        op = DROP if f.name in _DROPPED else LOG1P if f.name in _UNBOUNDED_RATIOS else _OP_BY_UNIT[f.unit]
        out.append(FeatureTransform(f.name, f.unit, op, _NAN_FILL.get(f.name, UNDEFINED)))
    return tuple(out)


TRANSFORMS: tuple[FeatureTransform, ...] = _build()
USED: npt.NDArray[np.intp] = np.array([i for i, t in enumerate(TRANSFORMS) if t.op != DROP], np.intp)
USED_NAMES: tuple[str, ...] = tuple(TRANSFORMS[i].name for i in USED)
_LOG = np.array([TRANSFORMS[i].op == LOG1P for i in USED])
_FILL = np.array([TRANSFORMS[i].nan_fill for i in USED], np.float64)


def schema() -> list[dict[str, Any]]:
    """The transform as plain data, stored in model files and compared on load."""
    return [t.as_dict() for t in TRANSFORMS]


def as_values(X: FeatureMatrix | npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The raw feature values of ``X`` as float64 [n, F], checked against the registry."""
    if isinstance(X, FeatureMatrix):
        if tuple(X.names) != tuple(t.name for t in TRANSFORMS):
            raise ValueError("feature matrix columns differ from the feature registry")
        X = X.values
    values = np.asarray(X, np.float64)
    if values.ndim != 2 or values.shape[1] != len(TRANSFORMS):
        raise ValueError(f"expected feature rows of width {len(TRANSFORMS)}, got shape {values.shape}")
    return values


def transform(X: FeatureMatrix | npt.ArrayLike) -> F32:
    """Scaled, NaN-free float32 rows [n, len(USED)] for the forest: the kept columns, in order."""
    out = as_values(X)[:, USED]
    out[:, _LOG] = np.log1p(np.maximum(out[:, _LOG], 0.0))  # NaN stays NaN
    out = np.where(np.isnan(out), _FILL, out)
    np.clip(out, -_F32_MAX, _F32_MAX, out=out)
    return np.ascontiguousarray(out, np.float32)


def transform_column(values: npt.ArrayLike, index: int) -> npt.NDArray[np.float64]:
    """Registry column ``index``'s scaling applied to ``values`` (NaN kept), for explanations."""
    v = np.asarray(values, np.float64)
    if TRANSFORMS[index].op == LOG1P:
        return np.log1p(np.maximum(v, 0.0))
    return v
