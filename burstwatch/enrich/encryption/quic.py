"""QUIC over UDP: IETF long headers (v1, v2, drafts, any other version) and Google QUIC.

A version field is 32 bits, so a known version at the right offset of a long header is strong
evidence by itself; so is a greased version (``0x?a?a?a?a``, RFC 9000 section 15: 16 fixed
bits) or a version negotiation packet (version 0 listing a known version), with connection ids
of at most 20 bytes. Any other version follows only the invariants (RFC 8999), which one
random byte in 300 meets, so it needs a second, different datagram of the flow with the same
version and a shared connection id of 4 or more bytes. Short-header packets carry no
version: they only count as continuation once a long header was seen in the flow. Legacy gQUIC (Q043 and older) sends its client hello
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
NEGOTIATION = 0
GREASE_MASK, GREASE = 0x0F0F0F0F, 0x0A0A0A0A
_MAX_CID = 20
MIN_SHARED_CID = 4  # bytes of connection id two packets of an unknown version must share


@dataclass(frozen=True)
class QuicPacket:
    """The first packet of a datagram that carries a version, and how it was framed."""

    version: int
    name: str
    legacy: bool  # gQUIC public header (Q043 and older) rather than a long header
    initial: bool
    confirmed: bool = True  # False: an unknown version, evidence only with a second packet
    dcid: bytes = b""
    scid: bytes = b""


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
    """An IETF-style long header (also gQUIC Q046 and later) with any version."""
    r = Reader(payload)
    first = r.u8()
    if not first & 0x80:
        return None
    version = r.u32()
    name = version_name(version)
    if name is None:
        return _other_version(r, version)
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


def _other_version(r: Reader, version: int) -> QuicPacket | None:
    """A long header whose version has no name: negotiation, greased, or unknown."""
    dcid = r.take(r.u8())
    scid = r.take(r.u8())
    if max(len(dcid), len(scid)) > _MAX_CID:
        return None
    if version == NEGOTIATION:
        # RFC 9000 17.2.1: the ids echo the client's (whose DCID has 8 or more bytes), then
        # the supported versions; one of them must be a version we know.
        rest = r.take(r.remaining)
        offered = [int.from_bytes(rest[k : k + 4], "big") for k in range(0, len(rest), 4)]
        if len(scid) < 8 or not rest or len(rest) % 4 or not any(map(version_name, offered)):
            return None
        return QuicPacket(version, "QUIC version negotiation", legacy=False, initial=False)
    if version & GREASE_MASK == GREASE:
        return QuicPacket(version, f"QUIC greased version 0x{version:08x}", False, False)
    return QuicPacket(
        version, f"QUIC version 0x{version:08x}", False, False, confirmed=False, dcid=dcid, scid=scid
    )


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


def _shares_cid(p: QuicPacket, q: QuicPacket, same_sender: bool) -> bool:
    """Whether ``q`` carries a connection id of ``p`` (MIN_SHARED_CID bytes or more): the same
    DCID or SCID from the same sender, the peer's SCID as DCID (or the reverse) from the peer."""
    if same_sender:
        pairs = ((p.dcid, q.dcid), (p.scid, q.scid))
    else:
        pairs = ((p.scid, q.dcid), (p.dcid, q.scid))
    return any(a == b and len(a) >= MIN_SHARED_CID for a, b in pairs)


def _corroborated(
    payloads: tuple[tuple[bytes, ...], ...], parsed: list[list[QuicPacket | None]], side: int,
    index: int,
) -> bool:
    """Another, different datagram of the flow with the same version shares a connection id
    with packet ``index`` of ``side`` (an identical retransmission is not a second packet)."""
    p = parsed[side][index]
    assert p is not None
    for other in (0, 1):
        for j, q in enumerate(parsed[other]):
            if q is None or q.version != p.version:
                continue
            if other == side and payloads[side][j] == payloads[side][index]:
                continue
            if _shares_cid(p, q, other == side):
                return True
    return False


def detect_quic(sample: FlowSample) -> EncryptionVerdict | None:
    """QUIC if a datagram of either direction starts with a QUIC version (an unknown one
    confirmed by a second packet)."""
    if sample.proto != PROTO_UDP:
        return None
    payloads = (sample.client, sample.server)
    parsed = [[parse_packet(p) for p in direction] for direction in payloads]
    for side, direction in enumerate(payloads):
        for index, packet in enumerate(parsed[side]):
            if packet is not None and (
                packet.confirmed or _corroborated(payloads, parsed, side, index)
            ):
                return _verdict(direction, index, packet, from_client=side == 0)
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
    elif packet.version == NEGOTIATION:
        parts[0] = f"{packet.name} packet"
    elif not packet.confirmed:
        parts.append("another packet with that version shares its connection id")
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
