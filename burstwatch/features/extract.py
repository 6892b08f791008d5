"""Compute the registered features from flow/window accumulators, vectorised over rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from burstwatch.features.registry import FEATURE_INDEX, FEATURE_NAMES
from burstwatch.flows import state as st
from burstwatch.flows.records import FlowRows

F64 = npt.NDArray[np.float64]
NS = 1e9


@dataclass
class FeatureMatrix:
    """One row per flow-window; columns in ``names`` order (the registry's)."""

    values: F64
    names: tuple[str, ...] = FEATURE_NAMES

    def column(self, name: str) -> F64:
        return self.values[:, FEATURE_INDEX[name]]

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _ratio(num: F64, den: F64) -> F64:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def compute_features(rows: FlowRows) -> FeatureMatrix:
    """Features for each row of ``rows``."""
    a = rows.acc_i.astype(np.float64)
    f = rows.acc_f
    n = len(rows)
    cols: dict[str, F64] = {}
    duration = (a[:, st.I_LAST] - a[:, st.I_FIRST]) / NS
    cols["duration"] = duration
    cols["orig_packets"] = a[:, st.I_PKTS0]
    cols["resp_packets"] = a[:, st.I_PKTS1]
    cols["orig_bytes"] = a[:, st.I_WIRE0]
    cols["resp_bytes"] = a[:, st.I_WIRE1]
    cols["orig_payload_bytes"] = a[:, st.I_PAY0]
    cols["resp_payload_bytes"] = a[:, st.I_PAY1]
    count = a[:, st.I_BCOUNT0] + a[:, st.I_BCOUNT1]
    cols["burst_count"] = count
    cols["up_burst_count"] = a[:, st.I_BCOUNT0]
    cols["down_burst_count"] = a[:, st.I_BCOUNT1]
    burst_bytes = a[:, st.I_BBYTES0] + a[:, st.I_BBYTES1]
    cols["burst_bytes_sum"] = burst_bytes
    cols["burst_bytes_max"] = a[:, st.I_BBYTES_MAX]
    cols["burst_bytes_mean"] = _ratio(burst_bytes, count)
    cols["up_burst_bytes_max"] = a[:, st.I_BBYTES_MAX0]
    cols["burst_duration_max"] = a[:, st.I_BDUR_MAX] / NS
    cols["burst_duration_mean"] = _ratio(a[:, st.I_BDUR_SUM] / NS, count)
    cols["peak_burst_rate"] = f[:, st.F_PEAK_RATE].copy()
    cols["up_peak_burst_rate"] = f[:, st.F_PEAK_RATE0].copy()
    payload = a[:, st.I_PAY0] + a[:, st.I_PAY1]
    mean_rate = payload / np.maximum(duration, 1e-3)
    cols["mean_rate"] = mean_rate
    cols["peak_to_mean_rate"] = np.where(count > 0, _ratio(f[:, st.F_PEAK_RATE], mean_rate), 0.0)
    duty = _ratio(a[:, st.I_BDUR_SUM] / NS, duration)
    cols["burst_duty_cycle"] = np.where(count > 0, np.minimum(np.nan_to_num(duty, nan=1.0), 1.0), 0.0)
    idle = a[:, st.I_IDLE_BEFORE_FIRST]
    cols["idle_before_first_burst"] = np.where(idle >= 0, idle / NS, np.nan)
    nint = a[:, st.I_NINT]
    mean_int = _ratio(f[:, st.F_INT_SUM], nint)
    cols["inter_burst_mean"] = mean_int
    var = _ratio(f[:, st.F_INT_SUMSQ], nint) - mean_int**2
    std = np.sqrt(np.maximum(var, 0.0))
    cols["inter_burst_cv"] = np.where(nint >= 2, _ratio(std, mean_int), np.nan)
    imin = a[:, st.I_INT_MIN]
    cols["inter_burst_min"] = np.where(imin >= 0, imin / NS, np.nan)
    cols["upload_share"] = _ratio(a[:, st.I_PAY0], payload)
    cols["burst_upload_share"] = _ratio(a[:, st.I_BBYTES0], burst_bytes)
    cols["burst_byte_share"] = _ratio(burst_bytes, payload)
    pkts = a[:, st.I_PKTS0] + a[:, st.I_PKTS1]
    wire = a[:, st.I_WIRE0] + a[:, st.I_WIRE1]
    mean_size = _ratio(wire, pkts)
    cols["packet_size_mean"] = mean_size
    cols["packet_size_std"] = np.sqrt(np.maximum(_ratio(a[:, st.I_WIRESQ], pkts) - mean_size**2, 0.0))
    values = np.empty((n, len(FEATURE_NAMES)), np.float64)
    for i, name in enumerate(FEATURE_NAMES):
        values[:, i] = cols[name]
    return FeatureMatrix(values)
