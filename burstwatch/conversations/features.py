"""Conversation features: one row per (local host, remote party), vectorised over all of them.

Every feature is computed for all conversations at once from the burst columns, grouped on
the sorted conversation column (bincount, reduceat, one argsort per column to sort): the
horizon of a busy network has hundreds of thousands of conversations, and a Python loop over
them would dominate.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from burstwatch.conversations.model import ConversationBursts, Conversations
from burstwatch.conversations.registry import CONVERSATION_FEATURE_INDEX, CONVERSATION_FEATURE_NAMES

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
NS = 1e9
HOUR_NS = 3_600_000_000_000

# The schedule model behind `periodicity` (see _periodicity): jitter of one slot as a share
# of the period, probability that a slot is missed, share of gaps left to random timing, and
# the most slots one gap may span.
SLOT_JITTER = 0.3
MISS_PROB = 0.2
OUTLIER_SHARE = 0.05
MAX_SLOTS = 8
PERIOD_REFINEMENTS = 3
# Dispersion at which the RITA-style dispersion score reaches 0 (random timing is ~0.7).
MAD_RATIO_CUTOFF = 0.5
MIN_BURSTS_FOR_INTERVALS = 3


@dataclass
class ConversationFeatures:
    """One row per conversation (the ``Conversations`` row order); columns in ``names`` order."""

    values: F64
    names: tuple[str, ...] = CONVERSATION_FEATURE_NAMES

    def column(self, name: str) -> F64:
        return self.values[:, CONVERSATION_FEATURE_INDEX[name]]

    def __len__(self) -> int:
        return int(self.values.shape[0])


class _Groups:
    """Rows already sorted by a group id in [0, n): per-group reductions without a loop."""

    def __init__(self, group: I64, n: int) -> None:
        self.group = group
        self.n = n
        self.count = np.bincount(group, minlength=n)
        self.start = np.concatenate(([0], np.cumsum(self.count)[:-1]))
        self.present = self.count > 0

    def sum(self, v: npt.NDArray[np.generic]) -> F64:
        return _bincount(self.group, v, self.n)

    def max(self, v: npt.NDArray[np.generic]) -> F64:
        out = np.full(self.n, np.nan)
        if v.size:
            out[self.present] = np.maximum.reduceat(v.astype(np.float64), self.start[self.present])
        return out

    def quantiles(self, v: F64, *qs: float) -> tuple[F64, ...]:
        """Per-group quantiles with numpy's default (linear) interpolation; NaN for empty groups."""
        sv = v[_group_order(self.group, v)]
        c = self.count[self.present]
        base = self.start[self.present]
        out = []
        for q in qs:
            pos = q * (c - 1)
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, c - 1)
            col = np.full(self.n, np.nan)
            col[self.present] = sv[base + lo] + (pos - lo) * (sv[base + hi] - sv[base + lo])
            out.append(col)
        return tuple(out)

    def median(self, v: F64) -> F64:
        return self.quantiles(v, 0.5)[0]


def _group_order(group: I64, v: npt.NDArray[np.generic]) -> I64:
    """Indices sorting rows by (group, v): the rank of v, then one argsort of
    group * rows + rank; over twice as fast as np.lexsort on millions of rows."""
    n = v.size
    rank = np.empty(n, np.int64)
    rank[np.argsort(v)] = np.arange(n)
    return np.argsort(group * n + rank)


def _bincount(group: I64, weights: npt.NDArray[np.generic], n: int) -> F64:
    """Per-group sums of weights, as float64."""
    sums = np.bincount(group, weights=weights.astype(np.float64), minlength=n)
    return sums.astype(np.float64, copy=False)


def _ratio(num: F64, den: F64) -> F64:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _sorted(b: ConversationBursts, n: int) -> ConversationBursts:
    """The bursts in (conversation, start) order, as the contract promises; reorder if not."""
    if len(b) and (b.conversation.min() < 0 or b.conversation.max() >= n):
        raise ValueError("ConversationBursts.conversation points outside Conversations")
    c, s = b.conversation, b.start_ns
    if np.all((c[1:] > c[:-1]) | ((c[1:] == c[:-1]) & (s[1:] >= s[:-1]))):
        return b
    order = np.lexsort((s, c))
    return ConversationBursts(**{f.name: getattr(b, f.name)[order] for f in fields(b)})


def _covered_ns(conv: I64, start: I64, end: I64, lo: I64, hi: I64, valid: B) -> F64:
    """Per conversation, the length of the union of the bursts clipped to [lo, hi].

    Start/end events sorted by (conversation, time) and a running count of open bursts:
    the count returns to 0 at each conversation's last event, so one global cumsum serves
    every conversation, exactly, in integer nanoseconds.
    """
    s = np.maximum(start, lo[conv])
    e = np.minimum(end, hi[conv])
    keep = (s < e) & valid[conv]
    g = np.concatenate((conv[keep], conv[keep]))
    t = np.concatenate((s[keep], e[keep]))
    d = np.concatenate((np.ones(int(keep.sum()), np.int64), -np.ones(int(keep.sum()), np.int64)))
    order = _group_order(g, t)
    g, t, depth = g[order], t[order], np.cumsum(d[order])
    open_ = depth[:-1] > 0
    return _bincount(g[:-1][open_], (t[1:] - t[:-1])[open_], valid.size)


