"""The report's figures as plotly.js figure specifications (plain dicts, serialised to JSON).

The figures are built as data, not with plotly's Python objects: a hundred cases would pay
for validation the data does not need. plotly (the Python package) supplies the plotly.js
bundle the page embeds once, so the two always match. Times are sent as milliseconds since
the epoch, which a plotly.js date axis draws as UTC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.report.data import Bursts, Ranked

UPLOAD, DOWNLOAD = "#c0392b", "#2e86c1"
MIN_BURST_NS = 1_000_000  # a burst shorter than 1 ms is drawn 1 ms long (as its rate counts it)
MAX_DRAWN = 200  # bursts per direction drawn one by one; beyond, the peak rate per time bin
PEAK_BINS = 300  # time bins of such a busy plot (its size stays bounded)
_BASE_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 30, "b": 45},
    "height": 300,
    "hovermode": "closest",
    "legend": {"orientation": "h", "y": 1.12},
    "font": {"family": "system-ui, sans-serif", "size": 12},
}


def utc_ms(ns: npt.ArrayLike) -> list[int]:
    """ns since the epoch -> whole ms since the epoch: a date axis reads numbers as UTC ms,
    drawn in UTC whatever the viewer's zone, in half the bytes of date strings."""
    return (np.asarray(ns, np.int64) // 1_000_000).tolist()


def rate_steps(start: npt.NDArray[np.int64], end: npt.NDArray[np.int64],
               rate: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The summed rate of overlapping bursts as a step function: at each time in ``t`` the
    rate becomes ``y`` (0 between bursts, so quiet periods are drawn as such)."""
    if not start.shape[0]:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    end = np.maximum(end, start + MIN_BURST_NS)
    t = np.concatenate([start, end])
    d = np.concatenate([rate, -rate])
    order = np.argsort(t, kind="stable")
    t, level = t[order], np.cumsum(d[order])
    last = np.append(t[1:] != t[:-1], True)  # the level after every change at one instant
    t, level = t[last], level[last]
    level[np.abs(level) < 1e-6 * max(float(rate.max()), 1.0)] = 0.0  # float residue of +r -r
    return np.concatenate([[t[0]], t]), np.concatenate([[0.0], np.maximum(level, 0.0)])


def peak_bins(t: npt.NDArray[np.int64], y: npt.NDArray[np.float64], lo: int, hi: int,
              bins: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """A step function reduced to the highest rate within each of ``bins`` equal time bins
    over [lo, hi] (no burst disappears: its bin shows at least its rate)."""
    edges = np.linspace(lo, hi, bins + 1).astype(np.int64)
    at_edge = np.searchsorted(t, edges[:-1], side="right") - 1
    peak = np.where(at_edge >= 0, y[np.maximum(at_edge, 0)], 0.0)  # level entering each bin
    inside = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, bins - 1)
    np.maximum.at(peak, inside, y)  # and every level reached within it
    return np.append(edges[:-1], hi), np.append(peak, 0.0)


def _step_trace(bursts: Bursts, name: str, colour: str, span: tuple[int, int]) -> dict[str, Any]:
    t, y = rate_steps(bursts.start_ns, bursts.end_ns, bursts.rate)
    if len(bursts) > MAX_DRAWN and t.shape[0]:
        t, y = peak_bins(t, y, span[0], span[1], PEAK_BINS)
        name += f" (peak per {(span[1] - span[0]) / PEAK_BINS / 60e9:.3g} min)"
    if t.shape[0] and span[0] < t[0]:  # silence before the first burst ...
        t, y = np.concatenate([[span[0]], t]), np.concatenate([[0.0], y])
    if t.shape[0] and span[1] > t[-1]:  # ... and after the last
        t, y = np.concatenate([t, [span[1]]]), np.concatenate([y, [0.0]])
    return {"type": "scatter", "mode": "lines", "name": name, "x": utc_ms(t),
            "y": np.round(y).astype(np.int64).tolist(), "fill": "tozeroy",
            "line": {"shape": "hv", "color": colour, "width": 1.5},
            "hovertemplate": "%{x|%Y-%m-%d %H:%M:%S.%L} UTC<br>%{y:.3s}B/s<extra></extra>"}


def rate_figure(uploads: Bursts, downloads: Bursts | None,
                span: tuple[int, int] | None = None) -> dict[str, Any]:
    """Upload (and download) rate of all the case's connections on one time axis over
    ``span`` (the connections' life: silence around the bursts shows); the area under each
    burst is shaded and each upload burst marked (hover: time, rate, bytes)."""
    times = [uploads.start_ns, uploads.end_ns]
    if downloads is not None:
        times += [downloads.start_ns, downloads.end_ns]
    every = np.concatenate(times)
    lo, hi = (int(every.min()), int(every.max())) if every.shape[0] else (0, 1)
    if span is not None:
        lo, hi = min(lo, span[0]), max(hi, span[1])
    traces = []
    if downloads is not None and len(downloads):  # beneath the upload: that is the story
        traces.append(_step_trace(downloads, "download rate", DOWNLOAD, (lo, hi)))
    traces.append(_step_trace(uploads, "upload rate", UPLOAD, (lo, hi)))
    marked = uploads.part(max(len(uploads) - MAX_DRAWN, 0), len(uploads))  # the newest
    traces.append({
        "type": "scatter", "mode": "markers", "name": "upload bursts",
        "x": utc_ms(marked.start_ns), "y": np.round(marked.rate).astype(np.int64).tolist(),
        "customdata": marked.bytes.tolist(),
        "marker": {"color": UPLOAD, "size": 6, "symbol": "triangle-up"},
        "hovertemplate": "%{x|%Y-%m-%d %H:%M:%S.%L} UTC<br>%{y:.3s}B/s, "
                         "%{customdata:,} bytes<extra>upload burst</extra>",
    })
    layout = {**_BASE_LAYOUT,
              "xaxis": {"title": {"text": "time (UTC)"}, "type": "date",
                        "range": utc_ms([lo - (hi - lo) // 50, hi + (hi - lo) // 50])},
              "yaxis": {"title": {"text": "bytes/s"}, "tickformat": "~s", "rangemode": "tozero"}}
    return {"data": traces, "layout": layout}


def interval_figure(uploads: Bursts) -> dict[str, Any] | None:
    """Histogram of the time between consecutive upload bursts (None with fewer than two)."""
    if len(uploads) < 2:
        return None
    starts = np.sort(uploads.start_ns)
    gaps = np.diff(starts) / 1e9
    if gaps.shape[0] <= MAX_DRAWN:  # the intervals themselves: plotly bins them
        trace = {"type": "histogram", "x": np.round(gaps, 3).tolist(),
                 "nbinsx": min(60, max(10, gaps.shape[0]))}
    else:  # many: binned here, so the page stays small
        counts, edges = np.histogram(gaps, bins=60)
        trace = {"type": "bar", "x": np.round((edges[:-1] + edges[1:]) / 2, 3).tolist(),
                 "y": counts.tolist(), "width": float(edges[1] - edges[0])}
    trace.update(name="intervals", marker={"color": UPLOAD})
    return {
        "data": [trace],
        "layout": {**_BASE_LAYOUT, "height": 240, "bargap": 0.05,
                   "xaxis": {"title": {"text": "seconds between upload bursts"}},
                   "yaxis": {"title": {"text": "bursts"}}},
    }


def bar_figure(rows: list[Ranked], axis: str) -> dict[str, Any]:
    """Upload bytes per country / ASN / host, the largest on top."""
    rows = rows[::-1]
    return {
        "data": [{"type": "bar", "orientation": "h", "x": [r.bytes for r in rows],
                  "y": [r.label for r in rows], "marker": {"color": UPLOAD},
                  "hovertemplate": "%{y}: %{x:.3s}B<extra></extra>"}],
        "layout": {**_BASE_LAYOUT, "height": 80 + 22 * max(len(rows), 1),
                   "margin": {"l": 220, "r": 20, "t": 10, "b": 40},
                   "xaxis": {"title": {"text": "upload bytes"}, "tickformat": "~s"},
                   "yaxis": {"title": {"text": axis}, "automargin": True}},
    }
