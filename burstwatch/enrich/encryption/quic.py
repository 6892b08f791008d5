"""QUIC over UDP: IETF long headers (v1, v2, drafts) and Google QUIC (Q0xx, T0xx).

A version field is 32 bits, so a known version at the right offset of a long header is strong
evidence by itself. Short-header packets carry no version: they only count as continuation
once a long header was seen in the flow. Legacy gQUIC (Q043 and older) sends its client hello
(CHLO) in clear, so its SNI is read directly; IETF Initials need :mod:`quic_initial`.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstwatch.enrich.encryption._bytes import ParseError, Reader, printable
from burstwatch.enrich.encryption.ja4 import ja4
from burstwatch.enrich.encryption.quic_initial import initial_client_hello
from burstwatch.enrich.encryption.verdict import PROTO_UDP, EncryptionVerdict, FlowSample

VERSION_1 = 0x00000001
VERSION_2 = 0x6B3343CF
_MAX_CID = 20


@dataclass(frozen=True)
class QuicPacket:
    """The first packet of a datagram that carries a version, and how it was framed."""

    version: int
    name: str
    legacy: bool  # gQUIC public header (Q043 and older) rather than a long header
    initial: bool


def version_name(version: int) -> str | None:
    """A readable name for a QUIC version we recognise, None for anything else."""
    if version == VERSION_1:
        return "QUIC v1"
    if version == VERSION_2:
        return "QUIC v2"
    if version >> 8 == 0xFF0000:
        return f"QUIC draft-{version & 0xFF}"
    if version >> 4 == 0xFACEB00:
        return f"QUIC mvfst 0x{version:08x}"
    tag = version.to_bytes(4, "big")
    if tag[:1] in (b"Q", b"T") and tag[1:2] == b"0" and tag[2:].isdigit():
        return "gQUIC " + tag.decode("ascii")
    return None


def _long_header(payload: bytes) -> QuicPacket | None:
    """An IETF-style long header (also gQUIC Q046 and later) with a known version."""
    r = Reader(payload)
    first = r.u8()
    if not first & 0x80:
        return None
    version = r.u32()
    name = version_name(version)
    if name is None:
        return None
    tag = version.to_bytes(4, "big")
    if tag[:1] != b"Q" or tag >= b"Q050":
        # IETF invariants: one-byte connection id lengths (gQUIC Q046 packs them in nibbles)
        dcid_len = r.u8()
        r.skip(dcid_len)
        scid_len = r.u8()
        r.skip(scid_len)
        if version in (VERSION_1, VERSION_2) and max(dcid_len, scid_len) > _MAX_CID:
            return None
    type_bits = (first >> 4) & 0x03
    initial = type_bits == (1 if version == VERSION_2 else 0)
    return QuicPacket(version, name, legacy=False, initial=initial)


# Offsets of the version in a legacy gQUIC public header, by connection-id flag bits, for the
# older 2-bit length encoding (0, 1, 4 or 8 bytes) and the later "8 bytes or none" one.
_LEGACY_OFFSETS = {0x00: (1,), 0x04: (2, 1), 0x08: (5, 9), 0x0C: (9,)}


def _legacy_header(payload: bytes) -> QuicPacket | None:
    """A gQUIC public header with the version flag set and a Q0xx version where it belongs."""
    if len(payload) < 5:
        return None
    flags = payload[0]
    if flags & 0xC2 or not flags & 0x01:
        return None
    for offset in _LEGACY_OFFSETS[flags & 0x0C]:
        tag = payload[offset : offset + 4]
        if len(tag) == 4 and tag[:2] == b"Q0" and tag[2:].isdigit():
            return QuicPacket(
                int.from_bytes(tag, "big"), "gQUIC " + tag.decode("ascii"), True, True
            )
    return None


def parse_packet(payload: bytes) -> QuicPacket | None:
    """The QUIC framing of one datagram, or None if it shows no known version."""
    try:
        return _long_header(payload) or _legacy_header(payload)
    except ParseError:
        return None


def chlo_tags(payload: bytes) -> dict[bytes, bytes]:
    """Tag/value pairs of a gQUIC CHLO message in clear in ``payload`` (empty if none)."""
    at = payload.find(b"CHLO")
    if at < 0:
        return {}
    try:
        r = Reader(payload, at + 4)
        count = int.from_bytes(r.take(2), "little")
        r.skip(2)
        if count > 64:
            return {}
        index = [(r.take(4), int.from_bytes(r.take(4), "little")) for _ in range(count)]
        base, start = r.pos, 0
        out: dict[bytes, bytes] = {}
        for tag, end in index:
            if end < start or base + end > len(payload):
                return out
            out[tag] = payload[base + start : base + end]
            start = end
        return out
    except ParseError:
        return {}


def _short_headers_after(payloads: tuple[bytes, ...], first_long: int) -> int:
    """How many IETF short-header packets follow the first long header in one direction."""
    return sum(1 for p in payloads[first_long + 1 :] if p and (p[0] & 0xC0) == 0x40)


def detect_quic(sample: FlowSample) -> EncryptionVerdict | None:
    """QUIC if a datagram of either direction starts with a known QUIC version."""
    if sample.proto != PROTO_UDP:
        return None
    for from_client, direction in ((True, sample.client), (False, sample.server)):
        for index, payload in enumerate(direction):
            packet = parse_packet(payload)
            if packet is not None:
                return _verdict(direction, index, packet, from_client=from_client)
    return None


def _verdict(
    direction: tuple[bytes, ...], index: int, packet: QuicPacket, *, from_client: bool
) -> EncryptionVerdict:
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    fingerprint: str | None = None
    parts = [f"{packet.name} {'Initial' if packet.initial else 'long header'}"]
    if packet.legacy:
        parts[0] = f"{packet.name} public header"
    if from_client and packet.version in (VERSION_1, VERSION_2):
        hello = initial_client_hello(direction[index:])
        if hello is not None:
            sni = hello.sni
            alpn = tuple(printable(a) for a in hello.alpn)
            fingerprint = ja4(hello, "q")
            parts.append("ClientHello decrypted")
    elif packet.name.startswith("gQUIC"):
        tags = chlo_tags(direction[index])
        if b"SNI\x00" in tags:
            sni = printable(tags[b"SNI\x00"])
            parts.append("CHLO in clear")
    if sni:
        parts.append(f"SNI {sni}")
    if not packet.legacy:
        follow = _short_headers_after(direction, index)
        if follow:
            parts.append(f"{follow} short-header packet(s) follow")
    if not from_client:
        parts.append("seen from the responder")
    return EncryptionVerdict(
        kind="quic",
        version=packet.name,
        sni=sni,
        alpn=alpn,
        fingerprint=fingerprint,
        detail=", ".join(parts),
    )
