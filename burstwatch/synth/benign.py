"""Benign scenarios: the ordinary traffic a detector must not flag, including look-alikes.

Some of these are deliberately close to exfiltration on one axis (a large upload, a foreign
peer, steady encrypted UDP abroad) so tests can show which features tell them apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from burstwatch.synth import addresses as ad
from burstwatch.synth import payloads as pl
from burstwatch.synth.conversations import MS, dns_lookup, tls_open, tls_request
from burstwatch.synth.flows import FlowPackets, TcpFlow, UdpFlow, periodic
from burstwatch.synth.model import Endpoint, Session, to_ns

S = 1_000_000_000

# Hostnames and the US addresses they resolve to in the generated DNS answers.
US_SITES: tuple[tuple[str, str], ...] = (
    ("www.google.com", ad.US_WEB[0]),
    ("fonts.gstatic.com", ad.US_WEB[1]),
    ("www.bing.com", ad.US_WEB[2]),
    ("d1.awsstatic.com", ad.US_WEB[3]),
    ("images-na.ssl-images-amazon.com", ad.US_WEB[4]),
    ("www.reddit.com", ad.US_WEB[5]),
    ("www.apple.com", ad.US_WEB[6]),
    ("twitter.com", ad.US_WEB[7]),
)
DNS_ANSWERS: dict[str, str] = dict(US_SITES) | {
    "time.windows.com": ad.US_UPDATE,
    "api.github.com": "140.82.112.6",  # GitHub, US
    "outlook.office365.com": ad.US_WEB[2],
}
DNS_NAMES: tuple[str, ...] = tuple(DNS_ANSWERS)


def _resolver(server: Endpoint | None) -> Endpoint:
    return server or Endpoint(ad.US_DNS, 53)


def _tls_connection(
    rng: np.random.Generator,
    client: Endpoint,
    server: Endpoint,
    at_ns: int,
    sni: str,
    requests: int,
    *,
    rtt_ns: int,
    response: tuple[int, int] = (1_000, 60_000),
) -> FlowPackets:
    """A short HTTPS connection: a few requests, some idle, then closed by either side."""
    flow = TcpFlow(
        rng, Endpoint(client.ip), server, at_ns, rtt_ns=rtt_ns, rate=float(rng.uniform(2e6, 6e6))
    )
    tls_open(flow, sni)
    for _ in range(requests):
        tls_request(
            flow,
            int(rng.integers(200, 900)),
            int(rng.integers(*response)),
            at_ns=flow.t + int(rng.integers(1, 400)) * MS,
        )
    closer = rng.random()
    flow.close(flow.t + int(rng.uniform(2, 20) * S), from_client=closer < 0.45, rst=closer > 0.9)
    return flow.build()


def browsing(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    duration_s: float = 120.0,
    page_interval_s: float = 12.0,
    resolver: Endpoint | None = None,
    response_bytes: tuple[int, int] = (1_000, 60_000),
    requests: tuple[int, int] = (1, 5),
) -> Session:
    """Web browsing: page loads (DNS lookup, then 1-3 short TLS connections) to US sites.

    Small requests up, moderate responses down (``requests`` per connection and
    ``response_bytes`` each, inclusive ranges). ``server`` pins every connection to one host.
    """
    start = to_ns(start_ts)
    end = start + to_ns(duration_s)
    flows: list[FlowPackets] = []
    t = start + int(rng.exponential(page_interval_s / 2) * S)
    while t < end:
        name, ip = US_SITES[int(rng.integers(len(US_SITES)))]
        target = server or Endpoint(ip, 443)
        rtt = int(rng.integers(8, 40)) * MS
        flows.append(dns_lookup(rng, client.ip, _resolver(resolver), t, name, [target.ip]))
        for k in range(int(rng.integers(1, 4))):
            at = t + 30 * MS + k * int(rng.integers(5, 200)) * MS
            count = int(rng.integers(requests[0], requests[1] + 1))
            flows.append(
                _tls_connection(
                    rng, client, target, at, name, count, rtt_ns=rtt, response=response_bytes
                )
            )
        t += int(rng.exponential(page_interval_s) * S) + S
    target = server or Endpoint(US_SITES[0][1], 443)
    return Session(
        "browsing", "benign", client, target, flows, description="web browsing to US sites"
    )


def video_stream(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    duration_s: float = 60.0,
    chunk_bytes: int = 500_000,
    chunk_interval_s: float = 4.0,
    rate: float = 2.5e6,
    sni: str = "ipv4-c001-lax001.oca.nflxvideo.net",
    rtt_ms: float = 20.0,
) -> Session:
    """Video streaming over one TLS connection: a small request, then a chunk down, every few s."""
    server = server or Endpoint(ad.US_VIDEO, 443)
    start = to_ns(start_ts)
    flow = TcpFlow(rng, client, server, start, rtt_ns=to_ns(rtt_ms / 1000), rate=rate)
    tls_open(flow, sni)
    end = start + to_ns(duration_s)
    t = flow.t
    while t < end:
        size = int(chunk_bytes * rng.uniform(0.8, 1.2))
        tls_request(
            flow, int(rng.integers(350, 600)), size, at_ns=t, think_ns=int(rng.integers(2, 10)) * MS
        )
        t += to_ns(chunk_interval_s * rng.uniform(0.9, 1.1))
    flow.close(max(flow.t, end), from_client=True)
    return Session.of_flow("video_stream", "benign", flow, server, f"video stream from {server.ip}")


def video_stream_abroad(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    **kwargs: Any,
) -> Session:
    """:func:`video_stream` from a foreign CDN (default BBC, GB)."""
    server = server or Endpoint(ad.FOREIGN_VIDEO_GB, 443)
    session = video_stream(
        rng,
        start_ts,
        client,
        server,
        sni="vod-dash-uk-live.akamaized.net",
        rtt_ms=kwargs.pop("rtt_ms", 85.0),
        **kwargs,
    )
    session.name = "video_stream_abroad"
    return session


def backup_upload(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    total_bytes: int = 20_000_000,
    part_bytes: int = 5_000_000,
    rate: float = 2.5e6,
    sni: str = "s3.amazonaws.com",
    rtt_ms: float = 25.0,
) -> Session:
    """Cloud backup to a domestic (US) host: a large, sustained upload in multipart pieces."""
    server = server or Endpoint(ad.US_BACKUP, 443)
    flow = TcpFlow(rng, client, server, to_ns(start_ts), rtt_ns=to_ns(rtt_ms / 1000), rate=rate)
    tls_open(flow, sni)
    left = total_bytes
    while left > 0:
        part = min(part_bytes, left)
        flow.send(
            True,
            pl.tls_app_data(rng, max(part, pl.TLS_RECORD_MIN)),
            at_ns=flow.t + 5 * MS,
            rate=rate,
        )
        flow.send(False, pl.tls_app_data(rng, int(rng.integers(300, 500))), at_ns=flow.t + 20 * MS)
        left -= part
    flow.close(flow.t + 2 * S)
    return Session.of_flow("backup_upload", "benign", flow, server, f"backup upload of {total_bytes} B to {server.ip}")


def large_download(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    total_bytes: int = 30_000_000,
    rate: float = 4e6,
    sni: str = "ftp.acc.umu.se",
    rtt_ms: float = 110.0,
) -> Session:
    """One large HTTPS download from abroad (default a Swedish mirror)."""
    server = server or Endpoint(ad.FOREIGN_DOWNLOAD_SE, 443)
    flow = TcpFlow(rng, client, server, to_ns(start_ts), rtt_ns=to_ns(rtt_ms / 1000), rate=rate)
    tls_open(flow, sni)
    tls_request(flow, 420, total_bytes, rate=rate)
    flow.close(flow.t + S)
    return Session.of_flow("large_download", "benign", flow, server, f"download of {total_bytes} B from {server.ip}")


def os_update(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    total_bytes: int = 15_000_000,
    rate: float = 5e6,
    host: str = "download.windowsupdate.com",
    path: str = "/c/msdownload/update/software/secu/2024/03/windows10.0-kb5035845-x64.cab",
    rtt_ms: float = 15.0,
) -> Session:
    """An OS update fetched over plain HTTP from a US CDN: readable request, large body down."""
    server = server or Endpoint(ad.US_UPDATE, 80)
    flow = TcpFlow(rng, client, server, to_ns(start_ts), rtt_ns=to_ns(rtt_ms / 1000), rate=rate)
    flow.handshake()
    flow.exchange(
        pl.http_request(host, path, user_agent="Microsoft-Delivery-Optimization/10.0"),
        pl.http_response(rng, total_bytes, "application/vnd.ms-cab-compressed"),
        rate=rate,
    )
    flow.close(flow.t + 3 * S, from_client=False)
    return Session.of_flow("os_update", "benign", flow, server, f"HTTP update download of {total_bytes} B from {server.ip}")


def encrypted_call(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    duration_s: float = 60.0,
    pps: float = 50.0,
    size: tuple[int, int] = (100, 200),
    rtt_ms: float = 90.0,
) -> Session:
    """A voice/video call abroad: STUN check, then SRTP both ways at ``pps`` with small packets."""
    server = server or Endpoint(ad.FOREIGN_CALL_DE, 3478)
    start = to_ns(start_ts)
    flow = UdpFlow(rng, client, server, rtt_ns=to_ns(rtt_ms / 1000))
    txid = rng.bytes(12)
    flow.add(start, True, [bytes.fromhex("000100002112a442") + txid])
    flow.add(
        start + flow.rtt,
        False,
        [bytes.fromhex("0101000c2112a442") + txid + bytes.fromhex("0020000800011234a1b2c3d4")],
    )
    n = int(duration_s * pps)
    interval = S / pps
    for side, t0 in ((True, start + flow.rtt + 5 * MS), (False, start + 2 * flow.rtt)):
        ts = t0 + (np.arange(n) * interval + rng.normal(0, 0.1 * interval, n).clip(0, None)).astype(
            np.int64
        )
        ts = np.maximum.accumulate(ts)
        ssrc, seq0, rtp0 = (int(x) for x in rng.integers(0, 2**31, size=3))
        lengths = rng.integers(size[0], size[1] + 1, size=n) - 22  # RTP header + auth tag
        flow.add(
            ts,
            side,
            [
                pl.srtp_packet(rng, ssrc, seq0 + k, rtp0 + 960 * k, int(lengths[k]))
                for k in range(n)
            ],
        )
    return Session.of_flow("encrypted_call", "benign", flow, server, f"SRTP call with {server.ip}")


def dns_lookups(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    duration_s: float = 60.0,
    per_minute: float = 10.0,
) -> Session:
    """Background name lookups to 8.8.8.8 (A and AAAA) at random times."""
    server = _resolver(server)
    start = to_ns(start_ts)
    flows: list[FlowPackets] = []
    times = periodic(rng, start, start + to_ns(duration_s), to_ns(60.0 / per_minute), jitter=0.9)
    for t in times:
        name = DNS_NAMES[int(rng.integers(len(DNS_NAMES)))]
        flows.append(dns_lookup(rng, client.ip, server, int(t), name, [DNS_ANSWERS[name]]))
    return Session(
        "dns_lookups", "benign", client, server, flows, description=f"DNS to {server.ip}"
    )
