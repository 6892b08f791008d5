"""Benign scenarios: the ordinary traffic a detector must not flag, including look-alikes.

Some of these are deliberately close to exfiltration on one axis (a large upload, a foreign
peer, steady encrypted UDP abroad) so tests can show which features tell them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from burstwatch.synth import addresses as ad
from burstwatch.synth import payloads as pl
from burstwatch.synth.conversations import MS, dns_lookup, tls_open, tls_request
from burstwatch.synth.flows import (
    DELAYED_ACK_NS,
    ClientPorts,
    FlowPackets,
    IntRange,
    TcpFlow,
    UdpFlow,
    draw_int,
    periodic,
)
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

# Foreign sites and the addresses they resolve to in the generated DNS answers.
FOREIGN_SITES: tuple[tuple[str, str], ...] = (
    ("www.bbc.co.uk", ad.FOREIGN_WEB[0]),
    ("ya.ru", ad.FOREIGN_WEB[1]),
    ("de.wikipedia.org", ad.FOREIGN_WEB[2]),
    ("tu-dresden.de", ad.FOREIGN_WEB[3]),
    ("www.umu.se", ad.FOREIGN_WEB[4]),
    ("www.sakura.ad.jp", ad.FOREIGN_WEB[5]),
)


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


def _page_loads(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None,
    sites: Sequence[tuple[str, str]],
    *,
    duration_s: float,
    page_interval_s: float,
    resolver: Endpoint | None,
    response_bytes: tuple[int, int],
    requests: tuple[int, int],
    rtt_ms: tuple[int, int],
) -> list[FlowPackets]:
    """Page loads at random times: a DNS lookup of a site, then 1-3 short TLS connections to it."""
    start = to_ns(start_ts)
    end = start + to_ns(duration_s)
    flows: list[FlowPackets] = []
    t = start + int(rng.exponential(page_interval_s / 2) * S)
    while t < end:
        name, ip = sites[int(rng.integers(len(sites)))]
        target = server or Endpoint(ip, 443)
        rtt = int(rng.integers(*rtt_ms)) * MS
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
    return flows


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
    flows = _page_loads(
        rng, start_ts, client, server, US_SITES, duration_s=duration_s,
        page_interval_s=page_interval_s, resolver=resolver, response_bytes=response_bytes,
        requests=requests, rtt_ms=(8, 40),
    )
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


# --- look-alikes for the conversation-level detector: long uploads, sessions abroad ---------


def continuous_upload_abroad(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    total_bytes: int = 200_000_000,
    rate: float = 2.5e6,
    piece_bytes: int = 8_000_000,
    sni: str = "gfs208n100.userstorage.mega.co.nz",
    rtt_ms: float = 105.0,
) -> Session:
    """One large upload to a foreign file-hosting site at a steady rate, with no quiet period.

    Models a user sharing a large file (default 200 MB at 2.5 MB/s to 31.216.144.5:443, LU):
    after the TLS handshake and one API call, ``total_bytes`` go up on the same connection as
    the application writes ``piece_bytes`` at a time (between pieces only about a round trip
    passes), then the server answers and the client closes.

    Why it matters: it is large, fast, encrypted and abroad, like exfiltration, but it is one
    continuous transfer with no quiet period before it and no repetition after it; a detector
    of burst transmissions must not flag it above low.
    """
    server = server or Endpoint(ad.FOREIGN_FILES_LU, 443)
    flow = TcpFlow(rng, client, server, to_ns(start_ts), rtt_ns=to_ns(rtt_ms / 1000), rate=rate)
    tls_open(flow, sni)
    tls_request(flow, int(rng.integers(600, 1200)), int(rng.integers(300, 800)))
    left = total_bytes
    while left > 0:
        part = min(piece_bytes, left)
        left -= part
        data = pl.tls_app_data(rng, max(part, pl.TLS_RECORD_MIN))
        flow.send(True, data, at_ns=flow.t + int(rng.integers(0, 2)) * MS, rate=rate,
                  ack_last=left <= 0)
    flow.send(False, pl.tls_app_data(rng, int(rng.integers(200, 600))), at_ns=flow.t + 20 * MS)
    flow.close(flow.t + int(rng.uniform(0.5, 3.0) * S))
    return Session.of_flow(
        "continuous_upload_abroad", "benign", flow, server,
        f"continuous upload of {total_bytes} B to {server.ip} at {rate:.0f} B/s (SNI {sni})",
    )


def photo_backup_home(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    photos: int = 10,
    photo_bytes: IntRange = (1_000_000, 4_000_000),
    connections: int = 3,
    rate: float = 6e6,
    sni: str = "p97-content.icloud.com",
    rtt_ms: float = 30.0,
) -> Session:
    """A phone or PC backing up new photos to a home-country (US) cloud.

    Models a photo library sync (default Apple iCloud, 17.248.185.40:443): ``photos`` uploads
    of ``photo_bytes`` each, dealt round-robin to ``connections`` parallel TLS connections
    that share the uplink's ``rate``; each photo follows a small metadata request and gets a
    short answer, and each connection is closed a few seconds after its last photo.

    Why it matters: several large uploads in a row look like bursts, but to a domestic
    provider the host uses routinely; the destination's country and familiarity must keep
    it low.
    """
    server = server or Endpoint(ad.US_PHOTOS, 443)
    start = to_ns(start_ts)
    ports = ClientPorts(rng, client.port)
    rtt = to_ns(rtt_ms / 1000)
    per = rate / connections
    sizes = [draw_int(rng, photo_bytes) for _ in range(photos)]
    flows = []
    at = start
    for c in range(connections):
        queue = sizes[c::connections]
        if not queue:
            break
        flow = TcpFlow(rng, Endpoint(client.ip, ports.take()), server, at, rtt_ns=rtt, rate=per)
        tls_open(flow, sni)
        for size in queue:
            tls_request(flow, int(rng.integers(400, 900)), int(rng.integers(200, 700)),
                        at_ns=flow.t + int(rng.integers(5, 80)) * MS)
            data = pl.tls_app_data(rng, max(size, pl.TLS_RECORD_MIN))
            flow.send(True, data, at_ns=flow.t + int(rng.integers(2, 20)) * MS, rate=per)
            reply = pl.tls_app_data(rng, int(rng.integers(300, 900)))
            flow.send(False, reply, at_ns=flow.t + int(rng.integers(5, 40)) * MS)
        flow.close(flow.t + int(rng.uniform(2.0, 15.0) * S))
        flows.append(flow.build())
        at += int(rng.uniform(0.05, 0.5) * S)
    return Session(
        "photo_backup_home", "benign", Endpoint(client.ip), server, flows,
        description=f"photo backup of {sum(sizes)} B in {photos} uploads to {server.ip} (SNI {sni})",
    )


def _ssh_typing(
    rng: np.random.Generator, flow: TcpFlow, at_ns: int, chars: int, key_interval_s: float,
    output: int,
) -> None:
    """Type ``chars`` keys (the last is Enter): each key goes up as a 36-byte packet and comes
    back as an echo a round trip later; Enter brings ``output`` bytes of terminal output."""
    gaps = np.clip(rng.lognormal(np.log(key_interval_s), 0.45, size=chars), 0.06, 1.5)
    keys = at_ns + np.concatenate([[0], np.cumsum((gaps[1:] * S).astype(np.int64))])
    echoes = keys + flow.rtt + rng.integers(200_000, 900_000, size=chars)
    events = sorted([(int(t), 0, k) for k, t in enumerate(keys)]
                    + [(int(t), 1, k) for k, t in enumerate(echoes)])
    for t, kind, k in events:
        if kind == 0:
            flow.send(True, pl.ssh_encrypted(rng, pl.SSH_CHANNEL_DATA_HEADER + 1), at_ns=t,
                      ack_last=False)
        elif k == chars - 1:
            flow.send(False, pl.ssh_channel_data(rng, output), at_ns=t, rate=2e6)
        else:
            flow.send(False, pl.ssh_encrypted(rng, pl.SSH_CHANNEL_DATA_HEADER + 1), at_ns=t,
                      ack_last=False)
            later = int(np.searchsorted(keys, t, side="right"))
            if later == chars or int(keys[later]) > t + DELAYED_ACK_NS:  # no key to carry the ACK
                flow.ack(t + DELAYED_ACK_NS + int(rng.integers(100_000, 300_000)))


def ssh_interactive_abroad(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    duration_s: float = 2400.0,
    think_s: float = 8.0,
    long_pause_prob: float = 0.08,
    long_pause_s: tuple[float, float] = (60.0, 420.0),
    key_interval_s: float = 0.16,
    command_chars: tuple[int, int] = (2, 40),
    output_bytes: float = 400.0,
    rtt_ms: float = 150.0,
    client_version: str = "OpenSSH_9.2p1 Debian-2+deb12u3",
    server_version: str = "OpenSSH_8.9p1 Ubuntu-3ubuntu0.10",
) -> Session:
    """An interactive SSH session to a foreign host: keystrokes, echoes and human pauses.

    Models an administrator working on a server abroad (default 95.216.195.133:22, FI) for
    ``duration_s`` (40 min): banner exchange, key exchange (KEXINIT, curve25519, NEWKEYS) and
    public-key authentication, then commands typed a key at a time (36-byte packets about
    ``key_interval_s`` apart, each echoed a round trip later), each Enter answered by
    terminal output (log-normal around ``output_bytes``). Between commands the user thinks
    (exponential, mean ``think_s``) or, with probability ``long_pause_prob``, walks away for
    ``long_pause_s``; no keepalives, so long pauses leave the connection silent. Ends with
    ``exit``.

    Why it matters: a long-lived encrypted session abroad with quiet periods and bursts of
    activity; the bursts are tiny and mostly downstream, so it must stay low.
    """
    server = server or Endpoint(ad.FOREIGN_SSH_FI, 22)
    start = to_ns(start_ts)
    flow = TcpFlow(rng, client, server, start, rtt_ns=to_ns(rtt_ms / 1000), rate=2e6)
    flow.handshake()
    enc = pl.ssh_encrypted
    think = int(rng.integers(1, 3)) * MS
    flow.exchange(pl.ssh_banner(client_version), pl.ssh_banner(server_version), think_ns=think,
                  ack_response=False)
    flow.exchange(pl.ssh_kexinit(rng, True), pl.ssh_kexinit(rng, False), think_ns=think,
                  ack_response=False)
    flow.exchange(pl.ssh_ecdh_init(rng), pl.ssh_ecdh_reply(rng), think_ns=2 * think,
                  ack_response=False)
    # NEWKEYS and service request; publickey query; signed request; session channel; shell
    for k, (up, down) in enumerate(((17, 17), (118, 82), (201, 1), (24, 17))):
        up_bytes = (pl.ssh_newkeys(rng) if k == 0 else b"") + enc(rng, up)
        flow.exchange(up_bytes, enc(rng, down), think_ns=think, ack_response=False)
    request = enc(rng, 320) + enc(rng, 40) + enc(rng, 20)  # pty-req, env LANG, shell
    motd = enc(rng, 14) + enc(rng, 5) + pl.ssh_channel_data(rng, int(rng.integers(600, 1500)))
    flow.exchange(request, motd, think_ns=5 * think)
    end = start + to_ns(duration_s)
    lo, hi = command_chars
    while True:
        pause = float(rng.exponential(think_s)) + 0.3
        if rng.random() < long_pause_prob:
            pause = float(rng.uniform(*long_pause_s))
        at = flow.t + to_ns(pause)
        if at >= end:
            break
        output = int(np.clip(rng.lognormal(np.log(output_bytes), 1.3), 30, 200_000))
        _ssh_typing(rng, flow, at, int(rng.integers(lo, hi + 1)), key_interval_s, output)
    _ssh_typing(rng, flow, flow.t + to_ns(float(rng.uniform(1.0, 4.0))), 5, key_interval_s, 120)
    # exit-status, EOF and CLOSE from the server; the client's CLOSE; the client hangs up
    flow.send(False, enc(rng, 25) + enc(rng, 5) + enc(rng, 5), at_ns=flow.t + 2 * MS)
    flow.send(True, enc(rng, 5), at_ns=flow.t + MS, ack_last=False)
    flow.close(flow.t + MS)
    return Session.of_flow(
        "ssh_interactive_abroad", "benign", flow, server,
        f"interactive SSH to {server.ip}:{server.port} for {duration_s:.0f} s",
    )


def browsing_abroad(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    duration_s: float = 180.0,
    page_interval_s: float = 12.0,
    resolver: Endpoint | None = None,
    response_bytes: tuple[int, int] = (2_000, 150_000),
    requests: tuple[int, int] = (1, 5),
    rtt_ms: tuple[int, int] = (80, 260),
) -> Session:
    """:func:`browsing`, but to foreign sites (news, search, an encyclopedia, universities).

    Models a user reading sites abroad (GB, RU, NL, DE, SE, JP): page loads of 1-3 short TLS
    connections each, small requests up and larger responses down, intercontinental round
    trips.

    Why it matters: many new foreign parties, all encrypted, some in the countries the
    exfiltration scenarios use; but the traffic is mostly download and short-lived.
    """
    flows = _page_loads(
        rng, start_ts, client, server, FOREIGN_SITES, duration_s=duration_s,
        page_interval_s=page_interval_s, resolver=resolver, response_bytes=response_bytes,
        requests=requests, rtt_ms=rtt_ms,
    )
    target = server or Endpoint(FOREIGN_SITES[0][1], 443)
    return Session(
        "browsing_abroad", "benign", client, target, flows,
        description="web browsing to foreign sites",
    )


# Packages an Ubuntu 24.04 upgrade fetches: (source, binary package, version).
_UBUNTU_PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("linux", "linux-image-6.8.0-45-generic", "6.8.0-45.45"),
    ("linux", "linux-modules-6.8.0-45-generic", "6.8.0-45.45"),
    ("linux", "linux-modules-extra-6.8.0-45-generic", "6.8.0-45.45"),
    ("linux-firmware", "linux-firmware", "20240318.git3b128b60-0ubuntu2.3"),
    ("glibc", "libc6", "2.39-0ubuntu8.3"),
    ("openssl", "libssl3t64", "3.0.13-0ubuntu3.4"),
    ("systemd", "systemd", "255.4-1ubuntu8.4"),
    ("python3.12", "libpython3.12-stdlib", "3.12.3-1ubuntu0.2"),
    ("mesa", "libgl1-mesa-dri", "24.0.9-0ubuntu0.1"),
    ("curl", "libcurl4t64", "8.5.0-2ubuntu10.4"),
)


def os_update_abroad(
    rng: np.random.Generator,
    start_ts: float,
    client: Endpoint,
    server: Endpoint | None = None,
    *,
    total_bytes: int = 20_000_000,
    packages: int = 8,
    rate: float = 4e6,
    host: str = "archive.ubuntu.com",
    rtt_ms: float = 95.0,
) -> Session:
    """An OS update fetched over plain HTTP from a foreign mirror (default Canonical, GB).

    Models ``apt upgrade`` on one keep-alive connection to 91.189.91.38:80: the index files
    (InRelease) first, then ``packages`` .deb files adding up to ``total_bytes``, each a short
    readable GET up and a large body down at ``rate``.

    Why it matters: a large, fast transfer with a foreign party, but a download: the upload
    side is a few hundred bytes per request.
    """
    server = server or Endpoint(ad.FOREIGN_MIRROR_GB, 80)
    flow = TcpFlow(rng, client, server, to_ns(start_ts), rtt_ns=to_ns(rtt_ms / 1000), rate=rate)
    flow.handshake()
    agent = "Debian APT-HTTP/1.3 (2.7.14)"
    for suite in ("noble-updates", "noble-security"):
        flow.exchange(
            pl.http_request(host, f"/ubuntu/dists/{suite}/InRelease", user_agent=agent),
            pl.http_response(rng, int(rng.integers(100_000, 130_000)), "text/plain"),
            think_ns=int(rng.integers(1, 10)) * MS, rate=rate,
        )
    count = max(1, min(packages, total_bytes))
    weights = rng.dirichlet(np.ones(count))
    sizes = np.maximum(1, (weights * total_bytes).astype(np.int64))
    sizes[-1] = max(1, total_bytes - int(sizes[:-1].sum()))
    for k, size in enumerate(sizes.tolist()):
        source, package, version = _UBUNTU_PACKAGES[k % len(_UBUNTU_PACKAGES)]
        prefix = source[:4] if source.startswith("lib") else source[0]
        path = f"/ubuntu/pool/main/{prefix}/{source}/{package}_{version}_amd64.deb"
        flow.exchange(
            pl.http_request(host, path, user_agent=agent),
            pl.http_response(rng, size, "application/vnd.debian.binary-package"),
            think_ns=int(rng.integers(1, 10)) * MS, rate=rate,
        )
    flow.close(flow.t + int(rng.uniform(0.1, 1.0) * S), from_client=True)
    return Session.of_flow(
        "os_update_abroad", "benign", flow, server,
        f"HTTP update download of {total_bytes} B from {server.ip}",
    )
