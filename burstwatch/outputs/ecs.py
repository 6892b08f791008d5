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


def iso_list(ns: np.ndarray) -> list[str]:
    """``iso`` of every element, formatted by numpy in one pass."""
    text = np.datetime_as_string(np.asarray(ns, np.int64).astype("datetime64[ns]"), unit="ns")
    return [t + "Z" for t in text.tolist()]


def _num(v: float) -> float | int | None:
    if math.isnan(v):
        return None
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else round(float(v), 6)


def _num_list(v: np.ndarray) -> list[float | int | None]:
    """``_num`` of every element: integral values as ints, NaN as None, the rest rounded to
    six decimals by Python's ``round`` (correctly rounded, so the text is the same)."""
    v = np.asarray(v, np.float64)
    out = np.full(v.shape[0], None, object)
    integral = (v == np.trunc(v)) & (np.abs(v) < 2**53)
    at = np.flatnonzero(integral)
    out[at] = v[at].astype(np.int64).tolist()
    at = np.flatnonzero(~integral & ~np.isnan(v))
    out[at] = [round(x, 6) for x in v[at].tolist()]
    return out.tolist()


def _values(col: np.ndarray) -> list[Any]:
    """An enrichment column as Python values, numbers as ``_num`` gives them."""
    if col.dtype.kind == "f":
        return _num_list(col)
    items = (x.item() if isinstance(x, np.generic) else x for x in col.tolist())
    return [_num(x) if isinstance(x, float) else x for x in items]


def _path(dotted: str) -> tuple[tuple[str, ...], str]:
    """A dotted field name as (the nested objects it sits in, its own key)."""
    *parents, leaf = dotted.split(".")
    return tuple(parents), leaf


def flow_records(batch: FlowBatch) -> Iterator[dict[str, Any]]:
    """One nested ECS-style record per flow or window row.

    Every column is converted to Python values once per batch (numpy does the formatting),
    so the loop over rows only assembles dictionaries."""
    rows = batch.rows
    n = len(rows)
    if n == 0:
        return
    acc = rows.acc_i
    first, last = acc[:, fs.I_FIRST], acc[:, fs.I_LAST]
    t_first, t_last = iso_list(first), iso_list(last)
    duration = (last - first).tolist()
    src = format_addresses(rows.orig_hi, rows.orig_lo)
    dst = format_addresses(rows.resp_hi, rows.resp_lo)
    v4 = is_ipv4(rows.orig_hi, rows.orig_lo).tolist()
    sport, dport = rows.orig_port.tolist(), rows.resp_port.tolist()
    pk0, pk1 = acc[:, fs.I_PKTS0].tolist(), acc[:, fs.I_PKTS1].tolist()
    by0, by1 = acc[:, fs.I_WIRE0].tolist(), acc[:, fs.I_WIRE1].tolist()
    pk, by = (acc[:, fs.I_PKTS0] + acc[:, fs.I_PKTS1]).tolist(), (acc[:, fs.I_WIRE0] + acc[:, fs.I_WIRE1]).tolist()
    proto = rows.proto.tolist()
    transport = [transport_name(p) for p in proto]
    iana = [str(p) for p in proto]
    outbound = rows.local_initiated.tolist()
    flow_id = [f"{x:016x}" for x in rows.flow_id.tolist()]
    window = (rows.kind == fs.ROW_WINDOW).tolist()
    window_index = rows.window_index.tolist()
    reason = [fs.END_NAMES[r] for r in rows.reason.tolist()]
    values = batch.features.values
    features = list(zip(*(_num_list(values[:, j]) for j in range(len(FEATURE_NAMES))), strict=True))
    # Enrichment columns with their dotted paths split once: (parents, leaf, values).
    extras = [(*_path(dotted), _values(col)) for dotted, col in batch.extra.items()]
    source = batch.source
    tunnels = tunnel_fields(rows)
    for i in range(n):
        rec: dict[str, Any] = {
            "@timestamp": t_last[i],
            "event": {
                "kind": "event",
                "category": ["network"],
                "type": ["connection"],
                "start": t_first[i],
                "end": t_last[i],
                "duration": duration[i],
            },
            "source": {"ip": src[i], "port": sport[i], "packets": pk0[i], "bytes": by0[i]},
            "destination": {"ip": dst[i], "port": dport[i], "packets": pk1[i], "bytes": by1[i]},
            "network": {
                "transport": transport[i],
                "iana_number": iana[i],
                "type": "ipv4" if v4[i] else "ipv6",
                "direction": "outbound" if outbound[i] else "inbound",
                "packets": pk[i],
                "bytes": by[i],
            },
            "burstwatch": {
                "flow_id": flow_id[i],
                "record": "window" if window[i] else "flow",
                "window_index": window_index[i] if window[i] else None,
                "end_reason": reason[i],
                "capture": source,
            },
        }
        if i in tunnels:
            rec["network"]["tunnel"] = tunnels[i]
        rec["burstwatch"].update(zip(FEATURE_NAMES, features[i], strict=True))
        for parents, leaf, col in extras:
            value = col[i]
            if value is None or value == "":
                continue
            d = rec
            for p in parents:
                d = d.setdefault(p, {})
            d[leaf] = value
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
    if len(b) == 0:
        return
    src = format_addresses(b.orig_hi, b.orig_lo)
    dst = format_addresses(b.resp_hi, b.resp_lo)
    start, end = iso_list(b.start_ns), iso_list(b.end_ns)
    duration = (b.end_ns - b.start_ns).tolist()
    sport, dport = b.orig_port.tolist(), b.resp_port.tolist()
    transport = [transport_name(p) for p in b.proto.tolist()]
    upload = (b.direction == 0).tolist()
    flow_id = [f"{x:016x}" for x in b.flow_id.tolist()]
    packets, nbytes = b.packets.tolist(), b.bytes.tolist()
    rate = [round(r, 3) for r in b.rate.tolist()]
    for i in range(len(b)):
        yield {
            "@timestamp": end[i],
            "event": {"start": start[i], "end": end[i], "duration": duration[i]},
            "source": {"ip": src[i], "port": sport[i]},
            "destination": {"ip": dst[i], "port": dport[i]},
            "network": {"transport": transport[i],
                        "direction": "upload" if upload[i] else "download"},
            "burstwatch": {
                "flow_id": flow_id[i],
                "burst": {"packets": packets[i], "bytes": nbytes[i], "rate": rate[i]},
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
