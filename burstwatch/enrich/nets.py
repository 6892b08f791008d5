"""Sorted 128-bit search and CIDR sets over (hi, lo) address columns.

Shared by the geo tables (range starts) and by the internal-network checks (special-purpose
ranges and ``--internal-nets``): both are "which sorted interval holds this address".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.netaddr import is_ipv4_mapped

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
BoolArray = npt.NDArray[np.bool_]

MASK64 = (1 << 64) - 1
V4_MAPPED_BASE = 0xFFFF << 32
V4_MAPPED_FIRST = V4_MAPPED_BASE
V4_MAPPED_LAST = V4_MAPPED_BASE | 0xFFFFFFFF
SORT_MIN_QUERIES = 4096
"""Below this many queries a plain binary search beats sorting them first."""


def hilo_to_bytes(hi: U64, lo: U64) -> npt.NDArray[np.void]:
    """16-byte big-endian keys whose byte order is the 128-bit numeric order.

    numpy has no 128-bit integer; comparing these fixed-width keys bytewise gives the
    lexicographic (hi, lo) order that ``np.searchsorted`` needs.
    """
    buf = np.empty((hi.shape[0], 2), dtype=">u8")
    buf[:, 0] = hi
    buf[:, 1] = lo
    return buf.view("V16").ravel()


class Sorted128:
    """Sorted 128-bit values as (hi, lo) columns, searchable like ``np.searchsorted``.

    The search runs on ``hi`` alone (a fast uint64 search) and refines with full 16-byte
    keys only for queries whose /64 holds more than one start, which real tables rarely have.
    """

    def __init__(self, hi: npt.ArrayLike, lo: npt.ArrayLike) -> None:
        self.hi = np.ascontiguousarray(hi, dtype=np.uint64)
        self.lo = np.ascontiguousarray(lo, dtype=np.uint64)
        if self.hi.shape != self.lo.shape or self.hi.ndim != 1:
            raise ValueError("hi and lo must be 1-D arrays of the same length")
        self._keys: npt.NDArray[np.void] | None = None

    def __len__(self) -> int:
        return int(self.hi.shape[0])

    @property
    def keys(self) -> npt.NDArray[np.void]:
        """Byte keys for the refine step, built on first use."""
        if self._keys is None:
            self._keys = hilo_to_bytes(self.hi, self.lo)
        return self._keys

    def search_right(self, hi: U64, lo: U64) -> npt.NDArray[np.intp]:
        """Number of stored values <= each query (``np.searchsorted(..., side='right')``).

        Large query arrays are searched in ``hi`` order: a binary search over sorted keys
        walks the table in order and stays in cache, which more than pays for the sort.
        """
        if hi.shape[0] >= SORT_MIN_QUERIES:
            order = np.argsort(hi)
            pos = np.empty(hi.shape[0], dtype=np.intp)
            pos[order] = self._search(hi[order], lo[order])
            return pos
        return self._search(hi, lo)

    def _search(self, hi: U64, lo: U64) -> npt.NDArray[np.intp]:
        pos = np.searchsorted(self.hi, hi, side="right")
        if len(self) == 0 or pos.size == 0:
            return pos
        last = np.maximum(pos - 1, 0)
        need = (pos > 0) & (self.hi[last] == hi) & (self.lo[last] > lo)
        if need.any():
            q = hilo_to_bytes(hi[need], lo[need])
            pos[need] = np.searchsorted(self.keys, q, side="right")
        return pos


def sort_u32(values: U32) -> tuple[U32, U32 | None]:
    """(sorted values, original positions), or (values, None) when sorting does not pay.

    Value and position share one uint64 key so a single SIMD sort replaces an argsort.
    """
    n = values.shape[0]
    if n < SORT_MIN_QUERIES or n >= 1 << 32:
        return values, None
    key = (values.astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
    key.sort()
    return (key >> np.uint64(32)).astype(np.uint32), key.astype(np.uint32)


def unsort(sorted_values: npt.NDArray[Any], order: U32 | None) -> npt.NDArray[Any]:
    """Put results computed on ``sort_u32`` output back in the caller's order."""
    if order is None:
        return sorted_values
    out = np.empty_like(sorted_values)
    out[order] = sorted_values
    return out


