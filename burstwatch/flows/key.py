"""Direction-agnostic flow keys, computed for a whole batch at once.

The canonical key puts the lower (address, port) endpoint first as side "a". A 64-bit mix of
the key fields is used to group packets; the flow table checks full keys, so a hash collision
is detected (and counted) rather than silently merging two flows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from burstwatch.decode.batch import PacketBatch

U64 = npt.NDArray[np.uint64]

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _mix(h: U64, v: U64) -> U64:
    with np.errstate(over="ignore"):
        h = (h ^ v) * _M2
        h ^= h >> np.uint64(31)
        h = h * _M3
        h ^= h >> np.uint64(29)
    return h


@dataclass
class BatchKeys:
    """Canonical key columns for each packet, and which side sent it."""

    a_hi: U64
    a_lo: U64
    b_hi: U64
    b_lo: U64
    ports: U64  # proto << 32 | a_port << 16 | b_port
    src_is_a: npt.NDArray[np.bool_]
    hash: U64


def batch_keys(p: PacketBatch, idx: npt.NDArray[np.intp]) -> BatchKeys:
    """Keys for the packets ``idx`` of batch ``p``."""
    sh, sl, dh, dl = p.src_hi[idx], p.src_lo[idx], p.dst_hi[idx], p.dst_lo[idx]
    sp = p.sport[idx].astype(np.uint64)
    dp = p.dport[idx].astype(np.uint64)
    src_is_a = (sh < dh) | ((sh == dh) & ((sl < dl) | ((sl == dl) & (sp <= dp))))
    a_hi = np.where(src_is_a, sh, dh)
    a_lo = np.where(src_is_a, sl, dl)
    b_hi = np.where(src_is_a, dh, sh)
    b_lo = np.where(src_is_a, dl, sl)
    a_port = np.where(src_is_a, sp, dp)
    b_port = np.where(src_is_a, dp, sp)
    proto = p.proto[idx].astype(np.uint64)
    ports: U64 = np.bitwise_or(np.bitwise_or(proto << np.uint64(32), a_port << np.uint64(16)), b_port)
    with np.errstate(over="ignore"):
        h = ports * _M1
    for col in (a_hi, a_lo, b_hi, b_lo):
        h = _mix(h, col)
    return BatchKeys(a_hi, a_lo, b_hi, b_lo, ports, np.asarray(src_is_a, np.bool_), h)
