"""The flow table: packet batches in, flow/window rows and bursts out, in bounded memory.

Keys are matched per batch with sort/unique/searchsorted over a sorted index of live flows;
per-flow state lives in slot-indexed arrays that grow by doubling and are recycled when a
flow ends, so memory follows the number of concurrently active flows, not the capture size.

The number of open flows has a ceiling (``FlowConfig.flow_memory_mb``), because a flood of
unique 5-tuples costs the table one slot per packet. At the ceiling it makes room the way
Suricata's flow memcap does in emergency mode: flows are ended early (reason "evicted", their
rows emitted as usual), those seen in one direction only first, then those with few packets,
oldest last packet first within each; established flows go only when nothing else is left.
It evicts a little more than it needs (1/16 of the ceiling) when it can spare half-open
flows, so a flood does not pay the ranking for every batch. A batch is taken in parts of at
most half the ceiling's packets, so every new key finds room and none is left untracked.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from burstwatch.decode.batch import TUNNEL_MASK as TUNNEL_BITS
from burstwatch.decode.batch import PacketBatch
from burstwatch.enrich.nets import NetSet
from burstwatch.flows import roles
from burstwatch.flows import state as st
from burstwatch.flows.config import FlowConfig
from burstwatch.flows.kernel import (
    evict,
    gather_bytes,
    gather_payloads,
    look_up_recent,
    process_packets,
    tick,
)
from burstwatch.flows.key import BatchKeys, GroupedPackets, group_packets
from burstwatch.flows.records import (
    TUNNEL_DST_HI,
    TUNNEL_DST_LO,
    TUNNEL_MASK,
    TUNNEL_SRC_HI,
    TUNNEL_SRC_LO,
    BurstRows,
    FlowOutput,
    FlowRows,
    PayloadSamples,
)
from burstwatch.flows.sampling import (
    PayloadCopy,
    SamplePolicy,
    keep_lengths,
    plan_copy,
    sides_sampled_out,
)

_OUT_ROWS = 8192
# Expiry and window roll-over are decided from packet times alone, so how often the clock is
# advanced only changes when rows come out, not what they contain: once a second of capture
# time is often enough and keeps the per-batch sweep over all flows off the hot path.
_TICK_EVERY_NS = 1_000_000_000
DUE_NOW = np.iinfo(np.int64).min  # ``due`` of a flow the next clock sweep must look at
_OUT_BURSTS = 8192
# A flow with packets both ways and at least this many in all is established: the last kind
# of flow the table evicts at its ceiling (a TCP handshake and one exchange is five).
ESTABLISHED_PACKETS = 4
# ``prepare`` copies the payloads the table may sample only while they are at most this share
# of the batch's bytes: at a capture's start, or on traffic of short flows, nearly every
# packet may be sampled, and those batches' samples are read from the capture as before.
COPY_SHARE = 4


class FlowTable:
    """Bidirectional flows with idle/active timeouts, TCP close, bursts and windows."""

    def __init__(
        self, config: FlowConfig | None = None, capacity: int = 4096, sample_payloads: bool = True,
        sample_policy: SamplePolicy | None = None, local: NetSet | None = None,
    ) -> None:
        """``sample_payloads``: keep each flow's first payload packets (for enrichment), whole,
        or as much of them as ``sample_policy`` asks for. ``local``: the networks whose hosts
        are the local side of a flow (default: ``flows.roles.local_nets()``)."""
        self.config = config or FlowConfig()
        self.sample_payloads = sample_payloads
        self.sample_policy = sample_policy
        idle, active, window, gap, linger, conversation = self.config.as_ns()
        self._cfg = np.array(
            [idle, active, window, gap, linger, self.config.burst_min_bytes,
             self.config.payload_samples, conversation],
            np.int64,
        )
        self._cfg_nosample = self._cfg.copy()
        self._cfg_nosample[6] = 0
        self._local = local if local is not None else roles.local_nets()
        # Keys whose flows ended and left the table: who opened them, and when they ended.
        self.max_flows = max(int(self.config.flow_memory_mb * 2**20) // self.FLOW_BYTES, 1)
        self._recent = RecentKeys(conversation, limit=self.max_flows)
        self._cap = 0
        capacity = min(capacity, self.max_flows)
        self._alloc(capacity)
        self._index_hash = np.zeros(0, np.uint64)  # sorted hashes of live keys
        self._index_slot = np.zeros(0, np.int64)
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int64)  # a stack: pop from end
        self._nfree = capacity
        # Hashes of the open flows that have taken all their payload samples from key side a
        # and from side b, each sorted: the decoding thread copies no payload those sides send
        # (``prepare``). Replaced, never changed in place, after each step; the other thread
        # may read the one before, which is wrong only where a flow ended and came back on its
        # key, and then costs a read of the capture, nothing else.
        self.sampled_out: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]] = (
            np.zeros(0, np.uint64), np.zeros(0, np.uint64))
        self.now = np.iinfo(np.int64).min
        self._last_tick = np.iinfo(np.int64).min
        self.hash_collisions = 0
        self.packets_seen = 0
        self.evicted = 0  # flows ended early at the ceiling
        self._row_meta = np.zeros((_OUT_ROWS, 7), np.int64)
        self._row_i = np.zeros((_OUT_ROWS, st.N_ACC_I), np.int64)
        self._row_f = np.zeros((_OUT_ROWS, st.N_ACC_F), np.float64)
        self._bursts = np.zeros((_OUT_BURSTS, 8), np.int64)

    # ---- state arrays ----
    meta: npt.NDArray[np.int64]
    runs: npt.NDArray[np.int64]
    acc_i: npt.NDArray[np.int64]
    acc_f: npt.NDArray[np.float64]
    k_a_hi: npt.NDArray[np.uint64]
    k_a_lo: npt.NDArray[np.uint64]
    k_b_hi: npt.NDArray[np.uint64]
    k_b_lo: npt.NDArray[np.uint64]
    k_ports: npt.NDArray[np.uint64]
    k_hash: npt.NDArray[np.uint64]
    sample_budget: npt.NDArray[np.int64]
    tunnel: npt.NDArray[np.uint64]
    # Per slot, the clock from which the sweep must look at the flow (not saved: after a
    # load every flow is due at once).
    due: npt.NDArray[np.int64]

    _STATE: dict[str, tuple[tuple[int, ...], type]] = {
        "meta": ((st.N_META,), np.int64),
        "runs": ((2, st.N_RUN), np.int64),
        "acc_i": ((2, st.N_ACC_I), np.int64),
        "acc_f": ((2, st.N_ACC_F), np.float64),
        "k_a_hi": ((), np.uint64),
        "k_a_lo": ((), np.uint64),
        "k_b_hi": ((), np.uint64),
        "k_b_lo": ((), np.uint64),
        "k_ports": ((), np.uint64),
        "k_hash": ((), np.uint64),
        "sample_budget": ((2,), np.int64),  # flows.sampling.keep_lengths's state
        "tunnel": ((5,), np.uint64),  # FlowRows.tunnel: of the flow's first packet
    }
    # What one open flow costs the table: its slot in every state array and in ``due``, its
    # place in the sorted index (hash and slot) and, once ended, its entry among the recent keys.
    SLOT_BYTES = sum(
        int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        for shape, dtype in _STATE.values()
    ) + 8 + 16 + 24
    # What one open flow costs the whole pipeline, which the ceiling is counted in: the
    # table's slot (SLOT_BYTES, 0.8 KiB), enrichment's state of the flow (about 1 KiB) and
    # live capture's evaluation of every open flow each interval (rows, features, context:
    # about 2 KiB while it runs). Measured by bench/bench_flood.py.
    FLOW_BYTES = 4096

    def _alloc(self, cap: int) -> None:
        """Create (or double) the slot-indexed state arrays, keeping existing slots."""
        old = self._cap
        for name, (shape, dtype) in self._STATE.items():
            new: npt.NDArray[np.generic] = np.zeros((cap, *shape), dtype)
            if old:
                new[:old] = getattr(self, name)
            setattr(self, name, new)
        due = np.full(cap, DUE_NOW, np.int64)
        if old:
            due[:old] = self.due
        self.due = due
        if old:
            extra = np.arange(cap - 1, old - 1, -1, dtype=np.int64)
            self._free = np.concatenate([extra, self._free[: self._nfree]])
            self._nfree = self._free.shape[0]
        self._cap = cap

    def _take_slots(self, k: int) -> npt.NDArray[np.int64]:
        while self._nfree < k:
            self._alloc(max(min(self._cap * 2, self.max_flows), self._cap + k - self._nfree))
        got = self._free[self._nfree - k : self._nfree][::-1].copy()
        self._nfree -= k
        return got

    def _set_roles(self, slots: npt.NDArray[np.int64]) -> None:
        """A new key in ``slots``: which side is local, which has the client port, and who
        opened the last flow on the same key if it left the table recently."""
        meta = self.meta
        meta[slots, st.M_ACTIVE] = 0
        role = roles.address_roles(
            self._local, self.k_a_hi[slots], self.k_a_lo[slots], self.k_b_hi[slots],
            self.k_b_lo[slots],
        )
        meta[slots, st.M_ROLE] = role
        meta[slots, st.M_PORT_ROLE] = roles.port_roles(self.k_ports[slots])
        meta[slots, st.M_PREV_INIT] = -1
        meta[slots, st.M_PREV_END] = 0
        hit, init, end = self._recent.find(self.k_hash[slots])
        meta[slots[hit], st.M_PREV_INIT] = init
        meta[slots[hit], st.M_PREV_END] = end

    def _set_tunnel(self, slots: npt.NDArray[np.int64], batch: PacketBatch,
                    pk: npt.NDArray[np.intp]) -> None:
        """The tunnel the new flows in ``slots`` came through, from their first packets ``pk``."""
        tunnel = self.tunnel
        if not batch.encap.any():
            tunnel[slots] = 0
            return
        mask = batch.encap[pk] & TUNNEL_BITS
        tunnel[slots, TUNNEL_MASK] = mask
        some = mask != 0  # the outer columns hold nothing for packets without one
        zero = np.uint64(0)
        tunnel[slots, TUNNEL_SRC_HI] = np.where(some, batch.outer_src_hi[pk], zero)
        tunnel[slots, TUNNEL_SRC_LO] = np.where(some, batch.outer_src_lo[pk], zero)
        tunnel[slots, TUNNEL_DST_HI] = np.where(some, batch.outer_dst_hi[pk], zero)
        tunnel[slots, TUNNEL_DST_LO] = np.where(some, batch.outer_dst_lo[pk], zero)

    def _release(self, slots: npt.NDArray[np.int64]) -> None:
        self._recent.add(self.k_hash[slots], self.meta[slots, st.M_PREV_INIT],
                         self.meta[slots, st.M_PREV_END], self.now)
        if not slots.shape[0]:
            return
        gone = np.zeros(self._cap, np.bool_)
        gone[slots] = True
        keep = ~gone[self._index_slot]
        self._index_hash = self._index_hash[keep]
        self._index_slot = self._index_slot[keep]
        if self._free.shape[0] < self._nfree + slots.shape[0]:
            self._free = np.concatenate([self._free[: self._nfree], slots])
        else:
            self._free[self._nfree : self._nfree + slots.shape[0]] = slots
        self._nfree += slots.shape[0]

    def _holds_each(self, slots: npt.NDArray[np.int64], keys: BatchKeys,
                    at: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        """Whether the key in each of ``slots`` is the key of packet ``at``."""
        return ((self.k_a_hi[slots] == keys.a_hi[at]) & (self.k_a_lo[slots] == keys.a_lo[at])
                & (self.k_b_hi[slots] == keys.b_hi[at]) & (self.k_b_lo[slots] == keys.b_lo[at])
                & (self.k_ports[slots] == keys.ports[at]))

    def _holds(self, slots: npt.NDArray[np.int64], keys: BatchKeys,
               at: npt.NDArray[np.intp]) -> bool:
        """Whether every one of ``slots`` holds the key of packet ``at``."""
        return bool(self._holds_each(slots, keys, at).all())

    @property
    def active_flows(self) -> int:
        return int(self._index_slot.shape[0])

    # ---- public API ----
    def update(self, batch: PacketBatch, clock_ns: int | None = None,
               grouped: GroupedPackets | None = None) -> FlowOutput:
        """Add a batch of decoded packets; return what ended or rolled over meanwhile.

        ``clock_ns``: the time of the batch's newest packet when ``batch`` is one shard of
        what was read (``burstwatch.parallel``): the table ticks when the whole would, so
        every shard emits its rows at the same step as a table that saw every packet.
        ``grouped``: ``prepare(batch)``, made beforehand (in the decoding thread)."""
        idx = grouped.idx if grouped is not None else np.flatnonzero(batch.status == 0)
        self.packets_seen += idx.shape[0]
        if idx.shape[0] == 0:
            if clock_ns is None:
                return self._empty_output()
            self.now = max(self.now, clock_ns)
            if self.now - self._last_tick < _TICK_EVERY_NS:
                return self._empty_output()
            return self._tick(self.now, flush=False)
        step = self._part_size()
        if idx.shape[0] <= step:
            return self._update(batch, grouped or group_packets(batch, idx), clock_ns)
        outs = [self._update(batch, group_packets(batch, idx[a : a + step]),
                             clock_ns if a + step >= idx.shape[0] else None)
                for a in range(0, idx.shape[0], step)]
        return FlowOutput(FlowRows.concat([o.rows for o in outs]),
                          BurstRows.concat([o.bursts for o in outs]),
                          PayloadSamples.concat([o.samples for o in outs]))

    def prepare(self, batch: PacketBatch, decoded: npt.NDArray[np.intp] | None = None
                ) -> GroupedPackets | None:
        """``update``'s first steps for ``batch``, which read nothing of the table's state but
        ``sampled_out`` (published whole after each step, and only ever a reason to copy
        less): another thread may make them while the table works on the batch before. None
        where ``update`` takes the batch in parts, or it has no decoded packet. ``decoded``:
        the packets whose status is ok, where the caller has them (``count_batch``)."""
        idx = np.flatnonzero(batch.status == 0) if decoded is None else decoded
        if not idx.shape[0] or idx.shape[0] > self._part_size():
            return None
        grouped = group_packets(batch, idx)
        if not self.sample_payloads:
            return grouped
        return dataclasses.replace(grouped, payloads=self._copy_payloads(batch, grouped))

    def _copy_payloads(self, batch: PacketBatch, grouped: GroupedPackets) -> PayloadCopy | None:
        """The payloads the table may sample, copied; None where they are more than a
        ``COPY_SHARE``th of the batch's bytes. A flow samples the first payloads each side
        sends (``FlowConfig.payload_samples``), so those are at most the first that many of
        each key and side in the batch, leaving out the sides that have taken all theirs
        (``sampled_out``)."""
        done_a, done_b = self.sampled_out
        most = grouped.order.shape[0]
        which, start, length, out_off = (np.empty(most, np.int64) for _ in range(4))
        rec = batch.records
        n, total = plan_copy(grouped.order, grouped.inverse, grouped.keys.src_is_a,
                             grouped.payload, grouped.uniq, done_a, done_b, int(self._cfg[6]),
                             grouped.idx, rec.offset, batch.payload_off, batch.cap_len,
                             batch.payload_len, which, start, length, out_off)
        if total > rec.data.shape[0] // COPY_SHARE:
            return None
        data = np.empty(max(total, 1), np.uint8)
        at = np.empty(grouped.idx.shape[0], np.int64)
        gather_payloads(rec.data, which[:n], start[:n], length[:n], out_off[:n], data, at)
        data.flags.writeable = False  # read as the capture is: one compiled signature for both
        return PayloadCopy(data, at)

    def _part_size(self) -> int:
        # A part of at most half the ceiling's packets always fits after eviction (its new
        # and its busy flows together are at most that many), so a batch bigger than that is
        # taken in parts, in capture order: results do not depend on where batches end.
        return max(self.max_flows // 2, 1)

    def _update(self, batch: PacketBatch, grouped: GroupedPackets,
                clock_ns: int | None) -> FlowOutput:
        idx, keys, order = grouped.idx, grouped.keys, grouped.order
        uniq, first, inverse = grouped.uniq, grouped.first, grouped.inverse
        pos = np.searchsorted(self._index_hash, uniq)
        pos_c = np.minimum(pos, max(self._index_hash.shape[0] - 1, 0))
        found = (pos < self._index_hash.shape[0]) & (
            self._index_hash[pos_c] == uniq if self._index_hash.shape[0] else False
        )
        slot_of = np.empty(uniq.shape[0], np.int64)
        slot_of[found] = self._index_slot[pos_c[found]]
        new = np.flatnonzero(~found)
        made_room = self._empty_output()
        if new.shape[0] > self.max_flows - self.active_flows:
            made_room = self._make_room(new.shape[0], busy=slot_of[found])
        if new.shape[0]:
            slots = self._take_slots(new.shape[0])
            src = first[new]
            self.k_a_hi[slots] = keys.a_hi[src]
            self.k_a_lo[slots] = keys.a_lo[src]
            self.k_b_hi[slots] = keys.b_hi[src]
            self.k_b_lo[slots] = keys.b_lo[src]
            self.k_ports[slots] = keys.ports[src]
            self.k_hash[slots] = uniq[new]
            self._set_tunnel(slots, batch, idx[src])
            self._set_roles(slots)
            slot_of[new] = slots
            # The new keys go in where they sort: one pass over the index, not a sort of it
            # (the hashes are distinct, so no order among equals is needed).
            o = np.argsort(uniq[new])
            added = uniq[new][o]
            at = np.searchsorted(self._index_hash, added)
            self._index_hash = np.insert(self._index_hash, at, added)
            self._index_slot = np.insert(self._index_slot, at, slots[o])
        self.due[slot_of] = DUE_NOW  # packets arrived: the next clock sweep looks at these
        slot = slot_of[inverse]
        ts = grouped.ts
        n_all = idx.shape[0]
        # A 64-bit hash collision: count it, leave out the packets whose key is not the one
        # the table holds. Only where the batch's groups are not all of one key each, or a
        # group's first packet is not the key the table found for it, are packets compared.
        if grouped.collided or not self._holds(slot_of[found], keys, first[found]):
            same = self._holds_each(slot, keys, np.arange(n_all))
            self.hash_collisions += n_all - int(same.sum())
            order = order[same[order]]
        cfg = self._cfg if self.sample_payloads else self._cfg_nosample
        sample = np.zeros(n_all, np.bool_)
        sample_dir = np.zeros(n_all, np.int8)
        sample_fid = np.zeros(n_all, np.int64)
        rows: list[FlowRows] = [made_room.rows]
        bursts: list[BurstRows] = [made_room.bursts]
        wire, payload, flags, proto = grouped.wire, grouped.payload, grouped.flags, grouped.proto
        j = 0
        while True:
            n, nb, j = process_packets(
                order, slot, ts, keys.src_is_a, proto, flags, wire, payload, self.k_hash.view(np.int64),
                cfg, self.meta, self.runs, self.acc_i, self.acc_f, self._row_meta,
                self._row_i, self._row_f, self._bursts, sample, sample_dir, sample_fid, j,
            )
            rows.append(self._collect_rows(n))
            bursts.append(self._collect_bursts(nb))
            if j >= order.shape[0]:
                break
        samples = PayloadSamples.empty()
        if self.sample_payloads:
            samples = self._collect_samples(batch, idx, slot, sample, sample_dir, sample_fid,
                                            grouped.payloads)
            live = self._index_slot
            from_a = np.empty(live.shape[0], np.bool_)
            from_b = np.empty(live.shape[0], np.bool_)
            sides_sampled_out(live, self.runs, self.meta, int(cfg[6]), from_a, from_b)
            self.sampled_out = (self._index_hash[from_a], self._index_hash[from_b])  # sorted
        self.now = max(self.now, int(ts.max()) if clock_ns is None else clock_ns)
        if self.now - self._last_tick < _TICK_EVERY_NS:
            return FlowOutput(FlowRows.concat(rows), BurstRows.concat(bursts), samples)
        out = self._tick(self.now, flush=False)
        return FlowOutput(
            FlowRows.concat([*rows, out.rows]), BurstRows.concat([*bursts, out.bursts]), samples
        )

    def flush(self) -> FlowOutput:
        """End every open flow (end of input)."""
        if self.now == np.iinfo(np.int64).min:
            return self._empty_output()
        return self._tick(self.now, flush=True)

    def advance(self, now_ns: int) -> FlowOutput:
        """Move the clock forward without packets (live capture on a quiet link)."""
        self.now = max(self.now, now_ns)
        return self._tick(self.now, flush=False)

    def snapshot(self) -> FlowRows:
        """The current window of every open flow, as window rows, without closing anything.

        Live capture evaluates these at a short interval so a burst is flagged while its session
        is still open. Bursts count once they have ended (a gap longer than ``burst_gap``).
        """
        slots = self._index_slot
        live = slots[self.meta[slots, st.M_ACTIVE] == 1]
        window = self.acc_i[live, st.SCOPE_WINDOW]
        live = live[(window[:, st.I_PKTS0] + window[:, st.I_PKTS1]) > 0]
        if not live.shape[0]:
            return FlowRows.empty()
        orig_is_a = self.meta[live, st.M_ORIG_IS_A] == 1
        proto, oh, ol, op, rh, rl, rp = self._endpoints(live, orig_is_a)
        n = live.shape[0]
        return FlowRows(
            flow_id=self.meta[live, st.M_FLOW_ID].copy(),
            kind=np.full(n, st.ROW_WINDOW, np.int8),
            reason=np.full(n, st.END_INTERIM, np.int8),
            window_index=self.meta[live, st.M_WIN_INDEX].astype(np.int32),
            proto=proto, orig_hi=oh, orig_lo=ol, orig_port=op, resp_hi=rh, resp_lo=rl,
            resp_port=rp,
            local_initiated=self.meta[live, st.M_INIT_IS_A] == self.meta[live, st.M_ORIG_IS_A],
            acc_i=self.acc_i[live, st.SCOPE_WINDOW].copy(),
            acc_f=self.acc_f[live, st.SCOPE_WINDOW].copy(), tunnel=self.tunnel[live],
        )

    # ---- carrying open flows from one run to the next ----
    def export_state(self) -> dict[str, npt.NDArray[np.generic]]:
        """The open flows and the clock, as plain arrays (``load_state`` takes them back): a
        run that ends mid-capture hands them to the next run over the following capture."""
        slots = self._index_slot
        state: dict[str, npt.NDArray[np.generic]] = {
            f"slot.{name}": getattr(self, name)[slots] for name in self._STATE
        }
        state["clock"] = np.array(
            [self.now, self._last_tick, self.hash_collisions, self.packets_seen], np.int64
        )
        state["config"] = self._cfg.copy()
        state["recent.hash"], state["recent.init"], state["recent.end"] = self._recent.export()
        return state

    def load_state(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        """Continue from ``export_state`` of a table with the same settings (ValueError if not)."""
        if not np.array_equal(state["config"], self._cfg):
            raise ValueError("the flow settings differ from those of the saved flows")
        n = int(state["slot.meta"].shape[0])
        while self._cap < n:
            self._alloc(self._cap * 2)
        for name in self._STATE:
            getattr(self, name)[:n] = state[f"slot.{name}"]
        self.due[:] = DUE_NOW
        # Exported in index order (sorted by hash), now placed in slots 0..n-1.
        self._index_hash = self.k_hash[:n].copy()
        self._index_slot = np.arange(n, dtype=np.int64)
        self._free = np.arange(self._cap - 1, n - 1, -1, dtype=np.int64)
        self._nfree = self._free.shape[0]
        clock = state["clock"]
        self.now, self._last_tick = int(clock[0]), int(clock[1])
        self.hash_collisions, self.packets_seen = int(clock[2]), int(clock[3])
        self._recent.load(state["recent.hash"], state["recent.init"], state["recent.end"])  # type: ignore[arg-type]

    # ---- helpers ----
    def _tick(self, now: int, flush: bool) -> FlowOutput:
        self._last_tick = now
        # Only flows with something due: an open flow's next deadline is known from its state
        # (``kernel._next_due``) until its next packet, which makes it due at once.
        slots = (self._index_slot.copy() if flush
                 else self._index_slot[self.due[self._index_slot] <= now])
        ended = np.zeros(slots.shape[0], np.int64)
        rows: list[FlowRows] = []
        bursts: list[BurstRows] = []
        ended_parts: list[npt.NDArray[np.int64]] = []
        j = 0
        while True:
            n, nb, ne, j = tick(
                slots, now, flush, self._cfg, self.meta, self.runs, self.acc_i, self.acc_f,
                self._row_meta, self._row_i, self._row_f, self._bursts, ended, self.due, j,
            )
            rows.append(self._collect_rows(n))
            bursts.append(self._collect_bursts(nb))
            ended_parts.append(ended[:ne].copy())
            if j >= slots.shape[0]:
                break
        self._release(np.concatenate(ended_parts))
        return FlowOutput(FlowRows.concat(rows), BurstRows.concat(bursts), PayloadSamples.empty())

    def _make_room(self, incoming: int, busy: npt.NDArray[np.int64]) -> FlowOutput:
        """End flows early so that ``incoming`` new ones fit under the ceiling, never one of
        ``busy`` (flows with packets in the batch at hand): half-open flows first, then flows
        with few packets, then established ones, oldest last packet first within each."""
        need = self.active_flows + incoming - self.max_flows
        cand = self._index_slot
        if busy.shape[0]:
            cand = cand[~np.isin(cand, busy)]
        p0 = self.acc_i[cand, st.SCOPE_FLOW, st.I_PKTS0]
        p1 = self.acc_i[cand, st.SCOPE_FLOW, st.I_PKTS1]
        rank = np.where((p0 == 0) | (p1 == 0), 0, np.where(p0 + p1 < ESTABLISHED_PACKETS, 1, 2))
        order = np.lexsort((self.acc_i[cand, st.SCOPE_FLOW, st.I_LAST], rank))
        spare = int((rank < 2).sum())
        take = min(max(need, min(spare, need + self.max_flows // 16)), cand.shape[0])
        victims = cand[order[:take]]
        if not victims.shape[0]:
            return self._empty_output()
        rows: list[FlowRows] = []
        bursts: list[BurstRows] = []
        j = 0
        while j < victims.shape[0]:
            n, nb, j = evict(victims, self._cfg, self.meta, self.runs, self.acc_i, self.acc_f,
                             self._row_meta, self._row_i, self._row_f, self._bursts, j)
            rows.append(self._collect_rows(n))
            bursts.append(self._collect_bursts(nb))
        self._release(victims)
        self.evicted += victims.shape[0]
        return FlowOutput(FlowRows.concat(rows), BurstRows.concat(bursts), PayloadSamples.empty())

    def _endpoints(
        self, slots: npt.NDArray[np.int64], orig_is_a: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray, ...]:
        a_hi, a_lo = self.k_a_hi[slots], self.k_a_lo[slots]
        b_hi, b_lo = self.k_b_hi[slots], self.k_b_lo[slots]
        ports = self.k_ports[slots]
        a_port = ((ports >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.uint16)
        b_port = (ports & np.uint64(0xFFFF)).astype(np.uint16)
        proto = (ports >> np.uint64(32)).astype(np.uint8)
        return (
            proto,
            np.where(orig_is_a, a_hi, b_hi), np.where(orig_is_a, a_lo, b_lo),
            np.where(orig_is_a, a_port, b_port),
            np.where(orig_is_a, b_hi, a_hi), np.where(orig_is_a, b_lo, a_lo),
            np.where(orig_is_a, b_port, a_port),
        )

    def _collect_rows(self, n: int) -> FlowRows:
        if n == 0:
            return FlowRows.empty()
        m = self._row_meta[:n]
        slots = m[:, 0]
        orig_is_a = m[:, 4] == 1
        proto, oh, ol, op, rh, rl, rp = self._endpoints(slots, orig_is_a)
        return FlowRows(
            flow_id=m[:, 5].copy(), kind=m[:, 1].astype(np.int8), reason=m[:, 2].astype(np.int8),
            window_index=m[:, 3].astype(np.int32), proto=proto, orig_hi=oh, orig_lo=ol,
            orig_port=op, resp_hi=rh, resp_lo=rl, resp_port=rp, local_initiated=m[:, 6] == m[:, 4],
            acc_i=self._row_i[:n].copy(), acc_f=self._row_f[:n].copy(), tunnel=self.tunnel[slots],
        )

    def _collect_bursts(self, nb: int) -> BurstRows:
        if nb == 0:
            return BurstRows.empty()
        b = self._bursts[:nb]
        proto, oh, ol, op, rh, rl, rp = self._endpoints(b[:, 0], b[:, 7] == 1)
        return BurstRows(
            flow_id=b[:, 1].copy(), direction=b[:, 2].astype(np.int8), start_ns=b[:, 3].copy(),
            end_ns=b[:, 4].copy(), packets=b[:, 5].copy(), bytes=b[:, 6].copy(), proto=proto,
            orig_hi=oh, orig_lo=ol, orig_port=op, resp_hi=rh, resp_lo=rl, resp_port=rp,
        )

    def _collect_samples(
        self, batch: PacketBatch, idx: npt.NDArray[np.intp], slot: npt.NDArray[np.int64],
        sample: npt.NDArray[np.bool_], sample_dir: npt.NDArray[np.int8],
        sample_fid: npt.NDArray[np.int64], copied: PayloadCopy | None,
    ) -> PayloadSamples:
        which = np.flatnonzero(sample)  # capture order: per flow direction, first come first
        if not which.shape[0]:
            return PayloadSamples.empty()
        pk = idx[which]
        rec = batch.records
        data, (start, length) = rec.data, _payload_spans(batch, pk)
        if copied is not None and bool((copied.start[which] >= 0).all()):
            data, start = copied.data, copied.start[which]  # the same bytes, copied before
        slots = slot[which]
        # Samples are oriented client -> server (flows.records.PayloadSamples), which is the
        # table's local -> remote unless the remote side opened the connection.
        init_is_a = self.meta[slots, st.M_INIT_IS_A] == 1
        inbound = init_is_a != (self.meta[slots, st.M_ORIG_IS_A] == 1)
        proto, _, _, op, _, _, rp = self._endpoints(slots, init_is_a)
        code = sample_dir[which]
        direction = ((code & 1) ^ inbound).astype(np.int8)
        policy = self.sample_policy
        if policy is None:
            keep, whole = length, np.ones(length.shape[0], np.bool_)
        else:
            opens = policy.opens(data, start, length, proto, op, rp)
            keep = np.empty_like(length)
            whole = np.empty(length.shape[0], np.bool_)
            keep_lengths(slots, direction, (code & 4) != 0, opens, length, self.sample_budget,
                         policy.prefix, policy.head, keep, whole)
        # The kept bytes are copied out: the capture's buffer is released as reading moves on,
        # and enrichment may run behind it in another thread.
        out_off = np.zeros(keep.shape[0], np.int64)
        np.cumsum(keep[:-1], out=out_off[1:])
        kept = np.empty(max(int(keep.sum()), 1), np.uint8)
        gather_bytes(data, start, keep, out_off, kept)
        return PayloadSamples(
            flow_id=sample_fid[which], direction=direction, data=kept, offset=out_off,
            length=keep, proto=proto, client_port=op, server_port=rp, ts_ns=batch.ts_ns[pk],
            completes=(code & 2) != 0, whole=whole,
        )

    def _empty_output(self) -> FlowOutput:
        return FlowOutput(FlowRows.empty(), BurstRows.empty(), PayloadSamples.empty())


def _payload_spans(batch: PacketBatch, pk: npt.NDArray[np.intp]) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    """Where the captured payload of each packet ``pk`` lies in the batch's bytes: (start,
    length); a payload cut by the snap length ends where the capture does."""
    rec = batch.records
    start = rec.offset[pk] + batch.payload_off[pk]
    end = np.minimum(rec.offset[pk] + batch.cap_len[pk], start + batch.payload_len[pk])
    return start.astype(np.int64), np.maximum(end - start, 0).astype(np.int64)


class RecentKeys:
    """Keys of flows that ended and left the table: who opened each, and when it ended, kept
    for the conversation timeout so a connection split by a timeout keeps its initiator.

    Each release files one sorted chunk; a look-up searches the chunks newest first; chunks
    expire whole, and are merged into one when they pile up, so the cost per ended flow stays
    a few array operations however many flows a sensor sees in an hour.
    """

    _MERGE_AT = 16

    def __init__(self, timeout_ns: int, limit: int = 1 << 62) -> None:
        """``limit``: at most this many keys are kept (the newest), so a flood of unique
        5-tuples cannot grow them for an hour."""
        self.timeout_ns = timeout_ns
        self.limit = limit
        self._chunks: list[tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []

    def __len__(self) -> int:
        return sum(c[0].shape[0] for c in self._chunks)

    def add(self, hashes: npt.NDArray[np.uint64], init: npt.NDArray[np.int64],
            end: npt.NDArray[np.int64], now: int) -> None:
        keep_from = now - self.timeout_ns
        self._chunks = [c for c in self._chunks if c[2].max() >= keep_from]
        known = init >= 0
        if known.any():
            self._chunks.append(self._sorted(hashes[known], init[known], end[known]))
        if len(self._chunks) > self._MERGE_AT or len(self) > self.limit:
            h = np.concatenate([c[0] for c in self._chunks])
            i = np.concatenate([c[1] for c in self._chunks])
            e = np.concatenate([c[2] for c in self._chunks])
            alive = np.flatnonzero(e >= keep_from)
            if alive.shape[0] > self.limit:
                alive = alive[np.argsort(e[alive], kind="stable")[-self.limit:]]
            self._chunks = [self._sorted(h[alive], i[alive], e[alive])]

    @staticmethod
    def _sorted(
        h: npt.NDArray[np.uint64], init: npt.NDArray[np.int64], end: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Sorted by hash, keeping the latest entry of each key."""
        order = np.lexsort((end, h))
        h, init, end = h[order], init[order], end[order]
        last = np.ones(h.shape[0], np.bool_)
        last[:-1] = h[1:] != h[:-1]
        return h[last], init[last], end[last]

    def export(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """All entries as one sorted chunk (hash, initiator, end)."""
        if not self._chunks:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        # Newest chunks last: the stable sort inside _sorted keeps the latest end per key.
        return self._sorted(np.concatenate([c[0] for c in self._chunks]),
                            np.concatenate([c[1] for c in self._chunks]),
                            np.concatenate([c[2] for c in self._chunks]))

    def load(self, h: npt.NDArray[np.uint64], init: npt.NDArray[np.int64],
             end: npt.NDArray[np.int64]) -> None:
        # copies: arrays read from a state file may be read-only views of it
        self._chunks = ([(np.array(h, np.uint64), np.array(init, np.int64), np.array(end, np.int64))]
                        if h.shape[0] else [])

    def find(self, hashes: npt.NDArray[np.uint64]) -> tuple[
        npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64]
    ]:
        """(found mask, initiator, end) for ``hashes``; the last two only where found."""
        found = np.zeros(hashes.shape[0], np.bool_)
        init = np.zeros(hashes.shape[0], np.int64)
        end = np.zeros(hashes.shape[0], np.int64)
        for h, i, e in reversed(self._chunks):  # newest first: a key's latest entry wins
            if h.shape[0]:
                look_up_recent(h, i, e, hashes, found, init, end)
        return found, init[found], end[found]
