"""WireGuard over UDP: four message types, each with three zero reserved bytes and fixed sizes.

Handshake messages have exact sizes (initiation 148, response 92, cookie reply 64), which makes a
single one strong evidence. A transport message only fixes its type and a size rule, so alone
it needs corroboration: two in one direction under the same receiver index with rising
counters, or one in each direction.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstwatch.enrich.encryption.verdict import PROTO_UDP, EncryptionVerdict, FlowSample

INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT = 1, 2, 3, 4
_SIZES = {INITIATION: 148, RESPONSE: 92, COOKIE_REPLY: 64}
_NAMES = {
    INITIATION: "handshake initiation",
    RESPONSE: "handshake response",
    COOKIE_REPLY: "cookie reply",
    TRANSPORT: "transport data",
}
TAILSCALE_DISCO = b"TS\xf0\x9f\x92\xac"  # Tailscale's peer-discovery messages share the port


@dataclass(frozen=True)
class Message:
    """A payload that has the shape of a WireGuard message."""

    kind: int
    receiver: int = 0
    counter: int = 0


def parse_message(payload: bytes) -> Message | None:
    """The WireGuard message ``payload`` could be, or None."""
    if len(payload) < 32 or payload[1:4] != b"\x00\x00\x00":
        return None
    kind = payload[0]
    if kind in _SIZES:
        return Message(kind) if len(payload) == _SIZES[kind] else None
    if kind == TRANSPORT and (len(payload) - 16) % 16 == 0:
        receiver = int.from_bytes(payload[4:8], "little")
        counter = int.from_bytes(payload[8:16], "little")
        return Message(kind, receiver, counter)
    return None


def _consistent_transport(messages: list[Message]) -> bool:
    """Two or more transport messages to one receiver index with strictly rising counters."""
    transport = [m for m in messages if m.kind == TRANSPORT]
    if len(transport) < 2:
        return False
    same_receiver = all(m.receiver == transport[0].receiver for m in transport)
    rising = all(a.counter < b.counter for a, b in zip(transport, transport[1:], strict=False))
    return same_receiver and rising


def detect_wireguard(sample: FlowSample) -> EncryptionVerdict | None:
    """WireGuard if a handshake message or corroborated transport messages are present."""
    if sample.proto != PROTO_UDP:
        return None
    client = [m for m in map(parse_message, sample.client) if m is not None]
    server = [m for m in map(parse_message, sample.server) if m is not None]
    kinds = {m.kind for m in client + server}
    handshake = sorted(kinds & set(_SIZES))
    if handshake:
        reason = ", ".join(_NAMES[k] for k in handshake)
    elif _consistent_transport(client) or _consistent_transport(server):
        reason = "transport data with one receiver index and rising counters"
    elif any(m.kind == TRANSPORT for m in client) and any(m.kind == TRANSPORT for m in server):
        reason = "transport data in both directions"
    else:
        return None
    if any(p.startswith(TAILSCALE_DISCO) for p in sample.client + sample.server):
        reason += "; Tailscale disco messages alongside"
    return EncryptionVerdict(kind="wireguard", version="WireGuard", detail=f"WireGuard {reason}")
