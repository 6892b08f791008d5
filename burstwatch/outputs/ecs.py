"""Flow-window and burst records (Elastic Common Schema names) as columns of a batch.

``source`` is the local side and ``destination`` the remote side of a flow, whoever opened
it (``burstwatch.flow.initiator`` says who did); ``network.direction`` is ECS's, from the two
sides' scopes. Every field is declared in ``burstwatch/schema/fields.py``; this module only
says how each column is computed from a ``FlowBatch``, once per batch, never per row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import numpy as np

from burstwatch.decode.batch import encap_names
from burstwatch.features import FEATURE_NAMES
from burstwatch.flows import FlowRows
from burstwatch.flows import state as fs
from burstwatch.flows.records import (
    TUNNEL_DST_HI,
    TUNNEL_DST_LO,
    TUNNEL_MASK,
    TUNNEL_SRC_HI,
    TUNNEL_SRC_LO,
)
from burstwatch.netaddr import address_texts, format_addresses, is_ipv4
from burstwatch.outputs.columns import Coded, Column, Columns, choice, constant, strings
from burstwatch.outputs.community_id import community_ids
from burstwatch.records import FlowBatch
from burstwatch.schema import BURST, ECS_VERSION, FLOW

TRANSPORTS = {1: "icmp", 6: "tcp", 17: "udp", 50: "esp", 58: "ipv6-icmp", 47: "gre", 132: "sctp"}
_TRANSPORT_TEXT = np.array([TRANSPORTS.get(p, str(p)) for p in range(256)], object)
_IANA_TEXT = np.array([str(p) for p in range(256)], object)
_FEATURE_PREFIX = "burstwatch.flow."
_NETWORK_TYPES = np.array(["ipv4", "ipv6"], object)
_RECORD_KINDS = np.array(["flow", "window"], object)
_INITIATORS = np.array(["local", "remote"], object)
_BURST_DIRECTIONS = np.array(["upload", "download"], object)


def iso(ns: int) -> str:
    """RFC 3339 UTC timestamp with nanoseconds."""
    sec, frac = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def transport_name(proto: int) -> str:
    return TRANSPORTS.get(int(proto), str(int(proto)))


_DIRECTIONS = np.array(["external", "outbound", "inbound", "internal", "unknown"], object)


def ecs_direction_codes(src_scope: Column, dst_scope: Column) -> Coded:
    """ECS ``network.direction`` from the scopes of source and destination: internal to
    internal is internal, internal to anything else outbound, the reverse inbound, neither
    internal external; without the scopes (records not enriched) unknown."""
    src_in = np.asarray(src_scope == "internal", bool)
    dst_in = np.asarray(dst_scope == "internal", bool)
    index = src_in.astype(np.intp) + 2 * dst_in.astype(np.intp)
    missing = [a is None or b is None for a, b in zip(src_scope.tolist(), dst_scope.tolist(),
                                                      strict=True)]
    index[np.array(missing, bool)] = 4
    return choice(_DIRECTIONS, index)


def ecs_direction(src_scope: Column, dst_scope: Column) -> Column:
    """``ecs_direction_codes`` as one value per row."""
    return ecs_direction_codes(src_scope, dst_scope).expand()


def address_codes(hi: np.ndarray, lo: np.ndarray) -> Coded:
    """Addresses as text, formatted once per distinct address."""
    return Coded(*address_texts(hi, lo))


_ADDRESS_TEXT = re.compile(r"[0-9A-Fa-f.:]*")


def _related(src: Coded, dst: Coded) -> Coded:
    """``related.ip``: the distinct addresses of each row, source first; one list per
    distinct (source, destination) pair."""
    key = src.index.astype(np.int64) * max(dst.values.shape[0], 1) + dst.index
    pairs, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    source, destination = src.values[src.index[first]], dst.values[dst.index[first]]
    sources, destinations = source.tolist(), destination.tolist()
    values = np.empty(pairs.shape[0], object)
    json = None
    if all(sources) and all(destinations) and _ADDRESS_TEXT.fullmatch(
            "".join(sources) + "".join(destinations)):
        # Every address known and plain (digits, hex, dots, colons): each list is one or two
        # texts, and its JSON the texts quoted, joined by numpy over the object arrays.
        values[:] = [[s] if s == d else [s, d] for s, d in
                     zip(sources, destinations, strict=True)]
        one = '["' + source + '"]'
        both = '["' + source + '","' + destination + '"]'
        json = np.where(source == destination, one, both).tolist()
    else:
        values[:] = [list(dict.fromkeys(a for a in (s, d) if a)) for s, d in
                     zip(sources, destinations, strict=True)]
    return Coded(values, inverse.ravel(), json)


_HEX = np.array([ord(c) for c in "0123456789abcdef"], np.uint8)


def hex_ids(ids: np.ndarray) -> Column:
    """64-bit ids as 16 lower-case hex digits each, formatted by numpy."""
    raw = np.ascontiguousarray(ids, ">u8").view(np.uint8).reshape(-1, 8)
    digits = np.empty((raw.shape[0], 16), np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 15]
    return digits.view("S16").ravel().astype("U16").astype(object)


def _tls_version(raw: Column, verdict: Column) -> tuple[Column, Column, Column]:
    """(tls.version, tls.version_protocol, the rest of burstwatch.encryption.version) from
    the verdict's version text: "TLS 1.3" -> ("1.3", "tls", None); "QUIC v1" stays ours."""
    n = raw.shape[0]
    version, protocol, rest = np.full(n, None, object), np.full(n, None, object), strings(raw, n)
    for i in np.flatnonzero(verdict == "tls").tolist():
        text = raw[i] or ""
        name, _, number = str(text).partition(" ")
        if name in ("TLS", "SSL") and number:
            version[i], protocol[i], rest[i] = number, name.lower(), None
    return version, protocol, rest


