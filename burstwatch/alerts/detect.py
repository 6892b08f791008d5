"""Turn flow batches into alerts: rules, allow-lists, the anomaly score and their policy.

Policy (docs/scoring.md): a rule hit raises an alert at the rule's level; the anomaly score
can raise that level and can on its own raise an alert for encrypted flows to a foreign
endpoint. Allow-listed flows raise nothing. A long flow is alerted per window; its whole-life
row is alerted only when none of its windows was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.alerts.frame import build_frame
from burstwatch.alerts.record import Alert, RuleHit, level_rank
from burstwatch.flows import state as fs
from burstwatch.outputs.ecs import flow_records
from burstwatch.records import FlowBatch
from burstwatch.rules import Rule, evaluate_all

SCORE_ONLY_MIN_UP_RATE = 100_000.0  # bytes/s: an upload burst below this never alerts on score alone

# (rule levels, anomaly score or None, encrypted, foreign) -> (level or None, policy note)
Policy = Callable[[list[str], float | None, bool, bool], tuple[str | None, str]]
# feature rows -> (scores, per-row explanations)
Scorer = Callable[[FlowBatch], tuple[npt.NDArray[np.float64], Sequence[list[dict[str, Any]]]]]


def rules_only_policy(
    levels: list[str], score: float | None, encrypted: bool, foreign: bool
) -> tuple[str | None, str]:
    """Without a scorer: the highest level among the rules that fired."""
    if not levels:
        return None, ""
    return max(levels, key=level_rank), ""


class _NoReasons(Sequence[list[dict[str, Any]]]):
    """No anomaly reasons for any of ``n`` rows (no scorer), without a list per row."""

    def __init__(self, n: int) -> None:
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [[] for _ in range(*index.indices(self._n))]
        range(self._n)[index]  # bounds check
        return []


@dataclass
class DetectStats:
    rows: int = 0
    alerts_by_level: dict[str, int] = field(default_factory=dict)
    allowlisted_rows: int = 0


class Detector:
    """Stateful across a run: remembers flows already alerted per window."""

    def __init__(self, rules: list[Rule], scorer: Scorer | None = None,
                 policy: Policy = rules_only_policy) -> None:
        self.rules = [r for r in rules if r.applies_to == "flow"]  # conversations: the judge's
        self.scorer = scorer
        self.policy = policy
        self.stats = DetectStats()
        self._windowed_alerted: set[str] = set()

    def prefetch(self, batch: FlowBatch) -> None:
        """Start what needs only the features (the anomaly score) before enrichment is done;
        give this to ``run_flows(on_features=...)``."""
        start = getattr(self.scorer, "prefetch", None)
        if start is not None:
            start(batch)

    def __call__(self, batch: FlowBatch) -> Iterator[Alert]:
        n = len(batch)
        if not n:
            return
        self.stats.rows += n
        scores: npt.NDArray[np.float64] | None = None
        reasons: Sequence[list[dict[str, Any]]] = _NoReasons(n)
        if self.scorer is not None:
            scores, reasons = self.scorer(batch)
            batch.extra["burstwatch.anomaly_score"] = scores
        frame = build_frame(batch)
        results = evaluate_all(self.rules, frame) if self.rules else []
        allowed = np.asarray(batch.extra.get("burstwatch.allowlisted", np.full(n, "", object))) != ""
        kind = batch.extra.get("burstwatch.encryption")
        encrypted_mask = (
            (kind != "") & (kind != "none") if kind is not None else np.zeros(n, bool)
        )
        foreign_mask = np.asarray(frame["destination.scope"], object) == "foreign"
        hits: dict[int, list[RuleHit]] = {}
        for res in results:
            for row, evidence in res.explanations():
                hits.setdefault(row, []).append(RuleHit(res.rule, evidence))
        candidates = set(hits)
        if scores is not None:
            # The score alone speaks only for what this tool exists to find: encrypted upload
            # bursts of some bandwidth to a foreign endpoint. A slow, steady encrypted call is
            # unusual in shape but not a burst transmission.
            up_rate = np.nan_to_num(np.asarray(frame["up_peak_burst_rate"], np.float64))
            eligible = encrypted_mask & foreign_mask & (up_rate >= SCORE_ONLY_MIN_UP_RATE)
            candidates |= set(np.flatnonzero(eligible).tolist())
        if not candidates:
            return
        order = np.array(sorted(candidates), np.intp)
        prefetch = getattr(reasons, "prefetch", None)
        if prefetch is not None:
            prefetch(order)
        records = list(flow_records(batch.take(order)))
        for k, row in enumerate(order.tolist()):
            row_hits = hits.get(row, [])
            score = None if scores is None else float(scores[row])
            level, note = self.policy(
                [h.rule.level for h in row_hits], score, bool(encrypted_mask[row]), bool(foreign_mask[row])
            )
            if level is None:
                continue
            if allowed[row]:
                self.stats.allowlisted_rows += 1
                continue
            rec = records[k]
            fid = rec["burstwatch"]["flow_id"]
            if batch.rows.kind[row] == fs.ROW_WINDOW:
                self._windowed_alerted.add(fid)
            elif fid in self._windowed_alerted:
                self._windowed_alerted.discard(fid)
                continue  # already alerted window by window
            self.stats.alerts_by_level[level] = self.stats.alerts_by_level.get(level, 0) + 1
            yield Alert(flow=rec, level=level, hits=row_hits, anomaly_score=score,
                        anomaly_reasons=list(reasons[row]), policy=note)