def _schedule_log_density(x: F64, m: F64) -> F64:
    """Log density of a gap of x periods under the schedule model (outliers: mean gap m).

    Summed in log space, one slot count at a time: a gap hundreds of periods long costs
    exactly its outlier likelihood instead of an underflow, in memory linear in the gaps."""
    out = np.log(OUTLIER_SHARE) - np.log(m) - x / m
    for k in range(1, MAX_SLOTS + 1):
        var = SLOT_JITTER**2 * k
        log_prior = np.log(1 - OUTLIER_SHARE) + np.log(1 - MISS_PROB) + (k - 1) * np.log(MISS_PROB)
        out = np.logaddexp(out, log_prior - 0.5 * np.log(2 * np.pi * var) - 0.5 * (x - k) ** 2 / var)
    return out


def _evidence(log_density: F64, x: F64, m: F64) -> F64:
    """Per-gap log-likelihood ratio of the schedule over random timing with mean gap m."""
    return log_density + np.log(m) + x / m


def _evidence_of_perfect_schedule() -> float:
    one = np.ones(1)
    m = one / np.log(2.0)  # the median gap is the period
    return float(_evidence(_schedule_log_density(one, m), one, m)[0])


def _periodicity(dt: F64, gaps: _Groups, median: F64) -> F64:
    """Fit of the upload burst starts to a jittered schedule with missed slots, per conversation.

    Model: a gap spanning k slots of period P lasts P * (k + N(0, SLOT_JITTER^2 k)), with
    k >= 1 geometric (each slot missed with MISS_PROB), and OUTLIER_SHARE of the gaps left to
    random timing. Gaps are compared, not burst times against one grid, because a sender that
    jitters each gap drifts off any fixed grid within a few bursts.

    The period P starts at the median interval and is refined a few times as the median of
    gap / round(gap / P), so missed slots do not drag it. The evidence L is the mean per-gap
    log-likelihood ratio of the model over random (Poisson) timing. The Poisson rate comes
    from the median gap (mean = median / ln 2), not the mean: bursts in clumps far apart have
    a mean gap far above their typical one, and against that slow Poisson any tight model of
    the short gaps would win.
    The score is sqrt(clip(L / L_perfect, 0, 1)), L_perfect being the evidence of an exactly
    periodic series: 1 for a fixed period, 0 for gaps no more schedule-like than random; the
    square root spreads the low end so a real but loose schedule (±40 % jitter, a tenth of the
    slots missed: L / L_perfect ~ 0.5-0.75) reads 0.7-0.85 while random timing stays near 0
    (from ~20 bursts on; with fewer, chance alone makes some random series look scheduled).
    A missed slot costs evidence (a schedule missing most of its slots reads as loose at
    best), a gap much shorter than P costs much more (random timing has many), and a gap that
    fits nothing costs at most log(OUTLIER_SHARE), so one long pause does not erase a schedule.
    """
    g = gaps.group
    period = median
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(PERIOD_REFINEMENTS):
            p = np.where(period > 0, period, 1.0)[g]
            slots = np.maximum(1.0, np.rint(dt / p))
            period = np.where(period > 0, gaps.median(dt / slots), np.nan)
        ok = period > 0
        p = np.where(ok, period, 1.0)
        m = np.where(ok, median / np.log(2.0) / p, 1.0)[g]
        x = dt / p[g]
        per_gap = _evidence(_schedule_log_density(x, m), x, m)
        evidence = _ratio(gaps.sum(per_gap), gaps.count.astype(np.float64))
    evidence[~ok] = -np.inf
    share = np.clip(evidence / _evidence_of_perfect_schedule(), 0.0, 1.0)
    return np.sqrt(share)


def _novelty(first_seen: I64, known: B, horizon_start: I64, has_history: B) -> F64:
    """1 new within the horizon, 0 seen before; NaN when the host's past is unknown."""
    out = np.where(first_seen >= horizon_start, 1.0, 0.0)
    out[~has_history | ~known] = np.nan
    return out