def _alpn(joined: Column) -> tuple[Column, Column]:
    """(burstwatch.tls.client.alpn_offered as lists, tls.next_protocol where one was
    offered: a server must pick it or refuse, so it is the negotiated one)."""
    n = joined.shape[0]
    offered, chosen = np.full(n, None, object), np.full(n, None, object)
    for i, text in enumerate(joined.tolist()):
        if text:
            protocols = str(text).split(",")
            offered[i] = protocols
            if len(protocols) == 1:
                chosen[i] = protocols[0].lower()
    return offered, chosen


class _FlowBuilder:
    """The columns of one batch's flow-window records, each computed on first use."""

    def __init__(self, batch: FlowBatch) -> None:
        self.batch = batch
        self.rows = batch.rows
        self.n = len(batch.rows)
        self.acc = self.rows.acc_i
        self.memo: dict[str, Any] = {}

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def extra(self, name: str) -> Column | None:
        return self.batch.extra.get(name)

    def text(self, name: str) -> Column:
        return strings(self.extra(name), self.n)

    def number(self, name: str) -> Column:
        col = self.extra(name)
        return np.full(self.n, np.nan) if col is None else np.asarray(col, np.float64)

    def src(self) -> Coded:
        return self.once("src", lambda: address_codes(self.rows.orig_hi, self.rows.orig_lo))

    def dst(self) -> Coded:
        return self.once("dst", lambda: address_codes(self.rows.resp_hi, self.rows.resp_lo))

    def tls(self) -> tuple[Column, Column, Column]:
        return self.once("tls", lambda: _tls_version(
            self.text("burstwatch.encryption.version"),
            self.text("burstwatch.encryption.verdict")))

    def alpn(self) -> tuple[Column, Column]:
        return self.once("alpn", lambda: _alpn(self.text("burstwatch.tls.client.alpn_offered")))

    def tunnels(self) -> tuple[Column, Column, Column]:
        return self.once("tunnel", lambda: tunnel_columns(self.rows))

    def build(self, name: str) -> Column | Coded | None:
        rows, acc, n = self.rows, self.acc, self.n
        if name.startswith(_FEATURE_PREFIX) and name[len(_FEATURE_PREFIX):] in _FEATURE_AT:
            feature, matrix = name[len(_FEATURE_PREFIX):], self.batch.features
            if feature not in matrix.names:  # a matrix of some features only
                return np.full(n, np.nan)
            return matrix.values[:, matrix.names.index(feature)]
        make = _FLOW_COLUMNS.get(name)
        if make is None:
            return None
        return make(self, rows, acc, n)


_FEATURE_AT = {name: j for j, name in enumerate(FEATURE_NAMES)}

FlowMaker = Callable[[_FlowBuilder, FlowRows, np.ndarray, int], Column | Coded | None]

