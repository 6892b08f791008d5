"""Match the flow rules on enriched flow-window batches: each flagged row is an ``Alert``.

A rule hit flags the row at the rule's level; allow-listed flows raise nothing. A long flow is
flagged per window, and its whole-life row only when none of its windows was. These are the
flow-level findings the judge (``conversations/judge.py``) attaches to the case of the
flow's conversation; the anomaly score speaks for conversations, not for flow-windows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from burstwatch.alerts.frame import build_frame
from burstwatch.alerts.record import Alert, RuleHit, level_rank
from burstwatch.flows import state as fs
from burstwatch.outputs.ecs import flow_records
from burstwatch.records import FlowBatch
from burstwatch.rules import Rule, evaluate_all


class Detector:
    """Stateful across a run: remembers flows already flagged per window."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = [r for r in rules if r.applies_to == "flow"]  # conversations: the judge's
        self._windowed_alerted: set[str] = set()

    def __call__(self, batch: FlowBatch) -> Iterator[Alert]:
        n = len(batch)
        if not n or not self.rules:
            return
        results = evaluate_all(self.rules, build_frame(batch))
        allowed = np.asarray(batch.extra.get("burstwatch.allowlisted", np.full(n, "", object))) != ""
        hits: dict[int, list[RuleHit]] = {}
        for res in results:
            for row, evidence in res.explanations():
                hits.setdefault(row, []).append(RuleHit(res.rule, evidence))
        if not hits:
            return
        order = np.array(sorted(hits), np.intp)
        records = list(flow_records(batch.take(order)))
        for k, row in enumerate(order.tolist()):
            row_hits = hits[row]
            if allowed[row]:
                continue
            level = max((h.rule.level for h in row_hits), key=level_rank)
            rec = records[k]
            fid = rec["burstwatch"]["flow"]["id"]
            if batch.rows.kind[row] == fs.ROW_WINDOW:
                self._windowed_alerted.add(fid)
            elif fid in self._windowed_alerted:
                self._windowed_alerted.discard(fid)
                continue  # already flagged window by window
            yield Alert(flow=rec, level=level, hits=row_hits)
