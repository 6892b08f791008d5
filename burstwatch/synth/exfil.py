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
from burstwatch.synth.conversations import MS, quic_open, tls_open, wg_handshake
from burstwatch.synth.flows import TcpFlow, UdpFlow, pace, periodic, split_sizes
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
