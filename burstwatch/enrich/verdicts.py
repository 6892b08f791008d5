"""Encryption verdicts of the open flows, kept as columns until each flow ends.

A flow is classified once, but its verdict is needed for every row it emits (windows of a
long flow, then its final row). The verdicts live in growable column arrays; the flow ids
they belong to are kept sorted, with each one's row, so filing, looking up and forgetting
are array operations on a whole batch of flows (numpy's binary search, which lets go of the
GIL), never a Python step or an object per flow.
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
        self._fids = np.zeros(0, np.int64)  # the flows with a verdict, sorted
        self._rows = np.zeros(0, np.int64)  # each one's row in the columns
        self._strings = np.full((capacity, len(STRING_COLUMNS)), "", object)
        self._entropy = np.full(capacity, np.nan)
        self._used = 0

    def __contains__(self, fid: int) -> bool:
        return bool(self.known(np.array([fid], np.int64))[0])

    def __len__(self) -> int:
        return int(self._fids.shape[0])

    def _find(self, fids: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Where each of ``fids`` is among the sorted ones (clipped), and whether it is there."""
        held = self._fids
        if not held.shape[0]:
            return np.zeros(fids.shape[0], np.intp), np.zeros(fids.shape[0], np.bool_)
        at = np.minimum(np.searchsorted(held, fids), held.shape[0] - 1)
        return at, held[at] == fids

    def _row_of(self, fids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The rows of ``fids``, which must all have a verdict."""
        at, found = self._find(fids)
        if not found.all():
            raise KeyError(int(fids[np.flatnonzero(~found)[0]]))
        return self._rows[at]

    def known(self, fids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of ``fids`` have a verdict already."""
        return self._find(fids)[1]

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
        self._file(fids.astype(np.int64, copy=False), np.arange(at, at + m, dtype=np.int64))
        self._used += m

    def _file(self, fids: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> None:
        """Map ``fids`` to ``rows``; a flow filed again (here or before) takes its new row."""
        _, again = self._find(fids)
        if again.any():
            self.forget(fids[again])
        merged = np.concatenate([self._fids, fids])
        order = np.argsort(merged, kind="stable")
        merged, rows = merged[order], np.concatenate([self._rows, rows])[order]
        last = np.ones(merged.shape[0], np.bool_)  # a flow twice in ``fids``: its last row
        last[:-1] = merged[1:] != merged[:-1]
        self._fids, self._rows = merged[last], rows[last]

    def columns(self, fids: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.generic]]:
        """Output columns for rows of flows ``fids`` (each must have a verdict)."""
        idx = self._row_of(fids)
        table = self._strings[idx]
        cols: dict[str, npt.NDArray[np.generic]] = {
            name: table[:, k] for k, name in enumerate(STRING_COLUMNS)
        }
        cols[ENTROPY_COLUMN] = self._entropy[idx]
        return cols

    def rows(self, fids: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]:
        """(string columns [n, len(STRING_COLUMNS)], entropy) of flows ``fids`` (all known)."""
        idx = self._row_of(fids)
        return self._strings[idx], self._entropy[idx]

    def overwrite(
        self, fids: npt.NDArray[np.int64], strings: npt.NDArray[np.object_],
        entropy: npt.NDArray[np.float64],
    ) -> None:
        """Replace the verdicts of flows ``fids`` (all known), e.g. with an inherited one."""
        idx = self._row_of(fids)
        self._strings[idx] = strings
        self._entropy[idx] = entropy

    def export(self) -> dict[str, npt.NDArray[np.generic]]:
        """Every verdict held, as plain arrays (strings as fixed-width text, for ``np.savez``)."""
        idx = self._rows
        return {"fid": self._fids.copy(), "strings": self._strings[idx].astype(str),
                "entropy": self._entropy[idx]}

    def load(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        """Take back the verdicts of ``export`` (into an empty cache)."""
        fids = state["fid"].astype(np.int64)
        m = fids.shape[0]
        if self._used + m > self._entropy.shape[0]:
            self._make_room(m)
        at = self._used
        self._strings[at : at + m] = state["strings"].astype(object).reshape(m, len(STRING_COLUMNS))
        self._entropy[at : at + m] = state["entropy"]
        self._file(fids, np.arange(at, at + m, dtype=np.int64))
        self._used += m

    def forget(self, fids: npt.NDArray[np.int64]) -> None:
        """The flows are over: drop their verdicts."""
        if not fids.shape[0] or not self._fids.shape[0]:
            return
        at, found = self._find(fids)
        keep = np.ones(self._fids.shape[0], np.bool_)
        keep[at[found]] = False
        self._fids, self._rows = self._fids[keep], self._rows[keep]

    def _make_room(self, m: int) -> None:
        """Compact to the live rows, growing the arrays when they would stay over half full."""
        live = len(self)
        size = self._entropy.shape[0]
        while 2 * (live + m) > size:
            size *= 2
        strings = np.full((size, len(STRING_COLUMNS)), "", object)
        entropy = np.full(size, np.nan)
        strings[:live] = self._strings[self._rows]
        entropy[:live] = self._entropy[self._rows]
        self._strings, self._entropy = strings, entropy
        self._rows = np.arange(live, dtype=np.int64)
        self._used = live
