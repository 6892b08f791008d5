"""Judge conversations: features, conversation rules, flow-rule hits, the score -> cases.

Policy (docs/scoring.md), for each conversation within the horizon:

1. The base level is the highest level of the conversation rules that match it and of the
   flow rules that fired on any of its flows (allow-listed flows raise nothing).
2. The anomaly score of the conversation raises a base level one step when it reaches
   ``RAISE_THRESHOLD``; without any rule it opens a case on its own only for an encrypted
   conversation to a foreign party that sent upload bursts, and only at ``low`` with the
   shipped model (trained on generated traffic), at ``medium`` with a model trained on the
   site's own history.
3. A conversation with no repetition (fewer than two upload bursts of similar size) is a
   single transfer, not a burst transmission: its level is capped at ``low``.
4. Allow-listed parties (country, ASN, server name, network) raise nothing.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from burstwatch.alerts.record import LEVEL_ORDER, Alert, evidence_record, human, level_rank
from burstwatch.config import Settings
from burstwatch.conversations.cases import Burst, Case, Finding, case_id
from burstwatch.conversations.features import ConversationFeatures, conversation_features
from burstwatch.conversations.frame import conversation_frame
from burstwatch.conversations.model import ConversationBursts, Conversations
from burstwatch.conversations.registry import CONVERSATION_PHRASES
from burstwatch.ledger import Ledger, conversations
from burstwatch.outputs.columns import num
from burstwatch.rules import Rule, evaluate_all

RAISE_THRESHOLD = 0.99  # a score this high raises a rule's level one step
ANOMALY_THRESHOLD = 0.995  # a score this high opens a case without any rule
SHIPPED_MODEL_LEVEL = "low"  # the highest level the shipped model's score reaches alone
SITE_MODEL_LEVEL = "medium"  # ... and a model trained on the site's own traffic
SINGLE_TRANSFER_CAP = "low"
MIN_REPETITION = 2  # upload bursts of similar size needed to be more than a single transfer


class ConversationScorer(Protocol):
    """An anomaly score per conversation row: higher = further toward exfiltration."""

    site_trained: bool

    def score(self, features: ConversationFeatures) -> tuple[
        npt.NDArray[np.float64], Sequence[list[dict[str, Any]]]
    ]: ...


@dataclass
class Judgement:
    """The cases of one evaluation, most severe first, and what was looked at."""

    cases: list[Case]
    conversations: int
    by_level: dict[str, int] = field(default_factory=dict)


def _scope(country: npt.NDArray[np.object_], home: Sequence[str]) -> npt.NDArray[np.object_]:
    home_set = {c.upper() for c in home}
    out = np.full(country.shape[0], "unknown", object)
    known = country != ""
    out[known] = "foreign"
    out[known & np.isin(country.astype(str), list(home_set))] = "home"
    return out


def _allowed(conv: Conversations, bursts: ConversationBursts,
             settings: Settings) -> npt.NDArray[np.bool_]:
    """Conversations whose party an allow-list covers: its country, ASN or server name, or
    every remote address its bursts went to (or its network, for a party without a name)."""
    allow = settings.allow
    n = len(conv)
    hit = np.zeros(n, np.bool_)
    if not allow:
        return hit
    if allow.countries:
        hit |= np.isin(conv.remote_country.astype(str), [c.upper() for c in allow.countries])
    if allow.asns:
        hit |= np.isin(conv.remote_asn, list(allow.asns))
    if allow.sni:
        for i, name in enumerate(conv.server_name.tolist()):
            if name and any(fnmatch.fnmatchcase(str(name).lower(), p) for p in allow.sni):
                hit[i] = True
    if allow.cidrs:
        nets = [ipaddress.ip_network(c, strict=False) for c in allow.cidrs]

        def inside(text: str) -> bool:
            net = ipaddress.ip_network(text, strict=False)
            return any(net.version == n.version and net.subnet_of(n) for n in nets)  # type: ignore[arg-type]

        covered = {ip: inside(ip) for ip in set(bursts.remote_ip.tolist())}
        outside = np.zeros(n, np.bool_)
        seen = np.zeros(n, np.bool_)
        for row, ip in zip(bursts.conversation.tolist(), bursts.remote_ip.tolist(), strict=True):
            seen[row] = True
            outside[row] |= not covered[ip]
        hit |= seen & ~outside
        for i in np.flatnonzero(~seen & (conv.party_kind == "net")).tolist():
            hit[i] = hit[i] or inside(str(conv.party[i]))
    return hit




class Judge:
    """Stateless over calls: give it the horizon's conversations and the run's flow alerts."""

    def __init__(self, rules: Sequence[Rule], settings: Settings,
                 scorer: ConversationScorer | None = None) -> None:
        self.rules = [r for r in rules if r.applies_to == "conversation"]
        self.settings = settings
        self.scorer = scorer

    def __call__(self, conv: Conversations, bursts: ConversationBursts,
                 flow_alerts: Sequence[Alert] = (), capture: str = "") -> Judgement:
        n = len(conv)
        if not n:
            return Judgement([], 0)
        feats, scope, scores, reasons = self.assess(conv, bursts)
        frame = conversation_frame(conv, bursts, feats, scope, scores, reasons)
        findings: dict[int, list[Finding]] = {}
        for res in evaluate_all(self.rules, frame) if self.rules else []:
            for row, evidence in res.explanations():
                r = res.rule
                findings.setdefault(row, []).append(Finding(
                    "conversation rule", r.id, r.title, r.level,
                    [evidence_record(e) for e in evidence], tags=list(r.tags), **_meta(r)))
        self._attach_flow_alerts(conv, bursts, flow_alerts, findings)
        allowed = _allowed(conv, bursts, self.settings)
        encrypted = (conv.encryption != "none") & (conv.encryption != "")
        up_count = feats.column("burst_count")
        eligible = encrypted & (scope == "foreign") & (up_count >= 1)
        candidates = set(findings)
        if self.scorer is not None:
            candidates |= set(np.flatnonzero(eligible & (scores >= ANOMALY_THRESHOLD)).tolist())
        cases = []
        by_level: dict[str, int] = {}
        order = _burst_ranges(bursts, n)
        # The case names the address its record does (``records.main_remote_ip``).
        remote = frame.columns.get("destination.ip")
        prefetch = getattr(reasons, "prefetch", None)
        if prefetch is not None and candidates:
            prefetch(np.array(sorted(candidates), np.intp))
        for row in sorted(candidates):
            if allowed[row]:
                continue
            # Conversation rules first, then flow rules by id and flow: the same case reads
            # (and names the same deciding rule) however the capture was cut into batches.
            found = sorted(findings.get(row, []), key=lambda f: (
                f.kind != "conversation rule", f.id, f.flow_id or ""))
            level, decided = self._level(row, found, scores[row], feats)
            if level is None:
                continue
            if self.scorer is not None and not math.isnan(scores[row]) and (
                scores[row] >= RAISE_THRESHOLD or not found
            ):
                found = [*found, Finding("anomaly score", "burstwatch.anomaly",
                                         _score_text(scores[row], reasons[row]), level)]
            remote_ip = "" if remote is None else str(remote[row] or "")
            cases.append(self._case(row, conv, bursts, order, feats, scope, level, decided,
                                    found, scores[row], reasons[row], capture, remote_ip))
            by_level[level] = by_level.get(level, 0) + 1
        cases.sort(key=lambda c: (-c.severity, c.first_ns, c.case_id))
        return Judgement(cases, n, by_level)

    def assess(self, conv: Conversations, bursts: ConversationBursts) -> tuple[
        ConversationFeatures, npt.NDArray[np.object_], npt.NDArray[np.float64],
        Sequence[list[dict[str, Any]]],
    ]:
        """What the judgement reads of every conversation: its features, the party's scope,
        the anomaly score (NaN without a model) and the score's reasons."""
        n = len(conv)
        feats = conversation_features(conv, bursts)
        scope = _scope(conv.remote_country, self.settings.home_countries)
        scores = np.full(n, np.nan)
        reasons: Sequence[list[dict[str, Any]]] = [[] for _ in range(n)]
        if self.scorer is not None and n:
            scores, reasons = self.scorer.score(feats)
        return feats, scope, scores, reasons

    # ---- the level ----
    def _level(self, row: int, found: list[Finding], score: float,
               feats: ConversationFeatures) -> tuple[str | None, str]:
        has_score = not math.isnan(score)
        if found:
            top = max(found, key=lambda f: level_rank(f.level))
            level = top.level
            decided = f"{'rule' if top.kind == 'conversation rule' else 'flow rule'} {top.id} says {level}"
            if has_score and score >= RAISE_THRESHOLD and level != LEVEL_ORDER[-1]:
                level = LEVEL_ORDER[LEVEL_ORDER.index(level) + 1]
                decided = f"{decided}, raised to {level} by anomaly score {score:.3f} >= {RAISE_THRESHOLD}"
        elif has_score and score >= ANOMALY_THRESHOLD:
            site = bool(getattr(self.scorer, "site_trained", False))
            level = SITE_MODEL_LEVEL if site else SHIPPED_MODEL_LEVEL
            decided = (f"anomaly score {score:.3f} >= {ANOMALY_THRESHOLD} alone, at most {level} with "
                       + ("a model trained on this site" if site else "the shipped model"))
        else:
            return None, ""
        repetition = feats.column("repetition")[row]
        if not (repetition >= MIN_REPETITION) and level_rank(level) > level_rank(SINGLE_TRANSFER_CAP):
            level = SINGLE_TRANSFER_CAP
            count = 0 if math.isnan(repetition) else int(repetition)
            decided += (f"; capped at {level}: {count} upload burst{'s' if count != 1 else ''} of "
                        "similar size is a single transfer, not a repeated transmission")
        return level, decided

    # ---- flow alerts belong to the conversation of their flow ----
    @staticmethod
    def _attach_flow_alerts(conv: Conversations, bursts: ConversationBursts,
                            alerts: Sequence[Alert], findings: dict[int, list[Finding]]) -> None:
        if not alerts:
            return
        of_flow = dict(zip(bursts.flow_id.tolist(), bursts.conversation.tolist(), strict=True))
        by_key: dict[tuple[str, str], int] = {}  # built only if a flow has no burst here
        seen: set[tuple[int, str, str]] = set()
        for alert in alerts:
            fid = alert.flow["burstwatch"]["flow"]["id"]
            row = of_flow.get(flow_number(fid))
            if row is None:
                if not by_key:
                    by_key = {(a, p): i for i, (a, p) in enumerate(
                        zip(conv.local_ip.tolist(), conv.party.tolist(), strict=True))}
                row = by_key.get((alert.flow["source"]["ip"], _party_of(alert.flow)))
            if row is None:
                continue
            for hit in alert.hits:
                key = (row, hit.rule.id, fid)
                if key in seen:  # a flow's windows and its whole-life row: one finding
                    continue
                seen.add(key)
                findings.setdefault(row, []).append(Finding(
                    "flow rule", hit.rule.id, hit.rule.title, hit.rule.level,
                    [evidence_record(e) for e in hit.evidence], flow_id=fid,
                    tags=list(hit.rule.tags), tunnel=alert.flow["burstwatch"].get("tunnel"),
                    **_meta(hit.rule)))

    # ---- the case record ----
    def _case(self, row: int, conv: Conversations, bursts: ConversationBursts,
              ranges: npt.NDArray[np.int64], feats: ConversationFeatures,
              scope: npt.NDArray[np.object_], level: str, decided: str,
              found: list[Finding], score: float, reasons: list[dict[str, Any]],
              capture: str, remote_ip: str) -> Case:
        a, b = int(ranges[row]), int(ranges[row + 1])
        up = np.arange(a, b)[bursts.direction[a:b] == 0]
        rate = bursts.rate
        listed = [Burst(int(bursts.start_ns[i]), int(bursts.end_ns[i]), int(bursts.bytes[i]),
                        float(rate[i]), f"{int(bursts.flow_id[i]) & ((1 << 64) - 1):016x}")
                  for i in up.tolist()]
        flows = sorted({f"{int(x) & ((1 << 64) - 1):016x}" for x in bursts.flow_id[a:b].tolist()})
        first = int(bursts.start_ns[up].min()) if up.shape[0] else int(conv.first_seen_ns[row])
        last = int(bursts.end_ns[up].max()) if up.shape[0] else int(conv.last_seen_ns[row])
        return Case(
            case_id=case_id(str(conv.local_ip[row]), str(conv.party[row])), level=level,
            local_ip=str(conv.local_ip[row]), party=str(conv.party[row]),
            party_kind=str(conv.party_kind[row]), remote_ip=remote_ip,
            remote_ips=int(conv.remote_ips[row]), remote_port=int(conv.remote_port[row]),
            transport=str(conv.transport[row] or ""),
            country=str(conv.remote_country[row] or ""), asn=int(conv.remote_asn[row]),
            org=str(conv.remote_org[row] or ""), scope=str(scope[row]),
            encryption=str(conv.encryption[row] or "none"),
            server_name=str(conv.server_name[row] or ""), first_ns=first, last_ns=last,
            upload_bursts=listed, flows=flows,
            features={name: num(feats.values[row, j]) for j, name in enumerate(feats.names)},
            findings=found, anomaly_score=None if math.isnan(score) else float(score),
            anomaly_reasons=reasons, decided_by=decided, capture=capture,
        )


