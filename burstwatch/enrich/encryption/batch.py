"""Encryption verdicts for many flows at once, identical to :func:`classify_flow` row by row.

Per flow, the Python detectors cost tens of microseconds, mostly spent proving that
random-looking payloads are *not* TLS, QUIC, SSH and so on, then running the entropy test.
Here one compiled pass over all payload bytes of a batch works out, for every flow, which
detectors could match at all (a necessary condition read off each detector's code: a record
header, a version field, a banner at a line start, a handshake opening, an IKE header), plus
each direction's byte histogram and the flags the entropy test needs. Only flows that meet a
detector's condition reach the Python detector, which still makes every protocol verdict; the
entropy test for all remaining flows is computed from the histograms.

Text that must match :func:`judge` to the character (entropy, expected entropy and deficit
ratio printed with two decimals, the pass/fail limit) comes from the same numbers; where a value
lies so close to a rounding edge or to the limit that the last bit could matter, that direction
goes through :func:`judge` itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain, compress

import numpy as np
import numpy.typing as npt
from numba import njit

from burstwatch.enrich.encryption.dtls import detect_dtls
from burstwatch.enrich.encryption.entropy_detector import (
    MAX_DEFICIT_RATIO,
    MIN_BYTES,
    SAMPLE_BYTES,
    judge,
)
from burstwatch.enrich.encryption.formats import MAGICS, plain_reason
from burstwatch.enrich.encryption.ipsec import detect_ipsec
from burstwatch.enrich.encryption.openvpn import detect_openvpn
from burstwatch.enrich.encryption.quic import detect_quic
from burstwatch.enrich.encryption.ssh import detect_ssh
from burstwatch.enrich.encryption.tls import detect_tls
from burstwatch.enrich.encryption.verdict import EncryptionVerdict, FlowSample
from burstwatch.enrich.encryption.wireguard import detect_wireguard
from burstwatch.flows.kernel import gather_bytes

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

# One bit per detector, in precedence order (the order of classify.DETECTORS).
TLS, QUIC, DTLS, SSH, WIREGUARD, OPENVPN, IPSEC = (1 << k for k in range(7))
PROTOCOL_DETECTORS: tuple[tuple[int, Callable[[FlowSample], EncryptionVerdict | None]], ...] = (
    (TLS, detect_tls),
    (QUIC, detect_quic),
    (DTLS, detect_dtls),
    (SSH, detect_ssh),
    (WIREGUARD, detect_wireguard),
    (OPENVPN, detect_openvpn),
    (IPSEC, detect_ipsec),
)

# Flows per compiled pass: bounds the joined payload buffer (a few MB) without per-pass cost.
CHUNK_FLOWS = 4096
# A printed value whose third decimal sits this close to 5, or a deficit ratio this close to
# the limit, is judged by judge() itself: the batch arithmetic differs in the last bits only.
_EDGE = 1e-7

_TCP, _UDP, _ESP = 6, 17, 50
_MAX_RECORD = 16384 + 2048  # TLS and DTLS (tls.MAX_RECORD, dtls.MAX_RECORD)
_OVPN_MAX = 2048  # openvpn._MAX_PACKET
_OVPN_MIN_CONTROL = 10  # openvpn._MIN_CONTROL
_WG_MIN = 32
_ESP_MIN = 8 + 16  # ipsec._MIN_ESP
_TEXT_PREFIX = 12  # formats.TEXT_PREFIX


def _magic_table() -> tuple[U8, I64]:
    """formats.MAGICS as a padded byte matrix and lengths, for the compiled scan."""
    width = max(len(m) for m, _ in MAGICS)
    table = np.zeros((len(MAGICS), width), np.uint8)
    for row, (magic, _) in enumerate(MAGICS):
        table[row, : len(magic)] = np.frombuffer(magic, np.uint8)
    return table, np.array([len(m) for m, _ in MAGICS], np.int64)


_MAGIC, _MAGIC_LEN = _magic_table()
_TEXT = np.zeros(256, np.bool_)
_TEXT[0x20:0x7F] = True
_TEXT[[0x09, 0x0A, 0x0D]] = True
_NLOGN = np.zeros(SAMPLE_BYTES + 1)  # c * log2(c): a histogram's entropy from integer counts
_NLOGN[1:] = np.arange(1, SAMPLE_BYTES + 1) * np.log2(np.arange(1, SAMPLE_BYTES + 1))


@lru_cache(maxsize=1)
def expected_table() -> npt.NDArray[np.float64]:
    """``expected_uniform_entropy(n)`` for n = 0..SAMPLE_BYTES, all at once.

    The same binomial sum, vectorised: a few ms once instead of ~0.3 ms for each distinct
    sample size (short flows bring hundreds of them). It agrees with the scalar function to
    ~1e-14, and values near a printing edge are re-judged exactly anyway.
    """
    sizes = np.arange(SAMPLE_BYTES + 1)[:, None]
    k = np.arange(1, 257)[None, :]
    valid = k <= sizes
    rest = np.where(valid, sizes - k, 0)
    lgam = np.array([math.lgamma(m + 1) for m in range(SAMPLE_BYTES + 1)])
    p = 1.0 / 256.0
    log_prob = lgam[sizes] - lgam[k] - lgam[rest] + k * math.log(p) + rest * math.log1p(-p)
    frac = k / np.maximum(sizes, 1)
    terms = np.where(valid, np.exp(log_prob) * frac * np.log2(frac), 0.0)
    out: npt.NDArray[np.float64] = -256.0 * terms.sum(axis=1)
    out[0] = 0.0  # an empty sum: the scalar function's 0.0, not -0.0
    return out


# --------------------------------------------------------------------------- compiled scan


@njit(cache=True)
def _at(buf: U8, i: int) -> int:
    """``buf[i]`` as int64: numba's int() keeps uint8, which turns to float mixed with int64."""
    return np.int64(buf[i])  # type: ignore[return-value]