_FLOW_COLUMNS: dict[str, FlowMaker] = {
    "@timestamp": lambda b, r, a, n: a[:, fs.I_LAST],
    "ecs.version": lambda b, r, a, n: constant(ECS_VERSION, n),
    "event.kind": lambda b, r, a, n: constant("event", n),
    "event.category": lambda b, r, a, n: constant(["network"], n),
    "event.type": lambda b, r, a, n: constant(["connection"], n),
    "event.start": lambda b, r, a, n: a[:, fs.I_FIRST],
    "event.end": lambda b, r, a, n: a[:, fs.I_LAST],
    "event.duration": lambda b, r, a, n: a[:, fs.I_LAST] - a[:, fs.I_FIRST],
    "source.ip": lambda b, r, a, n: b.src(),
    "source.port": lambda b, r, a, n: r.orig_port.astype(np.int64),
    "source.packets": lambda b, r, a, n: a[:, fs.I_PKTS0],
    "source.bytes": lambda b, r, a, n: a[:, fs.I_WIRE0],
    "source.geo.country_iso_code": lambda b, r, a, n: b.text("source.geo.country_iso_code"),
    "source.as.number": lambda b, r, a, n: b.number("source.as.number"),
    "destination.ip": lambda b, r, a, n: b.dst(),
    "destination.port": lambda b, r, a, n: r.resp_port.astype(np.int64),
    "destination.packets": lambda b, r, a, n: a[:, fs.I_PKTS1],
    "destination.bytes": lambda b, r, a, n: a[:, fs.I_WIRE1],
    "destination.geo.country_iso_code":
        lambda b, r, a, n: b.text("destination.geo.country_iso_code"),
    "destination.as.number": lambda b, r, a, n: b.number("destination.as.number"),
    "destination.as.organization.name":
        lambda b, r, a, n: b.text("destination.as.organization.name"),
    "network.transport": lambda b, r, a, n: choice(_TRANSPORT_TEXT, r.proto),
    "network.type": lambda b, r, a, n: choice(
        _NETWORK_TYPES, ~is_ipv4(r.orig_hi, r.orig_lo)),
    "network.iana_number": lambda b, r, a, n: choice(_IANA_TEXT, r.proto),
    "network.direction": lambda b, r, a, n: ecs_direction_codes(
        b.text("burstwatch.source.scope"), b.text("burstwatch.destination.scope")),
    "network.community_id": lambda b, r, a, n: np.array(community_ids(
        r.proto, r.orig_hi, r.orig_lo, r.resp_hi, r.resp_lo, r.orig_port, r.resp_port), object),
    "network.packets": lambda b, r, a, n: a[:, fs.I_PKTS0] + a[:, fs.I_PKTS1],
    "network.bytes": lambda b, r, a, n: a[:, fs.I_WIRE0] + a[:, fs.I_WIRE1],
    "tls.version": lambda b, r, a, n: b.tls()[0],
    "tls.version_protocol": lambda b, r, a, n: b.tls()[1],
    "tls.next_protocol": lambda b, r, a, n: b.alpn()[1],
    "tls.client.server_name": lambda b, r, a, n: b.text("tls.client.server_name"),
    "burstwatch.tls.client.ja4": lambda b, r, a, n: b.text("burstwatch.tls.client.ja4"),
    "burstwatch.tls.client.alpn_offered": lambda b, r, a, n: b.alpn()[0],
    "related.ip": lambda b, r, a, n: _related(b.src(), b.dst()),
    "burstwatch.capture": lambda b, r, a, n: constant(b.batch.source, n),
    "burstwatch.source.scope": lambda b, r, a, n: b.text("burstwatch.source.scope"),
    "burstwatch.destination.scope": lambda b, r, a, n: b.text("burstwatch.destination.scope"),
    "burstwatch.encryption.verdict": lambda b, r, a, n: b.text("burstwatch.encryption.verdict"),
    "burstwatch.encryption.version": lambda b, r, a, n: b.tls()[2],
    "burstwatch.encryption.detail": lambda b, r, a, n: b.text("burstwatch.encryption.detail"),
    "burstwatch.encryption.entropy": lambda b, r, a, n: b.number("burstwatch.encryption.entropy"),
    "burstwatch.allowlisted": lambda b, r, a, n: b.text("burstwatch.allowlisted"),
    "burstwatch.tunnel.type": lambda b, r, a, n: b.tunnels()[0],
    "burstwatch.tunnel.source.ip": lambda b, r, a, n: b.tunnels()[1],
    "burstwatch.tunnel.destination.ip": lambda b, r, a, n: b.tunnels()[2],
    "burstwatch.flow.id": lambda b, r, a, n: hex_ids(r.flow_id),
    "burstwatch.flow.record": lambda b, r, a, n: choice(
        _RECORD_KINDS, r.kind == fs.ROW_WINDOW),
    "burstwatch.flow.window_index": lambda b, r, a, n: np.where(
        r.kind == fs.ROW_WINDOW, r.window_index.astype(np.float64), np.nan),
    "burstwatch.flow.end_reason": lambda b, r, a, n: choice(fs.END_NAMES, r.reason),
    "burstwatch.flow.initiator": lambda b, r, a, n: choice(
        _INITIATORS, ~np.asarray(r.local_initiated, bool)),
}


def flow_columns(batch: FlowBatch) -> Columns:
    """The flow-window records of ``batch`` as columns."""
    return Columns(FLOW, len(batch.rows), _FlowBuilder(batch).build)


def flow_records(batch: FlowBatch) -> Iterator[dict[str, Any]]:
    """One nested record per flow or window row."""
    return flow_columns(batch).records()