def _network_bounds(text: str) -> tuple[int, int, int]:
    """(version, first, last) of a CIDR or single address, as plain integers."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"not an IP network: {text!r}") from exc
    return net.version, int(net.network_address), int(net.broadcast_address)


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of closed integer intervals, sorted and non-overlapping."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1] + 1:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


class NetSet:
    """A set of IP networks with a vectorised membership test over (hi, lo) columns.

    IPv4 is kept as uint32 intervals and searched on its own, so the common IPv4 case is
    one small ``np.searchsorted``; IPv6 networks that overlap ``::ffff:0:0/96`` also add
    the matching IPv4 interval, so both spellings of an address agree.
    """

    def __init__(self, v4: Sequence[tuple[int, int]], v6: Sequence[tuple[int, int]]) -> None:
        v4m = _merge(list(v4))
        v6m = _merge(list(v6))
        self.cidrs_v4 = v4m
        self.cidrs_v6 = v6m
        self._v4_start = np.array([s for s, _ in v4m], dtype=np.uint32)
        self._v4_end = np.array([e for _, e in v4m], dtype=np.uint32)
        self._v6_start = Sorted128(
            np.array([s >> 64 for s, _ in v6m], dtype=np.uint64),
            np.array([s & MASK64 for s, _ in v6m], dtype=np.uint64),
        )
        self._v6_end_hi = np.array([e >> 64 for _, e in v6m], dtype=np.uint64)
        self._v6_end_lo = np.array([e & MASK64 for _, e in v6m], dtype=np.uint64)

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> NetSet:
        """Build from CIDR strings (``10.0.0.0/8``, ``fe80::/10``, or bare addresses)."""
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        for text in cidrs:
            version, first, last = _network_bounds(text)
            if version == 4:
                v4.append((first, last))
                continue
            v6.append((first, last))
            lo_v4 = max(first, V4_MAPPED_FIRST)
            hi_v4 = min(last, V4_MAPPED_LAST)
            if lo_v4 <= hi_v4:
                v4.append((lo_v4 - V4_MAPPED_BASE, hi_v4 - V4_MAPPED_BASE))
        return cls(v4, v6)

    def __bool__(self) -> bool:
        return bool(self.cidrs_v4 or self.cidrs_v6)

    def contains_v4(self, v4: U32) -> BoolArray:
        """Membership for plain IPv4 values (uint32)."""
        if not self.cidrs_v4:
            return np.zeros(v4.shape, dtype=np.bool_)
        idx = np.searchsorted(self._v4_start, v4, side="right") - 1
        safe = np.maximum(idx, 0)
        return (idx >= 0) & (v4 <= self._v4_end[safe])

    def contains_v4_sorted(self, v4: U32) -> BoolArray:
        """Membership for ascending IPv4 values: intervals are located in the queries.

        With few intervals and many sorted queries this is two tiny searches and a cumsum.
        """
        n = v4.shape[0]
        if not self.cidrs_v4 or n == 0:
            return np.zeros(v4.shape, dtype=np.bool_)
        first = np.searchsorted(v4, self._v4_start, side="left")
        stop = np.searchsorted(v4, self._v4_end, side="right")
        edges = np.bincount(first, minlength=n + 1) - np.bincount(stop, minlength=n + 1)
        return np.cumsum(edges[:n]) > 0

    def contains_v6(self, hi: U64, lo: U64) -> BoolArray:
        """Membership for 128-bit values, ignoring the IPv4-mapped shortcut."""
        if not self.cidrs_v6:
            return np.zeros(hi.shape, dtype=np.bool_)
        idx = self._v6_start.search_right(hi, lo) - 1
        safe = np.maximum(idx, 0)
        end_hi = self._v6_end_hi[safe]
        end_lo = self._v6_end_lo[safe]
        below_end = (hi < end_hi) | ((hi == end_hi) & (lo <= end_lo))
        return (idx >= 0) & below_end

    def contains(self, hi: npt.ArrayLike, lo: npt.ArrayLike) -> BoolArray:
        """Membership for (hi, lo) address columns of either IP version."""
        hi_a = np.asarray(hi, dtype=np.uint64)
        lo_a = np.asarray(lo, dtype=np.uint64)
        v4 = is_ipv4_mapped(hi_a, lo_a)
        if v4.all():
            return self.contains_v4(lo_a.astype(np.uint32))
        out = np.empty(hi_a.shape, dtype=np.bool_)
        out[v4] = self.contains_v4(lo_a[v4].astype(np.uint32))
        v6 = ~v4
        out[v6] = self.contains_v6(hi_a[v6], lo_a[v6])
        return out