@njit(cache=True)
def _u16(buf: U8, i: int) -> int:
    return (_at(buf, i) << 8) | _at(buf, i + 1)


@njit(cache=True)
def _digit(b: int) -> bool:
    return 48 <= b <= 57


@njit(cache=True)
def _quic_like(buf: U8, o: int, n: int) -> bool:
    """Necessary for quic.parse_packet: a known version in a long header or gQUIC public header."""
    if n < 5:
        return False
    first = _at(buf, o)
    if first & 0x80:
        v = (_u16(buf, o + 1) << 16) | _u16(buf, o + 3)
        if v == 1 or v == 0x6B3343CF or (v >> 8) == 0xFF0000 or (v >> 4) == 0xFACEB00:
            return True
        b1 = _at(buf, o + 1)
        return (
            (b1 == 81 or b1 == 84)
            and buf[o + 2] == 48
            and _digit(_at(buf, o + 3))
            and _digit(_at(buf, o + 4))
        )
    if (first & 0xC3) != 0x01:
        return False
    for at in (1, 2, 5, 9):
        if (
            at + 4 <= n
            and buf[o + at] == 81
            and buf[o + at + 1] == 48
            and _digit(_at(buf, o + at + 2))
            and _digit(_at(buf, o + at + 3))
        ):
            return True
    return False


@njit(cache=True)
def _dtls_datagram(buf: U8, o: int, n: int) -> bool:
    """dtls.read_datagram is non-empty: the datagram is made of DTLS records exactly."""
    pos, end = o, o + n
    while pos < end:
        if end - pos < 13:
            return False
        ctype = buf[pos]
        version = _u16(buf, pos + 1)
        length = _u16(buf, pos + 11)
        if ctype < 20 or ctype > 23:
            return False
        if version != 0xFEFF and version != 0xFEFD and version != 0xFEFC:
            return False
        if length == 0 or length > _MAX_RECORD or end - pos - 13 < length:
            return False
        pos += 13 + length
    return n > 0


@njit(cache=True)
def _tls_header(buf: U8, a: int, b: int) -> bool:
    """tls.read_records finds a first record: a valid 5-byte header opens the stream."""
    if b - a < 5:
        return False
    ctype = buf[a]
    if ctype < 20 or ctype > 23 or buf[a + 1] != 3 or buf[a + 2] < 1 or buf[a + 2] > 4:
        return False
    length = _u16(buf, a + 3)
    return 0 < length <= _MAX_RECORD


@njit(cache=True)
def _banner_at(buf: U8, q: int, b: int) -> bool:
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
def _ssh_like(buf: U8, a: int, b: int) -> bool:
    """Necessary for ssh.find_banner: a banner prefix at the start of the stream or of a line."""
    if _banner_at(buf, a, b):
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
    while i < b and not (buf[i] == 10 and _banner_at(buf, i + 1, b)):
        i += 1
    return i < b


