"""Convert between address strings and the (hi, lo) uint64 column pair, and match address sets.

Every stage keeps addresses as two uint64 columns (see ``burstwatch.decode.batch``), IPv4
stored IPv4-mapped. Strings appear only at the edges: parsing user input (CIDRs on the
command line) and formatting output, so both are done once per distinct address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]

MASK64 = (1 << 64) - 1
V4_MAPPED_BASE = 0xFFFF << 32
"""``lo`` of ``::ffff:0.0.0.0``; ``hi`` of every IPv4-mapped address is 0."""
V4_MAPPED = V4_MAPPED_BASE  # earlier name, kept for callers
V4_MAPPED_FIRST = V4_MAPPED_BASE
V4_MAPPED_LAST = V4_MAPPED_BASE | 0xFFFFFFFF


def ip_to_hilo(text: str) -> tuple[int, int]:
    """Parse one IPv4 or IPv6 address into (hi, lo); IPv4 becomes IPv4-mapped.

    Raises ValueError on text that is no address, so callers can say which input was bad.
    """
    addr = ipaddress.ip_address(text.strip())
    value = V4_MAPPED_BASE | int(addr) if addr.version == 4 else int(addr)
    return value >> 64, value & MASK64


def hilo_to_ip(hi: int, lo: int) -> str:
    """Format one (hi, lo) pair; IPv4-mapped addresses print as dotted quads."""
    hi, lo = int(hi), int(lo)
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def parse_addresses(texts: Iterable[str]) -> tuple[U64, U64]:
    """Parse many address strings into (hi, lo) columns (for tests and user-supplied lists)."""
    pairs = [ip_to_hilo(t) for t in texts]
    hi = np.fromiter((p[0] for p in pairs), dtype=np.uint64, count=len(pairs))
    lo = np.fromiter((p[1] for p in pairs), dtype=np.uint64, count=len(pairs))
    return hi, lo


def unique_pairs(
    hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.intp]]:
    """Distinct (hi, lo) addresses in order, and each input's index among them.

    ``np.unique`` on a structured or 2-column array sorts through a generic comparison that
    costs ~1 µs per row; two stable integer sorts (``lexsort``) do the same in a fraction."""
    n = hi.shape[0]
    if n == 0:
        z = np.zeros(0, np.uint64)
        return z, z, np.zeros(0, np.intp)
    order = np.lexsort((lo, hi))
    h, w = hi[order], lo[order]
    start = np.empty(n, np.bool_)
    start[0] = True
    np.not_equal(h[1:], h[:-1], out=start[1:])
    start[1:] |= w[1:] != w[:-1]
    inverse = np.empty(n, np.intp)
    inverse[order] = np.cumsum(start) - 1
    return h[start], w[start], inverse


_OCTETS = np.array([str(i) for i in range(256)], dtype=object)


def format_distinct(hi: U64, lo: U64) -> npt.NDArray[np.object_]:
    """Format (hi, lo) pairs as text, IPv4 and IPv6 alike vectorised (their parts' strings
    joined by numpy over object arrays, no Python call per address)."""
    out = np.empty(hi.shape[0], dtype=object)
    v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
    if v4.any():
        a = lo[v4]
        dot = "."
        out[v4] = (_OCTETS[((a >> np.uint64(24)) & np.uint64(255)).astype(np.intp)] + dot
                   + _OCTETS[((a >> np.uint64(16)) & np.uint64(255)).astype(np.intp)] + dot
                   + _OCTETS[((a >> np.uint64(8)) & np.uint64(255)).astype(np.intp)] + dot
                   + _OCTETS[(a & np.uint64(255)).astype(np.intp)])
    v6 = np.flatnonzero(~v4)
    if v6.shape[0]:
        out[v6] = format_ipv6(np.asarray(hi)[v6], np.asarray(lo)[v6])
    return out


def format_ipv6(hi: U64, lo: U64) -> npt.NDArray[np.object_]:
    """(hi, lo) pairs as IPv6 text, exactly as ``ipaddress.IPv6Address`` writes them (RFC
    5952): hextets in lower-case hex without leading zeros, the longest run of two or more
    zero hextets (the first of equals) written ``::``. The run of every address is found by
    numpy, and addresses with the same run are joined together over object arrays."""
    n = hi.shape[0]
    words = np.empty((n, 8), np.int64)
    for k in range(4):
        shift = np.uint64(48 - 16 * k)
        words[:, k] = ((hi >> shift) & np.uint64(0xFFFF)).astype(np.int64)
        words[:, 4 + k] = ((lo >> shift) & np.uint64(0xFFFF)).astype(np.int64)
    zero = words == 0
    # The longest zero run: at each position, the run's length ending there; its end is the
    # first position where that length is largest.
    run = np.zeros((n, 8), np.int64)
    run[:, 0] = zero[:, 0]
    for k in range(1, 8):
        run[:, k] = np.where(zero[:, k], run[:, k - 1] + 1, 0)
    length = run.max(axis=1)
    end = np.argmax(run, axis=1) + 1  # first maximum: the first of equally long runs
    length[length < 2] = 0  # a single zero hextet is written as "0"
    start = end - length
    # Each distinct hextet's text made once (a table of all 65,536 would hold 4 MiB for good).
    distinct, inverse = np.unique(words, return_inverse=True)
    hextets = np.empty(distinct.shape[0], dtype=object)
    hextets[:] = [format(w, "x") for w in distinct.tolist()]
    texts = hextets[inverse.reshape(n, 8)]
    out = np.empty(n, dtype=object)
    plan = start * 9 + length  # the same run, the same joining
    for key in np.unique(plan).tolist():
        rows = np.flatnonzero(plan == key)
        s, m = divmod(key, 9)
        part = texts[rows]
        if m == 0:
            out[rows] = _joined(part, 0, 8)
            continue
        text: Any = "::"
        if s:
            text = _joined(part, 0, s) + text
        if s + m < 8:
            text = text + _joined(part, s + m, 8)
        out[rows] = text
    return out


def _joined(parts: npt.NDArray[np.object_], a: int, b: int) -> npt.NDArray[np.object_]:
    """Columns ``a``..``b - 1`` of ``parts`` joined with ":" row by row (``b > a``)."""
    text = parts[:, a]
    for k in range(a + 1, b):
        text = text + ":" + parts[:, k]
    return text


def format_addresses(hi: npt.ArrayLike, lo: npt.ArrayLike) -> list[str]:
    """Format (hi, lo) columns as strings, formatting each distinct address only once.

    Output columns repeat the same few endpoints many times; string work per distinct
    address keeps formatting off the per-packet path.
    """
    texts, inverse = address_texts(hi, lo)
    return list(texts[inverse])


def address_texts(hi: npt.ArrayLike, lo: npt.ArrayLike) -> tuple[npt.NDArray[np.object_],
                                                                  npt.NDArray[np.intp]]:
    """The distinct addresses of (hi, lo) columns as text, and each row's index among them."""
    hi_a = np.ascontiguousarray(hi, dtype=np.uint64)
    lo_a = np.ascontiguousarray(lo, dtype=np.uint64)
    if hi_a.shape != lo_a.shape:
        raise ValueError("hi and lo must have the same shape")
    uhi, ulo, inverse = unique_pairs(hi_a.ravel(), lo_a.ravel())
    return format_distinct(uhi, ulo), inverse


def is_ipv4_mapped(hi: npt.ArrayLike, lo: npt.ArrayLike) -> BoolArray:
    """True where the address is IPv4 (stored IPv4-mapped)."""
    hi_a = np.asarray(hi, dtype=np.uint64)
    lo_a = np.asarray(lo, dtype=np.uint64)
    return (hi_a == 0) & ((lo_a >> np.uint64(32)) == np.uint64(0xFFFF))


def is_ipv4(hi: npt.ArrayLike, lo: npt.ArrayLike) -> BoolArray:
    """True where the address is IPv4 (the name output code uses for ``network.type``)."""
    return is_ipv4_mapped(hi, lo)
