"""The fields rules can test, and the frame of columns they are evaluated over.

Rule authors write feature names bare (``peak_burst_rate``) and context with Elastic Common
Schema names (``destination.geo.country_iso_code``), plus ``encryption`` and the scopes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from burstwatch.features import FEATURES
from burstwatch.flows import state as fs
from burstwatch.netaddr import format_addresses
from burstwatch.outputs.ecs import transport_name
from burstwatch.pipeline import FlowBatch
from burstwatch.rules import FieldCatalog

CONTEXT_FIELDS: tuple[tuple[str, str, str, str | None], ...] = (
    # (rule field, kind, description, enrichment column it comes from)
    ("source.ip", "address", "originator's address (the host that opened the flow)", None),
    ("destination.ip", "address", "responder's address (the remote endpoint)", None),
    ("source.port", "number", "originator's transport port", None),
    ("destination.port", "number", "responder's transport port", None),
    ("network.transport", "string", "tcp, udp, icmp, esp, ...", None),
    ("record", "string", "flow (whole life) or window (one window of a long flow)", None),
    ("encryption", "string", "tls, quic, dtls, ssh, wireguard, openvpn, ipsec, entropy or none",
     "burstwatch.encryption"),
    ("encryption_version", "string", "protocol version seen, e.g. 'TLS 1.3', 'QUIC v1'",
     "burstwatch.encryption_version"),
    ("destination.scope", "string", "internal, home, foreign or unknown (public, no country data)",
     "burstwatch.destination_scope"),
    ("source.scope", "string", "internal, home, foreign or unknown", "burstwatch.source_scope"),
    ("destination.geo.country_iso_code", "string", "ISO 3166-1 alpha-2 country of the responder",
     "destination.geo.country_iso_code"),
    ("destination.as.number", "number", "autonomous system of the responder",
     "destination.as.number"),
    ("destination.as.organization.name", "string", "organisation of that autonomous system",
     "destination.as.organization.name"),
    ("tls.client.server_name", "string", "server name (SNI) the client asked for",
     "tls.client.server_name"),
    ("tls.client.ja4", "string", "JA4 fingerprint of the TLS ClientHello", "tls.client.ja4"),
    ("payload_entropy", "number", "bits per byte in the first payload bytes", "burstwatch.entropy"),
    ("anomaly_score", "number", "isolation-forest score in [0, 1]; higher is more anomalous",
     "burstwatch.anomaly_score"),
)


def rule_catalog() -> FieldCatalog:
    """Every field a rule may use: the registered features plus flow context."""
    catalog = FieldCatalog()
    for f in FEATURES:
        catalog.register(f.name, "number", f"{f.description} [{f.unit}]")
    for name, kind, description, _ in CONTEXT_FIELDS:
        catalog.register(name, kind, description)  # type: ignore[arg-type]
    return catalog


def _strings(col: npt.NDArray[np.generic] | None, n: int) -> npt.NDArray[np.object_]:
    out = np.full(n, None, object)
    if col is not None:
        vals = np.asarray(col, object)
        keep = np.array([isinstance(v, str) and v != "" for v in vals], bool) if n else np.zeros(0, bool)
        out[keep] = vals[keep]
    return out


def build_frame(batch: FlowBatch) -> dict[str, npt.NDArray[np.generic]]:
    """Columns for rule evaluation, one row per flow/window row of ``batch``."""
    rows = batch.rows
    n = len(rows)
    frame: dict[str, npt.NDArray[np.generic]] = {
        name: batch.features.values[:, i] for i, name in enumerate(batch.features.names)
    }
    frame["source.ip"] = np.array(format_addresses(rows.orig_hi, rows.orig_lo), object)
    frame["destination.ip"] = np.array(format_addresses(rows.resp_hi, rows.resp_lo), object)
    frame["source.port"] = rows.orig_port.astype(np.float64)
    frame["destination.port"] = rows.resp_port.astype(np.float64)
    names = np.array([transport_name(p) for p in range(256)], object)
    frame["network.transport"] = names[rows.proto]
    frame["record"] = np.where(rows.kind == fs.ROW_WINDOW, "window", "flow").astype(object)
    for name, kind, _, column in CONTEXT_FIELDS:
        if column is None:
            continue
        col = batch.extra.get(column)
        if kind == "number":
            frame[name] = (np.asarray(col, np.float64) if col is not None else np.full(n, np.nan))
        else:
            frame[name] = _strings(col, n)
    return frame