def tunnel_columns(rows: FlowRows) -> tuple[Column, Column, Column]:
    """``burstwatch.tunnel.type`` (kinds, outermost first as ``decode.batch.ENCAP_NAMES``
    orders them), ``.source.ip`` and ``.destination.ip`` (outer endpoints of IP tunnels), for
    the rows that came through a tunnel; formatted only for those rows."""
    n = len(rows)
    kinds, src_ip, dst_ip = (np.full(n, None, object) for _ in range(3))
    which = np.flatnonzero(rows.tunnel[:, TUNNEL_MASK])
    if not which.shape[0]:
        return kinds, src_ip, dst_ip
    t = rows.tunnel[which]
    src = format_addresses(t[:, TUNNEL_SRC_HI], t[:, TUNNEL_SRC_LO])
    dst = format_addresses(t[:, TUNNEL_DST_HI], t[:, TUNNEL_DST_LO])
    outer = ((t[:, TUNNEL_SRC_LO] | t[:, TUNNEL_SRC_HI]) != 0).tolist()
    for k, i in enumerate(which.tolist()):
        kinds[i] = list(encap_names(int(t[k, TUNNEL_MASK])))
        if outer[k]:
            src_ip[i], dst_ip[i] = src[k], dst[k]
    return kinds, src_ip, dst_ip


def burst_columns(batch: FlowBatch) -> Columns:
    """The burst records of ``batch`` as columns."""
    b = batch.bursts
    n = len(b)
    memo: dict[str, Any] = {}

    def once(key: str, make: Callable[[], Any]) -> Any:
        if key not in memo:
            memo[key] = make()
        return memo[key]

    def src() -> Coded:
        return once("src", lambda: address_codes(b.orig_hi, b.orig_lo))

    def dst() -> Coded:
        return once("dst", lambda: address_codes(b.resp_hi, b.resp_lo))

    def text(name: str) -> Column:
        return strings(batch.burst_extra.get(name), n)

    def number(name: str) -> Column:
        col = batch.burst_extra.get(name)
        return np.full(n, np.nan) if col is None else np.asarray(col, np.float64)

    makers: dict[str, Callable[[], Column | Coded]] = {
        "@timestamp": lambda: b.end_ns,
        "ecs.version": lambda: constant(ECS_VERSION, n),
        "event.kind": lambda: constant("event", n),
        "event.category": lambda: constant(["network"], n),
        "event.type": lambda: constant(["connection"], n),
        "event.start": lambda: b.start_ns,
        "event.end": lambda: b.end_ns,
        "event.duration": lambda: b.end_ns - b.start_ns,
        "source.ip": src,
        "source.port": lambda: b.orig_port.astype(np.int64),
        "destination.ip": dst,
        "destination.port": lambda: b.resp_port.astype(np.int64),
        "destination.geo.country_iso_code": lambda: text("destination.geo.country_iso_code"),
        "destination.as.number": lambda: number("destination.as.number"),
        "destination.as.organization.name": lambda: text("destination.as.organization.name"),
        "network.transport": lambda: choice(_TRANSPORT_TEXT, b.proto),
        "network.type": lambda: choice(_NETWORK_TYPES, ~is_ipv4(b.orig_hi, b.orig_lo)),
        "network.iana_number": lambda: choice(_IANA_TEXT, b.proto),
        "network.direction": lambda: ecs_direction_codes(text("burstwatch.source.scope"),
                                                   text("burstwatch.destination.scope")),
        "network.community_id": lambda: np.array(community_ids(
            b.proto, b.orig_hi, b.orig_lo, b.resp_hi, b.resp_lo, b.orig_port, b.resp_port),
            object),
        "tls.client.server_name": lambda: text("tls.client.server_name"),
        "burstwatch.tls.client.ja4": lambda: text("burstwatch.tls.client.ja4"),
        "related.ip": lambda: _related(src(), dst()),
        "burstwatch.capture": lambda: constant(batch.source, n),
        "burstwatch.source.scope": lambda: text("burstwatch.source.scope"),
        "burstwatch.destination.scope": lambda: text("burstwatch.destination.scope"),
        "burstwatch.encryption.verdict": lambda: text("burstwatch.encryption.verdict"),
        "burstwatch.flow.id": lambda: hex_ids(b.flow_id),
        "burstwatch.burst.direction": lambda: choice(_BURST_DIRECTIONS, b.direction != 0),
        "burstwatch.burst.packets": lambda: b.packets.astype(np.int64),
        "burstwatch.burst.bytes": lambda: b.bytes.astype(np.int64),
        "burstwatch.burst.rate": lambda: np.array([round(r, 3) for r in b.rate.tolist()],
                                                  np.float64),
    }

    def build(name: str) -> Column | Coded | None:
        make = makers.get(name)
        return make() if make is not None else None

    return Columns(BURST, n, build)


def burst_records(batch: FlowBatch) -> Iterator[dict[str, Any]]:
    """One nested record per burst."""
    return burst_columns(batch).records()
