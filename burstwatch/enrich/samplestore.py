"""Payload samples of flows not classified yet: one byte arena plus record columns.

A Python object per sample cost more than classifying it; here a batch of samples is filed
with a few array operations. Records are appended in arrival order and found through sorted
runs of (flow id, position): each ``add`` files one run, and runs are merged when there are
more than a few, so filing costs about the batch, not the whole store. A flow's records go
when it is classified, and the arena is compacted when it fills, so memory follows the
unclassified active flows.

Those flows are many under a flood of handshakes that never finish, so the bytes kept have a
ceiling (``limit_bytes``). A sample that would pass it is dropped and counted, and so is
every later sample of its flow: what is kept of a flow is always its first payloads, never
a set with a gap, and the classifier reads fewer of them (or none: the entropy test only).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from burstwatch.flows.kernel import gather_bytes, move_down
from burstwatch.flows.records import PayloadSamples
from burstwatch.ordering import stable_argsort

I64 = npt.NDArray[np.int64]
_MAX_RUNS = 8
DEFAULT_LIMIT_MB = 64.0


class SampleStore:
    """Records of samples kept for later, by flow id; bytes in ``arena``."""

    def __init__(self, limit_bytes: int = int(DEFAULT_LIMIT_MB * 2**20)) -> None:
        self.limit_bytes = limit_bytes
        self.dropped = 0  # samples not kept: the store was at its ceiling
        self.dropped_bytes = 0
        # Flows that lost a sample to the ceiling: their later samples are dropped too.
        self._cut = np.zeros(0, np.int64)  # sorted
        self.arena = np.zeros(1 << 16, np.uint8)
        self.used = 0  # arena bytes written; those of released records are garbage
        self.live_bytes = 0
        cap = 1024
        self._fid = np.zeros(cap, np.int64)
        self._dir = np.zeros(cap, np.int8)
        self._off = np.zeros(cap, np.int64)  # into the arena
        self._len = np.zeros(cap, np.int64)
        self._whole = np.zeros(cap, np.bool_)
        self._alive = np.zeros(cap, np.bool_)
        self._n = 0  # record slots used
        self._live = 0
        self._runs: list[tuple[I64, I64]] = []  # (flow ids sorted, their record positions)

    def __len__(self) -> int:
        return self._live

    def add(self, s: PayloadSamples) -> None:
        """Append samples (in capture order, so each flow direction stays first come first)."""
        s = self._within_limit(s)
        k = len(s)
        if not k:
            return
        total = int(s.length.sum())
        if self.used + total > self.arena.shape[0]:
            self._compact_arena(total)
        out_off = np.empty(k, np.int64)
        out_off[0] = self.used
        np.cumsum(s.length[:-1], out=out_off[1:])
        out_off[1:] += self.used
        gather_bytes(s.data, s.offset, s.length, out_off, self.arena)
        self.used += total
        self.live_bytes += total
        if self._n + k > self._fid.shape[0]:
            self._compact_records(k)
        a, b = self._n, self._n + k
        self._fid[a:b], self._dir[a:b], self._off[a:b] = s.flow_id, s.direction, out_off
        self._len[a:b], self._whole[a:b], self._alive[a:b] = s.length, s.whole, True
        self._n, self._live = b, self._live + k
        order = stable_argsort(s.flow_id)
        self._runs.append((s.flow_id[order], a + order))
        if len(self._runs) > _MAX_RUNS:
            self._merge_runs()

    def _within_limit(self, s: PayloadSamples) -> PayloadSamples:
        """The samples of ``s`` that the ceiling lets in (see the module's docstring)."""
        if not len(s):
            return s
        cut = self._cut
        pos = np.minimum(np.searchsorted(cut, s.flow_id), max(cut.shape[0] - 1, 0))
        ok = ~(cut[pos] == s.flow_id) if cut.shape[0] else np.ones(len(s), np.bool_)
        room = self.limit_bytes - self.live_bytes
        fits = np.cumsum(np.where(ok, s.length, 0)) <= room
        over = ok & ~fits
        if over.any():
            self._cut = np.union1d(cut, s.flow_id[over])
            ok &= ~np.isin(s.flow_id, s.flow_id[over])  # none after a gap (nor before it)
        if ok.all():
            return s
        self.dropped += int((~ok).sum())
        self.dropped_bytes += int(s.length[~ok].sum())
        return s.subset(np.flatnonzero(ok))

    def export(self) -> dict[str, npt.NDArray[np.generic]]:
        """The records still kept, in the order added, with their bytes (for ``load``)."""
        live = np.flatnonzero(self._alive[: self._n])
        length = self._len[live]
        out_off = np.zeros(live.shape[0], np.int64)
        if live.shape[0]:
            np.cumsum(length[:-1], out=out_off[1:])
        data = np.empty(int(length.sum()), np.uint8)
        gather_bytes(self.arena, self._off[live], length, out_off, data)
        return {"fid": self._fid[live], "dir": self._dir[live], "len": length,
                "whole": self._whole[live], "data": data}

    def load(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        """Add the records of ``export`` (to an empty store)."""
        length = state["len"].astype(np.int64)
        offset = np.zeros(length.shape[0], np.int64)
        if length.shape[0]:
            np.cumsum(length[:-1], out=offset[1:])
        self.add(PayloadSamples(
            flow_id=state["fid"].astype(np.int64), direction=state["dir"].astype(np.int8),
            data=state["data"].astype(np.uint8), offset=offset, length=length,
            whole=state["whole"].astype(np.bool_),
        ))

    def take(self, sorted_fids: I64) -> tuple[npt.NDArray[np.generic], ...]:
        """Remove and return (flow id, direction, offset, length, whole) of every record of the
        flows ``sorted_fids`` (each flow's in the order added). Their bytes stay put until the
        next ``add``."""
        found = []
        for fids, pos in self._runs:
            lo = np.searchsorted(fids, sorted_fids, side="left")
            count = np.searchsorted(fids, sorted_fids, side="right") - lo
            total = int(count.sum())
            if total:
                starts = np.repeat(lo - np.cumsum(count) + count, count)
                found.append(pos[starts + np.arange(total)])
        got = np.concatenate(found) if found else np.zeros(0, np.int64)
        got = got[self._alive[got]]
        got.sort()  # arrival order, then grouped by flow keeping it
        got = got[stable_argsort(self._fid[got])]
        out = (self._fid[got], self._dir[got].astype(np.int64), self._off[got], self._len[got],
               self._whole[got])
        self._alive[got] = False
        if self._cut.shape[0]:
            self._cut = np.setdiff1d(self._cut, sorted_fids, assume_unique=True)
        self._live -= got.shape[0]
        self.live_bytes -= int(out[3].sum())
        return out

    def _merge_runs(self) -> None:
        """One run for the live records: dead ones drop out here."""
        fids = np.concatenate([f for f, _ in self._runs])
        pos = np.concatenate([p for _, p in self._runs])
        alive = self._alive[pos]
        fids, pos = fids[alive], pos[alive]
        # Runs are in arrival order and each is sorted: a stable sort merges them (timsort
        # finds the runs), keeping each flow's records in arrival order.
        order = stable_argsort(fids)
        self._runs = [(fids[order], pos[order])]

    def _compact_records(self, extra: int) -> None:
        """Drop dead record slots (renumbering the runs), growing when still over half full."""
        live = np.flatnonzero(self._alive[: self._n])
        size = self._fid.shape[0]
        while 2 * (live.shape[0] + extra) > size:
            size *= 2
        new_pos = np.full(self._n, -1, np.int64)
        new_pos[live] = np.arange(live.shape[0])
        cols = []
        for col in (self._fid, self._dir, self._off, self._len, self._whole, self._alive):
            fresh = np.zeros(size, col.dtype)
            fresh[: live.shape[0]] = col[live]
            cols.append(fresh)
        self._fid, self._dir, self._off, self._len, self._whole, self._alive = cols
        self._n = live.shape[0]
        runs = []
        for fids, pos in self._runs:
            keep = new_pos[pos] >= 0
            runs.append((fids[keep], new_pos[pos[keep]]))
        self._runs = runs

    def _compact_arena(self, extra: int) -> None:
        """Move the live bytes to the front of the arena, leaving room for ``extra`` more: in
        place while the live bytes fill at most half of it (no fresh pages to fault in), else
        into an arena twice the size needed."""
        need = self.live_bytes + extra
        live = np.flatnonzero(self._alive[: self._n])
        order = live[stable_argsort(self._off[live])]
        lens = self._len[order]
        packed = np.zeros(lens.shape[0], np.int64)
        if lens.shape[0]:
            np.cumsum(lens[:-1], out=packed[1:])
        if 2 * need <= self.arena.shape[0]:
            move_down(self.arena, self._off[order], lens, packed)
        else:
            size = self.arena.shape[0]
            while size < 2 * need:
                size *= 2
            arena = np.zeros(size, np.uint8)
            gather_bytes(self.arena, self._off[order], lens, packed, arena)
            self.arena = arena
        self._off[order] = packed
        self.used = self.live_bytes
