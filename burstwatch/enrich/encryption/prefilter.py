"""Compiled necessary conditions of the protocol detectors, for many flows in one pass.

Per flow, the Python detectors cost tens of microseconds, mostly spent proving that
random-looking payloads are *not* TLS, QUIC, SSH and so on. :func:`candidates` reads every
payload of a batch once and says, for every flow, which detectors could match at all: a
condition each detector's verdict implies (a record header, a version field, a banner at a
line start, a handshake opening, an IKE header). Only those flows reach the Python detector,
which still makes every protocol verdict, so a condition here may be looser than its detector
but never stricter (``tests/test_encryption_batch.py`` checks that on crafted, fuzzed and
real flows). The single-payload tests are also what the sample policy
(:mod:`burstwatch.enrich.encryption.opening`) keeps payloads whole for.

Constants come from the detector modules, so a size or version is declared once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from burstwatch.enrich.encryption import dtls, ipsec, openvpn, tls, wireguard
from burstwatch.enrich.encryption.packing import PackedPayloads
from burstwatch.enrich.encryption.verdict import PROTO_ESP, PROTO_TCP, PROTO_UDP
from burstwatch.jit import njit

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

# One bit per detector, in precedence order (the order of classify.DETECTORS).
TLS, QUIC, DTLS, SSH, WIREGUARD, OPENVPN, IPSEC = (1 << k for k in range(7))

_TLS_MAX_RECORD = tls.MAX_RECORD
_DTLS_MAX_RECORD = dtls.MAX_RECORD
_DTLS_V0, _DTLS_V1, _DTLS_V2, _DTLS_V3 = dtls.DTLS_VERSIONS
_OVPN_MAX = openvpn.MAX_PACKET
_OVPN_MIN_CONTROL = openvpn.MIN_CONTROL
_WG_MIN = wireguard.MIN_SIZE
_WG_VARIANT_TRANSPORT = wireguard.VARIANT_TRANSPORT
_ESP_MIN = ipsec.MIN_ESP
_IKE_PORT, _NAT_T_PORT = ipsec.IKE_PORT, ipsec.NAT_T_PORT
_MAX_CID = 20  # quic: connection-id lengths of the versions we parse (RFC 9000 17.2)

# quic_kind's answers
QUIC_NO, QUIC_STRONG, QUIC_UNKNOWN = 0, 1, 2
# wg_kind's answer for a transport message of the variant framing (types 1-4 otherwise)
WG_VARIANT = 5


@njit(cache=True)
def at(buf: U8, i: int) -> int:
    """``buf[i]`` as int64: numba's int() keeps uint8, which turns to float mixed with int64."""
    return np.int64(buf[i])  # type: ignore[return-value]


@njit(cache=True)
def u16(buf: U8, i: int) -> int:
    """A big-endian 16-bit value at ``i``."""
    return (at(buf, i) << 8) | at(buf, i + 1)


@njit(cache=True)
def u32(buf: U8, i: int) -> int:
    """A big-endian 32-bit value at ``i``."""
    return (u16(buf, i) << 16) | u16(buf, i + 2)


@njit(cache=True)
def _digit(b: int) -> bool:
    return 48 <= b <= 57


@njit(cache=True)
def _known_quic_version(buf: U8, o: int) -> bool:
    """quic.version_name(version) is not None for the version at ``o``."""
    v = u32(buf, o)
    if v == 1 or v == 0x6B3343CF or (v >> 8) == 0xFF0000 or (v >> 4) == 0xFACEB00:
        return True
    b0 = at(buf, o)
    return (b0 == 81 or b0 == 84) and buf[o + 1] == 48 and _digit(at(buf, o + 2)) and _digit(
        at(buf, o + 3)
    )


@njit(cache=True)
def _cids_fit(buf: U8, o: int, n: int) -> bool:
    """Both connection-id lengths of a long header are at most 20 and the ids are present."""
    if n < 7:
        return False
    dcid = at(buf, o + 5)
    if dcid > _MAX_CID or n < 7 + dcid:
        return False
    scid = at(buf, o + 6 + dcid)
    return scid <= _MAX_CID and n >= 7 + dcid + scid


@njit(cache=True)
def quic_kind(buf: U8, o: int, n: int) -> int:
    """How quic.parse_packet may see this datagram: QUIC_STRONG for a known, greased or
    negotiation version (or a gQUIC public header), QUIC_UNKNOWN for a long header with
    another version (evidence only with a second packet of that version), else QUIC_NO."""
    if n < 5:
        return QUIC_NO
    first = at(buf, o)
    if first & 0x80:
        if _known_quic_version(buf, o + 1):
            return QUIC_STRONG
        if not _cids_fit(buf, o, n):
            return QUIC_NO
        v = u32(buf, o + 1)
        if v == 0 or (v & 0x0F0F0F0F) == 0x0A0A0A0A:
            return QUIC_STRONG
        return QUIC_UNKNOWN
    if (first & 0xC3) != 0x01:
        return QUIC_NO
    for off in (1, 2, 5, 9):
        if (
            off + 4 <= n
            and buf[o + off] == 81
            and buf[o + off + 1] == 48
            and _digit(at(buf, o + off + 2))
            and _digit(at(buf, o + off + 3))
        ):
            return QUIC_STRONG
    return QUIC_NO


