"""WireGuard over UDP: four message types, each with three zero reserved bytes and fixed sizes.

Handshake messages have exact sizes (initiation 148, response 92, cookie reply 64), which makes a
single one strong evidence. A transport message only fixes its type and a size rule, so alone
it needs corroboration: two in one direction under the same receiver index with rising
counters, or one in each direction.

Cloudflare WARP speaks a variant: message types 0xC1-0xC4 and non-zero reserved bytes (a
client id), handshakes of other sizes, transport messages without the 16-byte padding, but the
same receiver index and little-endian counter after the 4-byte header. Its transport messages
(type 0xC4, or 4 with non-zero reserved bytes) are recognised by the consistent-transport rule
alone (same header, same receiver index, rising counters: 2^-64 by chance), and the variant is
named in the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstwatch.enrich.encryption.verdict import PROTO_UDP, EncryptionVerdict, FlowSample

INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT = 1, 2, 3, 4
VARIANT_TRANSPORT = 0xC4
MIN_SIZE = 32  # a transport message's header and authentication tag
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
    header: bytes = b""  # a transport message's type and reserved bytes
    variant: bool = False  # the WARP framing


def _transport(payload: bytes, variant: bool) -> Message:
    receiver = int.from_bytes(payload[4:8], "little")
    counter = int.from_bytes(payload[8:16], "little")
    return Message(TRANSPORT, receiver, counter, payload[:4], variant)


def parse_message(payload: bytes) -> Message | None:
    """The WireGuard message ``payload`` could be, or None."""
    if len(payload) < MIN_SIZE:
        return None
    kind, zero = payload[0], payload[1:4] == b"\x00\x00\x00"
    if zero and kind in _SIZES:
        return Message(kind) if len(payload) == _SIZES[kind] else None
    if zero and kind == TRANSPORT and (len(payload) - 16) % 16 == 0:
        return _transport(payload, False)
    if kind == VARIANT_TRANSPORT or (kind == TRANSPORT and not zero):
        return _transport(payload, True)
    return None


def _consistent_transport(messages: list[Message]) -> bool:
    """Two or more transport messages with one header and receiver index, rising counters."""
    transport = [m for m in messages if m.kind == TRANSPORT]
    if len(transport) < 2:
        return False
    first = transport[0]
    same = all(m.receiver == first.receiver and m.header == first.header for m in transport)
    rising = all(a.counter < b.counter for a, b in zip(transport, transport[1:], strict=False))
    return same and rising


def _variant_transport(messages: list[Message]) -> bool:
    """Two or more variant transport messages of one header and receiver, rising counters."""
    variant = [m for m in messages if m.variant]
    return len(variant) >= 2 and _consistent_transport(variant)


def detect_wireguard(sample: FlowSample) -> EncryptionVerdict | None:
    """WireGuard if a handshake message or corroborated transport messages are present."""
    if sample.proto != PROTO_UDP:
        return None
    client = [m for m in map(parse_message, sample.client) if m is not None]
    server = [m for m in map(parse_message, sample.server) if m is not None]
    standard_c = [m for m in client if not m.variant]
    standard_s = [m for m in server if not m.variant]
    kinds = {m.kind for m in standard_c + standard_s}
    handshake = sorted(kinds & set(_SIZES))
    version = "WireGuard"
    if handshake:
        reason = ", ".join(_NAMES[k] for k in handshake)
    elif _consistent_transport(standard_c) or _consistent_transport(standard_s):
        reason = "transport data with one receiver index and rising counters"
    elif any(m.kind == TRANSPORT for m in standard_c) and any(
        m.kind == TRANSPORT for m in standard_s
    ):
        reason = "transport data in both directions"
    elif _variant_transport(client) or _variant_transport(server):
        side = client if _variant_transport(client) else server
        header = next(m.header for m in side if m.variant)
        version = "WireGuard (WARP variant)"
        reason = (
            f"variant framing (header {header.hex()}: type 0x{header[0]:02x}, reserved bytes "
            f"{header[1:].hex()}, as Cloudflare WARP sends): transport data with one receiver "
            "index and rising counters"
        )
    else:
        return None
    if any(p.startswith(TAILSCALE_DISCO) for p in sample.client + sample.server):
        reason += "; Tailscale disco messages alongside"
    return EncryptionVerdict(kind="wireguard", version=version, detail=f"WireGuard {reason}")
