"""The flow table's per-packet state machine, compiled with numba.

Packets arrive sorted by (slot, time). Per flow this is inherently sequential — whether a
packet extends a burst depends on the previous one — so it is one compiled loop that updates
state arrays and appends emitted rows (flow/window accumulators, bursts) to preallocated
outputs. Every decision is a function of packet times only (never of where a batch ends), so
any split of the same capture into batches gives the same flows, bursts and features.
"""

from __future__ import annotations

import numpy as np

from burstwatch.flows import state as st
from burstwatch.flows.key import mix as _mix
from burstwatch.jit import njit

_TCP = 6
_SYN = 0x02
_ACK = 0x10
_FIN = 0x01
_RST = 0x04
_MIN_BURST_NS = 1_000_000  # a burst shorter than 1 ms is rated as if it lasted 1 ms
# Counters start at int(np.int64(0)), not 0, and helpers get scopes the same way: a literal
# or a module constant types as that one value, and numba then compiles a helper once for
# the value and again for the int64 the counter becomes (seconds of every first run).


@njit(cache=True)
def _reset_acc(acc_i: np.ndarray, acc_f: np.ndarray, s: int, k: int) -> None:
    acc_i[s, k, :] = 0
    acc_f[s, k, :] = 0.0
    for f in (st.I_FIRST, st.I_LAST, st.I_FIRST0, st.I_FIRST1, st.I_LAST0, st.I_LAST1,
              st.I_FIRST_BURST_START, st.I_IDLE_BEFORE_FIRST, st.I_INT_MIN):
        acc_i[s, k, f] = -1


@njit(cache=True)
def _emit_row(
    s: int, k: int, kind: int, reason: int, meta: np.ndarray, acc_i: np.ndarray,
    acc_f: np.ndarray, row_meta: np.ndarray, row_i: np.ndarray, row_f: np.ndarray, n: int,
) -> int:
    if n >= row_meta.shape[0]:
        return n  # capacity is sized so this cannot happen; never write out of bounds
    row_meta[n, 0] = s
    row_meta[n, 1] = kind
    row_meta[n, 2] = reason
    row_meta[n, 3] = meta[s, st.M_WIN_INDEX] if kind == st.ROW_WINDOW else -1
    row_meta[n, 4] = meta[s, st.M_ORIG_IS_A]
    row_meta[n, 5] = meta[s, st.M_FLOW_ID]
    row_meta[n, 6] = meta[s, st.M_INIT_IS_A]
    # Element by element: a slice assigned from an array makes numba compile its
    # shape-mismatch message (string formatting), 1.5 s of every first run.
    for c in range(row_i.shape[1]):
        row_i[n, c] = acc_i[s, k, c]
    for c in range(row_f.shape[1]):
        row_f[n, c] = acc_f[s, k, c]
    return n + 1


