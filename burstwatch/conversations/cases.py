"""Cases: one alert per conversation, revised as it grows, saying in a sentence why.

A burst transmitter shows up as many flows, connections and capture files; an analyst wants
one case for "this host, that party": its bursts, the connections that carried them, the
rules that fired on the conversation or on any of its flows, the anomaly score, the level and
the one number that decided it. A case keeps its id across runs and live ticks (a hash of
host and party), and its revision goes up each time it gains bursts or rises a level.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from burstwatch.alerts.attack import threat_fields
from burstwatch.alerts.record import SEVERITY, human, level_rank
from burstwatch.outputs.columns import num
from burstwatch.outputs.ecs import iso
from burstwatch.schema import ECS_VERSION

MAX_BURSTS_LISTED = 200  # the newest bursts a case record lists (the count is always exact)


def case_id(local_ip: str, party: str) -> str:
    """Stable across runs and machines: the same host and party are the same case."""
    return hashlib.blake2s(f"{local_ip}|{party}".encode(), digest_size=8).hexdigest()


@dataclass
class Finding:
    """One reason the case exists: a rule on the conversation, a rule on one of its flows,
    or the anomaly score."""

    kind: str  # "conversation rule", "flow rule" or "anomaly score"
    id: str
    title: str
    level: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    flow_id: str | None = None
    tags: list[str] = field(default_factory=list)
    # The flow's tunnel (its record's ``burstwatch.tunnel``) when a flow rule fired inside one.
    tunnel: dict[str, Any] | None = None
    # Of the rule: its Sigma id, version (modified or date) and first reference URL.
    uuid: str = ""
    version: str = ""
    reference: str = ""

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"kind": self.kind, "id": self.id, "name": self.title,
                               "level": self.level, "tags": self.tags, "evidence": self.evidence}
        if self.flow_id is not None:
            rec["flow_id"] = self.flow_id
        if self.tunnel is not None:
            rec["tunnel"] = self.tunnel
        return rec


@dataclass
class Burst:
    start_ns: int
    end_ns: int
    bytes: int
    rate: float
    flow_id: str

    def to_record(self) -> dict[str, Any]:
        return {"start": iso(self.start_ns), "end": iso(self.end_ns), "bytes": self.bytes,
                "rate": round(self.rate, 1), "flow_id": self.flow_id}


@dataclass
class Case:
    """A conversation judged worth an analyst's look."""

    case_id: str
    level: str
    local_ip: str
    party: str
    party_kind: str
    remote_ip: str  # the remote address carrying the most upload bytes
    remote_ips: int
    remote_port: int
    transport: str
    country: str
    asn: int
    org: str
    scope: str
    encryption: str
    server_name: str
    first_ns: int
    last_ns: int
    upload_bursts: list[Burst]
    flows: list[str]
    features: dict[str, float | None]
    findings: list[Finding]
    anomaly_score: float | None
    anomaly_reasons: list[dict[str, Any]]
    decided_by: str  # the one number (or rule) that set the level, as a sentence fragment
    capture: str
    revision: int = 1

    @property
    def severity(self) -> int:
        return SEVERITY[self.level]

    @property
    def upload_bytes(self) -> int:
        return sum(b.bytes for b in self.upload_bursts)

    def headline(self) -> str:
        """Who, to whom, where: the first line an analyst reads."""
        where = self.country or "--"
        if self.asn:
            where += f" AS{self.asn} {self.org}".rstrip()
        enc = self.encryption + (f" ({self.server_name})" if self.server_name else "")
        return f"{self.local_ip} -> {self.party} [{self.remote_ip}:{self.remote_port}/{self.transport}]  {where}  {enc}"

    def reason(self) -> str:
        """What was seen, which rule or baseline says it is unusual, and what set the level."""
        n = len(self.upload_bursts)
        sizes = sorted(b.bytes for b in self.upload_bursts)
        size_text = (human(sizes[0], "bytes") if sizes and sizes[0] == sizes[-1]
                     else f"{human(sizes[0], 'bytes')}-{human(sizes[-1], 'bytes')}" if sizes else "")
        span_s = (self.upload_bursts[-1].start_ns - self.upload_bursts[0].start_ns) / 1e9 if n > 1 else 0.0
        where = f"{self.country} " if self.country and self.scope == "foreign" else ""
        enc = "encrypted " if self.encryption not in ("", "none") else ""
        seen = (f"{self.local_ip} sent {n} {enc}upload burst{'s' if n != 1 else ''}"
                + (f" of {size_text}" if size_text else "")
                + f" ({human(self.upload_bytes, 'bytes')} in all) to {where}party {self.party}")
        if n > 1:
            seen += f" over {_duration(span_s)}"
            interval = self.features.get("interval_median")
            periodic = self.features.get("periodicity")
            if interval is not None and periodic is not None and periodic >= 0.5:
                seen += f", roughly every {_duration(interval)}"
        conns = len({b.flow_id for b in self.upload_bursts})
        if conns > 1:
            seen += f", on {conns} connections"
        why = "; ".join(_findings_text(self.findings))
        return f"{seen}. Flagged by {why}. Level {self.level}: {self.decided_by}."

    def to_record(self, observer: dict[str, str] | None = None) -> dict[str, Any]:
        """The case as an ECS alert record (``burstwatch/schema/fields.py``, kind alert);
        ``observer``: the capturing host and interface, for live."""
        top = max(self.findings, key=lambda f: level_rank(f.level)) if self.findings else None
        dst: dict[str, Any] = {}
        if self.remote_ip:
            dst["ip"] = self.remote_ip
        if self.remote_port:
            dst["port"] = self.remote_port
        if self.party_kind == "domain":
            dst["domain"] = self.party
        if self.country:
            dst["geo"] = {"country_iso_code": self.country}
        if self.asn:
            dst["as"] = {"number": self.asn, "organization": {"name": self.org}}
        network: dict[str, Any] = {"type": "ipv6" if ":" in self.local_ip else "ipv4",
                                   "direction": "internal" if self.scope == "internal"
                                   else "outbound"}
        if self.transport:
            network = {"transport": self.transport, **network}
        rule: dict[str, Any] = {"id": top.id if top else "burstwatch.case",
                                "name": top.title if top else "Conversation"}
        if top is not None:
            rule.update({k: v for k, v in (("uuid", top.uuid), ("version", top.version),
                                           ("reference", top.reference)) if v})
        rule["ruleset"] = "burstwatch"
        rec: dict[str, Any] = {
            "@timestamp": iso(self.last_ns),
            "ecs": {"version": ECS_VERSION},
            "event": {
                "kind": "alert",
                "category": ["network"],
                "type": ["connection"],
                "start": iso(self.first_ns),
                "end": iso(self.last_ns),
                "duration": int(self.last_ns - self.first_ns),
                "severity": self.severity,
                "risk_score": risk_score(self.level, self.anomaly_score),
            },
            "source": {"ip": self.local_ip},
            "destination": dst,
            "network": network,
            "rule": rule,
        }
        threat = threat_fields(top.tags) if top is not None else {}
        if threat:
            rec["threat"] = threat
        if self.server_name:
            rec["tls"] = {"client": {"server_name": self.server_name}}
        rec["related"] = {"ip": list(dict.fromkeys(a for a in (self.local_ip, self.remote_ip) if a))}
        if observer:
            rec["observer"] = observer
        rec["burstwatch"] = {
            "capture": self.capture,
            "destination": {"scope": self.scope},
            "encryption": {"verdict": self.encryption or "none"},
            "conversation": {
                "party": self.party,
                "party_kind": self.party_kind,
                "remote_ips": self.remote_ips,
                **self.features,
                "anomaly_score": None if self.anomaly_score is None else num(round(self.anomaly_score, 4)),
                "anomaly_reasons": self.anomaly_reasons,
            },
            "case": {
                "id": self.case_id,
                "revision": self.revision,
                "level": self.level,
                "upload_bursts": len(self.upload_bursts),
                "upload_bytes": self.upload_bytes,
                "connections": len({b.flow_id for b in self.upload_bursts}),
                "bursts": [b.to_record() for b in self.upload_bursts[-MAX_BURSTS_LISTED:]],
                "flows": self.flows,
                "findings": [f.to_record() for f in self.findings],
                "decided_by": self.decided_by,
                "reason": self.reason(),
            },
        }
        return rec


