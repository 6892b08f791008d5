"""The project's own captures: the demo (a small office with one exfiltrating device) and a
small capture per link type / file format, so readers can be tested on each variant.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from burstwatch.synth import addresses as ad
from burstwatch.synth.benign import browsing, dns_lookups, encrypted_call, os_update, video_stream
from burstwatch.synth.conversations import MS, dns_lookup, quic_open, tls_open, tls_request
from burstwatch.synth.exfil import exfil_tls
from burstwatch.synth.flows import FlowPackets, TcpFlow, UdpFlow, merge
from burstwatch.synth.model import NS, Endpoint, Session, to_ns
from burstwatch.synth.writer import PcapWriter

DEMO_SEED = 7
DEMO_START = 1_710_252_000.0  # 2024-03-12 14:00:00 UTC
DEMO_DURATION_S = 240.0
EXFIL_HOST = ad.internal_v4(50)
EXFIL_SNI = "relay.example.net"


def office_sessions(
    rng: np.random.Generator, start_ts: float = DEMO_START, duration_s: float = DEMO_DURATION_S
) -> list[Session]:
    """A few minutes of a small office, plus one device (192.168.1.50) exfiltrating over TLS.

    The device opens TLS to 77.88.8.8:443 ten seconds in, stays quiet for 50 s, then uploads
    three 450 kB bursts at 5 MB/s, 60 s apart (at +60 s, +120 s, +180 s). Benign volumes are
    scaled down with it so the file stays under 3 MB.
    """
    t = start_ts
    host = ad.internal_v4
    v6_client = Endpoint(ad.internal_v6(0x14))
    v6_dns = Endpoint(ad.US_DNS_V6, 53)
    resp, reqs = (500, 10_000), (1, 3)
    sessions = [
        browsing(
            rng,
            t,
            Endpoint(host(10)),
            duration_s=duration_s - 20,
            page_interval_s=50,
            response_bytes=resp,
            requests=reqs,
        ),
        browsing(
            rng,
            t + 3,
            Endpoint(host(11)),
            duration_s=duration_s - 30,
            page_interval_s=45,
            response_bytes=resp,
            requests=reqs,
        ),
        video_stream(rng, t + 20, Endpoint(host(11)), duration_s=40, chunk_bytes=25_000),
        encrypted_call(rng, t + 95, Endpoint(host(12)), duration_s=8),
        dns_lookups(rng, t, Endpoint(host(13)), duration_s=duration_s, per_minute=4),
        os_update(rng, t + 70, Endpoint(host(13)), total_bytes=120_000, rate=2e6),
        browsing(
            rng,
            t + 8,
            v6_client,
            Endpoint(ad.US_V6_WEB, 443),
            duration_s=duration_s - 40,
            page_interval_s=80,
            resolver=v6_dns,
            response_bytes=resp,
            requests=reqs,
        ),
        exfil_tls(
            rng,
            t + 10,
            Endpoint(EXFIL_HOST),
            Endpoint(ad.FOREIGN_RU, 443),
            sni=EXFIL_SNI,
            quiet_s=50,
            burst_bytes=450_000,
            rate=5e6,
            gap_s=60,
            tail_s=30,
        ),
    ]
    # the device looks its server up first, as any client would
    exfil = sessions[-1]
    lookup = dns_lookup(
        rng, EXFIL_HOST, Endpoint(ad.US_DNS, 53), to_ns(t + 9.9), EXFIL_SNI, [ad.FOREIGN_RU]
    )
    exfil.flows.insert(0, lookup)
    return sessions


def format_sample(rng: np.random.Generator, start_ts: float = DEMO_START) -> list[FlowPackets]:
    """A few small flows of every kind a reader must decode: TCP/TLS v4 and v6, DNS, QUIC."""
    start = to_ns(start_ts)
    client4, client6 = Endpoint(ad.internal_v4(20), 50000), Endpoint(ad.internal_v6(0x20), 50001)
    flows = [
        dns_lookup(
            rng, client4.ip, Endpoint(ad.US_DNS, 53), start, "www.google.com", [ad.US_WEB[0]]
        )
    ]
    web = TcpFlow(rng, client4, Endpoint(ad.US_WEB[0], 443), start + 30 * MS, rtt_ns=20 * MS)
    tls_open(web, "www.google.com")
    tls_request(web, 400, 3000)
    web.close(web.t + 200 * MS)
    flows.append(web.build())
    web6 = TcpFlow(rng, client6, Endpoint(ad.US_V6_WEB, 443), start + 60 * MS, rtt_ns=25 * MS)
    tls_open(web6, "www.google.com")
    tls_request(web6, 300, 1500)
    web6.close(web6.t + 100 * MS, rst=True)
    flows.append(web6.build())
    quic = UdpFlow(
        rng, Endpoint(ad.internal_v4(20), 50002), Endpoint(ad.US_WEB[1], 443), rtt_ns=20 * MS
    )
    quic_open(quic, start + 90 * MS)
    flows.append(quic.build())
    return flows


@dataclass(frozen=True)
class FormatVariant:
    """One file of the link-type/format set."""

    file: str
    link: str = "ethernet"
    nanosecond: bool = False
    big_endian: bool = False
    snaplen: int = 262144
    ipv4_only: bool = False
    ipv6_only: bool = False


FORMAT_VARIANTS: tuple[FormatVariant, ...] = (
    FormatVariant("ethernet.pcap"),
    FormatVariant("ethernet_ns.pcap", nanosecond=True),
    FormatVariant("ethernet_be.pcap", big_endian=True),
    FormatVariant("ethernet_ns_be.pcap", nanosecond=True, big_endian=True),
    FormatVariant("ethernet_snap96.pcap", snaplen=96),
    FormatVariant("ethernet.pcap.gz"),
    FormatVariant("vlan.pcap", link="vlan"),
    FormatVariant("qinq.pcap", link="qinq"),
    FormatVariant("sll.pcap", link="sll"),
    FormatVariant("sll2.pcap", link="sll2"),
    FormatVariant("raw.pcap", link="raw"),
    FormatVariant("ipv4.pcap", link="ipv4", ipv4_only=True),
    FormatVariant("ipv6.pcap", link="ipv6", ipv6_only=True),
    FormatVariant("null.pcap", link="null"),
    FormatVariant("null_be.pcap", link="null", big_endian=True),
    FormatVariant("loop.pcap", link="loop"),
)


def write_formats(out_dir: Path, seed: int = DEMO_SEED) -> dict[str, dict[str, Any]]:
    """Write the format set into ``out_dir``; returns a manifest entry per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, Any]] = {}
    for variant in FORMAT_VARIANTS:
        flows = format_sample(np.random.default_rng(seed))
        if variant.ipv4_only or variant.ipv6_only:
            want = 4 if variant.ipv4_only else 6
            flows = [f for f in flows if f.client.version == want]
        with PcapWriter(
            out_dir / variant.file,
            link=variant.link,
            nanosecond=variant.nanosecond,
            big_endian=variant.big_endian,
            snaplen=variant.snaplen,
        ) as w:
            count = w.write_all(merge(flows))
        entry = asdict(variant)
        del entry["file"], entry["ipv4_only"], entry["ipv6_only"]
        entry.update(
            linktype=w.link.linktype,
            packets=count,
            ipv4_packets=sum(len(f) for f in flows if f.client.version == 4),
            ipv6_packets=sum(len(f) for f in flows if f.client.version == 6),
            flows=[_flow_entry(f) for f in flows],
        )
        manifest[f"formats/{variant.file}"] = entry
    return manifest


