"""Protocol conversations laid on a transport flow: TLS, QUIC and WireGuard openings, DNS lookups.

Scenarios combine these; keeping them here means every scenario opens a TLS session or a
QUIC connection the same, parseable way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from burstwatch.synth import payloads as pl
from burstwatch.synth.flows import FloatRange, FlowPackets, TcpFlow, UdpFlow, draw_float
from burstwatch.synth.model import Endpoint, to_ns

MS = 1_000_000


def tls_open(
    flow: TcpFlow, sni: str, alpn: Sequence[str] = ("h2", "http/1.1"), at_ns: int | None = None
) -> None:
    """TCP handshake, ClientHello, the server's flight, and the client's Finished."""
    flow.handshake(at_ns)
    rng = flow.rng
    flow.exchange(
        pl.tls_client_hello(rng, sni, alpn),
        pl.tls_server_flight(rng, cert_bytes=int(rng.integers(2400, 4200))),
        think_ns=int(rng.integers(1, 4)) * MS,
        ack_response=False,
    )
    flow.send(True, pl.tls_client_finish(rng), at_ns=flow.t + int(rng.integers(1, 3)) * MS)


def tls_request(
    flow: TcpFlow,
    request: int,
    response: int,
    *,
    at_ns: int | None = None,
    think_ns: int | None = None,
    rate: float | None = None,
) -> None:
    """One encrypted request/response of the given sizes on an open TLS session."""
    rng = flow.rng
    think = think_ns if think_ns is not None else int(rng.integers(2, 40)) * MS
    flow.exchange(
        pl.tls_app_data(rng, max(request, pl.TLS_RECORD_MIN)),
        pl.tls_app_data(rng, max(response, pl.TLS_RECORD_MIN)),
        at_ns=at_ns,
        think_ns=think,
        rate=rate,
    )


def upload_connection(
    rng: np.random.Generator, client: Endpoint, server: Endpoint, at_ns: int, sni: str,
    parts: Sequence[int], *, rate: float, rtt_ns: int, pause_s: FloatRange = (0.2, 1.5),
) -> tuple[FlowPackets, int, int]:
    """A new TLS connection that uploads ``parts`` one after another and is closed by the client.

    The server answers each part with one short record; parts after the first wait
    ``pause_s`` after that answer. Returns the flow and the times of its first and last upload
    packet.
    """
    flow = TcpFlow(rng, client, server, at_ns, rtt_ns=rtt_ns, rate=rate)
    tls_open(flow, sni, alpn=("http/1.1",))
    first = last = -1
    for k, part in enumerate(parts):
        wait = int(rng.integers(1, 20)) * MS if k == 0 else to_ns(draw_float(rng, pause_s))
        data = pl.tls_app_data(rng, max(int(part), pl.TLS_RECORD_MIN))
        sent = flow.send(True, data, at_ns=flow.t + wait, rate=rate)
        flow.send(False, pl.tls_app_data(rng, int(rng.integers(60, 400))), at_ns=flow.t + 2 * MS)
        first = sent.start_ns if first < 0 else first
        last = sent.end_ns
    flow.close(flow.t + to_ns(float(rng.uniform(0.05, 1.0))))
    return flow.build(), first, last


@dataclass
class QuicIds:
    """Connection IDs each side puts in short headers sent to the other."""

    to_server: bytes
    to_client: bytes


def quic_open(flow: UdpFlow, at_ns: int) -> tuple[QuicIds, int]:
    """Client Initial (1200 B), server Initial/Handshake flight, client Handshake, first 1-RTT.

    Returns the connection IDs and the time the connection is established.
    """
    rng = flow.rng
    first_dcid, client_cid, server_cid = rng.bytes(8), rng.bytes(8), rng.bytes(8)
    flight = pl.quic_server_hello(rng, client_cid, server_cid)
    t_server = at_ns + flow.rtt
    t_done = t_server + 400_000
    flow.add(at_ns, True, [pl.quic_initial(rng, first_dcid, client_cid)])
    flow.add(t_server + 100_000 * np.arange(len(flight)), False, flight)
    flow.add(t_done, True, [pl.quic_initial(rng, server_cid, client_cid)])
    flow.add(t_done + 200_000, True, [pl.quic_short(rng, server_cid, int(rng.integers(60, 90)))])
    flow.add(t_done + flow.rtt, False, [pl.quic_short(rng, client_cid, int(rng.integers(40, 70)))])
    return QuicIds(to_server=server_cid, to_client=client_cid), t_done + flow.rtt


def wg_handshake(flow: UdpFlow, at_ns: int, sender: int, receiver: int) -> int:
    """Initiation (148 B) from the client, response (92 B) a round trip later; returns its time."""
    rng = flow.rng
    flow.add(at_ns, True, [pl.wg_initiation(rng, sender)])
    done = at_ns + flow.rtt
    flow.add(done, False, [pl.wg_response(rng, receiver, sender)])
    return done


def dns_lookup(
    rng: np.random.Generator,
    client_ip: str,
    resolver: Endpoint,
    at_ns: int,
    name: str,
    addresses: Sequence[str],
    *,
    rtt_ns: int = 12 * MS,
) -> FlowPackets:
    """A and AAAA queries from one ephemeral port, as glibc sends them, and their answers."""
    import ipaddress

    flow = UdpFlow(rng, Endpoint(client_ip), resolver, rtt_ns=rtt_ns)
    v4 = [ipaddress.ip_address(a).packed for a in addresses if ":" not in a]
    v6 = [ipaddress.ip_address(a).packed for a in addresses if ":" in a]
    for k, (qtype, answers) in enumerate(((pl.DNS_A, v4), (pl.DNS_AAAA, v6))):
        txid = int(rng.integers(0, 65536))
        t = at_ns + k * 60_000
        flow.add(t, True, [pl.dns_query(txid, name, qtype)])
        back = t + rtt_ns + int(rng.integers(0, max(1, rtt_ns // 4)))
        flow.add(back, False, [pl.dns_response(txid, name, answers, qtype)])
    return flow.build()