RISK_BAND = 25  # how far the anomaly score lifts risk_score above the level's severity


def risk_score(level: str, anomaly_score: float | None) -> float:
    """ECS ``event.risk_score`` (0-100): the level's severity (low 21, medium 47, high 73,
    critical 99), plus the anomaly score (0-1) times 25 below critical, times 1 at critical,
    so the levels' ranges never overlap and a more anomalous case of a level ranks higher."""
    band = 1 if level == "critical" else RISK_BAND
    lift = 0.0 if anomaly_score is None or anomaly_score != anomaly_score else anomaly_score
    return round(SEVERITY[level] + band * min(max(lift, 0.0), 1.0), 1)


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _findings_text(findings: list[Finding]) -> list[str]:
    """Each rule once (a flow rule with the number of flows it fired on), then the score."""
    texts = []
    flows: dict[str, int] = {}
    for f in findings:
        if f.kind == "flow rule":
            flows[f.id] = flows.get(f.id, 0) + 1
    done: set[str] = set()
    for f in findings:
        if f.kind == "anomaly score":
            texts.append(f.title)
        elif f.id not in done:
            done.add(f.id)
            if f.kind == "conversation rule":
                texts.append(f"rule {f.id}: {f.title} ({f.level})")
            else:
                n = flows[f.id]
                texts.append(f"flow rule {f.id}: {f.title} ({f.level}, on {n} flow{'s' if n != 1 else ''})")
    return texts


@dataclass
class CaseBook:
    """Revisions of the cases seen so far (in this run, and before it when kept in the
    ledger): a case is (re)issued when it is new, gained bursts, or rose a level."""

    seen: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # id -> (revision, rank, bursts)

    def update(self, case: Case) -> bool:
        """Set ``case.revision``; True when the case is new or changed enough to issue."""
        rank, n = level_rank(case.level), len(case.upload_bursts)
        prev = self.seen.get(case.case_id)
        if prev is None:
            case.revision = 1
        elif n > prev[2] or rank > prev[1]:
            case.revision = prev[0] + 1
        else:
            case.revision = prev[0]
            return False
        self.seen[case.case_id] = (case.revision, max(rank, prev[1] if prev else rank), n)
        return True

    def to_json(self) -> bytes:
        return json.dumps({k: list(v) for k, v in self.seen.items()}).encode()

    @staticmethod
    def from_json(payload: bytes | None) -> CaseBook:
        if not payload:
            return CaseBook()
        try:
            data = json.loads(payload)
            return CaseBook({str(k): (int(v[0]), int(v[1]), int(v[2])) for k, v in data.items()})
        except (ValueError, TypeError, IndexError, KeyError):
            return CaseBook()

