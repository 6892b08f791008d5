"""Exfiltration scenarios: a quiet session abroad that wakes up for short, fast encrypted uploads.

Every scenario has the same timeline so ground truth is easy to state: the session opens at
``start_ts``, stays quiet (keepalives only) for ``quiet_s``, then burst ``k`` starts at
``start_ts + quiet_s + k * gap_s`` and uploads ``burst_bytes`` at ``rate`` bytes/s; the session
ends ``tail_s`` after the last burst. The returned :class:`Session` lists each burst's real
first/last packet time and byte counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from burstwatch.synth import addresses as ad
from burstwatch.synth import payloads as pl
from burstwatch.synth.conversations import (
    MS,
    quic_open,
    tls_open,
    tls_request,
    upload_connection,
    wg_handshake,
)
from burstwatch.synth.flows import (
    ClientPorts,
    FloatRange,
    FlowPackets,
    IntRange,
    TcpFlow,
    UdpFlow,
    check_schedule,
    draw_float,
    draw_int,
    jittered_slots,
    pace,
    periodic,
    split_sizes,
    window_truth,
)
from burstwatch.synth.model import BurstTruth, Endpoint, OneFlow, Session, to_ns

DEFAULT_RATE = 10e6
DEFAULT_BURST = 2_000_000
S = 1_000_000_000


def _session(
    name: str, what: str, flow: OneFlow, server: Endpoint, truths: list[BurstTruth],
    burst_bytes: int, rate: float, detail: str = "",
) -> Session:
    """The session of a one-flow exfil scenario, described the same way for all of them."""
    description = (f"{what} to {server.ip}:{server.port}{detail}, "
                   f"{len(truths)} x {burst_bytes} B at {rate:.0f} B/s")
    return Session.of_flow(name, "exfil", flow, server, description, truths)


def _timeline(
    start_ns: int, quiet_s: float, gap_s: float, bursts: int, tail_s: float,
    quiet: Callable[[int], None], burst: Callable[[int], BurstTruth],
) -> tuple[list[BurstTruth], int]:
    """The timeline every exfil scenario shares: ``quiet(until)`` fills the time up to each
    burst start, ``burst(at)`` makes the burst, and ``quiet`` runs on for ``tail_s`` after the
    last one. Returns the bursts' ground truth and the session's end."""
    truths = []
    for k in range(bursts):
        at = start_ns + to_ns(quiet_s + k * gap_s)
        quiet(at)
        truths.append(burst(at))
    end = truths[-1].end_ns + to_ns(tail_s)
    quiet(end)
    return truths, end


def exfil_tls(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    sni: str = "relay.example.net",
    quiet_s: float = 90.0,
    bursts: int = 3,
    burst_bytes: int = DEFAULT_BURST,
    rate: float = DEFAULT_RATE,
    gap_s: float = 60.0,
    tail_s: float = 30.0,
    keepalive_s: float = 45.0,
    rtt_ms: float = 120.0,
) -> Session:
    """TLS over TCP to a foreign server (default 77.88.8.8:443): keepalives, then bursts.

    Each burst is a stream of TLS application-data records; the server ACKs every second
    segment and answers each burst with one short record.
    """
    server = server or Endpoint(ad.FOREIGN_RU, 443)
    start = to_ns(start_ts)
    flow = TcpFlow(rng, client, server, start, rtt_ns=to_ns(rtt_ms / 1000), rate=rate)
    tls_open(flow, sni, alpn=("http/1.1",))
    keep = to_ns(keepalive_s)

    def quiet(until: int) -> None:
        flow.keepalives(flow.t, until - keep // 4, keep)

    def burst(at: int) -> BurstTruth:
        truth = flow.send(True, pl.tls_app_data(rng, burst_bytes), at_ns=at, rate=rate)
        flow.send(False, pl.tls_app_data(rng, int(rng.integers(40, 90))), at_ns=flow.t + 2 * MS)
        return truth

    truths, end = _timeline(start, quiet_s, gap_s, bursts, tail_s, quiet, burst)
    flow.close(end)
    return _session("exfil_tls", "TLS", flow, server, truths, burst_bytes, rate, f" (SNI {sni})")


def exfil_tls_port(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    **kwargs: Any,
) -> Session:
    """:func:`exfil_tls` on a non-standard port (default 193.0.6.139:8443)."""
    session = exfil_tls(rng, start_ts, client, server or Endpoint(ad.FOREIGN_NL, 8443), **kwargs)
    session.name = "exfil_tls_port"
    return session


def exfil_tls_v6(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint | None = None,
    server: Endpoint | None = None,
    **kwargs: Any,
) -> Session:
    """:func:`exfil_tls` over IPv6 (default fd00::10 to 2a02:6b8::feed:0ff, RU)."""
    client = client or Endpoint(ad.internal_v6(0x10))
    session = exfil_tls(rng, start_ts, client, server or Endpoint(ad.FOREIGN_V6_RU, 443), **kwargs)
    session.name = "exfil_tls_v6"
    return session


def exfil_quic(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    quiet_s: float = 90.0,
    bursts: int = 3,
    burst_bytes: int = DEFAULT_BURST,
    rate: float = DEFAULT_RATE,
    gap_s: float = 60.0,
    tail_s: float = 30.0,
    ping_s: float = 20.0,
    rtt_ms: float = 180.0,
    datagram: int = 1350,
) -> Session:
    """QUIC v1 to a foreign server (default 114.114.114.114:443): PINGs, then bursts.

    Burst datagrams are short-header packets of ``datagram`` bytes; the server sends a small
    ACK-only packet for every second one.
    """
    server = server or Endpoint(ad.FOREIGN_CN, 443)
    start = to_ns(start_ts)
    flow = UdpFlow(rng, client, server, rtt_ns=to_ns(rtt_ms / 1000))
    ids, t = quic_open(flow, start)

    def quiet(until: int) -> None:
        _quic_pings(rng, flow, ids.to_server, ids.to_client, t, until, to_ns(ping_s))

    def burst(at: int) -> BurstTruth:
        nonlocal t
        sizes = split_sizes(burst_bytes, datagram, 40)
        ts = pace(rng, at, sizes, rate)
        up = [pl.quic_short(rng, ids.to_server, int(n)) for n in sizes]
        flow.add(ts, True, up)
        truth = flow.truth(ts, up)
        acks = ts[1::2] + flow.rtt
        flow.add(
            acks,
            False,
            [pl.quic_short(rng, ids.to_client, int(rng.integers(30, 48))) for _ in acks],
        )
        t = int(acks[-1]) if acks.size else int(ts[-1])
        return truth

    truths, close = _timeline(start, quiet_s, gap_s, bursts, tail_s, quiet, burst)
    flow.add(close, True, [pl.quic_short(rng, ids.to_server, 45)])  # CONNECTION_CLOSE
    return _session("exfil_quic", "QUIC", flow, server, truths, burst_bytes, rate)


def _quic_pings(
    rng: np.random.Generator,
    flow: UdpFlow,
    to_server: bytes,
    to_client: bytes,
    start: int,
    end: int,
    interval: int,
) -> None:
    ts = periodic(rng, start, end - interval // 4, interval)
    flow.add(ts, True, [pl.quic_short(rng, to_server, int(rng.integers(30, 40))) for _ in ts])
    flow.add(
        ts + flow.rtt, False, [pl.quic_short(rng, to_client, int(rng.integers(30, 40))) for _ in ts]
    )


def exfil_wireguard(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    quiet_s: float = 90.0,
    bursts: int = 3,
    burst_bytes: int = DEFAULT_BURST,
    rate: float = DEFAULT_RATE,
    gap_s: float = 60.0,
    tail_s: float = 30.0,
    keepalive_s: float = 25.0,
    rtt_ms: float = 95.0,
    inner_mtu: int = 1420,
) -> Session:
    """WireGuard to a foreign peer (default 193.0.6.139:51820): persistent keepalives, then bursts.

    ``burst_bytes`` counts the tunnelled (inner) bytes, split into ``inner_mtu``-byte packets
    (1456 B on the wire after padding and the 32-byte header/tag), so the ground truth's
    ``payload_bytes`` is a little larger. The peer's inner TCP ACKs come back as 96-byte
    transport messages. Handshakes repeat every 120 s of use.
    """
    server = server or Endpoint(ad.FOREIGN_NL, 51820)
    if client.port == 0:
        client = client.with_port(51820)
    start = to_ns(start_ts)
    flow = UdpFlow(rng, client, server, rtt_ns=to_ns(rtt_ms / 1000))
    mine, theirs = (int(x) for x in rng.integers(0, 2**32, size=2))
    last_handshake = wg_handshake(flow, start, mine, theirs)
    counters = {True: 0, False: 0}

    def transport(ts: np.ndarray, from_client: bool, inner: int) -> list[bytes]:
        receiver = theirs if from_client else mine
        out = [
            pl.wg_transport(rng, receiver, counters[from_client] + k, inner) for k in range(len(ts))
        ]
        counters[from_client] += len(ts)
        flow.add(ts, from_client, out)
        return out

    # the first transport message confirms the handshake
    transport(np.array([last_handshake + MS]), True, 0)
    t = last_handshake + MS

    def quiet(until: int) -> None:
        transport(periodic(rng, t, until - to_ns(keepalive_s) // 4, to_ns(keepalive_s)), True, 0)

    def burst(at: int) -> BurstTruth:
        nonlocal t, last_handshake
        if at - last_handshake > 120 * S:
            last_handshake = wg_handshake(flow, at - 2 * flow.rtt, mine, theirs)
        sizes = split_sizes(burst_bytes, inner_mtu, 64)  # the tunnelled packets
        ts = pace(rng, at, sizes + pl.WG_TRANSPORT_OVERHEAD, rate)
        up = [pl.wg_transport(rng, theirs, counters[True] + k, int(n)) for k, n in enumerate(sizes)]
        counters[True] += len(up)
        flow.add(ts, True, up)
        truth = flow.truth(ts, up)
        transport(ts[1::2] + flow.rtt, False, 52)
        t = int(ts[-1] + flow.rtt)
        return truth

    truths, _ = _timeline(start, quiet_s, gap_s, bursts, tail_s, quiet, burst)
    return _session("exfil_wireguard", "WireGuard", flow, server, truths, burst_bytes, rate)


def exfil_udp_unknown(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    quiet_s: float = 90.0,
    bursts: int = 3,
    burst_bytes: int = DEFAULT_BURST,
    rate: float = DEFAULT_RATE,
    gap_s: float = 60.0,
    tail_s: float = 30.0,
    heartbeat_s: float = 30.0,
    rtt_ms: float = 200.0,
    datagram: int = 1400,
) -> Session:
    """An unknown high-entropy UDP protocol (default to 114.114.114.114:40444).

    Heartbeats both ways while quiet; bursts of random-byte datagrams with a short reply
    every 32 packets.
    """
    server = server or Endpoint(ad.FOREIGN_CN, 40444)
    start = to_ns(start_ts)
    flow = UdpFlow(rng, client, server, rtt_ns=to_ns(rtt_ms / 1000))
    t = start
    beat = to_ns(heartbeat_s)
    flow.add(start, True, [pl.random_bytes(rng, 48)])
    flow.add(start + flow.rtt, False, [pl.random_bytes(rng, 48)])

    def quiet(until: int) -> None:
        hb = periodic(rng, t, until - beat // 4, beat)
        flow.add(hb, True, [pl.random_bytes(rng, 48) for _ in hb])
        flow.add(hb + flow.rtt, False, [pl.random_bytes(rng, 48) for _ in hb])

    def burst(at: int) -> BurstTruth:
        nonlocal t
        sizes = split_sizes(burst_bytes, datagram, 64)
        ts = pace(rng, at, sizes, rate)
        up = [pl.random_bytes(rng, int(n)) for n in sizes]
        flow.add(ts, True, up)
        truth = flow.truth(ts, up)
        replies = ts[31::32] + flow.rtt
        flow.add(replies, False, [pl.random_bytes(rng, int(rng.integers(24, 64))) for _ in replies])
        t = int(ts[-1] + flow.rtt)
        return truth

    truths, _ = _timeline(start, quiet_s, gap_s, bursts, tail_s, quiet, burst)
    return _session("exfil_udp_unknown", "unknown UDP", flow, server, truths, burst_bytes, rate)


# --- schedules across hours: pulled bursts, a connection per burst, jittered beacons ----------
#
# These scenarios model how real implants and exfiltration tools pace themselves: a sleep of
# ``gap_s * (1 + u)`` with ``u`` uniform in [-jitter, jitter] between bursts, missed check-ins,
# a fresh connection per upload, or a server that asks for the data. Sizes and rates given as
# ``(lo, hi)`` are drawn uniformly per burst; a plain number is used as is.


def _ranges(value: IntRange | FloatRange) -> str:
    if isinstance(value, tuple | list):
        return f"{value[0]:.0f}-{value[1]:.0f}"
    return f"{value:.0f}"


def _scheduled_uploads(
    name: str, what: str, rng: np.random.Generator, start_ts: float, client: Endpoint,
    server: Endpoint, *, sni: str, slots: int, gap_s: float, jitter: float, miss_prob: float,
    burst_bytes: IntRange, rate: FloatRange, rtt_ms: float, chunk_bytes: int | None = None,
    conn_per_chunk: bool = True, chunk_pause_s: FloatRange = (0.2, 1.5),
) -> Session:
    """Bursts on a jittered schedule, each on new connection(s); see :func:`exfil_conn_per_burst`."""
    ports = ClientPorts(rng, client.port)
    rtt = to_ns(rtt_ms / 1000)
    flows: list[FlowPackets] = []
    truths: list[BurstTruth] = []
    free_at = 0
    for slot in jittered_slots(rng, to_ns(start_ts), slots, gap_s, jitter, miss_prob):
        size, speed = draw_int(rng, burst_bytes), draw_float(rng, rate)
        parts = [size] if chunk_bytes is None else split_sizes(size, chunk_bytes, 64).tolist()
        groups = [[p] for p in parts] if conn_per_chunk else [parts]
        t = max(slot, free_at)  # a burst never starts before the previous one has closed
        mine: list[FlowPackets] = []
        first = last = -1
        for group in groups:
            endpoint = Endpoint(client.ip, ports.take())
            flow, a, b = upload_connection(
                rng, endpoint, server, t, sni, group, rate=speed, rtt_ns=rtt, pause_s=chunk_pause_s
            )
            mine.append(flow)
            first = a if first < 0 else first
            last = b
            t = int(flow.ts_ns[-1]) + to_ns(draw_float(rng, chunk_pause_s))
        truths.append(window_truth(mine, first, last))
        flows.extend(mine)
        free_at = int(mine[-1].ts_ns[-1]) + S
    description = (
        f"{what} to {server.ip}:{server.port} (SNI {sni}): {len(truths)} bursts of "
        f"{_ranges(burst_bytes)} B at {_ranges(rate)} B/s in {slots} slots every "
        f"{gap_s:.0f} s +-{jitter:.0%}"
    )
    return Session(name, "exfil", Endpoint(client.ip), server, flows, truths, description)


def exfil_pull_after_idle(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    sni: str = "api.example.net",
    bursts: int = 4,
    gap_s: float = 1200.0,
    jitter: float = 0.5,
    burst_bytes: IntRange = (2_000_000, 8_000_000),
    rate: FloatRange = (2e6, 5e6),
    command_bytes: IntRange = (200, 600),
    tail_s: float = 60.0,
    rtt_ms: float = 120.0,
) -> Session:
    """A foreign server that pulls: it sends a short command, the client answers with a burst.

    Models a command-and-control channel held open by the implant (one TCP/TLS connection,
    default to 77.88.8.8:443; the only SYN is at the start, no keepalives, as with the OS
    default of two hours) where the operator asks for data now and then. After the TLS
    handshake and a short check-in, each burst is preceded by ``gap_s * (1 + u)`` seconds of
    silence (``u`` uniform in [-jitter, jitter]; default 10-30 min), then the server sends a
    ``command_bytes`` record and, after a short think time, the client uploads ``burst_bytes`` at
    ``rate``; the server acknowledges with one short record.

    Why it matters: the silences exceed the flow table's idle timeout (120 s by default), so
    every burst arrives in a new flow record whose first packet comes from the server: a
    detector that takes the first packet's sender as the client, or keys on upload bursts in
    client-initiated flows, sees the local host as the responder.
    """
    server = server or Endpoint(ad.FOREIGN_RU, 443)
    check_schedule(gap_s, jitter)
    flow = TcpFlow(rng, client, server, to_ns(start_ts), rtt_ns=to_ns(rtt_ms / 1000), rate=2e6)
    tls_open(flow, sni, alpn=("http/1.1",))
    tls_request(flow, int(rng.integers(150, 400)), int(rng.integers(60, 200)))  # check-in
    truths = []
    for _ in range(bursts):
        idle = to_ns(gap_s * (1.0 + float(rng.uniform(-jitter, jitter))))
        command = pl.tls_app_data(rng, max(draw_int(rng, command_bytes), pl.TLS_RECORD_MIN))
        asked = flow.send(False, command, at_ns=flow.t + idle)
        think = int(rng.integers(20, 400)) * MS
        data = pl.tls_app_data(rng, draw_int(rng, burst_bytes))
        truths.append(
            flow.send(True, data, at_ns=asked.end_ns + think, rate=draw_float(rng, rate))
        )
        flow.send(False, pl.tls_app_data(rng, int(rng.integers(40, 90))), at_ns=flow.t + 2 * MS)
    flow.close(flow.t + to_ns(tail_s))
    description = (
        f"TLS to {server.ip}:{server.port} (SNI {sni}) pulled by the server: {bursts} bursts of "
        f"{_ranges(burst_bytes)} B at {_ranges(rate)} B/s after {gap_s:.0f} s +-{jitter:.0%} idle"
    )
    return Session.of_flow("exfil_pull_after_idle", "exfil", flow, server, description, truths)


def exfil_conn_per_burst(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    sni: str = "cdn-static.example.com",
    slots: int = 16,
    gap_s: float = 2100.0,
    jitter: float = 0.4,
    miss_prob: float = 0.1,
    burst_bytes: IntRange = (1_000_000, 4_000_000),
    rate: FloatRange = (2e6, 6e6),
    rtt_ms: float = 95.0,
) -> Session:
    """One new TLS connection per burst, on a jittered schedule over hours.

    Models an exfiltration tool that wakes up, connects (default to 193.0.6.139:443, SNI of an
    innocuous-looking CDN name), uploads what it collected and disconnects: slot 0 at
    ``start_ts``, then a slot every ``gap_s * (1 + u)`` s (``u`` uniform in [-jitter, jitter]:
    35 min +-40 %), each slot after the first skipped with probability ``miss_prob`` (machine
    asleep, nothing new to send). The defaults span about nine hours with about 14 bursts of
    1-4 MB (about 40 MB of capture); ``burst_bytes=(5_000_000, 30_000_000)`` is the realistic
    size. Each connection: handshake, ClientHello with ``sni``, one upload of ``burst_bytes`` at
    ``rate``, a short answer, FIN from the client; every connection has its own client port.

    Why it matters: no single flow is long, periodic or quiet-then-bursty; only the
    conversation (this host and this party across connections) shows the pattern.
    """
    return _scheduled_uploads(
        "exfil_conn_per_burst", "TLS, a connection per burst,", rng, start_ts, client,
        server or Endpoint(ad.FOREIGN_NL, 443), sni=sni, slots=slots, gap_s=gap_s,
        jitter=jitter, miss_prob=miss_prob, burst_bytes=burst_bytes, rate=rate, rtt_ms=rtt_ms,
    )


def exfil_slow_uplink(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    sni: str = "files.example.org",
    slots: int = 16,
    gap_s: float = 2100.0,
    jitter: float = 0.4,
    miss_prob: float = 0.1,
    burst_bytes: IntRange = (1_000_000, 4_000_000),
    rate: FloatRange = (3.5e5, 4.5e5),
    chunk_bytes: int = 1_000_000,
    conn_per_chunk: bool = True,
    chunk_pause_s: FloatRange = (0.2, 1.5),
    rtt_ms: float = 190.0,
) -> Session:
    """:func:`exfil_conn_per_burst` over a slow uplink: ~0.4 MB/s, in ``chunk_bytes`` chunks.

    Models a device behind DSL or LTE (default to 114.114.114.114:443) whose tool uploads each
    burst in pieces: every chunk on a new TLS connection (``conn_per_chunk``; otherwise all
    chunks of a burst on one connection, the server answering each), ``chunk_pause_s`` apart.
    A burst's ground truth spans all its chunks and counts every upstream payload byte between
    its first and last upload packet, the handshakes of its later connections included.

    Why it matters: at 0.4 MB/s a burst is no faster than ordinary uploads and lasts seconds
    to minutes, and a chunk per connection cuts it into short flows, so neither a rate
    threshold nor a single flow's burst finds it.
    """
    return _scheduled_uploads(
        "exfil_slow_uplink", "TLS over a slow uplink", rng, start_ts, client,
        server or Endpoint(ad.FOREIGN_CN, 443), sni=sni, slots=slots, gap_s=gap_s,
        jitter=jitter, miss_prob=miss_prob, burst_bytes=burst_bytes, rate=rate, rtt_ms=rtt_ms,
        chunk_bytes=chunk_bytes, conn_per_chunk=conn_per_chunk, chunk_pause_s=chunk_pause_s,
    )


def exfil_many_small(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    sni: str = "telemetry.example.org",
    slots: int = 40,
    gap_s: float = 180.0,
    jitter: float = 0.4,
    miss_prob: float = 0.0,
    burst_bytes: IntRange = (50_000, 200_000),
    rate: FloatRange = (1e6, 4e6),
    rtt_ms: float = 180.0,
) -> Session:
    """Many small bursts (50-200 kB), every few minutes +-jitter, each on a new connection.

    Models low-and-slow exfiltration that trickles data out (default to 114.114.114.114:443,
    SNI of a telemetry-like name) in pieces small enough to pass for telemetry or page loads:
    40 slots 3 min +-40 % apart, about two hours.

    Why it matters: each burst is barely above the burst threshold and unremarkable alone;
    only their number, regularity and the total over hours to one foreign party stand out.
    """
    return _scheduled_uploads(
        "exfil_many_small", "TLS, many small uploads,", rng, start_ts, client,
        server or Endpoint(ad.FOREIGN_CN, 443), sni=sni, slots=slots, gap_s=gap_s,
        jitter=jitter, miss_prob=miss_prob, burst_bytes=burst_bytes, rate=rate, rtt_ms=rtt_ms,
    )


def exfil_jittered_session(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    sni: str = "push.example.net",
    bursts: int = 8,
    gap_s: float = 600.0,
    jitter: float = 0.4,
    miss_prob: float = 0.0,
    burst_bytes: IntRange = (1_000_000, 4_000_000),
    rate: FloatRange = (3e6, 8e6),
    heartbeat_s: float | None = 30.0,
    tail_s: float = 60.0,
    rtt_ms: float = 120.0,
) -> Session:
    """One long TLS session with upload bursts on a jittered period.

    Models an implant holding one connection (default to 77.88.8.8:443) with application
    heartbeats every ``heartbeat_s`` (a small record each way; None for silence) and uploading
    in ``bursts`` slots: the first ``gap_s * (1 + u)`` after the handshake, each next one
    ``gap_s * (1 + u)`` after the one before (``u`` uniform in [-jitter, jitter]; 10 min
    +-40 %), each skipped with probability ``miss_prob`` (the first never).

    Why it matters: +-40 % jitter defeats detectors that look for a fixed period; the
    bursts are still far larger than anything else in the session and regular on average.
    """
    server = server or Endpoint(ad.FOREIGN_RU, 443)
    check_schedule(gap_s, jitter, miss_prob)
    flow = TcpFlow(rng, client, server, to_ns(start_ts), rtt_ns=to_ns(rtt_ms / 1000), rate=3e6)
    tls_open(flow, sni, alpn=("http/1.1",))

    def quiet(until: int) -> None:
        if heartbeat_s is None:
            return
        beat = to_ns(heartbeat_s)
        for t in periodic(rng, flow.t, until - beat // 4, beat).tolist():
            request, response = int(rng.integers(30, 80)), int(rng.integers(30, 80))
            tls_request(flow, request, response, at_ns=t, think_ns=int(rng.integers(1, 5)) * MS)

    first = flow.t + to_ns(gap_s * (1.0 + float(rng.uniform(-jitter, jitter))))
    truths = []
    for at in jittered_slots(rng, first, bursts, gap_s, jitter, miss_prob):
        quiet(at)
        data = pl.tls_app_data(rng, draw_int(rng, burst_bytes))
        truths.append(flow.send(True, data, at_ns=at, rate=draw_float(rng, rate)))
        flow.send(False, pl.tls_app_data(rng, int(rng.integers(40, 90))), at_ns=flow.t + 2 * MS)
    end = flow.t + to_ns(tail_s)
    quiet(end)
    flow.close(end)
    description = (
        f"TLS to {server.ip}:{server.port} (SNI {sni}): {len(truths)} bursts of "
        f"{_ranges(burst_bytes)} B at {_ranges(rate)} B/s every {gap_s:.0f} s +-{jitter:.0%}"
    )
    return Session.of_flow("exfil_jittered_session", "exfil", flow, server, description, truths)