@njit(cache=True)
def _wg_kind(buf: U8, o: int, n: int) -> int:
    """wireguard.parse_message's message type (1-4), or 0 when it returns None."""
    if n < _WG_MIN or buf[o + 1] != 0 or buf[o + 2] != 0 or buf[o + 3] != 0:
        return 0
    kind = _at(buf, o)
    if (kind == 1 and n == 148) or (kind == 2 and n == 92) or (kind == 3 and n == 64):
        return kind
    if kind == 4 and (n - 16) % 16 == 0:
        return 4
    return 0


@njit(cache=True)
def _ovpn_opcode(buf: U8, o: int, n: int) -> int:
    """openvpn.parse_packet: the first byte when the packet is OpenVPN-shaped, else -1."""
    if n <= 0 or n > _OVPN_MAX:
        return -1
    op = _at(buf, o) >> 3
    if op == 6 or op == 9:  # data
        return _at(buf, o)
    if op in (1, 7, 10, 2, 8, 3, 4, 5, 11) and n >= _OVPN_MIN_CONTROL:
        return _at(buf, o)
    return -1


@njit(cache=True)
def _ovpn_direction(buf: U8, starts: I64, lens: I64, count: int) -> int:
    """One direction as openvpn.detect_openvpn sees it: bit 1 client hard reset first, bit 2
    server hard reset first, bit 4 a later control packet of the same session."""
    if count == 0:
        return 0
    first = _ovpn_opcode(buf, starts[0], lens[0])
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
        code = _ovpn_opcode(buf, starts[k], lens[k])
        if code < 0:
            return 0  # any packet that is not OpenVPN-shaped voids the direction
        kop = code >> 3
        if kop == 6 or kop == 9:
            continue
        s = starts[k] + 1
        same = True
        for j in range(8):
            if buf[s + j] != buf[s0 + j]:
                same = False
                break
        if same:
            out |= 4
    return out


@njit(cache=True)
def _ovpn_tcp(buf: U8, a: int, b: int) -> int:
    """_ovpn_direction over the length-prefixed records of a TCP stream (openvpn.tcp_packets)."""
    if b - a < 2:
        return 0
    length = _u16(buf, a)
    if length < _OVPN_MIN_CONTROL or length > _OVPN_MAX or b - a - 2 < _OVPN_MIN_CONTROL:
        return 0  # the first record cannot be a hard reset
    cap = (b - a) // 3 + 1
    starts = np.empty(cap, np.int64)
    lens = np.empty(cap, np.int64)
    count = 0
    pos = a
    while b - pos >= 2:
        length = _u16(buf, pos)
        pos += 2
        if length == 0 or length > _OVPN_MAX:
            break
        take = min(length, b - pos)
        starts[count] = pos
        lens[count] = take
        count += 1
        pos += take
    return _ovpn_direction(buf, starts, lens, count)


@njit(cache=True)
def _ike(buf: U8, o: int, n: int) -> bool:
    """ipsec.parse_ike(message) is not None."""
    if n < 28 or _u16(buf, o + 24) << 16 | _u16(buf, o + 26) != n:
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
        if pkt_off[j + 1] - o < _ESP_MIN or (_u16(buf, o) | _u16(buf, o + 2)) == 0:
            continue
        this = _u16(buf, o) << 16 | _u16(buf, o + 2)
        seq = _u16(buf, o + 4) << 16 | _u16(buf, o + 6)
        if count and (this != spi or seq <= last):
            return False
        spi, last = this, seq
        count += 1
    return count >= 2 and spi > 255


@njit(cache=True)
def _ipsec_udp(
    buf: U8, pkt_off: I64, ca: int, cb: int, sa: int, sb: int, nat_t: bool
) -> bool:
    """detect_ipsec on UDP 500/4500: an IKE header, or (on 4500) consistent ESP-in-UDP."""
    for side in range(2):
        ja, jb = (ca, cb) if side == 0 else (sa, sb)
        for j in range(ja, jb):
            o, m = pkt_off[j], pkt_off[j + 1] - pkt_off[j]
            if nat_t and m >= 4 and (_u16(buf, o) | _u16(buf, o + 2)) == 0:
                o, m = o + 4, m - 4  # the non-ESP marker
            if _ike(buf, o, m):
                return True
    return nat_t and (_esp_consistent(buf, pkt_off, ca, cb) or _esp_consistent(buf, pkt_off, sa, sb))


