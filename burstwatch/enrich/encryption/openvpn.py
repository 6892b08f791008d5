"""OpenVPN over UDP, and over TCP where each packet has a 2-byte length prefix.

The first byte holds the opcode (high 5 bits) and key id (low 3 bits), then an 8-byte session
id. One opcode byte matches 1 random payload in 50, so the verdict needs the handshake pattern:
a hard reset opening a direction and a later control or ack packet carrying the same session
id, or a client hard reset answered by a server hard reset. A second hard reset does not
count: a retransmission repeats the first packet, and so does any other protocol's datagram
sent twice (a DNS query whose id starts with 0x08, a VXLAN frame, an IKE message).
"""

from __future__ import annotations

from dataclasses import dataclass

from burstwatch.enrich.encryption._bytes import ParseError, Reader
from burstwatch.enrich.encryption.verdict import (
    PROTO_TCP,
    PROTO_UDP,
    EncryptionVerdict,
    FlowSample,
)

CLIENT_RESETS = {1: "v1", 7: "v2", 10: "v3"}
SERVER_RESETS = {2: "v1", 8: "v2"}
CONTROL = {3, 4, 5, 11}  # soft reset, control, ack, control with wrapped client key
DATA = {6, 9}
MIN_CONTROL = 1 + 8 + 1  # opcode, session id, ack array length
MAX_PACKET = 2048


@dataclass(frozen=True)
class Packet:
    """The clear part of an OpenVPN packet."""

    opcode: int
    key_id: int
    session: bytes


def parse_packet(payload: bytes) -> Packet | None:
    """The opcode, key id and session id of a control packet; data packets keep opcode only."""
    if not payload or len(payload) > MAX_PACKET:
        return None
    opcode, key_id = payload[0] >> 3, payload[0] & 0x07
    if opcode in DATA:
        return Packet(opcode, key_id, b"")
    if opcode not in CLIENT_RESETS and opcode not in SERVER_RESETS and opcode not in CONTROL:
        return None
    if len(payload) < MIN_CONTROL:
        return None
    return Packet(opcode, key_id, payload[1:9])


def tcp_packets(stream: bytes) -> list[bytes]:
    """Split a TCP byte stream into its length-prefixed packets (the last may be cut short)."""
    out: list[bytes] = []
    r = Reader(stream)
    try:
        while r.remaining >= 2:
            length = r.u16()
            if length == 0 or length > MAX_PACKET:
                break
            out.append(r.take(min(length, r.remaining)))
    except ParseError:
        pass
    return out


def _opens_session(packets: list[Packet]) -> bool:
    """A hard reset with key id 0 first, then a control or ack packet of the same session."""
    if not packets:
        return False
    first = packets[0]
    if first.key_id != 0 or (
        first.opcode not in CLIENT_RESETS and first.opcode not in SERVER_RESETS
    ):
        return False
    return any(p.opcode in CONTROL and p.session == first.session for p in packets[1:])


def _reset(packets: list[Packet], table: dict[int, str]) -> str | None:
    if packets and packets[0].opcode in table and packets[0].key_id == 0:
        return table[packets[0].opcode]
    return None


def _direction(payloads: tuple[bytes, ...], tcp: bool) -> list[Packet] | None:
    """Parsed packets of one direction; None if any packet is not OpenVPN-shaped."""
    raw = tcp_packets(b"".join(payloads)) if tcp else list(payloads)
    packets = [parse_packet(p) for p in raw]
    if any(p is None for p in packets):
        return None
    return [p for p in packets if p is not None]


def detect_openvpn(sample: FlowSample) -> EncryptionVerdict | None:
    """OpenVPN if either direction opens a session or the resets pair up across directions."""
    if sample.proto not in (PROTO_TCP, PROTO_UDP):
        return None
    tcp = sample.proto == PROTO_TCP
    client = _direction(sample.client, tcp) or []
    server = _direction(sample.server, tcp) or []
    transport = "TCP" if tcp else "UDP"
    client_reset = _reset(client, CLIENT_RESETS)
    server_reset = _reset(server, SERVER_RESETS)
    if client_reset and server_reset:
        reason = f"client hard reset {client_reset} answered by server hard reset {server_reset}"
    elif _opens_session(client) or _opens_session(server):
        opener = client if _opens_session(client) else server
        side = "client" if opener[0].opcode in CLIENT_RESETS else "server"
        reason = f"{side} hard reset then control packets of session {opener[0].session.hex()}"
    else:
        return None
    return EncryptionVerdict(
        kind="openvpn",
        version=f"OpenVPN over {transport}",
        detail=f"OpenVPN over {transport}: {reason}",
    )