def flow_number(hex_id: str) -> int:
    """A flow id as records print it (16 hex digits) back to the ledger's signed 64 bits."""
    fid = int(hex_id, 16)
    return fid - (1 << 64) if fid >= 1 << 63 else fid


def judge_ledger(judge: Judge, ledger: Ledger, flow_alerts: Sequence[Alert], horizon_ns: int,
                 capture: str = "") -> Judgement:
    """Judge the ledger's conversations within the horizon that can make a case: those with a
    burst, and those holding a flow a flow rule fired on."""
    flagged = sorted({flow_number(a.flow["burstwatch"]["flow"]["id"]) for a in flow_alerts})
    conv, bursts = conversations(ledger, horizon_ns, bursty_only=True, flagged=flagged)
    return judge(conv, bursts, flow_alerts, capture=capture)


def _meta(rule: Rule) -> dict[str, Any]:
    """What a case record says of the rule beside its name: ECS rule.uuid, .version and
    .reference (the first reference URL)."""
    return {"uuid": rule.uuid, "version": rule.version,
            "reference": rule.references[0] if rule.references else ""}


def _burst_ranges(bursts: ConversationBursts, n: int) -> npt.NDArray[np.int64]:
    """Start offset of each conversation's bursts (bursts are sorted by conversation)."""
    return np.searchsorted(bursts.conversation, np.arange(n + 1)).astype(np.int64)


