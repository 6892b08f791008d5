"""How much of each payload sample the flow table keeps: all of it, or a prefix and heads.

The classifier that reads samples needs whole payloads only where a protocol might be
recognised; for everything else it reads the first ``prefix`` bytes of each direction's
joined payloads and the first ``head`` bytes of each payload (the entropy test and its
clear-content checks). Keeping only that is what makes sampling cheap on traffic that
opens no known protocol: a few hundred bytes per direction are copied instead of several
full-size packets. Whoever parses the samples decides which payloads open a protocol; the
flow table only applies the decision.

A direction keeps whole payloads from its first payload that ``opens`` accepts on; before
that, payloads are cut to what the prefix budget has left, but never below ``head`` bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from burstwatch.flows import state as st
from burstwatch.jit import njit

# (bytes buffer, offsets, lengths, transport, originator's port, responder's port) -> accept
Opens = Callable[
    [npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64],
     npt.NDArray[np.uint8], npt.NDArray[np.uint16], npt.NDArray[np.uint16]],
    npt.NDArray[np.bool_],
]


@dataclass(frozen=True)
class SamplePolicy:
    """Which samples are kept whole, and how much of the others."""

    opens: Opens
    prefix: int
    head: int


@dataclass(frozen=True)
class PayloadCopy:
    """The payloads of a batch's packets that the flow table may sample, copied by the
    decoding thread (``FlowTable.prepare``) while their capture pages are still mapped. The
    table, a few batches behind, reads its samples here: from the capture itself each read
    faulted a page the reader had already given back in again (about a fifth of a scan's page
    faults and a third of the table thread's time on the 5 M-packet capture,
    docs/benchmarks.md). Where a sampled packet has no copy the table reads the capture, so a
    copy only ever saves time."""

    data: npt.NDArray[np.uint8]
    start: npt.NDArray[np.int64]  # per packet the table takes (position in ``idx``): -1, none


@njit(cache=True, nogil=True)
def keep_lengths(
    slot: np.ndarray, direction: np.ndarray, first: np.ndarray, opens: np.ndarray,
    length: np.ndarray, state: np.ndarray, prefix: int, head: int,
    out_len: np.ndarray, out_whole: np.ndarray,
) -> None:
    """Bytes to keep of each sample, in capture order. ``state[slot, direction]`` is the
    prefix budget left, or -1 once the direction keeps whole payloads; a direction's first
    sample resets it (slots are reused by later flows)."""
    for k in range(slot.shape[0]):
        s = slot[k]
        d = direction[k]
        if first[k]:
            state[s, d] = prefix
        if opens[k]:
            state[s, d] = -1
        budget = state[s, d]
        n = length[k]
        if budget < 0:
            out_len[k] = n
            out_whole[k] = True
        else:
            take = min(n, max(budget, head))
            out_len[k] = take
            out_whole[k] = take == n
            state[s, d] = max(budget - take, 0)


@njit(cache=True, nogil=True)
def sides_sampled_out(live: np.ndarray, runs: np.ndarray, meta: np.ndarray, nsamples: int,
                      from_a: np.ndarray, from_b: np.ndarray) -> None:
    """For each open flow in slot ``live[k]``: whether what side a of its key sends
    (``from_a[k]``), and what side b sends, has given all its ``nsamples`` payload samples."""
    for k in range(live.shape[0]):
        s = live[k]
        orig = runs[s, 0, st.R_SAMPLED] >= nsamples
        resp = runs[s, 1, st.R_SAMPLED] >= nsamples
        a_is_orig = meta[s, st.M_ORIG_IS_A] == 1
        from_a[k] = orig if a_is_orig else resp
        from_b[k] = resp if a_is_orig else orig


@njit(cache=True, nogil=True, inline="always")
def _holds(sorted_values: np.ndarray, value: np.uint64) -> bool:
    k = np.searchsorted(sorted_values, value)
    return k < sorted_values.shape[0] and sorted_values[k] == value


@njit(cache=True, nogil=True)
def plan_copy(order: np.ndarray, inverse: np.ndarray, from_a: np.ndarray, payload: np.ndarray,
              uniq: np.ndarray, done_a: np.ndarray, done_b: np.ndarray, nsamples: int,
              idx: np.ndarray, offset: np.ndarray, payload_off: np.ndarray, cap_len: np.ndarray,
              payload_len: np.ndarray, which: np.ndarray, start: np.ndarray,
              length: np.ndarray, out_off: np.ndarray) -> tuple[int, int]:
    """The packets of a batch the flow table may take as payload samples, and where their
    payloads lie: (how many, their bytes in all). A flow samples the first ``nsamples``
    payloads each side sends, so at most the first that many of each key and side in the
    batch, and none of a side that has given all its samples (the key hashes ``done_a``,
    ``done_b``, sorted; ``uniq`` is each key's hash). ``order`` lists the packets key by
    key, each key's in capture order; ``inverse`` is each packet's key; packet i is record
    ``idx[i]``. For the k-th one taken: its position ``which[k]``, its captured payload's
    ``start`` and ``length`` in the batch's bytes (a payload cut by the snap length ends
    where the capture does) and ``out_off``, where it goes in a copy of them all, one after
    another."""
    n = 0
    total = 0
    key = -1
    sent_a = 0
    sent_b = 0
    out_a = -1  # whether the key's side a is done: -1 not looked up yet
    out_b = -1
    for j in range(order.shape[0]):
        i = order[j]
        g = inverse[i]
        if g != key:
            key, sent_a, sent_b, out_a, out_b = g, 0, 0, -1, -1
        if payload[i] <= 0:
            continue
        take = False
        if from_a[i]:
            if sent_a < nsamples:
                if out_a < 0:
                    out_a = 1 if _holds(done_a, uniq[g]) else 0
                take = out_a == 0
            sent_a += 1
        else:
            if sent_b < nsamples:
                if out_b < 0:
                    out_b = 1 if _holds(done_b, uniq[g]) else 0
                take = out_b == 0
            sent_b += 1
        if take:
            p = idx[i]
            first = int(offset[p]) + int(payload_off[p])
            last = min(int(offset[p]) + int(cap_len[p]), first + int(payload_len[p]))
            size = max(last - first, 0)
            which[n] = i
            start[n] = first
            length[n] = size
            out_off[n] = total
            total += size
            n += 1
    return n, total
