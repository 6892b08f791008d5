"""PacketBatch: decoded packets as numpy columns, the unit every later stage works on.

Addresses use one representation for both IP versions: a 128-bit value split in two uint64
columns (``*_hi``, ``*_lo``); IPv4 is stored IPv4-mapped (``::ffff:a.b.c.d``), so equality,
sorting and range lookups need no branch on the version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from burstwatch.ingest.records import RecordBatch

# Per-packet decode status. 0 means a decoded IP packet; others are counted by reason.
STATUS_NAMES: tuple[str, ...] = (
    "ok",
    "arp",
    "lldp",
    "other_ethertype",
    "unknown_linktype",
    "truncated_link",
    "truncated_ip",
    "bad_ip_version",
    "bad_ip_header",
    "truncated_transport",
    "other_link_protocol",
    "fragment",
    "bad_fragment",
    "truncated_tunnel",
    "other_tunnel_payload",
    "too_deep",
)
STATUS_OK = 0
STATUS_ARP = 1
STATUS_LLDP = 2
STATUS_OTHER_ETHERTYPE = 3
STATUS_UNKNOWN_LINKTYPE = 4
STATUS_TRUNCATED_LINK = 5
STATUS_TRUNCATED_IP = 6
STATUS_BAD_IP_VERSION = 7
STATUS_BAD_IP_HEADER = 8
STATUS_TRUNCATED_TRANSPORT = 9
STATUS_OTHER_LINK_PROTOCOL = 10
STATUS_FRAGMENT = 11  # held for reassembly: the datagram counts on the fragment completing it
STATUS_BAD_FRAGMENT = 12  # overlapping, oversized, unmatched or garbage: dropped
STATUS_TRUNCATED_TUNNEL = 13
STATUS_OTHER_TUNNEL_PAYLOAD = 14  # a tunnel carrying neither IP nor Ethernet (PPP LCP, ...)
STATUS_TOO_DEEP = 15  # more nested IP layers than the decoder opens

# Encapsulations a packet crossed, one bit each (PacketBatch.encap); flow records name the
# tunnels among them (burstwatch.tunnel.type).
ENCAP_NAMES: tuple[str, ...] = (
    "vlan", "llc_snap", "pppoe", "mpls", "gre", "erspan", "pptp", "vxlan", "geneve", "gtp",
    "teredo", "ip_in_ip",
)
ENC_VLAN = 1 << 0
ENC_SNAP = 1 << 1
ENC_PPPOE = 1 << 2
ENC_MPLS = 1 << 3
ENC_GRE = 1 << 4
ENC_ERSPAN = 1 << 5
ENC_PPTP = 1 << 6
ENC_VXLAN = 1 << 7
ENC_GENEVE = 1 << 8
ENC_GTP = 1 << 9
ENC_TEREDO = 1 << 10
ENC_IPIP = 1 << 11
# The link-layer kinds (tags, SNAP) are counted but are not tunnels of a flow.
TUNNEL_MASK = (1 << len(ENCAP_NAMES)) - 1 - ENC_VLAN - ENC_SNAP

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ESP = 50
PROTO_ICMPV6 = 58

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

V4_MAPPED_HI = np.uint64(0)
V4_MAPPED_PREFIX = np.uint64(0xFFFF << 32)


@dataclass
class PacketBatch:
    """Decoded columns for a batch of packets, plus the raw bytes they came from.

    ``sport``/``dport`` hold ICMP type/code for ICMP (as Zeek does), except for echo
    request/reply (ICMP 8/0, ICMPv6 128/129), where both hold the echo identifier so that
    requests and replies form one flow. ``payload_off`` is
    relative to the start of the packet's captured bytes; ``payload_len`` is the transport
    payload length on the wire (from IP lengths), which may exceed what was captured.
    """

    ts_ns: npt.NDArray[np.int64]
    wire_len: npt.NDArray[np.uint32]
    cap_len: npt.NDArray[np.uint32]
    linktype: npt.NDArray[np.uint16]
    iface: npt.NDArray[np.uint16]
    status: npt.NDArray[np.uint8]
    ip_version: npt.NDArray[np.uint8]
    src_hi: npt.NDArray[np.uint64]
    src_lo: npt.NDArray[np.uint64]
    dst_hi: npt.NDArray[np.uint64]
    dst_lo: npt.NDArray[np.uint64]
    proto: npt.NDArray[np.uint8]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    tcp_flags: npt.NDArray[np.uint8]
    payload_off: npt.NDArray[np.uint32]
    payload_len: npt.NDArray[np.uint32]
    fragment: npt.NDArray[np.bool_]
    # Decapsulation: the encapsulations crossed (ENC_* bits), the offset of the innermost IP
    # header, and the outermost IP endpoints when the packet came through an IP tunnel
    # (``outer_*_hi``/``lo`` like the addresses): zero for other encapsulations, and not
    # written at all where ``encap`` is 0, so plain packets cost nothing there.
    encap: npt.NDArray[np.uint16]
    ip_off: npt.NDArray[np.uint32]
    outer_src_hi: npt.NDArray[np.uint64]
    outer_src_lo: npt.NDArray[np.uint64]
    outer_dst_hi: npt.NDArray[np.uint64]
    outer_dst_lo: npt.NDArray[np.uint64]
    records: RecordBatch

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def raw(self, i: int) -> bytes:
        """The captured bytes of packet ``i`` (for the few packets parsed deeply)."""
        start = int(self.records.offset[i])
        return bytes(self.records.data[start : start + int(self.cap_len[i])])

    def payload(self, i: int) -> bytes:
        """The captured transport payload of packet ``i`` (may be shorter than on the wire)."""
        start = int(self.records.offset[i]) + int(self.payload_off[i])
        end = int(self.records.offset[i]) + int(self.cap_len[i])
        end = min(end, start + int(self.payload_len[i]))
        return bytes(self.records.data[start:max(start, end)])

    def slice(self, start: int, stop: int) -> PacketBatch:
        """Packets ``start:stop`` as a batch of their own (views, no copies)."""
        cols = {
            name: getattr(self, name)[start:stop]
            for name in PacketBatch.__dataclass_fields__
            if name != "records"
        }
        rec = self.records
        sub = RecordBatch(
            data=rec.data, offset=rec.offset[start:stop], caplen=rec.caplen[start:stop],
            wirelen=rec.wirelen[start:stop], ts_ns=rec.ts_ns[start:stop],
            linktype=rec.linktype[start:stop], iface=rec.iface[start:stop],
            file_offset=rec.file_offset[start:stop],
        )
        return PacketBatch(**cols, records=sub)


def encap_names(mask: int) -> list[str]:
    """The names of the encapsulation bits set in ``mask`` (in ``ENCAP_NAMES`` order)."""
    return [name for k, name in enumerate(ENCAP_NAMES) if mask >> k & 1]
