"""Exfiltration scenarios: a quiet session abroad that wakes up for short, fast encrypted uploads.

Every scenario has the same timeline so ground truth is easy to state: the session opens at
``start_ts``, stays quiet (keepalives only) for ``quiet_s``, then burst ``k`` starts at
``start_ts + quiet_s + k * gap_s`` and uploads ``burst_bytes`` at ``rate`` bytes/s; the session
ends ``tail_s`` after the last burst. The returned :class:`Session` lists each burst's real
first/last packet time and byte counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from burstwatch.synth import addresses as ad
from burstwatch.synth import payloads as pl
from burstwatch.synth.conversations import MS, quic_open, tls_open, wg_handshake
from burstwatch.synth.flows import TcpFlow, UdpFlow, pace, periodic, split_sizes
from burstwatch.synth.model import BurstTruth, Endpoint, Session, to_ns

DEFAULT_RATE = 10e6
DEFAULT_BURST = 2_000_000
S = 1_000_000_000


def _burst_starts(start_ns: int, quiet_s: float, gap_s: float, bursts: int) -> list[int]:
    return [start_ns + to_ns(quiet_s + k * gap_s) for k in range(bursts)]


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
    truths: list[BurstTruth] = []
    keep = to_ns(keepalive_s)
    for at in _burst_starts(start, quiet_s, gap_s, bursts):
        flow.keepalives(flow.t, at - keep // 4, keep)
        truth = flow.send(True, pl.tls_app_data(rng, burst_bytes), at_ns=at, rate=rate)
        truths.append(truth)
        flow.send(False, pl.tls_app_data(rng, int(rng.integers(40, 90))), at_ns=flow.t + 2 * MS)
    end = truths[-1].end_ns + to_ns(tail_s)
    flow.keepalives(flow.t, end - keep // 4, keep)
    flow.close(end)
    return Session(
        name="exfil_tls",
        kind="exfil",
        client=flow.client,
        server=server,
        flows=[flow.build()],
        bursts=truths,
        description=f"TLS to {server.ip}:{server.port} (SNI {sni}), {bursts} x {burst_bytes} B at {rate:.0f} B/s",
    )


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
    truths: list[BurstTruth] = []
    for at in [*_burst_starts(start, quiet_s, gap_s, bursts), None]:
        until = at if at is not None else truths[-1].end_ns + to_ns(tail_s)
        _quic_pings(rng, flow, ids.to_server, ids.to_client, t, until, to_ns(ping_s))
        if at is None:
            break
        sizes = split_sizes(burst_bytes, datagram, 40)
        ts = pace(rng, at, sizes, rate)
        up = [pl.quic_short(rng, ids.to_server, int(n)) for n in sizes]
        flow.add(ts, True, up)
        truths.append(flow.truth(ts, up))
        acks = ts[1::2] + flow.rtt
        flow.add(
            acks,
            False,
            [pl.quic_short(rng, ids.to_client, int(rng.integers(30, 48))) for _ in acks],
        )
        t = int(acks[-1]) if acks.size else int(ts[-1])
    close = truths[-1].end_ns + to_ns(tail_s)
    flow.add(close, True, [pl.quic_short(rng, ids.to_server, 45)])  # CONNECTION_CLOSE
    return Session(
        name="exfil_quic",
        kind="exfil",
        client=flow.client,
        server=server,
        flows=[flow.build()],
        bursts=truths,
        description=f"QUIC to {server.ip}:{server.port}, {bursts} x {burst_bytes} B at {rate:.0f} B/s",
    )


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
    truths: list[BurstTruth] = []
    for at in [*_burst_starts(start, quiet_s, gap_s, bursts), None]:
        until = at if at is not None else truths[-1].end_ns + to_ns(tail_s)
        transport(periodic(rng, t, until - to_ns(keepalive_s) // 4, to_ns(keepalive_s)), True, 0)
        if at is None:
            break
        if at - last_handshake > 120 * S:
            last_handshake = wg_handshake(flow, at - 2 * flow.rtt, mine, theirs)
        sizes = split_sizes(burst_bytes, inner_mtu, 64)  # the tunnelled packets
        ts = pace(rng, at, sizes + pl.WG_TRANSPORT_OVERHEAD, rate)
        up = [pl.wg_transport(rng, theirs, counters[True] + k, int(n)) for k, n in enumerate(sizes)]
        counters[True] += len(up)
        flow.add(ts, True, up)
        truths.append(flow.truth(ts, up))
        transport(ts[1::2] + flow.rtt, False, 52)
        t = int(ts[-1] + flow.rtt)
    return Session(
        name="exfil_wireguard",
        kind="exfil",
        client=client,
        server=server,
        flows=[flow.build()],
        bursts=truths,
        description=f"WireGuard to {server.ip}:{server.port}, {bursts} x {burst_bytes} B at {rate:.0f} B/s",
    )


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
    truths: list[BurstTruth] = []
    beat = to_ns(heartbeat_s)
    flow.add(start, True, [pl.random_bytes(rng, 48)])
    flow.add(start + flow.rtt, False, [pl.random_bytes(rng, 48)])
    for at in [*_burst_starts(start, quiet_s, gap_s, bursts), None]:
        until = at if at is not None else truths[-1].end_ns + to_ns(tail_s)
        hb = periodic(rng, t, until - beat // 4, beat)
        flow.add(hb, True, [pl.random_bytes(rng, 48) for _ in hb])
        flow.add(hb + flow.rtt, False, [pl.random_bytes(rng, 48) for _ in hb])
        if at is None:
            break
        sizes = split_sizes(burst_bytes, datagram, 64)
        ts = pace(rng, at, sizes, rate)
        up = [pl.random_bytes(rng, int(n)) for n in sizes]
        flow.add(ts, True, up)
        truths.append(flow.truth(ts, up))
        replies = ts[31::32] + flow.rtt
        flow.add(replies, False, [pl.random_bytes(rng, int(rng.integers(24, 64))) for _ in replies])
        t = int(ts[-1] + flow.rtt)
    return Session(
        name="exfil_udp_unknown",
        kind="exfil",
        client=flow.client,
        server=server,
        flows=[flow.build()],
        bursts=truths,
        description=f"unknown UDP to {server.ip}:{server.port}, {bursts} x {burst_bytes} B at {rate:.0f} B/s",
    )