@njit(cache=True)
def dtls_datagram(buf: U8, o: int, n: int) -> bool:
    """dtls.read_datagram is non-empty: the datagram is made of DTLS records exactly."""
    pos, end = o, o + n
    while pos < end:
        if end - pos < 13:
            return False
        ctype = buf[pos]
        version = u16(buf, pos + 1)
        length = u16(buf, pos + 11)
        if ctype < 20 or ctype > 23:
            return False
        if version != _DTLS_V0 and version != _DTLS_V1 and version != _DTLS_V2 and version != _DTLS_V3:
            return False
        if length == 0 or length > _DTLS_MAX_RECORD or end - pos - 13 < length:
            return False
        pos += 13 + length
    return n > 0


@njit(cache=True)
def tls_header(buf: U8, a: int, b: int) -> bool:
    """tls.read_records finds a first record: a valid 5-byte header opens the stream."""
    if b - a < 5:
        return False
    ctype = buf[a]
    if ctype < 20 or ctype > 23 or buf[a + 1] != 3 or buf[a + 2] < 1 or buf[a + 2] > 4:
        return False
    length = u16(buf, a + 3)
    return 0 < length <= _TLS_MAX_RECORD


@njit(cache=True)
def banner_at(buf: U8, q: int, b: int) -> bool:
    """An "SSH-2.0-" or "SSH-1.99-" prefix at ``q`` (ssh._PREFIXES)."""
    if b - q < 8 or buf[q] != 83 or buf[q + 1] != 83 or buf[q + 2] != 72 or buf[q + 3] != 45:
        return False
    if buf[q + 4] == 50 and buf[q + 5] == 46 and buf[q + 6] == 48 and buf[q + 7] == 45:
        return True
    return (
        b - q >= 9
        and buf[q + 4] == 49
        and buf[q + 5] == 46
        and buf[q + 6] == 57
        and buf[q + 7] == 57
        and buf[q + 8] == 45
    )


@njit(cache=True)
def ssh_like(buf: U8, a: int, b: int) -> bool:
    """Necessary for ssh.find_banner: a banner prefix at the start of the stream or of a line."""
    if banner_at(buf, a, b):
        return True
    if b - a < 9:
        return False
    # min over every offset of (newline, "SSH-") mismatch bits: 0 where "\nSSH-" starts.
    # Slices keep the loop free of negative-index checks, so it compiles to vector code.
    v0, v1, v2 = buf[a : b - 4], buf[a + 1 : b - 3], buf[a + 2 : b - 2]
    v3, v4 = buf[a + 3 : b - 1], buf[a + 4 : b]
    low = np.uint8(255)
    for i in range(v0.shape[0]):
        low = min(
            low,
            (v0[i] ^ np.uint8(10))
            | (v1[i] ^ np.uint8(83))
            | (v2[i] ^ np.uint8(83))
            | (v3[i] ^ np.uint8(72))
            | (v4[i] ^ np.uint8(45)),
        )
    if low != 0:
        return False
    i = a
    while i < b and not (buf[i] == 10 and banner_at(buf, i + 1, b)):
        i += 1
    return i < b


@njit(cache=True)
def wg_kind(buf: U8, o: int, n: int) -> int:
    """wireguard.parse_message's message type (1-4), WG_VARIANT for a transport message of
    the variant framing, or 0 when it returns None."""
    if n < _WG_MIN:
        return 0
    kind = at(buf, o)
    zero = buf[o + 1] == 0 and buf[o + 2] == 0 and buf[o + 3] == 0
    if zero:
        if (kind == 1 and n == 148) or (kind == 2 and n == 92) or (kind == 3 and n == 64):
            return kind
        if kind == 4 and (n - 16) % 16 == 0:
            return 4
    if kind == _WG_VARIANT_TRANSPORT or (kind == 4 and not zero):
        return WG_VARIANT
    return 0


@njit(cache=True)
def ovpn_opcode(buf: U8, o: int, n: int) -> int:
    """openvpn.parse_packet: the first byte when the packet is OpenVPN-shaped, else -1."""
    if n <= 0 or n > _OVPN_MAX:
        return -1
    op = at(buf, o) >> 3
    if op == 6 or op == 9:  # data
        return at(buf, o)
    if op in (1, 7, 10, 2, 8, 3, 4, 5, 11) and n >= _OVPN_MIN_CONTROL:
        return at(buf, o)
    return -1