def _flow_entry(f: FlowPackets) -> dict[str, Any]:
    proto = "tcp" if f.proto == 6 else "udp"
    return {
        "proto": proto,
        "client": f"{f.client.ip}:{f.client.port}",
        "server": f"{f.server.ip}:{f.server.port}",
        "packets": len(f),
    }


def write_demo(path: Path, seed: int = DEMO_SEED) -> dict[str, Any]:
    """Write the demo capture; returns its manifest entry with the exfil session's truth."""
    sessions = office_sessions(np.random.default_rng(seed))
    with PcapWriter(path) as w:
        count = w.write_all(merge(f for s in sessions for f in s.flows))
    exfil = [s for s in sessions if s.kind == "exfil"]
    return {
        "packets": count,
        "start_ts": DEMO_START,
        "duration_s": DEMO_DURATION_S,
        "sessions": [
            {
                "name": s.name,
                "kind": s.kind,
                "client": s.client.ip,
                "server": f"{s.server.ip}:{s.server.port}",
                "flows": len(s.flows),
                "packets": len(s),
                "description": s.description,
            }
            for s in sessions
        ],
        "exfil": [
            {
                "client": f"{s.client.ip}:{s.client.port}",
                "server": f"{s.server.ip}:{s.server.port}",
                "session_start_ts": s.start_ns / NS,
                "session_end_ts": s.end_ns / NS,
                "bursts": [
                    {**asdict(b), "start_ts": b.start_ns / NS, "end_ts": b.end_ns / NS}
                    for b in s.bursts
                ],
            }
            for s in exfil
        ],
    }


def write_project_pcaps(out_dir: Path, seed: int = DEMO_SEED) -> dict[str, Any]:
    """Regenerate everything in ``pcaps/``: demo, format set and MANIFEST.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"seed": seed, "files": {}}
    manifest["files"]["demo.pcap"] = write_demo(out_dir / "demo.pcap", seed)
    manifest["files"].update(write_formats(out_dir / "formats", seed))
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
