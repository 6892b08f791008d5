"""Direction-agnostic flow keys, computed for a whole batch at once.

The canonical key puts the lower (address, port) endpoint first as side "a". A 64-bit mix of
the key fields is used to group packets; the flow table checks full keys, so a hash collision
is detected (and counted) rather than silently merging two flows. One compiled pass computes
the key, the side and the hash together (numpy would make a dozen temporaries per column).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from burstwatch.decode.batch import PacketBatch
from burstwatch.flows.sampling import PayloadCopy
from burstwatch.jit import njit

U64 = npt.NDArray[np.uint64]


@njit(cache=True, inline="always")
def mix(h: np.uint64, v: np.uint64) -> np.uint64:
    """Fold ``v`` into the 64-bit hash ``h`` (splitmix64 finaliser steps)."""
    h = (h ^ v) * np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(31)
    h = h * np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(29)
    return h


@njit(cache=True, nogil=True)
def _keys(
    idx: np.ndarray, src_hi: np.ndarray, src_lo: np.ndarray, dst_hi: np.ndarray,
    dst_lo: np.ndarray, sport: np.ndarray, dport: np.ndarray, proto: np.ndarray,
    a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray, b_lo: np.ndarray, ports: np.ndarray,
    src_is_a: np.ndarray, h: np.ndarray,
) -> None:
    for j in range(idx.shape[0]):
        i = idx[j]
        sh, sl, dh, dl = src_hi[i], src_lo[i], dst_hi[i], dst_lo[i]
        sp, dp = np.uint64(sport[i]), np.uint64(dport[i])
        first = sh < dh or (sh == dh and (sl < dl or (sl == dl and sp <= dp)))
        src_is_a[j] = first
        if first:
            a_hi[j], a_lo[j], b_hi[j], b_lo[j] = sh, sl, dh, dl
            p = (np.uint64(proto[i]) << np.uint64(32)) | (sp << np.uint64(16)) | dp
        else:
            a_hi[j], a_lo[j], b_hi[j], b_lo[j] = dh, dl, sh, sl
            p = (np.uint64(proto[i]) << np.uint64(32)) | (dp << np.uint64(16)) | sp
        ports[j] = p
        x = p * np.uint64(0x9E3779B97F4A7C15)
        x = mix(x, a_hi[j])
        x = mix(x, a_lo[j])
        x = mix(x, b_hi[j])
        h[j] = mix(x, b_lo[j])


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
    n = idx.shape[0]
    u = [np.empty(n, np.uint64) for _ in range(6)]
    k = BatchKeys(u[0], u[1], u[2], u[3], u[4], np.empty(n, np.bool_), u[5])
    _keys(idx, p.src_hi, p.src_lo, p.dst_hi, p.dst_lo, p.sport, p.dport, p.proto,
          k.a_hi, k.a_lo, k.b_hi, k.b_lo, k.ports, k.src_is_a, k.hash)
    return k


@dataclass(frozen=True)
class GroupedPackets:
    """What the flow table's update needs of a batch before it looks at its own state: the
    packets it takes (``idx``), their keys, their grouping by flow (one stable sort: capture
    order within each flow) and the per-packet columns it reads. Nothing here depends on the
    table's state but the payload copies, which only use what it published after an earlier
    step, so the decoding thread computes it (``FlowTable.prepare``) while the table's thread
    works on the batch before."""

    idx: npt.NDArray[np.intp]
    keys: BatchKeys
    order: npt.NDArray[np.intp]  # packets (positions in idx) grouped by flow
    uniq: U64  # each group's hash, groups in the order of their first packets
    first: npt.NDArray[np.intp]  # each group's first packet (position in idx)
    inverse: npt.NDArray[np.int64]  # each packet's group
    ts: npt.NDArray[np.int64]
    wire: npt.NDArray[np.uint32]
    payload: npt.NDArray[np.uint32]
    flags: npt.NDArray[np.uint8]
    proto: npt.NDArray[np.uint8]
    # Packets whose key is not their group's first packet's: 64-bit hash collisions inside
    # the batch (almost always none; the table then compares keys per group, not per packet).
    collided: int
    payloads: PayloadCopy | None = None  # those the table may sample (``FlowTable.prepare``)


@njit(cache=True, nogil=True)
def group_by_hash(
    h: np.ndarray, slot_group: np.ndarray, slot_hash: np.ndarray, start: np.ndarray,
    order: np.ndarray, inverse: np.ndarray, first: np.ndarray,
) -> int:
    """Group the packets by their key hash ``h``, in one pass with an open-addressing table
    (``slot_group`` and ``slot_hash``, a power of two of at least 2 n slots each; filled
    here): groups are numbered in the order of their first packets (``first``), ``inverse``
    gives each packet's group, and ``order`` lists the packets group by group, each group's
    in capture order (a counting sort in ``start``, n + 1 slots). Returns the number of
    groups. A stable sort of the hashes did the same in three times the time."""
    n = h.shape[0]
    slot_group[:] = -1  # here, not by numpy in the caller: one GIL hand-over fewer
    start[:] = 0
    mask = np.uint64(slot_group.shape[0] - 1)
    groups = 0
    for i in range(n):
        x = h[i]
        s = x & mask  # the hash is mixed already: its low bits spread the keys
        while True:
            g = slot_group[s]
            if g < 0:
                slot_group[s] = groups
                slot_hash[s] = x
                first[groups] = i
                inverse[i] = groups
                groups += 1
                break
            if slot_hash[s] == x:
                inverse[i] = g
                break
            s = (s + np.uint64(1)) & mask
    for i in range(n):
        start[inverse[i] + 1] += 1
    for g in range(groups):
        start[g + 1] += start[g]
    for i in range(n):
        g = inverse[i]
        order[start[g]] = i
        start[g] += 1
    return groups


@njit(cache=True, nogil=True)
def count_unlike_first(
    a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray, b_lo: np.ndarray, ports: np.ndarray,
    inverse: np.ndarray, first: np.ndarray,
) -> int:
    """How many packets have another key than their group's first packet (grouped by hash:
    ``inverse``, ``first``), i.e. collided with it."""
    unlike = 0
    for i in range(inverse.shape[0]):
        f = first[inverse[i]]
        if (a_hi[i] != a_hi[f] or a_lo[i] != a_lo[f] or b_hi[i] != b_hi[f]
                or b_lo[i] != b_lo[f] or ports[i] != ports[f]):
            unlike += 1
    return unlike


@njit(cache=True, nogil=True)
def group_keys(
    a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray, b_lo: np.ndarray, ports: np.ndarray,
    h: np.ndarray, slot_group: np.ndarray, slot_hash: np.ndarray, start: np.ndarray,
    order: np.ndarray, inverse: np.ndarray, first: np.ndarray, uniq: np.ndarray,
) -> tuple[int, int]:
    """``group_by_hash`` of a batch's keys, each group's hash (``uniq``) and
    ``count_unlike_first``: (groups, packets collided). One call, as the decoding thread
    takes the GIL back after each; these three were six hand-overs with numpy's steps."""
    groups = group_by_hash(h, slot_group, slot_hash, start, order, inverse, first)
    for g in range(groups):
        uniq[g] = h[first[g]]
    return groups, count_unlike_first(a_hi, a_lo, b_hi, b_lo, ports, inverse, first)


