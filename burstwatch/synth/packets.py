"""IP, TCP and UDP header construction with real checksums.

Built with ``struct`` rather than scapy: scapy costs tens of microseconds a packet, which would
make the demo and test captures slow to regenerate.
"""

from __future__ import annotations

import struct

PROTO_TCP = 6
PROTO_UDP = 17

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

IPV4_HEADER = 20
IPV6_HEADER = 40
UDP_HEADER = 8
TCP_HEADER_TS = 32  # 20 bytes plus NOP, NOP, timestamps: the header of every non-SYN segment
TCP_HEADER_SYN = 40  # 20 bytes plus MSS, SACK permitted, timestamps, NOP, window scale

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_TS_OPTION = struct.Struct("!BBBBII")
_SYN_OPTIONS = struct.Struct("!BBHBBBBIIBBBB")


def checksum(data: bytes) -> int:
    """Internet checksum (RFC 1071) of ``data``.

    The ones'-complement sum of 16-bit words equals the big-endian integer modulo 0xFFFF,
    because 2**16 is 1 modulo 0xFFFF; letting CPython do that reduction is much faster than
    summing words in Python.
    """
    if len(data) % 2:
        data += b"\x00"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF
    return ~total & 0xFFFF


def _pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def tcp_options(flags: int, tsval: int, tsecr: int, mss: int, wscale: int) -> bytes:
    """Linux-style options: the full set on SYNs, timestamps alone on every other segment."""
    if flags & SYN:
        return _SYN_OPTIONS.pack(2, 4, mss, 4, 2, 8, 10, tsval, tsecr, 1, 3, 3, wscale)
    return _TS_OPTION.pack(1, 1, 8, 10, tsval, tsecr)


def tcp_segment(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    options: bytes,
    payload: bytes,
) -> bytes:
    """A TCP header (with checksum over the pseudo-header) followed by ``payload``."""
    doff = (20 + len(options)) // 4
    header = _TCP.pack(sport, dport, seq, ack, doff << 4, flags, window, 0, 0) + options
    segment = header + payload
    csum = checksum(_pseudo_header(src, dst, PROTO_TCP, len(segment)) + segment)
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def udp_datagram(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP header (length and checksum filled in) followed by ``payload``."""
    length = UDP_HEADER + len(payload)
    datagram = _UDP.pack(sport, dport, length, 0) + payload
    csum = checksum(_pseudo_header(src, dst, PROTO_UDP, length) + datagram)
    if csum == 0:
        csum = 0xFFFF  # zero means "no checksum" in UDP
    return datagram[:6] + struct.pack("!H", csum) + datagram[8:]


def ipv4_packet(
    src: bytes, dst: bytes, proto: int, l4: bytes, *, ident: int, ttl: int, tos: int = 0
) -> bytes:
    """An IPv4 datagram with DF set and a valid header checksum."""
    header = _IPV4.pack(0x45, tos, IPV4_HEADER + len(l4), ident, 0x4000, ttl, proto, 0, src, dst)
    csum = checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + l4


def ipv6_packet(
    src: bytes, dst: bytes, proto: int, l4: bytes, *, hop_limit: int, flow_label: int = 0
) -> bytes:
    """An IPv6 datagram without extension headers."""
    first = (6 << 28) | (flow_label & 0xFFFFF)
    return _IPV6.pack(first, len(l4), proto, hop_limit, src, dst) + l4


def ip_packet(
    src: bytes,
    dst: bytes,
    proto: int,
    l4: bytes,
    *,
    ident: int = 0,
    ttl: int = 64,
    flow_label: int = 0,
) -> bytes:
    """IPv4 or IPv6 by address length."""
    if len(src) == 4:
        return ipv4_packet(src, dst, proto, l4, ident=ident, ttl=ttl)
    return ipv6_packet(src, dst, proto, l4, hop_limit=ttl, flow_label=flow_label)


def ip_header_len(version: int) -> int:
    """Bytes of IP header our generator writes for ``version`` (no options/extensions)."""
    return IPV4_HEADER if version == 4 else IPV6_HEADER