@njit(cache=True)
def _equal(buf: U8, a: int, b: int, n: int) -> bool:
    """``buf[a:a + n] == buf[b:b + n]``."""
    same = True
    for k in range(n):
        same &= buf[a + k] == buf[b + k]
    return same


@njit(cache=True)
def _ovpn_control(op: int) -> bool:
    """openvpn.CONTROL: soft reset, control, ack, control with wrapped key."""
    return op == 3 or op == 4 or op == 5 or op == 11


@njit(cache=True)
def ovpn_direction(buf: U8, starts: I64, lens: I64, count: int) -> int:
    """One direction as openvpn.detect_openvpn sees it: bit 1 client hard reset first, bit 2
    server hard reset first, bit 4 a later control/ack packet of the same session."""
    if count == 0:
        return 0
    first = ovpn_opcode(buf, starts[0], lens[0])
    if first < 0 or first & 0x07:
        return 0
    op = first >> 3
    out = 0
    if op == 1 or op == 7 or op == 10:
        out = 1
    elif op == 2 or op == 8:
        out = 2
    else:
        return 0
    s0 = starts[0] + 1
    for k in range(1, count):
        code = ovpn_opcode(buf, starts[k], lens[k])
        if code < 0:
            return 0  # any packet that is not OpenVPN-shaped voids the direction
        if not _ovpn_control(code >> 3):
            continue
        if _equal(buf, starts[k] + 1, s0, 8):
            out |= 4
    return out


@njit(cache=True)
def ovpn_tcp(buf: U8, a: int, b: int) -> int:
    """ovpn_direction over the length-prefixed records of a TCP stream (openvpn.tcp_packets)."""
    if b - a < 2:
        return 0
    length = u16(buf, a)
    if length < _OVPN_MIN_CONTROL or length > _OVPN_MAX or b - a - 2 < _OVPN_MIN_CONTROL:
        return 0  # the first record cannot be a hard reset
    cap = (b - a) // 3 + 1
    starts = np.empty(cap, np.int64)
    lens = np.empty(cap, np.int64)
    count = 0
    pos = a
    while b - pos >= 2:
        length = u16(buf, pos)
        pos += 2
        if length == 0 or length > _OVPN_MAX:
            break
        take = min(length, b - pos)
        starts[count] = pos
        lens[count] = take
        count += 1
        pos += take
    return ovpn_direction(buf, starts, lens, count)


@njit(cache=True)
def ike(buf: U8, o: int, n: int) -> bool:
    """ipsec.parse_ike(message) is not None."""
    if n < 28 or u32(buf, o + 24) != n:
        return False
    spi = False
    for k in range(8):
        if buf[o + k]:
            spi = True
    if not spi:
        return False
    next_payload, version, exchange = buf[o + 16], buf[o + 17], buf[o + 18]
    if version == 0x20 and 34 <= exchange <= 37:
        return next_payload == 0 or 33 <= next_payload <= 54
    return version == 0x10 and exchange in (2, 4, 5, 32) and next_payload <= 20


@njit(cache=True)
def _esp_consistent(buf: U8, pkt_off: I64, ja: int, jb: int) -> bool:
    """ipsec._esp_consistent: two or more ESP packets, one SPI above 255, rising sequence."""
    count = 0
    spi = -1
    last = -1
    for j in range(ja, jb):
        o = pkt_off[j]
        if pkt_off[j + 1] - o < _ESP_MIN or (u16(buf, o) | u16(buf, o + 2)) == 0:
            continue
        this = u32(buf, o)
        seq = u32(buf, o + 4)
        if count and (this != spi or seq <= last):
            return False
        spi, last = this, seq
        count += 1
    return count >= 2 and spi > 255


@njit(cache=True)
def _ipsec_udp(buf: U8, pkt_off: I64, ca: int, cb: int, sa: int, sb: int, nat_t: bool) -> bool:
    """detect_ipsec on UDP 500/4500: an IKE header, or (on 4500) consistent ESP-in-UDP."""
    for side in range(2):
        ja, jb = (ca, cb) if side == 0 else (sa, sb)
        for j in range(ja, jb):
            o, m = pkt_off[j], pkt_off[j + 1] - pkt_off[j]
            if nat_t and m >= 4 and (u16(buf, o) | u16(buf, o + 2)) == 0:
                o, m = o + 4, m - 4  # the non-ESP marker
            if ike(buf, o, m):
                return True
    return nat_t and (_esp_consistent(buf, pkt_off, ca, cb) or _esp_consistent(buf, pkt_off, sa, sb))


