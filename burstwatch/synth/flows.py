"""Per-flow packet schedules (TCP and UDP) built with numpy, and their merge by timestamp.

A flow is a set of columns (time, direction, flags, seq, ack, ...) plus payload bytes; packet
bytes are only made when a packet is written, so a long capture never sits in memory as bytes.

Times are capture times at a tap next to the internal client: a server's reaction to a client
packet shows up one round-trip later, the client's reaction to the server almost at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from burstwatch.synth import packets as pk
from burstwatch.synth.model import BurstTruth, Endpoint, Packet, to_ns

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
U16 = npt.NDArray[np.uint16]
U8 = npt.NDArray[np.uint8]
Bool = npt.NDArray[np.bool_]

MSS_V4 = 1448  # payload bytes of a full segment on a 1500-byte MTU with TCP timestamps
MSS_V6 = 1428
CLIENT_REACTION_NS = 150_000  # the client's stack answers within a fraction of a millisecond
DELAYED_ACK_NS = 40_000_000
EPHEMERAL_PORTS = (32768, 60999)


def ephemeral_port(rng: np.random.Generator) -> int:
    """A Linux-range ephemeral port."""
    return int(rng.integers(EPHEMERAL_PORTS[0], EPHEMERAL_PORTS[1] + 1))


def _remote_ttl(rng: np.random.Generator) -> int:
    """What a remote host's TTL looks like after crossing the Internet."""
    initial = int(rng.choice([64, 128, 255], p=[0.6, 0.3, 0.1]))
    return initial - int(rng.integers(8, 24))


@dataclass
class FlowPackets:
    """One flow's packets as columns, sorted by time. Packet ``i`` is made by :meth:`render`."""

    client: Endpoint
    server: Endpoint
    proto: int
    ts_ns: I64
    from_client: Bool
    payloads: list[bytes]
    flags: U8
    seq: U32
    ack: U32
    window: U16
    ip_id: U16
    tsval: U32
    tsecr: U32
    client_ttl: int = 64
    server_ttl: int = 52
    mss: int = MSS_V4
    wscale: int = 7
    flow_label: int = 0
    _addr: tuple[bytes, bytes] = field(default=(b"", b""), repr=False)

    def __post_init__(self) -> None:
        self._addr = (self.client.packed, self.server.packed)

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def render(self, i: int) -> bytes:
        """IP datagram bytes of packet ``i``."""
        fc = bool(self.from_client[i])
        c, s = self._addr
        src, dst = (c, s) if fc else (s, c)
        sport, dport = (
            (self.client.port, self.server.port) if fc else (self.server.port, self.client.port)
        )
        payload = self.payloads[i]
        if self.proto == pk.PROTO_TCP:
            flags = int(self.flags[i])
            opts = pk.tcp_options(
                flags, int(self.tsval[i]), int(self.tsecr[i]), self.mss + 12, self.wscale
            )
            l4 = pk.tcp_segment(
                src,
                dst,
                sport,
                dport,
                int(self.seq[i]),
                int(self.ack[i]),
                flags,
                int(self.window[i]),
                opts,
                payload,
            )
        else:
            l4 = pk.udp_datagram(src, dst, sport, dport, payload)
        ttl = self.client_ttl if fc else self.server_ttl
        return pk.ip_packet(
            src, dst, self.proto, l4, ident=int(self.ip_id[i]), ttl=ttl, flow_label=self.flow_label
        )

    def packets(self) -> Iterator[Packet]:
        """This flow's packets in time order."""
        for i in range(len(self)):
            yield Packet(int(self.ts_ns[i]), self.render(i))


def merge(flows: Iterable[FlowPackets]) -> Iterator[Packet]:
    """Packets of many flows in one time order (ties keep flow order), rendered lazily."""
    live = [f for f in flows if len(f)]
    if not live:
        return
    ts = np.concatenate([f.ts_ns for f in live])
    fid = np.concatenate([np.full(len(f), k, np.int32) for k, f in enumerate(live)])
    pid = np.concatenate([np.arange(len(f), dtype=np.int64) for f in live])
    for k in np.lexsort((pid, fid, ts)):
        f = live[fid[k]]
        yield Packet(int(ts[k]), f.render(int(pid[k])))