def _score_text(score: float, reasons: list[dict[str, Any]]) -> str:
    """The score and its reasons in words (feature names stay in the JSON reasons)."""
    texts = [departure_text(r) for r in reasons[:3]]
    shown = "; ".join(t for t in texts if t)
    return f"anomaly score {score:.3f}" + (f": {shown}" if shown else "")


def departure_text(r: dict[str, Any]) -> str:
    """One baseline departure of the score in words (the report lists them all)."""
    phrase = CONVERSATION_PHRASES.get(str(r.get("feature", "")))
    if phrase is None or "value" not in r or "baseline_value" not in r:
        return "" if "feature" in r else str(r.get("text", ""))
    unit = str(r.get("unit", ""))
    pct = float(r.get("baseline_quantile", 0.0)) * 100
    where = "above" if r.get("direction", "above") == "above" else "below"
    return (f"{phrase} ({human(r['value'], unit)}) {where} {pct:.1f} % of the baseline "
            f"({human(r['baseline_value'], unit)})")


def _party_of(flow: dict[str, Any]) -> str:
    """The party of a flow record, as the ledger names it (for flows without bursts)."""
    from burstwatch.ledger.party import registrable_domain

    sni = flow.get("tls", {}).get("client", {}).get("server_name") or ""
    domain = registrable_domain(sni) if sni else None
    if domain:
        return domain
    ip = ipaddress.ip_address(flow["destination"]["ip"])
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