def _hash_table(n: int) -> tuple[npt.NDArray[np.int64], U64, npt.NDArray[np.int64]]:
    """Scratch for grouping ``n`` hashes: a power of two of at least 2 n slots, and the
    counting sort's n + 1 (filled by ``group_by_hash``)."""
    slots = 1 << (2 * n - 1).bit_length()
    return np.empty(slots, np.int64), np.empty(slots, np.uint64), np.empty(n + 1, np.int64)


def group_hashes(h: U64) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64],
                                  npt.NDArray[np.intp]]:
    """``group_by_hash`` of the hashes ``h`` (at least one), its table made for it:
    (order, inverse, first)."""
    n = h.shape[0]
    order = np.empty(n, np.intp)
    inverse = np.empty(n, np.int64)
    first = np.empty(n, np.intp)
    groups = group_by_hash(h, *_hash_table(n), order, inverse, first)
    return order, inverse, first[:groups]


def group_packets(batch: PacketBatch, idx: npt.NDArray[np.intp]) -> GroupedPackets:
    """The packets ``idx`` (at least one) of ``batch``, keyed and grouped by flow."""
    keys = batch_keys(batch, idx)
    n = idx.shape[0]
    order = np.empty(n, np.intp)
    inverse = np.empty(n, np.int64)
    first = np.empty(n, np.intp)
    uniq = np.empty(n, np.uint64)
    groups, collided = group_keys(keys.a_hi, keys.a_lo, keys.b_hi, keys.b_lo, keys.ports,
                                  keys.hash, *_hash_table(n), order, inverse, first, uniq)
    # Every packet decoded (the usual case): the batch's own columns, not copies of them.
    every = n == len(batch)
    return GroupedPackets(
        idx=idx, keys=keys, order=order, uniq=uniq[:groups], first=first[:groups],
        inverse=inverse, collided=collided, ts=batch.ts_ns if every else batch.ts_ns[idx],
        wire=batch.wire_len if every else batch.wire_len[idx],
        payload=batch.payload_len if every else batch.payload_len[idx],
        flags=batch.tcp_flags if every else batch.tcp_flags[idx],
        proto=batch.proto if every else batch.proto[idx],
    )
