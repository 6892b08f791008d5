"""Alert records: one per flagged flow-window, in Elastic Common Schema, saying why.

``source`` is the local side of the flow and ``destination`` the remote party, whoever
opened the connection (``flows.roles``; ``network.direction`` says which did). Severity follows Elastic's detection-rule
mapping (low 21, medium 47, high 73, critical 99); the level name is ``burstwatch.level``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from burstwatch.conversations.registry import CONVERSATION_FEATURES
from burstwatch.features import FEATURE_NAMES, FEATURES
from burstwatch.rules import Evidence, Rule

LEVEL_ORDER = ("low", "medium", "high", "critical")
SEVERITY = {"low": 21, "medium": 47, "high": 73, "critical": 99}
_UNITS = {f.name: f.unit for f in FEATURES} | {
    "conversation." + f.name: f.unit for f in CONVERSATION_FEATURES
}


def level_rank(level: str) -> int:
    return LEVEL_ORDER.index(level)


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return round(v, 6)
    return v


def human(value: Any, unit: str | None) -> str:
    """A value as a person reads it: 9.8 MB/s, 2.0 MB, 61 s."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    v = float(value)
    if unit in ("bytes", "bytes/s"):
        for scale, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if abs(v) >= scale:
                return f"{v / scale:.1f} {name}{'/s' if unit == 'bytes/s' else ''}"
        return f"{v:.0f} B{'/s' if unit == 'bytes/s' else ''}"
    if unit == "s":
        return f"{v:.3g} s"
    if unit == "ratio":
        return f"{v:.2f}"
    return f"{v:.4g}"


def evidence_record(ev: Evidence) -> dict[str, Any]:
    t = ev.test
    value = list(t.value) if isinstance(t.value, tuple) else t.value
    return {
        "field": t.field,
        "op": t.op,
        "threshold": value,
        "value": _plain(ev.value),
        "held": ev.held,
        "text": f"{t.field} = {human(ev.value, _UNITS.get(t.field))}"
        + ("" if ev.held else " (not)")
        + f" [{t.op} {human(value, _UNITS.get(t.field)) if not isinstance(value, list) else value}]",
    }


@dataclass
class RuleHit:
    rule: Rule
    evidence: tuple[Evidence, ...]


@dataclass
class Alert:
    """A flow-window flagged by flow rules: the flow record it came from and the rule hits
    (a finding of its conversation's case)."""

    flow: dict[str, Any]  # the flow record (ECS, as from outputs.ecs.flow_records)
    level: str
    hits: list[RuleHit] = field(default_factory=list)

    @property
    def severity(self) -> int:
        return SEVERITY[self.level]

    def to_record(self) -> dict[str, Any]:
        f = self.flow
        bw = f.get("burstwatch", {})
        src, dst = f["source"], f["destination"]
        top = max(self.hits, key=lambda h: level_rank(h.rule.level)) if self.hits else None
        rules = [
            {
                "id": h.rule.id,
                "name": h.rule.title,
                "level": h.rule.level,
                "tags": list(h.rule.tags),
                "evidence": [evidence_record(e) for e in h.evidence],
            }
            for h in self.hits
        ]
        features = {name: bw.get(name) for name in FEATURE_NAMES}
        rec: dict[str, Any] = {
            "@timestamp": f["event"]["end"],
            "event": {
                "kind": "alert",
                "category": ["network"],
                "type": ["connection"],
                "start": f["event"]["start"],
                "end": f["event"]["end"],
                "duration": f["event"]["duration"],
                "severity": self.severity,
            },
            "source": {k: v for k, v in src.items() if k != "geo" or v},
            "destination": dst,
            "network": f["network"],
            "rule": {
                "id": top.rule.id if top else "burstwatch.anomaly",
                "name": top.rule.title if top else "Anomalous encrypted flow to a foreign endpoint",
            },
            "burstwatch": {
                "level": self.level,
                "flow_id": bw.get("flow_id"),
                "record": bw.get("record"),
                "window_index": bw.get("window_index"),
                "capture": bw.get("capture"),
                "rules": rules,
                "encryption": {
                    "kind": bw.get("encryption", "none"),
                    "version": bw.get("encryption_version"),
                    "detail": bw.get("encryption_detail"),
                    "alpn": bw.get("alpn"),
                    "entropy": bw.get("entropy"),
                },
                "destination_scope": bw.get("destination_scope"),
                "source_scope": bw.get("source_scope"),
                "allowlisted": bw.get("allowlisted"),
                "features": features,
                "reason": self.reason(),
            },
        }
        if "tls" in f:
            rec["tls"] = f["tls"]
        return rec

    def reason(self) -> str:
        """One line: the values that made the rules fire (each field once)."""
        seen: dict[str, str] = {}
        for h in self.hits:
            for e in h.evidence:
                if e.field not in seen:
                    shown = human(e.value, _UNITS.get(e.field))
                    seen[e.field] = f"{e.field}={shown}" if e.held else f"not {e.field}={shown}"
        return ", ".join(seen.values())
