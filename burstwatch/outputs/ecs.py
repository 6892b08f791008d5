"""Flow and burst records with Elastic Common Schema names, as nested dicts.

The same names are used by flow exports and alerts, so a SIEM ingests both without a
mapping: ``source`` is the local side, ``destination`` the remote side (whoever opened the
connection: ``network.direction`` says outbound or inbound), burstwatch's own
fields live under ``burstwatch``. Records are built per flow row (never per packet).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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
from burstwatch.netaddr import format_addresses, is_ipv4
from burstwatch.records import FlowBatch

TRANSPORTS = {1: "icmp", 6: "tcp", 17: "udp", 50: "esp", 58: "ipv6-icmp", 47: "gre", 132: "sctp"}


def iso(ns: int) -> str:
    """RFC 3339 UTC timestamp with nanoseconds."""
    sec, frac = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def transport_name(proto: int) -> str:
    return TRANSPORTS.get(int(proto), str(int(proto)))


def _num(v: float) -> float | int | None:
    if math.isnan(v):
        return None
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else round(float(v), 6)


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    """Put ``value`` at a dotted path, creating nested objects."""
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def flow_records(batch: FlowBatch) -> Iterator[dict[str, Any]]:
    """One nested ECS-style record per flow or window row."""
    rows = batch.rows
    src = format_addresses(rows.orig_hi, rows.orig_lo)
    dst = format_addresses(rows.resp_hi, rows.resp_lo)
    v4 = is_ipv4(rows.orig_hi, rows.orig_lo)
    values = batch.features.values
    acc = rows.acc_i
    extra_cols = {k: v for k, v in batch.extra.items()}
    tunnels = tunnel_fields(rows)
    for i in range(len(rows)):
        rec: dict[str, Any] = {
            "@timestamp": iso(acc[i, fs.I_LAST]),
            "event": {
                "kind": "event",
                "category": ["network"],
                "type": ["connection"],
                "start": iso(acc[i, fs.I_FIRST]),
                "end": iso(acc[i, fs.I_LAST]),
                "duration": int(acc[i, fs.I_LAST] - acc[i, fs.I_FIRST]),
            },
            "source": {
                "ip": src[i],
                "port": int(rows.orig_port[i]),
                "packets": int(acc[i, fs.I_PKTS0]),
                "bytes": int(acc[i, fs.I_WIRE0]),
            },
            "destination": {
                "ip": dst[i],
                "port": int(rows.resp_port[i]),
                "packets": int(acc[i, fs.I_PKTS1]),
                "bytes": int(acc[i, fs.I_WIRE1]),
            },
            "network": {
                "transport": transport_name(rows.proto[i]),
                "iana_number": str(int(rows.proto[i])),
                "type": "ipv4" if v4[i] else "ipv6",
                "direction": "outbound" if rows.local_initiated[i] else "inbound",
                "packets": int(acc[i, fs.I_PKTS0] + acc[i, fs.I_PKTS1]),
                "bytes": int(acc[i, fs.I_WIRE0] + acc[i, fs.I_WIRE1]),
            },
            "burstwatch": {
                "flow_id": f"{int(rows.flow_id[i]):016x}",
                "record": "window" if rows.kind[i] == fs.ROW_WINDOW else "flow",
                "window_index": int(rows.window_index[i]) if rows.kind[i] == fs.ROW_WINDOW else None,
                "end_reason": fs.END_NAMES[int(rows.reason[i])],
                "capture": batch.source,
            },
        }
        if i in tunnels:
            rec["network"]["tunnel"] = tunnels[i]
        for j, name in enumerate(FEATURE_NAMES):
            rec["burstwatch"][name] = _num(values[i, j])
        for dotted, col in extra_cols.items():
            value = col[i]
            if isinstance(value, np.generic):
                value = value.item()
            if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
                continue
            if isinstance(value, float):
                value = _num(value)
            _set(rec, dotted, value)
        yield rec


def tunnel_fields(rows: FlowRows) -> dict[int, dict[str, Any]]:
    """``network.tunnel`` of the rows that came through a tunnel: its kinds (outermost
    layers first as ``decode.batch.ENCAP_NAMES`` orders them) and, for IP tunnels, the outer
    endpoints. Formatted only for those rows."""
    which = np.flatnonzero(rows.tunnel[:, TUNNEL_MASK])
    if not which.shape[0]:
        return {}
    t = rows.tunnel[which]
    src = format_addresses(t[:, TUNNEL_SRC_HI], t[:, TUNNEL_SRC_LO])
    dst = format_addresses(t[:, TUNNEL_DST_HI], t[:, TUNNEL_DST_LO])
    outer = (t[:, TUNNEL_SRC_LO] | t[:, TUNNEL_SRC_HI]) != 0
    out: dict[int, dict[str, Any]] = {}
    for k, i in enumerate(which.tolist()):
        rec: dict[str, Any] = {"type": encap_names(int(t[k, TUNNEL_MASK]))}
        if outer[k]:
            rec["source"] = {"ip": src[k]}
            rec["destination"] = {"ip": dst[k]}
        out[i] = rec
    return out


def burst_records(batch: FlowBatch) -> Iterator[dict[str, Any]]:
    """One nested record per burst."""
    b = batch.bursts
    src = format_addresses(b.orig_hi, b.orig_lo)
    dst = format_addresses(b.resp_hi, b.resp_lo)
    rate = b.rate
    for i in range(len(b)):
        yield {
            "@timestamp": iso(b.end_ns[i]),
            "event": {"start": iso(b.start_ns[i]), "end": iso(b.end_ns[i]),
                      "duration": int(b.end_ns[i] - b.start_ns[i])},
            "source": {"ip": src[i], "port": int(b.orig_port[i])},
            "destination": {"ip": dst[i], "port": int(b.resp_port[i])},
            "network": {"transport": transport_name(b.proto[i]),
                        "direction": "upload" if b.direction[i] == 0 else "download"},
            "burstwatch": {
                "flow_id": f"{int(b.flow_id[i]):016x}",
                "burst": {"packets": int(b.packets[i]), "bytes": int(b.bytes[i]),
                          "rate": round(float(rate[i]), 3)},
                "capture": batch.source,
            },
        }


# Enrichment fields a flow record may carry (absent when unknown); fixed for CSV columns.
ENRICHMENT_FIELDS: tuple[str, ...] = (
    "destination.geo.country_iso_code",
    "destination.as.number",
    "destination.as.organization.name",
    "source.geo.country_iso_code",
    "tls.client.server_name",
    "tls.client.ja4",
    "tls.version",
    "burstwatch.encryption",
    "burstwatch.encryption_version",
    "burstwatch.encryption_detail",
    "burstwatch.alpn",
    "burstwatch.entropy",
    "burstwatch.destination_scope",
)

FLOW_COLUMNS: tuple[str, ...] = (
    "@timestamp", "event.start", "event.end", "event.duration",
    "source.ip", "source.port", "source.packets", "source.bytes",
    "destination.ip", "destination.port", "destination.packets", "destination.bytes",
    "network.transport", "network.iana_number", "network.type", "network.direction",
    "network.packets", "network.bytes",
    "network.tunnel.type", "network.tunnel.source.ip", "network.tunnel.destination.ip",
    "burstwatch.flow_id", "burstwatch.record", "burstwatch.window_index", "burstwatch.end_reason",
    "burstwatch.capture",
    *(f"burstwatch.{name}" for name in FEATURE_NAMES),
    *ENRICHMENT_FIELDS,
)

BURST_COLUMNS: tuple[str, ...] = (
    "@timestamp", "event.start", "event.end", "event.duration", "source.ip", "source.port",
    "destination.ip", "destination.port", "network.transport", "network.direction",
    "burstwatch.flow_id", "burstwatch.burst.packets", "burstwatch.burst.bytes",
    "burstwatch.burst.rate", "burstwatch.capture",
)


def flatten(rec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted column names for CSV and Parquet (lists joined with ';')."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = ";".join(str(x) for x in v)
        else:
            out[key] = v
    return out
