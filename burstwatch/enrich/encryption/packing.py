"""Payload samples of many flows in one byte buffer, the layout every compiled pass reads.

Client runs of all flows come first, then server runs: direction slot ``r`` is the client of
flow ``r`` for ``r < n`` and the server of flow ``r - n`` otherwise. Empty payloads are dropped
here, as :meth:`FlowSample.of` drops them, so every index agrees with the per-flow view.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import chain, compress

import numpy as np
import numpy.typing as npt

from burstwatch.flows.kernel import gather_bytes
from burstwatch.ordering import stable_argsort

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


@dataclasses.dataclass
class PackedPayloads:
    """Every non-empty payload of a set of flows in one buffer."""

    buf: U8
    pkt_off: I64  # packet j is buf[pkt_off[j]:pkt_off[j + 1]]
    dir_first: I64  # slot r holds packets dir_first[r]:dir_first[r + 1]

    @property
    def flows(self) -> int:
        """How many flows (half the direction slots)."""
        return (self.dir_first.shape[0] - 1) // 2

    def payloads(self, slot: int) -> tuple[bytes, ...]:
        """One direction's non-empty payloads as :class:`FlowSample` holds them."""
        a, b = int(self.dir_first[slot]), int(self.dir_first[slot + 1])
        off = self.pkt_off[a : b + 1].tolist()
        return tuple(self.buf[off[j] : off[j + 1]].tobytes() for j in range(b - a))


def pack(client: Sequence[Sequence[bytes]], server: Sequence[Sequence[bytes]]) -> PackedPayloads:
    """Flow ``i``'s payloads are ``client[i]`` and ``server[i]`` (bytes-like objects)."""
    n = len(client)
    counts = np.fromiter(map(len, chain(client, server)), np.int64, 2 * n)
    flat: list[bytes] = list(chain.from_iterable(chain(client, server)))
    lens = np.fromiter(map(len, flat), np.int64, len(flat))
    empty = lens == 0
    if empty.any():
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
    return PackedPayloads(buf, pkt_off, dir_first)


def pack_columns(
    data: Sequence[U8], source: I64, offset: I64, length: I64, flow: I64, direction: I64, n: int
) -> PackedPayloads:
    """The layout :func:`pack` builds, from samples already in byte buffers (no bytes objects):
    sample ``k`` is ``data[source[k]][offset[k]:offset[k] + length[k]]`` of flow ``flow[k]``
    (< ``n``), client (``direction`` 0) or server (1). One copy of each sample; samples keep
    their order within each flow direction."""
    keep = length > 0
    source, offset, length = source[keep], offset[keep], length[keep]
    slot = direction[keep] * n + flow[keep]
    order = stable_argsort(slot)
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
    buf.flags.writeable = False  # the same signature as pack's buffers: one compilation
    return PackedPayloads(buf, pkt_off, dir_first)