@njit(cache=True)
def _complete_run(
    s: int, d: int, meta: np.ndarray, runs: np.ndarray, acc_i: np.ndarray, acc_f: np.ndarray,
    min_bytes: int, bursts: np.ndarray, nb: int,
) -> int:
    if runs[s, d, st.R_PKTS] == 0:
        return nb
    nbytes = runs[s, d, st.R_BYTES]
    if nbytes >= min_bytes:
        start = runs[s, d, st.R_START]
        end = runs[s, d, st.R_LAST]
        dur = end - start
        rate = nbytes * 1e9 / max(dur, _MIN_BURST_NS)
        if nb < bursts.shape[0]:
            bursts[nb, 0] = s
            bursts[nb, 1] = meta[s, st.M_FLOW_ID]
            bursts[nb, 2] = d
            bursts[nb, 3] = start
            bursts[nb, 4] = end
            bursts[nb, 5] = runs[s, d, st.R_PKTS]
            bursts[nb, 6] = nbytes
            bursts[nb, 7] = meta[s, st.M_ORIG_IS_A]
            nb += 1
        prev_start = meta[s, st.M_PREV_BURST_START0 + d]
        prev_end = meta[s, st.M_PREV_BURST_END]
        flow_first = acc_i[s, st.SCOPE_FLOW, st.I_FIRST]
        for k in range(2):
            acc_i[s, k, st.I_BCOUNT0 + d] += 1
            acc_i[s, k, st.I_BBYTES0 + d] += nbytes
            acc_i[s, k, st.I_BBYTES_MAX] = max(acc_i[s, k, st.I_BBYTES_MAX], nbytes)
            if d == 0:
                acc_i[s, k, st.I_BBYTES_MAX0] = max(acc_i[s, k, st.I_BBYTES_MAX0], nbytes)
                acc_f[s, k, st.F_PEAK_RATE0] = max(acc_f[s, k, st.F_PEAK_RATE0], rate)
            acc_i[s, k, st.I_BDUR_SUM] += dur
            acc_i[s, k, st.I_BDUR_MAX] = max(acc_i[s, k, st.I_BDUR_MAX], dur)
            acc_f[s, k, st.F_PEAK_RATE] = max(acc_f[s, k, st.F_PEAK_RATE], rate)
            if acc_i[s, k, st.I_FIRST_BURST_START] < 0:
                acc_i[s, k, st.I_FIRST_BURST_START] = start
                quiet_from = prev_end if prev_end >= 0 else flow_first
                acc_i[s, k, st.I_IDLE_BEFORE_FIRST] = max(start - quiet_from, 0)
            if prev_start >= 0:
                interval = max(start - prev_start, 0)
                acc_i[s, k, st.I_NINT] += 1
                sec = interval / 1e9
                acc_f[s, k, st.F_INT_SUM] += sec
                acc_f[s, k, st.F_INT_SUMSQ] += sec * sec
                if acc_i[s, k, st.I_INT_MIN] < 0 or interval < acc_i[s, k, st.I_INT_MIN]:
                    acc_i[s, k, st.I_INT_MIN] = interval
        meta[s, st.M_PREV_BURST_START0 + d] = start
        meta[s, st.M_PREV_BURST_END] = max(prev_end, end)
    runs[s, d, st.R_PKTS] = 0
    runs[s, d, st.R_BYTES] = 0
    return nb


@njit(cache=True)
def _close_stale(
    s: int, t: int, gap: int, meta: np.ndarray, runs: np.ndarray, acc_i: np.ndarray,
    acc_f: np.ndarray, min_bytes: int, bursts: np.ndarray, nb: int,
) -> int:
    for d in range(2):
        if runs[s, d, st.R_PKTS] > 0 and t - runs[s, d, st.R_LAST] > gap:
            nb = _complete_run(s, d, meta, runs, acc_i, acc_f, min_bytes, bursts, nb)
    return nb


@njit(cache=True)
def _roll_if_due(
    s: int, t: int, window: int, meta: np.ndarray, runs: np.ndarray, acc_i: np.ndarray,
    acc_f: np.ndarray, row_meta: np.ndarray, row_i: np.ndarray, row_f: np.ndarray, n: int,
) -> int:
    ws = meta[s, st.M_WIN_START]
    if ws < 0 or t - ws < window:
        return n
    if runs[s, 0, st.R_PKTS] > 0 or runs[s, 1, st.R_PKTS] > 0:
        return n  # never cut a burst in two: the window waits for it to end
    if acc_i[s, st.SCOPE_WINDOW, st.I_PKTS0] + acc_i[s, st.SCOPE_WINDOW, st.I_PKTS1] == 0:
        return n
    n = _emit_row(s, st.SCOPE_WINDOW, st.ROW_WINDOW, st.END_INTERIM, meta, acc_i, acc_f,
                  row_meta, row_i, row_f, n)
    _reset_acc(acc_i, acc_f, s, int(np.int64(st.SCOPE_WINDOW)))
    meta[s, st.M_WIN_INDEX] += 1
    meta[s, st.M_WINDOWED] = 1
    meta[s, st.M_WIN_START] = -1  # the next window starts at the flow's next packet
    return n