@njit(cache=True, nogil=True)
def _candidates(
    buf: U8, pkt_off: I64, dir_first: I64, proto: I64, cport: I64, sport: I64, out: I64
) -> None:
    """For each flow, the detectors whose necessary condition holds (bits in precedence order)."""
    n = proto.shape[0]
    pkt_len = pkt_off[1:] - pkt_off[:-1]
    for i in range(n):
        p = proto[i]
        ca, cb = dir_first[i], dir_first[i + 1]
        sa, sb = dir_first[n + i], dir_first[n + i + 1]
        c0, c1 = pkt_off[ca], pkt_off[cb]
        s0, s1 = pkt_off[sa], pkt_off[sb]
        first_a, first_b = (c0, c1) if cb > ca else (s0, s1)
        bits = 0
        if p == _TCP:
            if _tls_header(buf, first_a, first_b):
                out[i] = TLS  # sufficient too: detect_tls always answers then
                continue
            if _ssh_like(buf, first_a, first_b):
                bits |= SSH
            oc = _ovpn_tcp(buf, c0, c1)
            os_ = _ovpn_tcp(buf, s0, s1)
            if (oc & 1 and os_ & 2) or oc & 4 or os_ & 4:
                bits |= OPENVPN
        elif p == _UDP:
            wg_hand = False
            wg_c = 0
            wg_s = 0
            for side in range(2):
                ja, jb = (ca, cb) if side == 0 else (sa, sb)
                for j in range(ja, jb):
                    o, m = pkt_off[j], pkt_len[j]
                    if _quic_like(buf, o, m):
                        bits |= QUIC
                    if _dtls_datagram(buf, o, m):
                        bits |= DTLS
                    kind = _wg_kind(buf, o, m)
                    if 1 <= kind <= 3:
                        wg_hand = True
                    elif kind == 4 and side == 0:
                        wg_c += 1
                    elif kind == 4:
                        wg_s += 1
            if wg_hand or wg_c >= 2 or wg_s >= 2 or (wg_c >= 1 and wg_s >= 1):
                bits |= WIREGUARD
            oc = _ovpn_direction(buf, pkt_off[ca:cb], pkt_len[ca:cb], cb - ca)
            os_ = _ovpn_direction(buf, pkt_off[sa:sb], pkt_len[sa:sb], sb - sa)
            if (oc & 1 and os_ & 2) or oc & 4 or os_ & 4:
                bits |= OPENVPN
            nat_t = cport[i] == 4500 or sport[i] == 4500
            if (nat_t or cport[i] == 500 or sport[i] == 500) and _ipsec_udp(
                buf, pkt_off, ca, cb, sa, sb, nat_t
            ):
                bits |= IPSEC
        elif p == _ESP:
            bits |= IPSEC
        out[i] = bits


@njit(cache=True)
def _file_format(buf: U8, o: int, n: int, magic: U8, magic_len: I64) -> bool:
    """formats.file_format(payload) is not None."""
    for row in range(magic.shape[0]):
        m = magic_len[row]
        if n >= m:
            hit = True
            for k in range(m):
                if buf[o + k] != magic[row, k]:
                    hit = False
                    break
            if hit:
                return True
    if n >= 8 and buf[o + 4] == 102 and buf[o + 5] == 116 and buf[o + 6] == 121 and buf[o + 7] == 112:
        return True
    if n >= 2 and buf[o] == 0x78 and not (buf[o + 1] & 0x20):
        return ((0x78 << 8) | _at(buf, o + 1)) % 31 == 0
    return False


@njit(cache=True, nogil=True)
def _direction_stats(
    buf: U8,
    pkt_off: I64,
    dir_first: I64,
    slots: I64,
    nlogn: npt.NDArray[np.float64],
    text: npt.NDArray[np.bool_],
    magic: U8,
    magic_len: I64,
    sample_len: I64,
    entropy: npt.NDArray[np.float64],
    plain: npt.NDArray[np.bool_],
) -> None:
    """The entropy test's inputs for each direction slot: sample size, Shannon entropy of the
    first SAMPLE_BYTES of the joined payloads, and whether formats.plain_reason would speak."""
    hist = np.zeros(256, np.int64)
    for k in range(slots.shape[0]):
        r = slots[k]
        a, b = dir_first[r], dir_first[r + 1]
        s0, s1 = pkt_off[a], pkt_off[b]
        m = min(s1 - s0, SAMPLE_BYTES)
        sample_len[k] = m
        if m == 0:
            entropy[k] = 0.0
            plain[k] = False
            continue
        hist[:] = 0
        for byte in buf[s0 : s0 + m]:  # unsigned index: no negative-index check per byte
            hist[byte] += 1
        total = 0.0
        distinct = 0
        for v in range(256):
            c = hist[v]
            if c:
                total += nlogn[c]
                distinct += 1
        # shannon() of a one-symbol sample is -(0.0), printed "-0.00"
        entropy[k] = -0.0 if distinct == 1 else math.log2(m) - total / m
        is_plain = False
        if s1 - s0 >= _TEXT_PREFIX:
            is_plain = True
            for i in range(s0, s0 + _TEXT_PREFIX):
                if not text[buf[i]]:
                    is_plain = False
                    break
        if not is_plain:
            for j in range(a, b):
                if _file_format(buf, pkt_off[j], pkt_off[j + 1] - pkt_off[j], magic, magic_len):
                    is_plain = True
                    break
        plain[k] = is_plain


