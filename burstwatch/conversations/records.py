"""Conversation records: one per (local host, remote party) within the horizon, with its
features and anomaly score, as columns named by the schema (``burstwatch flows
--conversations``). Cases (``cases.py``) carry the same fields under the same names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from burstwatch.conversations.features import ConversationFeatures
from burstwatch.conversations.model import ConversationBursts, Conversations
from burstwatch.outputs.columns import Column, Columns, strings
from burstwatch.schema import CONVERSATION, ECS_VERSION

PREFIX = "burstwatch.conversation."


def main_remote_ip(conv: Conversations, bursts: ConversationBursts) -> list[str | None]:
    """Per conversation, the remote address that carried the most upload bytes (else the
    first burst's; without bursts, the one that carried the most bytes of its flows)."""
    out: list[str | None] = [ip or None for ip in conv.remote_ip.tolist()]
    bursty: set[int] = set()
    best: dict[int, dict[str, int]] = {}
    for row, direction, ip, nbytes in zip(bursts.conversation.tolist(), bursts.direction.tolist(),
                                          bursts.remote_ip.tolist(), bursts.bytes.tolist(),
                                          strict=True):
        if row not in bursty:
            bursty.add(row)
            out[row] = ip
        if direction == 0:
            by_ip = best.setdefault(row, {})
            by_ip[ip] = by_ip.get(ip, 0) + nbytes
    for row, by_ip in best.items():
        out[row] = max(by_ip, key=lambda k: by_ip[k])
    return out


def conversation_columns(conv: Conversations, bursts: ConversationBursts,
                         feats: ConversationFeatures, scope: np.ndarray, scores: np.ndarray,
                         reasons: Sequence[list[dict[str, Any]]], capture: str) -> Columns:
    """The conversation records of one judgement's table."""
    n = len(conv)
    remote = np.array(main_remote_ip(conv, bursts), object)
    asn = conv.remote_asn.astype(np.float64)
    asn[asn <= 0] = np.nan
    port = conv.remote_port.astype(np.float64)
    port[conv.remote_port <= 0] = np.nan
    domain = np.asarray(conv.party, object).copy()
    domain[np.asarray(conv.party_kind != "domain", bool)] = None

    def fixed(value: Any) -> Column:
        col = np.empty(n, object)
        col[:] = [value] * n
        return col

    def related() -> Column:
        col = np.empty(n, object)
        col[:] = [[a for a in dict.fromkeys((str(h), r)) if a]
                  for h, r in zip(conv.local_ip.tolist(), remote.tolist(), strict=True)]
        return col

    def direction() -> Column:
        out = np.where(scope == "internal", "internal", "outbound").astype(object)
        return out

    def reason_lists() -> Column:
        col = np.empty(n, object)
        col[:] = [list(r) for r in reasons]
        return col

    makers: dict[str, Callable[[], Column]] = {
        "@timestamp": lambda: conv.last_seen_ns,
        "ecs.version": lambda: fixed(ECS_VERSION),
        "event.kind": lambda: fixed("event"),
        "event.category": lambda: fixed(["network"]),
        "event.type": lambda: fixed(["connection"]),
        "event.start": lambda: conv.first_seen_ns,
        "event.end": lambda: conv.last_seen_ns,
        "event.duration": lambda: conv.last_seen_ns - conv.first_seen_ns,
        "source.ip": lambda: np.asarray(conv.local_ip, object),
        "destination.ip": lambda: remote,
        "destination.port": lambda: port,
        "destination.domain": lambda: domain,
        "destination.geo.country_iso_code": lambda: strings(conv.remote_country, n),
        "destination.as.number": lambda: asn,
        "destination.as.organization.name": lambda: strings(conv.remote_org, n),
        "network.transport": lambda: strings(conv.transport, n),
        "network.type": lambda: np.array(["ipv6" if ":" in str(h) else "ipv4"
                                          for h in conv.local_ip.tolist()], object),
        "network.direction": direction,
        "tls.client.server_name": lambda: strings(conv.server_name, n),
        "related.ip": related,
        "burstwatch.capture": lambda: fixed(capture),
        "burstwatch.destination.scope": lambda: np.asarray(scope, object),
        "burstwatch.encryption.verdict": lambda: strings(conv.encryption, n),
        PREFIX + "party": lambda: np.asarray(conv.party, object),
        PREFIX + "party_kind": lambda: np.asarray(conv.party_kind, object),
        PREFIX + "remote_ips": lambda: conv.remote_ips.astype(np.int64),
        PREFIX + "anomaly_score": lambda: np.array(
            [round(x, 4) for x in np.asarray(scores, np.float64).tolist()], np.float64),
        PREFIX + "anomaly_reasons": reason_lists,
    }
    at = {name: j for j, name in enumerate(feats.names)}

    def build(name: str) -> Column | None:
        if name.startswith(PREFIX) and name[len(PREFIX):] in at:
            return feats.values[:, at[name[len(PREFIX):]]]
        make = makers.get(name)
        return make() if make is not None else None

    return Columns(CONVERSATION, n, build)
