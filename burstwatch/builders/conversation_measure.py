"""Measured rates for a conversation model, as markdown tables for docs/scoring.md.

- False alarms: benign conversations with an upload burst (the rows the model scores) at or
  over each threshold, per traffic class.
- Detection: exfiltration *sessions* (one host's exfiltration scenario in one site) whose
  highest-scoring conversation row reaches each threshold on the score alone. A session that
  crosses a horizon boundary is two rows; one reaching the threshold is enough.
- Real captures: each labelled file of a capture catalog read alone, its highest score.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from burstwatch.ledger import DAY_NS
from burstwatch.score.conversation.model import ConversationModel
from burstwatch.score.conversation.rows import ConversationRows, rows_from_captures

THRESHOLDS = (0.99, 0.995)


def _cells(scores: np.ndarray, thresholds: Sequence[float]) -> str:
    """Per threshold: the share (and count) of ``scores`` at or over it."""
    parts = []
    for t in thresholds:
        k = int((scores >= t).sum())
        parts.append(f"{k / scores.size:.1%} ({k})" if scores.size else "-")
    return " | ".join(parts)


def false_alarms(model: ConversationModel, rows: ConversationRows,
                 thresholds: Sequence[float] = THRESHOLDS) -> str:
    """Per class and overall: scored benign rows at or over each threshold."""
    keep = rows.scored
    scores, _ = model.score(rows.values[keep])
    labels = rows.label[keep].astype(str)
    head = "| class | conversations | " + " | ".join(f">= {t}" for t in thresholds) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(thresholds)]
    for label in sorted(set(labels.tolist())) + ["all"]:
        s = scores if label == "all" else scores[labels == label]
        name = "**all**" if label == "all" else label
        lines.append(f"| {name} | {s.size:,} | {_cells(s, thresholds)} |")
    return "\n".join(lines)


def detections(model: ConversationModel, rows: ConversationRows, names: Sequence[str],
               thresholds: Sequence[float] = THRESHOLDS) -> str:
    """Per exfiltration scenario: sessions whose best row reaches each threshold (score alone)."""
    scores, _ = model.score(rows.values)
    best: dict[tuple[str, str, str], float] = {}
    for s, site, host, label in zip(scores.tolist(), rows.site.tolist(), rows.local_ip.tolist(),
                                    rows.label.tolist(), strict=True):
        if label in names:
            key = (site, host, label)
            best[key] = max(best.get(key, 0.0), s)
    head = "| scenario | sessions | median score | " + " | ".join(f">= {t}" for t in thresholds) + " |"
    lines = [head, "|---|---:|---:|" + "---:|" * len(thresholds)]
    for name in [*names, "all"]:
        v = np.array([s for (_, _, label), s in best.items() if name in ("all", label)])
        med = f"{np.median(v):.3f}" if v.size else "-"
        bold = "**all**" if name == "all" else name
        lines.append(f"| {bold} | {v.size} | {med} | {_cells(v, thresholds)} |")
    return "\n".join(lines)


@dataclass
class CaptureResult:
    file: str
    label: str
    conversations: int
    scored: int
    best: float
    reason: str


_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def catalog(folder: Path) -> list[tuple[Path, str]]:
    """(file, label) of every capture listed in ``folder``'s CATALOG.md and its sub-folders'."""
    out = []
    for cat in sorted(folder.rglob("CATALOG.md")):
        for line in cat.read_text(encoding="utf-8").splitlines():
            m = _ROW.match(line)
            if not m:
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 7 and (cat.parent / m.group(1)).is_file():
                out.append((cat.parent / m.group(1), cells[6]))
    return out


def must_stay_low(label: str) -> bool:
    """NEG files and POS* files (benign apps with the target shape) must not reach 0.995."""
    return "NEG" in label or "POS*" in label


def real_captures(model: ConversationModel, folder: Path, horizon_ns: int = DAY_NS) -> list[CaptureResult]:
    """Each catalogued capture read alone, as ``train``/``scan`` read captures; its best score."""
    from burstwatch.config import load_settings
    from burstwatch.enrich.geo import GeoDatabase

    settings, geo = load_settings(None, None, None), GeoDatabase.bundled()
    out = []
    for path, label in catalog(folder):
        rows = rows_from_captures([str(path)], horizon_ns, settings=settings, geo=geo)
        scores, reasons = model.score(rows.values)
        scored = rows.scored
        i = int(np.argmax(scores)) if len(rows) else -1
        text = "; ".join(r["text"] for r in reasons[i]) if i >= 0 and scored[i] else ""
        out.append(CaptureResult(str(path.relative_to(folder)), label, len(rows), int(scored.sum()),
                                 float(scores.max()) if len(rows) else 0.0, text))
    return out


def capture_table(results: Sequence[CaptureResult]) -> str:
    lines = ["| file | label | conversations (scored) | highest score | must stay < 0.995 |",
             "|---|---|---:|---:|---|"]
    for r in results:
        must = "yes" if must_stay_low(r.label) else ""
        if must and r.best >= 0.995:
            must = "**no: reaches 0.995**"
        lines.append(f"| `{r.file}` | {r.label} | {r.conversations} ({r.scored}) | {r.best:.3f} | {must} |")
    return "\n".join(lines)
