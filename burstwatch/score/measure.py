"""Measured rates for a scorer: benign rows over a threshold, exfiltration sessions caught.

A false alarm is counted per flow-window with bursts (the rows the scorer judges). A
detection is counted per exfiltration *session* (one internal host's rows in one capture):
a session is caught when any of its rows reaches the threshold, because one alert is enough
for an analyst to look at the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from burstwatch.score.iforest import BurstScorer, has_burst
from burstwatch.score.rows import CaptureRows


@dataclass
class Rate:
    """How many of ``total`` items (rows or sessions) reached each threshold."""

    label: str
    total: int
    hits: dict[float, int] = field(default_factory=dict)

    def share(self, threshold: float) -> float:
        return self.hits.get(threshold, 0) / self.total if self.total else float("nan")


def _by_label(values: dict[str, list[float]], thresholds: Sequence[float]) -> list[Rate]:
    out = []
    for label in sorted(values):
        v = np.asarray(values[label])
        out.append(Rate(label, int(v.size), {t: int((v >= t).sum()) for t in thresholds}))
    all_v = np.concatenate([np.asarray(v) for v in values.values()]) if values else np.zeros(0)
    out.append(Rate("all", int(all_v.size), {t: int((all_v >= t).sum()) for t in thresholds}))
    return out


def false_alarms(scorer: BurstScorer, rows: CaptureRows, labels: Sequence[str],
                 thresholds: Sequence[float]) -> list[Rate]:
    """Per label (``labels[source]``) and overall: benign rows with bursts at or over each threshold."""
    scores = scorer.score(rows.values)
    judged = has_burst(rows.values)
    values: dict[str, list[float]] = {}
    for s, src in zip(scores[judged].tolist(), rows.source[judged].tolist(), strict=True):
        values.setdefault(labels[src], []).append(s)
    return _by_label(values, thresholds)


def detections(scorer: BurstScorer, rows: CaptureRows, labels: Sequence[str],
               thresholds: Sequence[float]) -> list[Rate]:
    """Per label and overall: sessions whose highest row score reaches each threshold."""
    scores = scorer.score(rows.values)
    best: dict[tuple[int, int, int], float] = {}
    for s, src, hi, lo in zip(scores.tolist(), rows.source.tolist(), rows.orig[:, 0].tolist(),
                              rows.orig[:, 1].tolist(), strict=True):
        key = (src, hi, lo)
        best[key] = max(best.get(key, 0.0), s)
    values: dict[str, list[float]] = {}
    for (src, _, _), s in best.items():
        values.setdefault(labels[src], []).append(s)
    return _by_label(values, thresholds)


def markdown(rates: list[Rate], thresholds: Sequence[float], unit: str) -> str:
    """A table: label, count, and the share at each threshold."""
    head = f"| class | {unit} | " + " | ".join(f">= {t}" for t in thresholds) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(thresholds)]
    for r in rates:
        name = f"**{r.label}**" if r.label == "all" else r.label
        cells = " | ".join(f"{r.share(t):.1%} ({r.hits[t]})" for t in thresholds)
        lines.append(f"| {name} | {r.total:,} | {cells} |")
    return "\n".join(lines)
