"""Flow rule hits: a flagged flow-window (its flow record and the rules that fired, each
with its evidence), a finding of its conversation's case, and how evidence reads.

Severity follows Elastic's detection-rule mapping (low 21, medium 47, high 73, critical 99);
the level name is ``burstwatch.case.level`` in case records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from burstwatch.rules import Evidence, Rule
from burstwatch.schema import FIELDS

LEVEL_ORDER = ("low", "medium", "high", "critical")
SEVERITY = {"low": 21, "medium": 47, "high": 73, "critical": 99}
_UNITS = {f.name: f.unit for f in FIELDS if f.unit}


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
        """The flow record the rules fired on (its case record says why)."""
        return self.flow

    def reason(self) -> str:
        """One line: the values that made the rules fire (each field once)."""
        seen: dict[str, str] = {}
        for h in self.hits:
            for e in h.evidence:
                if e.field not in seen:
                    shown = human(e.value, _UNITS.get(e.field))
                    seen[e.field] = f"{e.field}={shown}" if e.held else f"not {e.field}={shown}"
        return ", ".join(seen.values())