def _hour_concentration(conv: I64, start_ns: I64, count: I64, n: int) -> F64:
    """1 - entropy of the hour-of-day histogram / its maximum for that many bursts."""
    hour = (start_ns // HOUR_NS) % 24
    hist = np.bincount(conv * 24 + hour, minlength=n * 24).reshape(n, 24).astype(np.float64)
    p = hist / np.maximum(count, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    out = np.full(n, np.nan)
    ok = count >= MIN_BURSTS_FOR_INTERVALS
    norm = np.log(np.minimum(count[ok], 24).astype(np.float64))
    out[ok] = np.clip(1.0 - entropy[ok] / norm, 0.0, 1.0)
    return out


def conversation_features(conv: Conversations, bursts: ConversationBursts) -> ConversationFeatures:
    """The registered conversation features for every row of ``conv``, from its bursts."""
    n = len(conv)
    b = _sorted(bursts, n)
    up = b.direction == 0
    u_conv, u_start, u_end = b.conversation[up], b.start_ns[up], b.end_ns[up]
    u_bytes = b.bytes[up].astype(np.float64)
    ups = _Groups(u_conv, n)
    count = ups.count
    has_up = count > 0
    cols: dict[str, F64] = {}

    cols["burst_count"] = count.astype(np.float64)
    total = ups.sum(u_bytes)
    cols["upload_bytes_total"] = total
    median_bytes = ups.median(u_bytes)
    cols["upload_bytes_median"] = median_bytes
    largest = ups.max(u_bytes)
    cols["upload_bytes_max"] = largest
    down = ~up
    cols["download_bytes_total"] = _bincount(b.conversation[down], b.bytes[down], n)

    order = _group_order(u_conv, b.flow_id[up])
    pc, pf = u_conv[order], b.flow_id[up][order]
    first = np.ones(pc.shape, bool)
    first[1:] = (pc[1:] != pc[:-1]) | (pf[1:] != pf[:-1])
    connections = np.bincount(pc[first], minlength=n).astype(np.float64)
    cols["connections"] = connections
    cols["bursts_per_connection"] = _ratio(count.astype(np.float64), connections)

    lo = np.zeros(n, np.int64)
    hi = np.zeros(n, np.int64)
    lo[has_up] = u_start[ups.start[has_up]]
    if u_end.size:
        hi[has_up] = np.maximum.reduceat(u_end, ups.start[has_up])
    span_ns = np.where(has_up, hi - lo, 0)
    cols["active_span"] = np.where(has_up, span_ns / NS, np.nan)
    covered = _covered_ns(b.conversation, b.start_ns, b.end_ns, lo, hi, has_up)
    cols["quiet_share"] = np.clip(1.0 - _ratio(covered, span_ns.astype(np.float64)), 0.0, 1.0)

    bytes_up = conv.bytes_up.astype(np.float64)
    cols["upload_share"] = _ratio(bytes_up, bytes_up + conv.bytes_down.astype(np.float64))

    same = u_conv[1:] == u_conv[:-1]
    gaps = _Groups(u_conv[1:][same], n)
    dt = (u_start[1:] - u_start[:-1])[same] / NS
    enough = count >= MIN_BURSTS_FOR_INTERVALS
    q1, q2, q3 = gaps.quantiles(dt, 0.25, 0.5, 0.75)
    cols["interval_median"] = np.where(enough, q2, np.nan)
    mad = gaps.median(np.abs(dt - q2[gaps.group]))
    mad_ratio = np.where(enough, _ratio(mad, q2), np.nan)
    cols["interval_mad_ratio"] = mad_ratio
    iqr = q3 - q1
    skew = np.where(iqr > 0, _ratio(q1 + q3 - 2 * q2, iqr), 0.0)
    cols["interval_bowley_skew"] = np.where(enough, skew, np.nan)
    periodicity = np.where(enough, _periodicity(dt, gaps, q2), np.nan)
    cols["periodicity"] = periodicity
    dispersion_score = np.nan_to_num(np.maximum(0.0, 1.0 - mad_ratio / MAD_RATIO_CUTOFF), nan=0.0)
    regularity = (1.0 - np.abs(skew) + dispersion_score + periodicity) / 3.0
    cols["regularity"] = np.where(enough, regularity, np.nan)

    peak = ups.max(b.rate[up])
    cols["upload_peak_rate"] = peak
    cols["rate_vs_host_peak"] = _ratio(peak, conv.host_peak_up_rate.astype(np.float64))

    h0 = conv.horizon_start_ns
    has_history = conv.host_first_seen_ns < h0
    always = np.ones(n, bool)
    cols["party_new"] = _novelty(conv.party_first_seen_ns, always, h0, has_history)
    cols["asn_new"] = _novelty(conv.asn_first_seen_ns, conv.asn_first_seen_ns >= 0, h0, has_history)
    cols["country_new"] = _novelty(
        conv.country_first_seen_ns, conv.country_first_seen_ns >= 0, h0, has_history
    )
    cols["host_history_span"] = np.maximum(h0 - conv.host_first_seen_ns, 0) / NS

    cols["hour_concentration"] = _hour_concentration(u_conv, u_start, count, n)
    cols["largest_burst_share"] = _ratio(largest, total)
    big = u_bytes >= 0.5 * median_bytes[u_conv]
    cols["repetition"] = np.bincount(u_conv[big], minlength=n).astype(np.float64)

    values = np.empty((n, len(CONVERSATION_FEATURE_NAMES)), np.float64)
    for i, name in enumerate(CONVERSATION_FEATURE_NAMES):
        values[:, i] = cols[name]
    return ConversationFeatures(values)