class _Columns:
    """Packet columns collected in emission order, sorted by time when the flow is built."""

    def __init__(self) -> None:
        self.ts: list[I64] = []
        self.fc: list[Bool] = []
        self.flags: list[U8] = []
        self.seq: list[U32] = []
        self.ack: list[U32] = []
        self.payloads: list[bytes] = []

    def add(
        self,
        ts: npt.ArrayLike,
        from_client: npt.ArrayLike,
        payloads: Sequence[bytes],
        flags: npt.ArrayLike = 0,
        seq: npt.ArrayLike = 0,
        ack: npt.ArrayLike = 0,
    ) -> None:
        n = len(payloads)
        self.ts.append(np.broadcast_to(np.asarray(ts, np.int64), (n,)).copy())
        self.fc.append(np.broadcast_to(np.asarray(from_client, np.bool_), (n,)).copy())
        self.flags.append(np.broadcast_to(np.asarray(flags, np.uint8), (n,)).copy())
        self.seq.append(
            np.broadcast_to(np.asarray(seq, np.int64) & 0xFFFFFFFF, (n,)).astype(np.uint32)
        )
        self.ack.append(
            np.broadcast_to(np.asarray(ack, np.int64) & 0xFFFFFFFF, (n,)).astype(np.uint32)
        )
        self.payloads.extend(payloads)

    def sorted(self) -> tuple[I64, Bool, U8, U32, U32, list[bytes]]:
        if not self.ts:
            e = np.zeros(0)
            return (
                e.astype(np.int64),
                e.astype(bool),
                e.astype(np.uint8),
                e.astype(np.uint32),
                e.astype(np.uint32),
                [],
            )
        ts = np.concatenate(self.ts)
        order = np.argsort(ts, kind="stable")
        return (
            ts[order],
            np.concatenate(self.fc)[order],
            np.concatenate(self.flags)[order],
            np.concatenate(self.seq)[order],
            np.concatenate(self.ack)[order],
            [self.payloads[i] for i in order],
        )


def _ip_ids(rng: np.random.Generator, from_client: Bool) -> U16:
    """Per-direction incrementing IP IDs from a random start, as Linux does per connection."""
    ids = np.zeros(from_client.shape[0], np.uint16)
    for side in (True, False):
        mask = from_client == side
        base = int(rng.integers(0, 65536))
        ids[mask] = (base + np.arange(int(mask.sum()))) & 0xFFFF
    return ids