@njit(cache=True)
def _repeated_version(versions: I64, count: int) -> bool:
    """Two of the first ``count`` versions are equal (an unknown QUIC version seen twice)."""
    for a in range(count):
        for b in range(a + 1, count):
            if versions[a] == versions[b]:
                return True
    return False


@njit(cache=True)
def _wg_variant_pair(buf: U8, pkt_off: I64, ja: int, jb: int) -> bool:
    """Two variant transport messages in one direction with the same first 8 bytes (header
    and receiver index): necessary for wireguard's consistent-transport rule."""
    for a in range(ja, jb):
        oa = pkt_off[a]
        if wg_kind(buf, oa, pkt_off[a + 1] - oa) != WG_VARIANT:
            continue
        for b in range(a + 1, jb):
            ob = pkt_off[b]
            if wg_kind(buf, ob, pkt_off[b + 1] - ob) != WG_VARIANT:
                continue
            if _equal(buf, oa, ob, 8):
                return True
    return False


@njit(cache=True, nogil=True)
def _candidates(
    buf: U8, pkt_off: I64, dir_first: I64, proto: I64, cport: I64, sport: I64, out: I64
) -> None:
    n = proto.shape[0]
    pkt_len = pkt_off[1:] - pkt_off[:-1]
    versions = np.empty(pkt_len.shape[0] + 1, np.int64)
    for i in range(n):
        p = proto[i]
        ca, cb = dir_first[i], dir_first[i + 1]
        sa, sb = dir_first[n + i], dir_first[n + i + 1]
        c0, c1 = pkt_off[ca], pkt_off[cb]
        s0, s1 = pkt_off[sa], pkt_off[sb]
        first_a, first_b = (c0, c1) if cb > ca else (s0, s1)
        bits = 0
        if p == PROTO_TCP:
            if tls_header(buf, first_a, first_b):
                out[i] = TLS  # sufficient too: detect_tls always answers then
                continue
            if ssh_like(buf, first_a, first_b):
                bits |= SSH
            oc = ovpn_tcp(buf, c0, c1)
            os_ = ovpn_tcp(buf, s0, s1)
            if (oc & 1 and os_ & 2) or oc & 4 or os_ & 4:
                bits |= OPENVPN
        elif p == PROTO_UDP:
            wg_hand = False
            wg_c = 0
            wg_s = 0
            unknown = int(np.int64(0))  # not a literal 0: one compile of _repeated_version
            for side in range(2):
                ja, jb = (ca, cb) if side == 0 else (sa, sb)
                for j in range(ja, jb):
                    o, m = pkt_off[j], pkt_len[j]
                    q = quic_kind(buf, o, m)
                    if q == QUIC_STRONG:
                        bits |= QUIC
                    elif q == QUIC_UNKNOWN:
                        versions[unknown] = u32(buf, o + 1)
                        unknown += 1
                    if dtls_datagram(buf, o, m):
                        bits |= DTLS
                    kind = wg_kind(buf, o, m)
                    if 1 <= kind <= 3:
                        wg_hand = True
                    elif kind == 4 and side == 0:
                        wg_c += 1
                    elif kind == 4:
                        wg_s += 1
            if _repeated_version(versions, unknown):
                bits |= QUIC
            if (
                wg_hand or wg_c >= 2 or wg_s >= 2 or (wg_c >= 1 and wg_s >= 1)
                or _wg_variant_pair(buf, pkt_off, ca, cb) or _wg_variant_pair(buf, pkt_off, sa, sb)
            ):
                bits |= WIREGUARD
            oc = ovpn_direction(buf, pkt_off[ca:cb], pkt_len[ca:cb], cb - ca)
            os_ = ovpn_direction(buf, pkt_off[sa:sb], pkt_len[sa:sb], sb - sa)
            if (oc & 1 and os_ & 2) or oc & 4 or os_ & 4:
                bits |= OPENVPN
            nat_t = cport[i] == _NAT_T_PORT or sport[i] == _NAT_T_PORT
            ike_port = cport[i] == _IKE_PORT or sport[i] == _IKE_PORT
            if (nat_t or ike_port) and _ipsec_udp(buf, pkt_off, ca, cb, sa, sb, nat_t):
                bits |= IPSEC
        elif p == PROTO_ESP:
            bits |= IPSEC
        out[i] = bits


def candidates(packed: PackedPayloads, proto: I64, client_port: I64, server_port: I64) -> I64:
    """For each flow of ``packed``, the detectors whose necessary condition holds (bits in
    precedence order)."""
    out = np.zeros(proto.shape[0], np.int64)
    _candidates(packed.buf, packed.pkt_off, packed.dir_first, proto, client_port, server_port, out)
    return out