@njit(cache=True)
def finish_flow(
    s: int, t_end: int, reason: int, cfg: np.ndarray, meta: np.ndarray, runs: np.ndarray,
    acc_i: np.ndarray, acc_f: np.ndarray, row_meta: np.ndarray, row_i: np.ndarray,
    row_f: np.ndarray, n: int, bursts: np.ndarray, nb: int,
) -> tuple[int, int]:
    """End the flow in slot ``s`` at time ``t_end``: close bursts, emit its last rows."""
    window, min_bytes = cfg[2], cfg[5]
    for d in range(2):
        nb = _complete_run(s, d, meta, runs, acc_i, acc_f, min_bytes, bursts, nb)
    n = _roll_if_due(s, t_end, window, meta, runs, acc_i, acc_f, row_meta, row_i, row_f, n)
    if meta[s, st.M_WINDOWED] == 1 and (
        acc_i[s, st.SCOPE_WINDOW, st.I_PKTS0] + acc_i[s, st.SCOPE_WINDOW, st.I_PKTS1] > 0
    ):
        n = _emit_row(s, st.SCOPE_WINDOW, st.ROW_WINDOW, reason, meta, acc_i, acc_f,
                      row_meta, row_i, row_f, n)
    n = _emit_row(s, st.SCOPE_FLOW, st.ROW_FLOW, reason, meta, acc_i, acc_f,
                  row_meta, row_i, row_f, n)
    meta[s, st.M_ACTIVE] = 0
    meta[s, st.M_PREV_INIT] = meta[s, st.M_INIT_IS_A]
    meta[s, st.M_PREV_END] = t_end
    return n, nb


@njit(cache=True)
def _initiator_is_a(
    s: int, t: int, src_is_a: bool, fl: int, conv_timeout: int, meta: np.ndarray
) -> bool:
    """Which key side opened the connection: the SYN sender (a SYN-ACK's receiver), else the
    initiator of the same key's previous flow within the conversation timeout, else the
    client by ports, else the first sender (flows.roles)."""
    if (fl & _SYN) != 0:
        return src_is_a if (fl & _ACK) == 0 else not src_is_a
    prev = meta[s, st.M_PREV_INIT]
    if prev >= 0 and t - meta[s, st.M_PREV_END] <= conv_timeout:
        return prev == 1
    port_role = meta[s, st.M_PORT_ROLE]
    if port_role >= 0:
        return port_role == 1
    return src_is_a


@njit(cache=True)
def _expiry(s: int, t: int, cfg: np.ndarray, meta: np.ndarray, acc_i: np.ndarray) -> tuple[int, int]:
    """(reason, end time) if the flow in slot ``s`` has ended by time ``t``, else (-1, 0)."""
    idle, active, linger = cfg[0], cfg[1], cfg[4]
    last = acc_i[s, st.SCOPE_FLOW, st.I_LAST]
    first = acc_i[s, st.SCOPE_FLOW, st.I_FIRST]
    closed = meta[s, st.M_CLOSED_AT]
    if closed >= 0 and t - closed > linger:
        return (st.END_RST if meta[s, st.M_FIN_FLAGS] & 4 else st.END_FIN), closed + linger
    if t - last > idle:
        return st.END_IDLE, last + idle
    if t - first > active:
        return st.END_ACTIVE, first + active
    return -1, 0


