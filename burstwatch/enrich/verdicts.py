"""Encryption verdicts of the open flows, kept as columns until each flow ends.

A flow is classified once, but its verdict is needed for every row it emits (windows of a
long flow, then its final row). The verdicts live in growable column arrays; a dict maps a
flow id to its row there, so filing, looking up and forgetting cost one dict operation per
flow, never an object per flow.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from burstwatch.enrich.encryption.batch import VerdictColumns

# Output column names, in the order of VerdictCache.STRINGS, then the entropy column.
STRING_COLUMNS = (
    "burstwatch.encryption.verdict",
    "burstwatch.encryption.version",
    "burstwatch.encryption.detail",
    "tls.client.server_name",
    "burstwatch.tls.client.alpn_offered",
    "burstwatch.tls.client.ja4",
)
ENTROPY_COLUMN = "burstwatch.encryption.entropy"


class VerdictCache:
    """flow id -> verdict columns, for flows classified and not ended yet."""

    def __init__(self, capacity: int = 4096) -> None:
        self._pos: dict[int, int] = {}
        self._strings = np.full((capacity, len(STRING_COLUMNS)), "", object)
        self._entropy = np.full(capacity, np.nan)
        self._used = 0

    def __contains__(self, fid: int) -> bool:
        return fid in self._pos

    def __len__(self) -> int:
        return len(self._pos)

    def known(self, fids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of ``fids`` have a verdict already."""
        pos = self._pos
        return np.fromiter(map(pos.__contains__, fids.tolist()), np.bool_, fids.shape[0])

    def add(self, fids: npt.NDArray[np.int64], v: VerdictColumns) -> None:
        m = fids.shape[0]
        if self._used + m > self._entropy.shape[0]:
            self._make_room(m)
        at = self._used
        rows = self._strings[at : at + m]
        rows[:] = ""
        rows[:, 0] = v.kind
        rows[:, 2] = v.detail
        self._entropy[at : at + m] = v.entropy
        for i, verdict in v.protocol.items():  # the few flows a protocol detector named
            rows[i, 1] = verdict.version or ""
            rows[i, 3] = verdict.sni or ""
            rows[i, 4] = ",".join(verdict.alpn)
            rows[i, 5] = verdict.fingerprint or ""
        self._pos.update(zip(fids.tolist(), range(at, at + m), strict=True))
        self._used += m

    def columns(self, fids: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.generic]]:
        """Output columns for rows of flows ``fids`` (each must have a verdict)."""
        idx = np.fromiter(map(self._pos.__getitem__, fids.tolist()), np.int64, fids.shape[0])
        table = self._strings[idx]
        cols: dict[str, npt.NDArray[np.generic]] = {
            name: table[:, k] for k, name in enumerate(STRING_COLUMNS)
        }
        cols[ENTROPY_COLUMN] = self._entropy[idx]
        return cols

    def rows(self, fids: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]:
        """(string columns [n, len(STRING_COLUMNS)], entropy) of flows ``fids`` (all known)."""
        idx = np.fromiter(map(self._pos.__getitem__, fids.tolist()), np.int64, fids.shape[0])
        return self._strings[idx].copy(), self._entropy[idx].copy()

    def overwrite(
        self, fids: npt.NDArray[np.int64], strings: npt.NDArray[np.object_],
        entropy: npt.NDArray[np.float64],
    ) -> None:
        """Replace the verdicts of flows ``fids`` (all known), e.g. with an inherited one."""
        idx = np.fromiter(map(self._pos.__getitem__, fids.tolist()), np.int64, fids.shape[0])
        self._strings[idx] = strings
        self._entropy[idx] = entropy

    def export(self) -> dict[str, npt.NDArray[np.generic]]:
        """Every verdict held, as plain arrays (strings as fixed-width text, for ``np.savez``)."""
        fids = np.fromiter(self._pos.keys(), np.int64, len(self._pos))
        idx = np.fromiter(self._pos.values(), np.int64, len(self._pos))
        return {"fid": fids, "strings": self._strings[idx].astype(str), "entropy": self._entropy[idx]}

    def load(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        """Take back the verdicts of ``export`` (into an empty cache)."""
        fids = state["fid"].astype(np.int64)
        m = fids.shape[0]
        if self._used + m > self._entropy.shape[0]:
            self._make_room(m)
        at = self._used
        self._strings[at : at + m] = state["strings"].astype(object).reshape(m, len(STRING_COLUMNS))
        self._entropy[at : at + m] = state["entropy"]
        self._pos.update(zip(fids.tolist(), range(at, at + m), strict=True))
        self._used += m

    def forget(self, fids: npt.NDArray[np.int64]) -> None:
        """The flows are over: drop their verdicts."""
        pop = self._pos.pop
        for fid in fids.tolist():
            pop(fid, None)

    def _make_room(self, m: int) -> None:
        """Compact to the live rows, growing the arrays when they would stay over half full."""
        live = len(self._pos)
        size = self._entropy.shape[0]
        while 2 * (live + m) > size:
            size *= 2
        keys = list(self._pos)
        old = np.fromiter(self._pos.values(), np.int64, live)
        strings = np.full((size, len(STRING_COLUMNS)), "", object)
        entropy = np.full(size, np.nan)
        strings[:live] = self._strings[old]
        entropy[:live] = self._entropy[old]
        self._strings, self._entropy = strings, entropy
        self._pos = dict(zip(keys, range(live), strict=True))
        self._used = live
