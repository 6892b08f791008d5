"""The report's figures as plotly.js figure specifications (plain dicts, serialised to JSON).

The figures are built as data, not with plotly's Python objects: a hundred cases would pay
for validation the data does not need. plotly (the Python package) supplies the plotly.js
bundle the page embeds once, so the two always match. Times are UTC and sent as naive
date strings, which plotly.js draws as they are (no conversion to the viewer's zone).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.report.data import Bursts, Ranked

UPLOAD, DOWNLOAD = "#c0392b", "#2e86c1"
MIN_BURST_NS = 1_000_000  # a burst shorter than 1 ms is drawn 1 ms long (as its rate counts it)
SHADE_SHARE = 1 / 200  # a shaded burst is at least this share of the time axis wide
MAX_SHADED = 400  # at most this many bursts are shaded (the newest); all are plotted
_BASE_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 30, "b": 45},
    "height": 300,
    "hovermode": "closest",
    "legend": {"orientation": "h", "y": 1.12},
    "font": {"family": "system-ui, sans-serif", "size": 12},
}


def utc_text(ns: npt.ArrayLike) -> list[str]:
    """ns since the epoch -> 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC), as plotly.js reads dates."""
    arr = np.asarray(ns, np.int64).astype("datetime64[ns]")
    return [s.replace("T", " ") for s in np.datetime_as_string(arr, unit="us").tolist()]


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


def _step_trace(bursts: Bursts, name: str, colour: str, span: tuple[int, int]) -> dict[str, Any]:
    t, y = rate_steps(bursts.start_ns, bursts.end_ns, bursts.rate)
    if t.shape[0] and span[0] < t[0]:  # silence before the first burst ...
        t, y = np.concatenate([[span[0]], t]), np.concatenate([[0.0], y])
    if t.shape[0] and span[1] > t[-1]:  # ... and after the last
        t, y = np.concatenate([t, [span[1]]]), np.concatenate([y, [0.0]])
    return {"type": "scatter", "mode": "lines", "name": name, "x": utc_text(t),
            "y": np.round(y, 1).tolist(), "line": {"shape": "hv", "color": colour, "width": 1.5},
            "hoverinfo": "x+y"}


def rate_figure(uploads: Bursts, downloads: Bursts | None,
                span: tuple[int, int] | None = None) -> dict[str, Any]:
    """Upload (and download) rate of all the case's connections on one time axis over
    ``span`` (the connections' life: silence around the bursts shows), each upload burst
    shaded and marked (hover: bytes, rate, connection)."""
    times = [uploads.start_ns, uploads.end_ns]
    if downloads is not None:
        times += [downloads.start_ns, downloads.end_ns]
    every = np.concatenate(times)
    lo, hi = (int(every.min()), int(every.max())) if every.shape[0] else (0, 1)
    if span is not None:
        lo, hi = min(lo, span[0]), max(hi, span[1])
    traces = [_step_trace(uploads, "upload rate", UPLOAD, (lo, hi))]
    if downloads is not None and len(downloads):
        traces.append(_step_trace(downloads, "download rate", DOWNLOAD, (lo, hi)))
    traces.append({
        "type": "scatter", "mode": "markers", "name": "upload bursts",
        "x": utc_text(uploads.start_ns), "y": np.round(uploads.rate, 1).tolist(),
        "marker": {"color": UPLOAD, "size": 6, "symbol": "triangle-up"},
        "text": [f"{int(b):,} bytes, connection {f}"
                 for b, f in zip(uploads.bytes.tolist(), uploads.flow_id, strict=True)],
        "hovertemplate": "%{x} UTC<br>%{y:.3s}B/s<br>%{text}<extra></extra>",
    })
    shapes = []
    if len(uploads):
        wide = max(MIN_BURST_NS, int((hi - lo) * SHADE_SHARE))
        s = uploads.start_ns[-MAX_SHADED:]
        e = np.maximum(uploads.end_ns[-MAX_SHADED:], s + wide)
        shapes = [{"type": "rect", "xref": "x", "yref": "paper", "x0": a, "x1": b, "y0": 0,
                   "y1": 1, "fillcolor": UPLOAD, "opacity": 0.12, "line": {"width": 0}}
                  for a, b in zip(utc_text(s), utc_text(e), strict=True)]
    layout = {**_BASE_LAYOUT, "shapes": shapes,
              "xaxis": {"title": {"text": "time (UTC)"}, "type": "date",
                        "range": utc_text([lo - (hi - lo) // 50, hi + (hi - lo) // 50])},
              "yaxis": {"title": {"text": "bytes/s"}, "tickformat": "~s", "rangemode": "tozero"}}
    return {"data": traces, "layout": layout}


def interval_figure(uploads: Bursts) -> dict[str, Any] | None:
    """Histogram of the time between consecutive upload bursts (None with fewer than two)."""
    if len(uploads) < 2:
        return None
    starts = np.sort(uploads.start_ns)
    gaps = np.diff(starts) / 1e9
    return {
        "data": [{"type": "histogram", "x": np.round(gaps, 3).tolist(), "name": "intervals",
                  "marker": {"color": UPLOAD}, "nbinsx": min(60, max(10, gaps.shape[0]))}],
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
