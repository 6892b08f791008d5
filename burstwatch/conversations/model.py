"""The columns a conversation is judged from, as the ledger hands them over.

A conversation is (local host, remote party). The remote party is the registrable domain of
the flow's TLS/QUIC server name when one is known, else the remote /24 (IPv4) or /48 (IPv6).
Both tables are plain numpy columns so the conversation features are vectorised and can be
computed from any source (the DuckDB ledger, Parquet partitions, a test's hand-made rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Obj = npt.NDArray[np.object_]


@dataclass
class Conversations:
    """One row per conversation with at least one burst or flow inside the horizon."""

    local_ip: Obj  # str, the local (internal) host
    party: Obj  # str: "example.com", or "203.0.113.0/24", or "2001:db8:1::/48"
    party_kind: Obj  # "domain" or "net"
    remote_ip: Obj  # the remote address carrying the most bytes within the horizon ("" none)
    remote_ips: I64  # distinct remote addresses within the horizon
    remote_port: I64  # the remote port carrying the most bytes
    transport: Obj  # "tcp", "udp", ... of that port
    remote_country: Obj  # ISO code carrying the most bytes ("" unknown)
    remote_asn: I64  # ASN carrying the most bytes (0 unknown)
    remote_org: Obj  # that ASN's organisation ("" unknown)
    encryption: Obj  # the verdict carrying the most bytes ("none" if nothing encrypted)
    server_name: Obj  # a TLS/QUIC server name seen ("" none)
    connections: I64  # distinct flows within the horizon
    bytes_up: I64  # payload bytes local -> remote within the horizon (flow summaries)
    bytes_down: I64  # payload bytes remote -> local within the horizon
    first_seen_ns: I64  # first burst/flow of this conversation within the horizon
    last_seen_ns: I64  # last burst/flow end within the horizon
    # Novelty, over the whole ledger (not just the horizon):
    party_first_seen_ns: I64  # when the host first talked to this party
    asn_first_seen_ns: I64  # ... to this ASN (-1 if ASN unknown)
    country_first_seen_ns: I64  # ... to this country (-1 if unknown)
    host_first_seen_ns: I64  # when the host first appears in the ledger at all
    host_peak_up_rate: F64  # the host's highest upload burst rate in the ledger, bytes/s
    horizon_start_ns: I64  # the horizon this row was computed for (same for every row)
    horizon_end_ns: I64

    def __len__(self) -> int:
        return int(self.local_ip.shape[0])


@dataclass
class ConversationBursts:
    """Every burst of those conversations within the horizon, sorted by (conversation, start)."""

    conversation: I64  # row index into Conversations
    direction: npt.NDArray[np.int8]  # 0 upload (local -> remote), 1 download
    start_ns: I64
    end_ns: I64
    bytes: I64  # transport payload bytes
    packets: I64
    flow_id: I64  # the connection (flow) that carried it
    remote_ip: Obj  # str

    def __len__(self) -> int:
        return int(self.conversation.shape[0])

    @property
    def rate(self) -> F64:
        """Bytes per second; bursts shorter than 1 ms count as lasting 1 ms."""
        return self.bytes * 1e9 / np.maximum(self.end_ns - self.start_ns, 1_000_000)