def _timestamps(rng: np.random.Generator, ts: I64, from_client: Bool) -> tuple[U32, U32]:
    """TCP timestamp option values: a millisecond clock per host; echo the peer's latest value."""
    n = ts.shape[0]
    offsets = rng.integers(0, 2**31, size=2)
    clock = np.where(from_client, ts // 1_000_000 + offsets[0], ts // 1_000_000 + offsets[1])
    tsval = (clock & 0xFFFFFFFF).astype(np.uint32)
    idx = np.arange(n)
    tsecr = np.zeros(n, np.uint32)
    for side in (True, False):
        # latest earlier packet from the other side
        other = np.where(from_client != side, idx, -1)
        last_other = np.maximum.accumulate(np.concatenate([[-1], other[:-1]])) if n else other
        mine = (from_client == side) & (last_other >= 0)
        tsecr[mine] = tsval[last_other[mine]]
    return tsval, tsecr


class TcpFlow:
    """Builds one TCP connection step by step; each step lays down a vector of packets.

    ``rtt_ns`` is the round trip from the tap to the server and back. ``rate`` (payload bytes per
    second) paces multi-segment sends unless a step gives its own.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        client: Endpoint,
        server: Endpoint,
        start_ns: int,
        *,
        rtt_ns: int = 40_000_000,
        rate: float = 5e6,
        mss: int | None = None,
    ) -> None:
        self.rng = rng
        if client.port == 0:
            client = client.with_port(ephemeral_port(rng))
        self.client = client
        self.server = server
        self.t = int(start_ns)
        self.rtt = int(rtt_ns)
        self.rate = rate
        self.mss = mss or (MSS_V4 if client.version == 4 else MSS_V6)
        isn = rng.integers(0, 2**32, size=2)
        self.isn = {True: int(isn[0]), False: int(isn[1])}
        self.nxt = dict(self.isn)
        self.cols = _Columns()
        self.server_ttl = _remote_ttl(rng)
        self.windows = {True: int(rng.integers(400, 2048)), False: int(rng.integers(200, 1024))}

    def _lag(self, to_client: bool) -> int:
        """Delay at the tap between a packet and the receiver's reaction to it."""
        if to_client:
            return CLIENT_REACTION_NS + int(self.rng.integers(0, 100_000))
        return self.rtt + int(self.rng.integers(0, max(1, self.rtt // 20)))

    def _one(self, ts: int, from_client: bool, flags: int, payload: bytes = b"") -> None:
        side = from_client
        self.cols.add(ts, side, [payload], flags, self.nxt[side], self.nxt[not side])
        self.nxt[side] += len(payload) + (1 if flags & (pk.SYN | pk.FIN) else 0)
        self.t = max(self.t, ts)

    def handshake(self, at_ns: int | None = None) -> None:
        """SYN, SYN/ACK one round trip later, then the client's ACK."""
        t = self.t if at_ns is None else int(at_ns)
        self.nxt = dict(self.isn)
        self.cols.add(t, True, [b""], pk.SYN, self.isn[True], 0)
        self.nxt[True] += 1
        t += self._lag(False)
        self._one(t, False, pk.SYN | pk.ACK)
        t += self._lag(True)
        self._one(t, True, pk.ACK)

    def send(
        self,
        from_client: bool,
        data: bytes,
        *,
        at_ns: int | None = None,
        rate: float | None = None,
        ack_last: bool = True,
    ) -> BurstTruth:
        """Send ``data`` as MSS-sized segments paced at ``rate``; the peer ACKs every second one.

        Returns what was sent (first/last data packet times, bytes) so callers can record truth.
        """
        if not data:
            raise ValueError("nothing to send")
        t0 = max(self.t, int(at_ns)) if at_ns is not None else self.t
        rate = rate or self.rate
        size = len(data)
        n = max(1, -(-size // self.mss))
        sizes = np.full(n, self.mss, np.int64)
        sizes[-1] = size - self.mss * (n - 1)
        ends = np.cumsum(sizes)
        starts = ends - sizes
        gap = self.mss / rate * 1e9
        jitter = self.rng.uniform(0.0, 0.3 * gap, size=n)
        ts = t0 + (starts / rate * 1e9 + jitter).astype(np.int64)
        ts = np.maximum.accumulate(ts)
        base = self.nxt[from_client]
        flags = np.full(n, pk.ACK, np.uint8)
        flags[-1] |= pk.PSH
        chunks = [data[int(a) : int(b)] for a, b in zip(starts, ends, strict=True)]
        self.cols.add(ts, from_client, chunks, flags, base + starts, self.nxt[not from_client])
        # ACKs from the receiver: every second segment, and the odd last one after a delay
        acked = np.arange(1, n, 2)
        ack_ts = ts[acked] + np.array([self._lag(not from_client) for _ in acked], np.int64)
        ack_nums = base + ends[acked]
        if ack_last and n % 2 == 1:
            lag = self._lag(not from_client) + DELAYED_ACK_NS
            ack_ts = np.append(ack_ts, ts[-1] + lag)
            ack_nums = np.append(ack_nums, base + ends[-1])
        if ack_ts.size:
            ack_ts = np.maximum.accumulate(ack_ts)
            self.cols.add(
                ack_ts,
                not from_client,
                [b""] * ack_ts.size,
                pk.ACK,
                self.nxt[not from_client],
                ack_nums,
            )
        self.nxt[from_client] = base + size
        self.t = int(max(ts[-1], ack_ts[-1] if ack_ts.size else ts[-1]))
        header = pk.ip_header_len(self.client.version) + pk.TCP_HEADER_TS
        return BurstTruth(int(ts[0]), int(ts[-1]), size, size + n * header, n)

    def exchange(
        self,
        request: bytes,
        response: bytes,
        *,
        at_ns: int | None = None,
        think_ns: int = 5_000_000,
        rate: float | None = None,
        ack_response: bool = True,
    ) -> None:
        """Client request, then the server's response one round trip (plus think time) later.

        ``ack_response=False`` leaves the response's odd last segment to be acknowledged by the
        client's next data, as when the client speaks again at once.
        """
        quick = think_ns + self.rtt < DELAYED_ACK_NS
        sent = self.send(True, request, at_ns=at_ns, ack_last=not quick)
        self.send(
            False,
            response,
            at_ns=sent.end_ns + self._lag(False) + think_ns,
            rate=rate,
            ack_last=ack_response,
        )

    def keepalive(self, at_ns: int, from_client: bool = True) -> None:
        """A TCP keepalive probe (seq one below the next byte) and the peer's ACK."""
        side = from_client
        self.cols.add(at_ns, side, [b""], pk.ACK, self.nxt[side] - 1, self.nxt[not side])
        back = at_ns + self._lag(not side)
        self.cols.add(back, not side, [b""], pk.ACK, self.nxt[not side], self.nxt[side])
        self.t = max(self.t, back)

    def keepalives(self, start_ns: int, end_ns: int, interval_ns: int) -> None:
        """Keepalive probes every ``interval_ns`` (with a little jitter) in [start, end)."""
        t = start_ns + interval_ns
        while t < end_ns:
            self.keepalive(t)
            t += interval_ns + int(self.rng.integers(0, max(1, interval_ns // 50)))

    def ack(self, at_ns: int, from_client: bool = True) -> None:
        """A pure ACK of everything the peer has sent so far (a delayed ACK, say)."""
        self._one(int(at_ns), from_client, pk.ACK)

    def close(
        self, at_ns: int | None = None, *, from_client: bool = True, rst: bool = False
    ) -> None:
        """FIN/ACK from one side, FIN/ACK back, final ACK; or a single RST/ACK."""
        t = self.t if at_ns is None else max(self.t, int(at_ns))
        side = from_client
        if rst:
            self._one(t, side, pk.RST | pk.ACK)
            return
        self._one(t, side, pk.FIN | pk.ACK)
        t += self._lag(not side)
        self._one(t, not side, pk.FIN | pk.ACK)
        t += self._lag(side)
        self._one(t, side, pk.ACK)

    def build(self) -> FlowPackets:
        """Freeze into sorted columns with IP IDs, windows and TCP timestamps filled in."""
        ts, fc, flags, seq, ack, payloads = self.cols.sorted()
        tsval, tsecr = _timestamps(self.rng, ts, fc)
        window = np.where(fc, self.windows[True], self.windows[False]).astype(np.uint16)
        syn = (flags & pk.SYN) != 0
        window[syn & fc] = 64240
        window[syn & ~fc] = 65160
        return FlowPackets(
            client=self.client,
            server=self.server,
            proto=pk.PROTO_TCP,
            ts_ns=ts,
            from_client=fc,
            payloads=payloads,
            flags=flags,
            seq=seq,
            ack=ack,
            window=window,
            ip_id=_ip_ids(self.rng, fc),
            tsval=tsval,
            tsecr=tsecr,
            server_ttl=self.server_ttl,
            mss=self.mss,
            flow_label=int(self.rng.integers(0, 1 << 20)),
        )


class UdpFlow:
    """Builds one UDP conversation from vectors of datagram times and payloads."""

    def __init__(
        self,
        rng: np.random.Generator,
        client: Endpoint,
        server: Endpoint,
        *,
        rtt_ns: int = 40_000_000,
    ) -> None:
        self.rng = rng
        if client.port == 0:
            client = client.with_port(ephemeral_port(rng))
        self.client = client
        self.server = server
        self.rtt = int(rtt_ns)
        self.cols = _Columns()
        self.server_ttl = _remote_ttl(rng)

    def add(
        self, ts_ns: npt.ArrayLike, from_client: npt.ArrayLike, payloads: Sequence[bytes]
    ) -> None:
        """Datagrams at ``ts_ns`` (one per payload) in the given direction(s)."""
        self.cols.add(ts_ns, from_client, payloads)

    def truth(self, ts_ns: I64, payloads: Sequence[bytes]) -> BurstTruth:
        """Ground truth for a burst of upstream datagrams."""
        header = pk.ip_header_len(self.client.version) + pk.UDP_HEADER
        size = sum(len(p) for p in payloads)
        return BurstTruth(
            int(ts_ns[0]), int(ts_ns[-1]), size, size + header * len(payloads), len(payloads)
        )

    def build(self) -> FlowPackets:
        """Freeze into sorted columns."""
        ts, fc, flags, seq, ack, payloads = self.cols.sorted()
        n = ts.shape[0]
        zeros32 = np.zeros(n, np.uint32)
        return FlowPackets(
            client=self.client,
            server=self.server,
            proto=pk.PROTO_UDP,
            ts_ns=ts,
            from_client=fc,
            payloads=payloads,
            flags=flags,
            seq=seq,
            ack=ack,
            window=np.zeros(n, np.uint16),
            ip_id=_ip_ids(self.rng, fc),
            tsval=zeros32,
            tsecr=zeros32,
            server_ttl=self.server_ttl,
            flow_label=int(self.rng.integers(0, 1 << 20)),
        )


def split_sizes(total: int, largest: int, smallest: int = 1) -> npt.NDArray[np.int64]:
    """Split ``total`` bytes into packets of ``largest`` bytes, none smaller than ``smallest``."""
    n = max(1, -(-total // largest))
    sizes = np.full(n, largest, np.int64)
    sizes[-1] = total - largest * (n - 1)
    if n > 1 and sizes[-1] < smallest:
        pair = sizes[-2] + sizes[-1]
        sizes[-2], sizes[-1] = pair - pair // 2, pair // 2
    return sizes


def pace(rng: np.random.Generator, start_ns: int, sizes: npt.NDArray[np.int64], rate: float) -> I64:
    """Send times for packets of ``sizes`` bytes at ``rate`` bytes/s, with a little jitter."""
    starts = np.cumsum(sizes) - sizes
    gap = float(sizes.mean()) / rate * 1e9 if sizes.size else 0.0
    jitter = rng.uniform(0.0, 0.3 * gap, size=sizes.size)
    ts = start_ns + (starts / rate * 1e9 + jitter).astype(np.int64)
    return np.maximum.accumulate(ts)


def periodic(
    rng: np.random.Generator, start_ns: int, end_ns: int, interval_ns: int, jitter: float = 0.02
) -> I64:
    """Times every ``interval_ns`` after ``start_ns`` and before ``end_ns``, each a little late."""
    count = max(0, (end_ns - start_ns - 1) // interval_ns)
    base = start_ns + interval_ns * np.arange(1, count + 1, dtype=np.int64)
    late = rng.uniform(0.0, jitter * interval_ns, size=count).astype(np.int64)
    return base + late


# Parameters given as a value or a (lo, hi) range, and schedules and ports across connections.

IntRange = int | tuple[int, int]
FloatRange = float | tuple[float, float]


def draw_int(rng: np.random.Generator, value: IntRange | Sequence[int]) -> int:
    """``value`` itself, or a uniform draw from the inclusive range ``(lo, hi)``."""
    if isinstance(value, int | np.integer):
        return int(value)
    lo, hi = value
    return int(rng.integers(int(lo), int(hi) + 1))


def draw_float(rng: np.random.Generator, value: FloatRange | Sequence[float]) -> float:
    """``value`` itself, or a uniform draw from ``[lo, hi)``."""
    if isinstance(value, int | float | np.number):
        return float(value)
    lo, hi = value
    return float(rng.uniform(float(lo), float(hi)))


def check_schedule(gap_s: float, jitter: float, miss_prob: float = 0.0) -> None:
    """Reject a schedule that could run backwards or never fire."""
    if gap_s <= 0 or not 0.0 <= jitter < 1.0 or not 0.0 <= miss_prob < 1.0:
        raise ValueError(
            f"need gap_s > 0, 0 <= jitter < 1 and 0 <= miss_prob < 1 "
            f"(got {gap_s}, {jitter}, {miss_prob})"
        )


def jittered_slots(
    rng: np.random.Generator, start_ns: int, slots: int, gap_s: float, jitter: float,
    miss_prob: float = 0.0,
) -> list[int]:
    """Times of the used slots of a jittered schedule.

    Slot 0 is at ``start_ns``; each later slot follows the one before after
    ``gap_s * (1 + u)``, ``u`` uniform in [-jitter, jitter]. Every slot but the first is
    skipped with probability ``miss_prob``; the schedule runs on regardless.
    """
    check_schedule(gap_s, jitter, miss_prob)
    if slots < 1:
        raise ValueError(f"need at least one slot, not {slots}")
    steps = [to_ns(gap_s * (1.0 + u)) for u in rng.uniform(-jitter, jitter, size=slots - 1)]
    times = start_ns + np.concatenate([[0], np.cumsum(np.array(steps, np.int64))])
    keep = rng.random(slots) >= miss_prob
    keep[0] = True
    return [int(t) for t, k in zip(times, keep, strict=True) if k]


class ClientPorts:
    """Distinct source ports for a host's successive connections: a random first port, then
    small random steps, wrapping within the ephemeral range (distinct for the first ~1,800)."""

    def __init__(self, rng: np.random.Generator, first: int = 0) -> None:
        self.rng = rng
        self.next = first or ephemeral_port(rng)

    def take(self) -> int:
        """The port for the next connection."""
        port = self.next
        lo, hi = EPHEMERAL_PORTS
        self.next = lo + (port - lo + int(self.rng.integers(1, 32))) % (hi - lo + 1)
        return port


def window_truth(flows: Sequence[FlowPackets], start_ns: int, end_ns: int) -> BurstTruth:
    """Ground truth of a burst that may span connections: every upstream packet carrying
    payload in [start_ns, end_ns], whichever flow it belongs to."""
    payload = packets = ip_bytes = 0
    for f in flows:
        tcp = f.proto == pk.PROTO_TCP
        header = pk.ip_header_len(f.client.version) + (pk.TCP_HEADER_TS if tcp else pk.UDP_HEADER)
        inside = np.flatnonzero(f.from_client & (f.ts_ns >= start_ns) & (f.ts_ns <= end_ns))
        for i in inside.tolist():
            n = len(f.payloads[i])
            if n:
                payload += n
                packets += 1
                ip_bytes += n + header
    return BurstTruth(int(start_ns), int(end_ns), payload, ip_bytes, packets)
