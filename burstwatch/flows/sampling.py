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
