"""Community ID v1: the flow hash Zeek, Suricata, Elastic and others print, so an analyst can
pivot from a burstwatch case to the same connection in another tool's logs.

The hash is SHA-1 over: a 2-byte seed, the two addresses and ports ordered so both directions
give the same value, the IP protocol and a zero pad byte (corelight/community-id-spec). ICMP
types that have a reply type (echo, router solicitation, ...) are paired with it so request
and reply share one id; other ICMP messages are one-way and keep their order.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct

import numpy as np
import numpy.typing as npt

from burstwatch.jit import njit

ICMP, ICMP6 = 1, 58
PORT_PROTOCOLS = frozenset((6, 17, 132))  # TCP, UDP, SCTP: ids include the ports
_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 139: 140, 140: 139,
                144: 145, 145: 144}


def community_id(proto: int, saddr: str, daddr: str, sport: int | None = None,
                 dport: int | None = None, seed: int = 0) -> str:
    """The ``1:...`` id of a connection. For ICMP, ``sport`` is the type and ``dport`` the
    code; for protocols without ports they are ignored."""
    src = ipaddress.ip_address(saddr).packed
    dst = ipaddress.ip_address(daddr).packed
    one_way = False
    ports = proto in PORT_PROTOCOLS or proto in (ICMP, ICMP6)
    sp, dp = int(sport or 0), int(dport or 0)
    if proto in (ICMP, ICMP6):
        pairs = _ICMP4_PAIRS if proto == ICMP else _ICMP6_PAIRS
        if sp in pairs:
            dp = pairs[sp]
        else:
            one_way = True
    if not one_way and (src, sp) > (dst, dp):
        src, dst, sp, dp = dst, src, dp, sp
    data = struct.pack("!H", seed) + src + dst + struct.pack("!BB", proto, 0)
    if ports:
        data += struct.pack("!HH", sp, dp)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def community_ids(proto: np.ndarray, src_hi: np.ndarray, src_lo: np.ndarray,
                  dst_hi: np.ndarray, dst_lo: np.ndarray, sport: np.ndarray,
                  dport: np.ndarray) -> list[str]:
    """``community_id`` (seed 0) of every row of address columns (IPv4 stored IPv4-mapped in
    (hi, lo), as ``netaddr`` keeps them). The hashed bytes are laid out with numpy for all
    rows at once; only the SHA-1 runs per row. ICMP rows (whose ports are a type and a code
    with pairing rules) take the reference function."""
    n = int(np.asarray(proto).shape[0])
    proto = np.asarray(proto, np.int64)
    sh, sl = np.asarray(src_hi, np.uint64), np.asarray(src_lo, np.uint64)
    dh, dl = np.asarray(dst_hi, np.uint64), np.asarray(dst_lo, np.uint64)
    sp, dp = np.asarray(sport, np.int64), np.asarray(dport, np.int64)
    v4 = (sh == 0) & ((sl >> np.uint64(32)) == np.uint64(0xFFFF)) & \
         (dh == 0) & ((dl >> np.uint64(32)) == np.uint64(0xFFFF))
    with_ports = np.isin(proto, list(PORT_PROTOCOLS))
    sp = np.where(with_ports, sp, 0)
    dp = np.where(with_ports, dp, 0)
    # Order the endpoints so both directions hash alike: (addr, port) as unsigned tuples.
    swap = (sh > dh) | ((sh == dh) & ((sl > dl) | ((sl == dl) & (sp > dp))))
    ah, al, ap = np.where(swap, dh, sh), np.where(swap, dl, sl), np.where(swap, dp, sp)
    bh, bl, bp = np.where(swap, sh, dh), np.where(swap, sl, dl), np.where(swap, sp, dp)
    out: list[str] = [""] * n
    for is_v4 in (True, False):
        rows = np.flatnonzero((v4 == is_v4) & ~np.isin(proto, (ICMP, ICMP6)))
        if not rows.shape[0]:
            continue
        alen = 4 if is_v4 else 16
        buf = np.zeros((rows.shape[0], 2 + 2 * alen + 2 + 4), np.uint8)
        for k, (hi, lo) in enumerate(((ah, al), (bh, bl))):
            at = 2 + k * alen
            if is_v4:
                buf[:, at:at + 4] = (lo[rows] & np.uint64(0xFFFFFFFF)).astype(">u4").view(
                    np.uint8).reshape(-1, 4)
            else:
                buf[:, at:at + 8] = hi[rows].astype(">u8").view(np.uint8).reshape(-1, 8)
                buf[:, at + 8:at + 16] = lo[rows].astype(">u8").view(np.uint8).reshape(-1, 8)
        at = 2 + 2 * alen
        buf[:, at] = proto[rows].astype(np.uint8)
        buf[:, at + 2:at + 4] = ap[rows].astype(">u2").view(np.uint8).reshape(-1, 2)
        buf[:, at + 4:at + 6] = bp[rows].astype(">u2").view(np.uint8).reshape(-1, 2)
        ports = with_ports[rows]
        width = buf.shape[1]
        lengths = np.where(ports, width, width - 4).astype(np.int64)
        digests = np.empty((rows.shape[0], 20), np.uint8)
        _sha1_rows(buf, lengths, digests)
        texts = _base64_ids(digests)
        for i, text in zip(rows.tolist(), texts, strict=True):
            out[i] = text
    for i in np.flatnonzero(np.isin(proto, (ICMP, ICMP6))).tolist():
        out[i] = community_id(int(proto[i]), _text(sh[i], sl[i]), _text(dh[i], dl[i]),
                              int(sport[i]), int(dport[i]))
    return out


_SHA1_START = np.array([0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0],
                       np.uint64)


@njit(cache=True, nogil=True)
def _sha1_rows(messages: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64],
               out: npt.NDArray[np.uint8]) -> None:
    """SHA-1 (FIPS 180-4) of the first ``lengths[i]`` bytes of each row of ``messages``,
    into the rows of ``out``. A Community ID's message is at most 40 bytes, so it is padded
    into one 64-byte block: one compression per row, where ``hashlib`` took a Python call,
    an object and a copy per row (1.3 us a row, the costliest field of a flow record)."""
    mask = np.uint64(0xFFFFFFFF)
    w = np.empty(80, np.uint64)
    block = np.empty(64, np.uint8)
    for i in range(messages.shape[0]):
        n = lengths[i]
        block[:] = 0
        block[:n] = messages[i, :n]
        block[n] = 0x80
        bits = n * 8
        for k in range(8):
            block[63 - k] = (bits >> (8 * k)) & 0xFF
        for t in range(16):
            w[t] = ((np.uint64(block[4 * t]) << np.uint64(24)) | (np.uint64(block[4 * t + 1]) << np.uint64(16))
                    | (np.uint64(block[4 * t + 2]) << np.uint64(8)) | np.uint64(block[4 * t + 3]))
        for t in range(16, 80):
            x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
            w[t] = ((x << np.uint64(1)) | (x >> np.uint64(31))) & mask
        a, b, c, d, e = (_SHA1_START[0], _SHA1_START[1], _SHA1_START[2], _SHA1_START[3],
                         _SHA1_START[4])
        for t in range(80):
            if t < 20:
                f = (b & c) | (~b & mask & d)
                kt = np.uint64(0x5A827999)
            elif t < 40:
                f = b ^ c ^ d
                kt = np.uint64(0x6ED9EBA1)
            elif t < 60:
                f = (b & c) | (b & d) | (c & d)
                kt = np.uint64(0x8F1BBCDC)
            else:
                f = b ^ c ^ d
                kt = np.uint64(0xCA62C1D6)
            rotated = ((a << np.uint64(5)) | (a >> np.uint64(27))) & mask
            temp = (rotated + f + e + kt + w[t]) & mask
            e = d
            d = c
            c = ((b << np.uint64(30)) | (b >> np.uint64(2))) & mask
            b = a
            a = temp
        h = ((_SHA1_START[0] + a) & mask, (_SHA1_START[1] + b) & mask,
             (_SHA1_START[2] + c) & mask, (_SHA1_START[3] + d) & mask,
             (_SHA1_START[4] + e) & mask)
        for j in range(5):
            for k in range(4):
                out[i, 4 * j + k] = (h[j] >> np.uint64(24 - 8 * k)) & np.uint64(0xFF)


_B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                     np.uint8)


def _base64_ids(digests: np.ndarray) -> list[str]:
    """``"1:" + base64(digest)`` of every row of 20-byte SHA-1 digests, encoded by numpy:
    20 bytes padded to 21 are 28 base64 digits, the last one the padding ``=``."""
    n = digests.shape[0]
    padded = np.zeros((n, 21), np.uint8)
    padded[:, :20] = digests
    g = padded.reshape(n, 7, 3).astype(np.uint32)
    word = (g[:, :, 0] << 16) | (g[:, :, 1] << 8) | g[:, :, 2]
    sextets = np.stack([(word >> s) & 63 for s in (18, 12, 6, 0)], axis=2).reshape(n, 28)
    text = np.empty((n, 30), np.uint8)
    text[:, 0], text[:, 1] = ord("1"), ord(":")
    text[:, 2:] = _B64[sextets]
    text[:, 29] = ord("=")
    return text.view("S30").ravel().astype("U30").tolist()


def _text(hi: np.uint64, lo: np.uint64) -> str:
    addr = ipaddress.IPv6Address((int(hi) << 64) | int(lo))
    return str(addr.ipv4_mapped or addr)
