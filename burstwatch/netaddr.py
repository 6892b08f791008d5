"""Addresses as (hi, lo) uint64 pairs: one 128-bit representation for IPv4 and IPv6.

IPv4 is stored IPv4-mapped (``::ffff:a.b.c.d``). Conversions to and from text happen only
at the edges (output, configuration), once per distinct address.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import numpy.typing as npt

V4_MAPPED = 0xFFFF << 32
_LO_MASK = (1 << 64) - 1


def ip_to_hilo(text: str) -> tuple[int, int]:
    """Parse an IPv4 or IPv6 address into its (hi, lo) pair."""
    addr = ipaddress.ip_address(text.strip())
    value = int(addr) | V4_MAPPED if addr.version == 4 else int(addr)
    return value >> 64, value & _LO_MASK


def hilo_to_ip(hi: int, lo: int) -> str:
    """Format one (hi, lo) pair; IPv4-mapped values come out as dotted quads."""
    hi, lo = int(hi), int(lo)
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def is_ipv4(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """Vectorised: which (hi, lo) pairs are IPv4-mapped."""
    return (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))


def format_addresses(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> list[str]:
    """Format many addresses, converting each distinct one once."""
    if len(hi) == 0:
        return []
    pairs = np.stack([np.asarray(hi, np.uint64), np.asarray(lo, np.uint64)], axis=1)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    texts = [hilo_to_ip(h, lo_) for h, lo_ in uniq]
    return [texts[k] for k in inverse.ravel()]