# --------------------------------------------------------------------------- packing


@dataclasses.dataclass
class _Packed:
    """Every non-empty payload of a chunk in one buffer: client runs of all flows, then server."""

    buf: U8
    pkt_off: I64  # packet j is buf[pkt_off[j]:pkt_off[j + 1]]
    dir_first: I64  # slot r (client i = r, server i = n + r) holds packets dir_first[r]:[r + 1]


def _pack(client: Sequence[Sequence[bytes]], server: Sequence[Sequence[bytes]]) -> _Packed:
    n = len(client)
    counts = np.fromiter(map(len, chain(client, server)), np.int64, 2 * n)
    flat: list[bytes] = list(chain.from_iterable(chain(client, server)))
    lens = np.fromiter(map(len, flat), np.int64, len(flat))
    empty = lens == 0
    if empty.any():  # FlowSample.of drops empty payloads: so does every index here
        keep = ~empty
        owner = np.repeat(np.arange(2 * n), counts)
        counts = np.bincount(owner[keep], minlength=2 * n).astype(np.int64)
        flat = list(compress(flat, keep.tolist()))
        lens = lens[keep]
    dir_first = np.zeros(2 * n + 1, np.int64)
    np.cumsum(counts, out=dir_first[1:])
    pkt_off = np.zeros(len(flat) + 1, np.int64)
    np.cumsum(lens, out=pkt_off[1:])
    buf = np.frombuffer(b"".join(flat) or b"\0", np.uint8)  # always read-only: one signature
    return _Packed(buf, pkt_off, dir_first)


def _pack_columns(
    data: Sequence[U8], source: I64, offset: I64, length: I64, flow: I64, direction: I64, n: int
) -> _Packed:
    """The layout :func:`_pack` builds, from samples already in byte buffers (no bytes objects):
    one copy of each sample, straight from wherever it lies.

    Samples keep their order within each flow direction, as the list form does."""
    keep = length > 0  # FlowSample.of drops empty payloads: so does every index here
    source, offset, length = source[keep], offset[keep], length[keep]
    slot = direction[keep] * n + flow[keep]
    order = np.argsort(slot, kind="stable")
    dir_first = np.zeros(2 * n + 1, np.int64)
    np.cumsum(np.bincount(slot, minlength=2 * n), out=dir_first[1:])
    lens = length[order]
    pkt_off = np.zeros(lens.shape[0] + 1, np.int64)
    np.cumsum(lens, out=pkt_off[1:])
    buf = np.zeros(max(int(pkt_off[-1]), 1), np.uint8)
    src, starts, dest = source[order], offset[order], pkt_off[:-1]
    for k, chunk in enumerate(data):
        mine = np.flatnonzero(src == k) if len(data) > 1 else slice(None)
        gather_bytes(chunk, starts[mine], lens[mine], dest[mine], buf)
    buf.flags.writeable = False  # the same signature as _pack's buffers: one compilation
    return _Packed(buf, pkt_off, dir_first)


# --------------------------------------------------------------------------- entropy test

_SUMMARY_END = f", limit {MAX_DEFICIT_RATIO})"
_RANDOM = "originator's bytes look random: "
_NONE = "no encrypted protocol recognised; originator's bytes: "
_ALSO = "; responder's bytes too"


@dataclasses.dataclass
class _Stats:
    """What the entropy test reads off one direction, for many direction slots."""

    sample_len: I64
    entropy: npt.NDArray[np.float64]  # shannon() of the sample (0.0 when empty)
    plain: npt.NDArray[np.bool_]  # formats.plain_reason() would name a reason


def _stats(packed: _Packed, slots: I64) -> _Stats:
    k = slots.shape[0]
    out = _Stats(np.zeros(k, np.int64), np.zeros(k), np.zeros(k, np.bool_))
    _direction_stats(
        packed.buf, packed.pkt_off, packed.dir_first, slots, _NLOGN, _TEXT, _MAGIC, _MAGIC_LEN,
        out.sample_len, out.entropy, out.plain,
    )
    return out