@njit(cache=True, nogil=True)
def process_packets(
    order: np.ndarray, slot: np.ndarray, ts: np.ndarray, src_is_a: np.ndarray,
    proto: np.ndarray, flags: np.ndarray, wire: np.ndarray, payload: np.ndarray,
    key_hash: np.ndarray, cfg: np.ndarray, meta: np.ndarray, runs: np.ndarray,
    acc_i: np.ndarray, acc_f: np.ndarray, row_meta: np.ndarray, row_i: np.ndarray,
    row_f: np.ndarray, bursts: np.ndarray, sample: np.ndarray, sample_dir: np.ndarray,
    sample_fid: np.ndarray, start: int,
) -> tuple[int, int, int]:
    """Apply packets ``order[start:]`` (sorted by slot, then time) to the table.

    Stops early when the output arrays are nearly full. Returns (rows, bursts, next index).
    """
    window, gap, min_bytes, nsamples = cfg[2], cfg[3], cfg[5], cfg[6]
    n = int(np.int64(0))
    nb = int(np.int64(0))
    for j in range(start, order.shape[0]):
        if n + 4 > row_meta.shape[0] or nb + 4 > bursts.shape[0]:
            return n, nb, j
        i = order[j]
        s = slot[i]
        t = ts[i]
        fl = flags[i] if proto[i] == _TCP else 0
        is_syn = (fl & _SYN) != 0 and (fl & _ACK) == 0
        active = meta[s, st.M_ACTIVE] == 1
        if active and (  # fast path: most packets end nothing, so test that inline first
            t - acc_i[s, st.SCOPE_FLOW, st.I_LAST] > cfg[0]
            or t - acc_i[s, st.SCOPE_FLOW, st.I_FIRST] > cfg[1]
            or meta[s, st.M_CLOSED_AT] >= 0
        ):
            reason, t_end = _expiry(s, t, cfg, meta, acc_i)
            if reason < 0 and meta[s, st.M_CLOSED_AT] >= 0 and is_syn:
                reason = st.END_RST if meta[s, st.M_FIN_FLAGS] & 4 else st.END_FIN
                t_end = t
            if reason >= 0:
                n, nb = finish_flow(s, t_end, reason, cfg, meta, runs, acc_i, acc_f,
                                    row_meta, row_i, row_f, n, bursts, nb)
        if meta[s, st.M_ACTIVE] == 0:
            # A new flow: the local side originates, else the initiator (flows.roles).
            init_is_a = _initiator_is_a(s, t, src_is_a[i], fl, cfg[7], meta)
            role, port_role = meta[s, st.M_ROLE], meta[s, st.M_PORT_ROLE]
            orig_is_a = role == 1 if role >= 0 else init_is_a
            meta[s, :] = 0
            meta[s, st.M_ROLE] = role
            meta[s, st.M_PORT_ROLE] = port_role
            meta[s, st.M_PREV_INIT] = -1
            meta[s, st.M_INIT_IS_A] = 1 if init_is_a else 0
            meta[s, st.M_ACTIVE] = 1
            meta[s, st.M_ORIG_IS_A] = 1 if orig_is_a else 0
            meta[s, st.M_WIN_START] = t
            meta[s, st.M_CLOSED_AT] = -1
            meta[s, st.M_PREV_BURST_START0] = -1
            meta[s, st.M_PREV_BURST_START0 + 1] = -1
            meta[s, st.M_PREV_BURST_END] = -1
            meta[s, st.M_FLOW_ID] = np.int64(_mix(np.uint64(key_hash[s]), np.uint64(t)) >> np.uint64(1))
            runs[s, :, :] = 0
            _reset_acc(acc_i, acc_f, s, int(np.int64(0)))
            _reset_acc(acc_i, acc_f, s, int(np.int64(1)))
        d = 0 if (src_is_a[i] == (meta[s, st.M_ORIG_IS_A] == 1)) else 1
        if (runs[s, 0, st.R_PKTS] > 0 and t - runs[s, 0, st.R_LAST] > gap) or (
            runs[s, 1, st.R_PKTS] > 0 and t - runs[s, 1, st.R_LAST] > gap
        ):
            nb = _close_stale(s, t, gap, meta, runs, acc_i, acc_f, min_bytes, bursts, nb)
        ws = meta[s, st.M_WIN_START]
        if ws >= 0 and t - ws >= window:
            n = _roll_if_due(s, t, window, meta, runs, acc_i, acc_f, row_meta, row_i, row_f, n)
        if meta[s, st.M_WIN_START] < 0:
            meta[s, st.M_WIN_START] = t
        w = np.int64(wire[i])
        pl = np.int64(payload[i])
        for k in range(2):
            if acc_i[s, k, st.I_FIRST] < 0:
                acc_i[s, k, st.I_FIRST] = t
            acc_i[s, k, st.I_LAST] = max(acc_i[s, k, st.I_LAST], t)
            if acc_i[s, k, st.I_FIRST0 + d] < 0:
                acc_i[s, k, st.I_FIRST0 + d] = t
            acc_i[s, k, st.I_LAST0 + d] = max(acc_i[s, k, st.I_LAST0 + d], t)
            acc_i[s, k, st.I_PKTS0 + d] += 1
            acc_i[s, k, st.I_WIRE0 + d] += w
            acc_i[s, k, st.I_PAY0 + d] += pl
            acc_i[s, k, st.I_WIRESQ] += w * w
        if pl > 0:
            if runs[s, d, st.R_PKTS] == 0:
                runs[s, d, st.R_START] = t
            runs[s, d, st.R_LAST] = t
            runs[s, d, st.R_PKTS] += 1
            runs[s, d, st.R_BYTES] += pl
            if runs[s, d, st.R_SAMPLED] < nsamples:
                first = runs[s, d, st.R_SAMPLED] == 0
                runs[s, d, st.R_SAMPLED] += 1
                sample[i] = True
                # bit 0: direction; bit 1: this sample was the flow's last one (both directions
                # now full); bit 2: it is its direction's first
                full = runs[s, 0, st.R_SAMPLED] >= nsamples and runs[s, 1, st.R_SAMPLED] >= nsamples
                sample_dir[i] = d + (2 if full else 0) + (4 if first else 0)
                sample_fid[i] = meta[s, st.M_FLOW_ID]
        if proto[i] == _TCP:
            if fl & _RST:
                meta[s, st.M_FIN_FLAGS] |= 4
            if fl & _FIN:
                meta[s, st.M_FIN_FLAGS] |= 1 << d
            if meta[s, st.M_CLOSED_AT] < 0 and (
                (meta[s, st.M_FIN_FLAGS] & 4) or (meta[s, st.M_FIN_FLAGS] & 3) == 3
            ):
                meta[s, st.M_CLOSED_AT] = t
    return n, nb, order.shape[0]


