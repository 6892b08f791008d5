"""The fields rules can test, and the frame of columns they are evaluated over.

Rule authors write feature names bare (``peak_burst_rate``) and context with Elastic Common
Schema names (``destination.geo.country_iso_code``), plus ``encryption`` and the scopes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import numpy.typing as npt

from burstwatch.conversations.frame import register_conversation_fields
from burstwatch.features import FEATURES
from burstwatch.flows import state as fs
from burstwatch.netaddr import format_addresses
from burstwatch.outputs.ecs import transport_name
from burstwatch.records import FlowBatch
from burstwatch.rules import FieldCatalog

CONTEXT_FIELDS: tuple[tuple[str, str, str, str | None], ...] = (
    # (rule field, kind, description, enrichment column it comes from)
    ("source.ip", "address", "the local host's address (the internal side, whoever opened the flow)", None),
    ("destination.ip", "address", "the remote party's address", None),
    ("source.port", "number", "the local host's transport port", None),
    ("destination.port", "number", "the remote party's transport port", None),
    ("network.transport", "string", "tcp, udp, icmp, esp, ...", None),
    ("record", "string", "flow (whole life) or window (one window of a long flow)", None),
    ("encryption", "string", "tls, quic, dtls, ssh, wireguard, openvpn, ipsec, entropy or none",
     "burstwatch.encryption"),
    ("encryption_version", "string", "protocol version seen, e.g. 'TLS 1.3', 'QUIC v1'",
     "burstwatch.encryption_version"),
    ("destination.scope", "string", "internal, home, foreign or unknown (public, no country data)",
     "burstwatch.destination_scope"),
    ("source.scope", "string", "internal, home, foreign or unknown", "burstwatch.source_scope"),
    ("destination.geo.country_iso_code", "string", "ISO 3166-1 alpha-2 country of the remote party",
     "destination.geo.country_iso_code"),
    ("destination.as.number", "number", "autonomous system of the remote party",
     "destination.as.number"),
    ("destination.as.organization.name", "string", "organisation of that autonomous system",
     "destination.as.organization.name"),
    ("tls.client.server_name", "string", "server name (SNI) the client asked for",
     "tls.client.server_name"),
    ("tls.client.ja4", "string", "JA4 fingerprint of the TLS ClientHello", "tls.client.ja4"),
    ("payload_entropy", "number", "bits per byte in the first payload bytes", "burstwatch.entropy"),
)


def rule_catalog() -> FieldCatalog:
    """Every field a rule may use: the registered features plus flow context."""
    catalog = FieldCatalog()
    for f in FEATURES:
        catalog.register(f.name, "number", f"{f.description} [{f.unit}]")
    for name, kind, description, _ in CONTEXT_FIELDS:
        catalog.register(name, kind, description)  # type: ignore[arg-type]
    return register_conversation_fields(catalog)


def _strings(col: npt.NDArray[np.generic] | None, n: int) -> npt.NDArray[np.object_]:
    """A string column with empty values as None (a rule's "field is absent")."""
    if col is None:
        return np.full(n, None, object)
    out = np.array(col, dtype=object, copy=True)
    out[out == ""] = None  # (None stays None)
    return out


class RuleFrame(Mapping[str, npt.NDArray[np.generic]]):
    """Columns for rule evaluation, one row per flow/window row of a batch, each built the
    first time it is read: the rules loaded name only some fields, and formatting every
    address as text for rules that never test one would cost more than the rules."""

    def __init__(self, batch: FlowBatch) -> None:
        self.batch = batch
        self._names = [*batch.features.names, "source.ip", "destination.ip", "source.port",
                       "destination.port", "network.transport", "record",
                       *(name for name, _, _, column in CONTEXT_FIELDS if column is not None)]
        self._known = set(self._names)
        self._built: dict[str, npt.NDArray[np.generic]] = {}

    def __getitem__(self, name: str) -> npt.NDArray[np.generic]:
        col = self._built.get(name)
        if col is None:
            if name not in self._known:
                raise KeyError(name)
            col = self._built[name] = self._build(name)
        return col

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._known

    def _build(self, name: str) -> npt.NDArray[np.generic]:
        batch, rows = self.batch, self.batch.rows
        n = len(rows)
        if name in _FEATURE_INDEX and name in batch.features.names:
            return batch.features.values[:, batch.features.names.index(name)]
        if name == "source.ip":
            return np.array(format_addresses(rows.orig_hi, rows.orig_lo), object)
        if name == "destination.ip":
            return np.array(format_addresses(rows.resp_hi, rows.resp_lo), object)
        if name == "source.port":
            return rows.orig_port.astype(np.float64)
        if name == "destination.port":
            return rows.resp_port.astype(np.float64)
        if name == "network.transport":
            return _TRANSPORTS[rows.proto]
        if name == "record":
            return np.where(rows.kind == fs.ROW_WINDOW, "window", "flow").astype(object)
        kind, column = _CONTEXT[name]
        col = batch.extra.get(column)
        if kind == "number":
            return np.asarray(col, np.float64) if col is not None else np.full(n, np.nan)
        return _strings(col, n)


_FEATURE_INDEX = {f.name for f in FEATURES}
_CONTEXT = {name: (kind, column) for name, kind, _, column in CONTEXT_FIELDS if column is not None}
_TRANSPORTS = np.array([transport_name(p) for p in range(256)], object)


def build_frame(batch: FlowBatch) -> RuleFrame:
    """Columns for rule evaluation, one row per flow/window row of ``batch``."""
    return RuleFrame(batch)