@lru_cache(maxsize=16)
def _hundredths(size: int) -> tuple[str, ...]:
    """``f"{k / 100:.2f}"`` for k < size, built from integers so no rounding is involved."""
    return tuple(f"{k // 100}.{k % 100:02d}" for k in range(size))


def _fixed2(values: npt.NDArray[np.float64]) -> list[str]:
    """``f"{x:.2f}"`` for each value away from a rounding edge (see :func:`_near_edge`)."""
    if not values.size:
        return []
    k = np.floor(np.abs(values) * 100.0 + 0.5).astype(np.int64)
    table = _hundredths(1 << int(k.max()).bit_length())
    out = [table[j] for j in k.tolist()]
    for row in np.flatnonzero(np.signbit(values)).tolist():
        out[row] = "-" + out[row]  # shannon() gives -0.0 for a one-symbol sample
    return out


@lru_cache(maxsize=1)
def _summary_middles() -> tuple[str, ...]:
    """The part of judge()'s summary that depends on the sample size alone, by size."""
    expected = expected_table()
    return tuple(
        f" bits/byte over {n} bytes (uniform: {expected[n]:.2f}, deficit ratio "
        for n in range(SAMPLE_BYTES + 1)
    )


def _near_edge(x: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Values whose ``:.2f`` could depend on the last bits of the arithmetic."""
    scaled = np.abs(x) * 100.0
    return np.abs(scaled - np.floor(scaled) - 0.5) < _EDGE


@dataclasses.dataclass
class _Judged:
    """judge() of one direction for many flows, as columns."""

    passed: npt.NDArray[np.bool_]
    entropy: list[float | None]
    reason: list[str]


def _judge_many(packed: _Packed, slots: I64, stats: _Stats, want_reason: bool) -> _Judged:
    """judge() on the payloads of each slot; reasons only when ``want_reason``."""
    k = slots.shape[0]
    size, ent = stats.sample_len, stats.entropy
    expected = expected_table()[size]
    tested = (size >= MIN_BYTES) & ~stats.plain
    ratio = np.ones(k)
    np.divide(8.0 - ent, 8.0 - expected, out=ratio, where=tested)
    passed = tested & (ratio <= MAX_DEFICIT_RATIO)
    edge = np.abs(ratio - MAX_DEFICIT_RATIO) < _EDGE
    if want_reason:
        edge |= _near_edge(ent) | _near_edge(expected) | _near_edge(ratio)
    edge &= tested
    entropy: list[float | None] = ent.tolist()
    for row in np.flatnonzero(size == 0).tolist():
        entropy[row] = None
    reasons: list[str] = []
    if want_reason:
        reasons = [""] * k
        rows = np.flatnonzero(tested & ~edge)
        middles = _summary_middles()
        for row, e, n, r in zip(
            rows.tolist(), _fixed2(ent[rows]), size[rows].tolist(), _fixed2(ratio[rows]),
            strict=True,
        ):
            reasons[row] = f"{e}{middles[n]}{r}{_SUMMARY_END}"
        size_l = size.tolist()
        for row in np.flatnonzero((size > 0) & (size < MIN_BYTES)).tolist():
            reasons[row] = f"only {size_l[row]} bytes (need {MIN_BYTES})"
        for row in np.flatnonzero(size == 0).tolist():
            reasons[row] = "no payload"
        for row in np.flatnonzero((size >= MIN_BYTES) & stats.plain).tolist():
            reasons[row] = plain_reason(_payloads(packed, int(slots[row]))) or ""
    for row in np.flatnonzero(edge).tolist():
        exact = judge(_payloads(packed, int(slots[row])))
        passed[row] = exact.passed
        entropy[row] = exact.entropy
        if want_reason:
            reasons[row] = exact.reason
    return _Judged(passed, entropy, reasons)


def _payloads(packed: _Packed, slot: int) -> tuple[bytes, ...]:
    """One direction's non-empty payloads as FlowSample holds them."""
    a, b = int(packed.dir_first[slot]), int(packed.dir_first[slot + 1])
    buf, off = packed.buf, packed.pkt_off[a : b + 1].tolist()
    return tuple(buf[off[j] : off[j + 1]].tobytes() for j in range(b - a))


# --------------------------------------------------------------------------- entry point


@dataclasses.dataclass
class VerdictColumns:
    """Verdicts of many flows as columns: what enrichment emits, without an object per flow.

    Rows with a protocol verdict (the few flows a detector recognised) keep their verdict
    object in ``protocol``; every other row is an entropy or "none" verdict, whole in
    ``kind``, ``entropy`` (NaN where the verdict has none) and ``detail``.
    """

    kind: npt.NDArray[np.object_]
    entropy: npt.NDArray[np.float64]
    detail: npt.NDArray[np.object_]
    protocol: dict[int, EncryptionVerdict]

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def verdicts(self) -> list[EncryptionVerdict]:
        """One verdict object per row (for tests and tools; the pipeline reads the columns)."""
        out = []
        for i, (kind, ent, detail) in enumerate(
            zip(self.kind.tolist(), self.entropy.tolist(), self.detail.tolist(), strict=True)
        ):
            v = self.protocol.get(i)
            if v is None:
                v = EncryptionVerdict(kind=kind, entropy=None if math.isnan(ent) else ent, detail=detail)
            out.append(v)
        return out

    @staticmethod
    def concat(parts: list[VerdictColumns]) -> VerdictColumns:
        protocol: dict[int, EncryptionVerdict] = {}
        base = 0
        for part in parts:
            protocol.update((base + i, v) for i, v in part.protocol.items())
            base += len(part)
        if not parts:
            return VerdictColumns(np.zeros(0, object), np.zeros(0), np.zeros(0, object), {})
        return VerdictColumns(
            np.concatenate([p.kind for p in parts]), np.concatenate([p.entropy for p in parts]),
            np.concatenate([p.detail for p in parts]), protocol,
        )


def _classify_chunk(
    proto: I64, client_port: I64, server_port: I64, packed: _Packed,
    probe: npt.NDArray[np.bool_] | None = None,
) -> VerdictColumns:
    n = proto.shape[0]
    cand = np.zeros(n, np.int64)
    _candidates(packed.buf, packed.pkt_off, packed.dir_first, proto, client_port, server_port, cand)
    if probe is not None:
        cand[~probe] = 0  # samples that open no protocol were cut short: entropy test only
    client = _stats(packed, np.arange(n, dtype=np.int64))
    kind = np.empty(n, object)
    entropy_col = np.full(n, np.nan)
    detail = np.empty(n, object)
    protocol: dict[int, EncryptionVerdict] = {}
    matched = np.zeros(n, np.bool_)
    for i in np.flatnonzero(cand).tolist():
        sample = FlowSample(
            int(proto[i]), int(client_port[i]), int(server_port[i]),
            _payloads(packed, i), _payloads(packed, n + i),
        )
        bits = int(cand[i])
        for bit, detector in PROTOCOL_DETECTORS:
            if bits & bit:
                v = detector(sample)
                if v is not None:
                    if v.entropy is None and sample.client:
                        v = dataclasses.replace(v, entropy=float(client.entropy[i]))
                    protocol[i] = v
                    kind[i], detail[i] = v.kind, v.detail
                    if v.entropy is not None:
                        entropy_col[i] = v.entropy
                    matched[i] = True
                    break
    rest = np.flatnonzero(~matched)
    rest_stats = _Stats(client.sample_len[rest], client.entropy[rest], client.plain[rest])
    judged = _judge_many(packed, rest, rest_stats, want_reason=True)
    random_rows = np.flatnonzero(judged.passed)
    slots = rest[random_rows] + n
    server = _judge_many(packed, slots, _stats(packed, slots), want_reason=False)
    tails = ["", _ALSO]
    reason = judged.reason
    kind[rest] = np.where(judged.passed, "entropy", "none")
    entropy_col[rest] = np.array([np.nan if e is None else e for e in judged.entropy], np.float64)
    texts = [f"{_NONE}{r}" for r in reason]
    for row, also in zip(random_rows.tolist(), server.passed.tolist(), strict=True):
        texts[row] = f"{_RANDOM}{reason[row]}{tails[also]}"
    rest_detail = np.empty(rest.shape[0], object)
    rest_detail[:] = texts
    detail[rest] = rest_detail
    return VerdictColumns(kind, entropy_col, detail, protocol)


def classify_flows(
    proto: npt.ArrayLike,
    client_port: npt.ArrayLike,
    server_port: npt.ArrayLike,
    client_payloads: Sequence[Sequence[bytes]],
    server_payloads: Sequence[Sequence[bytes]],
) -> list[EncryptionVerdict]:
    """``classify_flow`` for every row at once: same verdicts, a small fraction of the time.

    Row ``i`` is one flow: its IP protocol, ports, and the first payloads of each direction.
    """
    protos = np.asarray(proto, dtype=np.int64).ravel()
    cports = np.asarray(client_port, dtype=np.int64).ravel()
    sports = np.asarray(server_port, dtype=np.int64).ravel()
    n = protos.shape[0]
    if not (cports.shape[0] == sports.shape[0] == len(client_payloads) == len(server_payloads) == n):
        raise ValueError("classify_flows: every argument needs one entry per flow")
    out: list[EncryptionVerdict] = []
    for lo in range(0, n, CHUNK_FLOWS):
        hi = min(lo + CHUNK_FLOWS, n)
        out.extend(
            _classify_chunk(
                protos[lo:hi], cports[lo:hi], sports[lo:hi],
                _pack(client_payloads[lo:hi], server_payloads[lo:hi]),
            ).verdicts()
        )
    return out


def classify_packed_columns(
    proto: npt.ArrayLike,
    client_port: npt.ArrayLike,
    server_port: npt.ArrayLike,
    data: U8 | Sequence[U8],
    offset: npt.ArrayLike,
    length: npt.ArrayLike,
    flow: npt.ArrayLike,
    direction: npt.ArrayLike,
    source: npt.ArrayLike | None = None,
    probe: npt.ArrayLike | None = None,
) -> VerdictColumns:
    """:func:`classify_flows` on samples that already sit in byte buffers, without a ``bytes``
    object per sample: sample ``k`` is ``data[offset[k]:offset[k] + length[k]]`` (with several
    buffers, ``data[source[k]][...]``), sent by flow ``flow[k]``'s client (``direction[k] == 0``)
    or server (1). A flow direction's samples are taken in the order they appear here.
    Flows whose ``probe`` is False (samples kept only as far as the entropy test reads, see
    :mod:`burstwatch.enrich.encryption.opening`) skip the protocol detectors.
    """
    protos = np.asarray(proto, dtype=np.int64).ravel()
    cports = np.asarray(client_port, dtype=np.int64).ravel()
    sports = np.asarray(server_port, dtype=np.int64).ravel()
    offs = np.asarray(offset, dtype=np.int64).ravel()
    lens = np.asarray(length, dtype=np.int64).ravel()
    flows = np.asarray(flow, dtype=np.int64).ravel()
    dirs = np.asarray(direction, dtype=np.int64).ravel()
    buffers = [data] if isinstance(data, np.ndarray) else list(data)
    srcs = np.zeros(offs.shape[0], np.int64) if source is None else np.asarray(source, np.int64).ravel()
    n = protos.shape[0]
    if not (cports.shape[0] == sports.shape[0] == n):
        raise ValueError("classify_packed: proto and ports need one entry per flow")
    if not (offs.shape[0] == lens.shape[0] == flows.shape[0] == dirs.shape[0] == srcs.shape[0]):
        raise ValueError("classify_packed: every sample needs an offset, length, flow and direction")
    if flows.size and (flows.min() < 0 or flows.max() >= n or dirs.min() < 0 or dirs.max() > 1):
        raise ValueError("classify_packed: a sample names a flow or direction that does not exist")
    if srcs.size and (srcs.min() < 0 or srcs.max() >= len(buffers)):
        raise ValueError("classify_packed: a sample names a buffer that does not exist")
    if lens.size:
        sizes = np.array([b.shape[0] for b in buffers], np.int64)[srcs]
        if lens.min() < 0 or offs.min() < 0 or ((offs + lens > sizes) & (lens > 0)).any():
            raise ValueError("classify_packed: a sample lies outside its buffer")
    probes = None if probe is None else np.asarray(probe, np.bool_).ravel()
    if probes is not None and probes.shape[0] != n:
        raise ValueError("classify_packed: probe needs one entry per flow")
    order = np.argsort(flows, kind="stable")
    by_flow = flows[order]
    out: list[VerdictColumns] = []
    for lo in range(0, n, CHUNK_FLOWS):
        hi = min(lo + CHUNK_FLOWS, n)
        sel = order[np.searchsorted(by_flow, lo) : np.searchsorted(by_flow, hi)]
        packed = _pack_columns(
            buffers, srcs[sel], offs[sel], lens[sel], flows[sel] - lo, dirs[sel], hi - lo
        )
        out.append(_classify_chunk(protos[lo:hi], cports[lo:hi], sports[lo:hi], packed,
                                   None if probes is None else probes[lo:hi]))
    return VerdictColumns.concat(out)


def classify_packed(*args: object, **kwargs: object) -> list[EncryptionVerdict]:
    """:func:`classify_packed_columns` as one verdict object per flow."""
    return classify_packed_columns(*args, **kwargs).verdicts()  # type: ignore[arg-type]