@njit(cache=True, nogil=True)
def tick(
    slots: np.ndarray, now: int, flush: bool, cfg: np.ndarray, meta: np.ndarray,
    runs: np.ndarray, acc_i: np.ndarray, acc_f: np.ndarray, row_meta: np.ndarray,
    row_i: np.ndarray, row_f: np.ndarray, bursts: np.ndarray, ended: np.ndarray,
    due: np.ndarray, start: int,
) -> tuple[int, int, int, int]:
    """Advance time to ``now`` for ``slots[start:]``: close stale bursts, roll windows, expire.

    With ``flush`` every flow ends (end of input). Stops early when outputs are nearly full.
    Sets ``due`` of each flow left open (``_next_due``). Returns (rows, bursts, ended slots,
    next index).
    """
    window, gap, min_bytes = cfg[2], cfg[3], cfg[5]
    n = int(np.int64(0))
    nb = int(np.int64(0))
    ne = int(np.int64(0))
    for j in range(start, slots.shape[0]):
        if n + 4 > row_meta.shape[0] or nb + 4 > bursts.shape[0]:
            return n, nb, ne, j
        s = slots[j]
        if meta[s, st.M_ACTIVE] == 0:
            continue
        reason, t_end = _expiry(s, now, cfg, meta, acc_i)
        if reason < 0 and flush:
            if meta[s, st.M_CLOSED_AT] >= 0:  # closed by FIN/RST, still lingering
                reason = st.END_RST if meta[s, st.M_FIN_FLAGS] & 4 else st.END_FIN
            else:
                reason = st.END_INPUT
            t_end = now
        if reason >= 0:
            n, nb = finish_flow(s, t_end, reason, cfg, meta, runs, acc_i, acc_f,
                                row_meta, row_i, row_f, n, bursts, nb)
            ended[ne] = s
            ne += 1
            continue
        nb = _close_stale(s, now, gap, meta, runs, acc_i, acc_f, min_bytes, bursts, nb)
        n = _roll_if_due(s, now, window, meta, runs, acc_i, acc_f, row_meta, row_i, row_f, n)
        due[s] = _next_due(s, cfg, meta, runs, acc_i)
    return n, nb, ne, slots.shape[0]


@njit(cache=True)
def _next_due(s: int, cfg: np.ndarray, meta: np.ndarray, runs: np.ndarray,
              acc_i: np.ndarray) -> int:
    """The earliest clock at which ``tick`` has something to do for the open flow in slot
    ``s`` as it stands (expire it, close a burst, roll its window): until then, and until a
    packet of the flow arrives, the clock sweep can pass it by."""
    idle, active, window, gap, linger = cfg[0], cfg[1], cfg[2], cfg[3], cfg[4]
    due = acc_i[s, st.SCOPE_FLOW, st.I_LAST] + idle + 1
    due = min(due, acc_i[s, st.SCOPE_FLOW, st.I_FIRST] + active + 1)
    closed = meta[s, st.M_CLOSED_AT]
    if closed >= 0:
        due = min(due, closed + linger + 1)
    for d in range(2):
        if runs[s, d, st.R_PKTS] > 0:
            due = min(due, runs[s, d, st.R_LAST] + gap + 1)
    ws = meta[s, st.M_WIN_START]
    if ws >= 0:
        due = min(due, ws + window)
    return due


@njit(cache=True, nogil=True)
def evict(
    slots: np.ndarray, cfg: np.ndarray, meta: np.ndarray, runs: np.ndarray, acc_i: np.ndarray,
    acc_f: np.ndarray, row_meta: np.ndarray, row_i: np.ndarray, row_f: np.ndarray,
    bursts: np.ndarray, start: int,
) -> tuple[int, int, int]:
    """End the flows ``slots[start:]`` at their last packet, with reason "evicted": the table
    is at its ceiling and these are the flows it can best spare. Stops early when outputs are
    nearly full. Returns (rows, bursts, next index)."""
    n = int(np.int64(0))
    nb = int(np.int64(0))
    for j in range(start, slots.shape[0]):
        if n + 4 > row_meta.shape[0] or nb + 4 > bursts.shape[0]:
            return n, nb, j
        s = slots[j]
        n, nb = finish_flow(s, acc_i[s, st.SCOPE_FLOW, st.I_LAST], st.END_EVICTED, cfg, meta,
                            runs, acc_i, acc_f, row_meta, row_i, row_f, n, bursts, nb)
    return n, nb, slots.shape[0]


@njit(cache=True, nogil=True)
def gather_bytes(
    src: np.ndarray, start: np.ndarray, length: np.ndarray, out_off: np.ndarray, out: np.ndarray
) -> None:
    """Copy ``src[start[k]:start[k] + length[k]]`` to ``out[out_off[k]:]`` for every k: one
    pass over many short slices, instead of one Python object per slice."""
    for k in range(start.shape[0]):
        # Unsigned indices: no negative-index wrap check per byte, so the copy vectorises.
        a = np.uint64(start[k])
        o = np.uint64(out_off[k])
        for t in range(np.uint64(length[k])):
            out[o + t] = src[a + t]


@njit(cache=True, nogil=True)
def look_up_recent(h: np.ndarray, init_of: np.ndarray, end_of: np.ndarray, hashes: np.ndarray,
                   found: np.ndarray, init: np.ndarray, end: np.ndarray) -> None:
    """For each of ``hashes`` not ``found`` yet: its entry in one sorted chunk of recently
    ended keys (``h``; initiator ``init_of``, end ``end_of``), where it has one. One call a
    chunk: six numpy steps a chunk, each a GIL hand-over, were a third of the flow table
    thread's."""
    for k in range(hashes.shape[0]):
        if found[k]:
            continue
        at = np.searchsorted(h, hashes[k])
        if at < h.shape[0] and h[at] == hashes[k]:
            found[k] = True
            init[k] = init_of[at]
            end[k] = end_of[at]


@njit(cache=True, nogil=True)
def gather_payloads(src: np.ndarray, which: np.ndarray, start: np.ndarray, length: np.ndarray,
                    out_off: np.ndarray, out: np.ndarray, at: np.ndarray) -> None:
    """``gather_bytes``, and where each copied slice went by its packet: ``at[which[k]]`` is
    ``out_off[k]``, -1 for the packets not copied. One call: the decoding thread takes the
    GIL back after each."""
    at[:] = -1
    for k in range(which.shape[0]):
        at[which[k]] = out_off[k]
    gather_bytes(src, start, length, out_off, out)


@njit(cache=True, nogil=True)
def move_down(buf: np.ndarray, start: np.ndarray, length: np.ndarray, out_off: np.ndarray) -> None:
    """Within one buffer, copy slice k from ``start[k]`` down to ``out_off[k]``, with slices
    in increasing ``start`` and ``out_off[k] <= start[k]``: a forward copy never overwrites
    bytes still to be read, so an arena is compacted without a second one."""
    for k in range(start.shape[0]):
        a = np.uint64(start[k])
        o = np.uint64(out_off[k])
        for t in range(np.uint64(length[k])):
            buf[o + t] = buf[a + t]
