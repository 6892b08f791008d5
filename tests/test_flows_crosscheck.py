"""Flow totals against an independent computation with scapy, on real and generated captures.

scapy decodes each packet on its own; we group by the direction-agnostic 5-tuple and count
packets and wire bytes per sending endpoint. burstwatch's flow rows for the same key (a key
may be split into several flows by timeouts or TCP close) must add up to the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import PcapNgReader, PcapReader

from burstwatch.flows import FlowRows
from burstwatch.flows import state as fs
from burstwatch.netaddr import format_addresses
from burstwatch.pipeline import run_flows

Key = tuple[int, tuple[str, int], tuple[str, int]]
Totals = dict[tuple[Key, tuple[str, int]], list[int]]


def _scapy_totals(path: Path) -> Totals:
    head = path.read_bytes()[:4]
    reader = PcapNgReader(str(path)) if head == b"\x0a\x0d\x0d\x0a" else PcapReader(str(path))
    totals: Totals = defaultdict(lambda: [0, 0])
    with reader:
        for pkt in reader:
            ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            if ip is None:
                continue
            if ip.version == 4:
                proto = ip.proto
            else:
                # the transport after any extension headers
                layer, nh = ip.payload, ip.nh
                while layer.__class__.__name__.startswith("IPv6ExtHdr"):
                    layer, nh = layer.payload, layer.nh
                proto = nh
            sport = dport = 0
            if pkt.haslayer(TCP) and proto == 6:
                sport, dport = pkt[TCP].sport, pkt[TCP].dport
            elif pkt.haslayer(UDP) and proto == 17:
                sport, dport = pkt[UDP].sport, pkt[UDP].dport
            elif pkt.haslayer(ICMP) and proto == 1:
                icmp = pkt[ICMP]
                sport, dport = (icmp.id, icmp.id) if icmp.type in (0, 8) else (icmp.type, icmp.code)
            src, dst = (str(ip.src), sport), (str(ip.dst), dport)
            a, b = sorted([src, dst], key=_order)
            key = (int(proto), a, b)
            t = totals[(key, src)]
            t[0] += 1
            t[1] += int(pkt.wirelen or len(pkt))
    return dict(totals)


def _order(ep: tuple[str, int]) -> tuple[int, int]:
    import ipaddress

    addr = ipaddress.ip_address(ep[0])
    value = int(addr) | (0xFFFF << 32) if addr.version == 4 else int(addr)
    return value, ep[1]


def _our_totals(path: Path) -> tuple[Totals, int]:
    totals: Totals = defaultdict(lambda: [0, 0])
    flows = 0
    for batch in run_flows([str(path)]):
        rows: FlowRows = batch.rows
        keep = np.flatnonzero(rows.kind == fs.ROW_FLOW)
        rows = rows.take(keep)
        flows += len(rows)
        o = format_addresses(rows.orig_hi, rows.orig_lo)
        r = format_addresses(rows.resp_hi, rows.resp_lo)
        for i in range(len(rows)):
            orig, resp = (o[i], int(rows.orig_port[i])), (r[i], int(rows.resp_port[i]))
            a, b = sorted([orig, resp], key=_order)
            key = (int(rows.proto[i]), a, b)
            for ep, p, w in ((orig, fs.I_PKTS0, fs.I_WIRE0), (resp, fs.I_PKTS1, fs.I_WIRE1)):
                if rows.acc_i[i, p]:
                    t = totals[(key, ep)]
                    t[0] += int(rows.acc_i[i, p])
                    t[1] += int(rows.acc_i[i, w])
    return dict(totals), flows


SHARED = [
    "ndpi-wireguard.pcap", "ndpi-tailscale.pcap", "ndpi-openvpn.pcap", "ndpi-tinc.pcap",
    "ndpi-forticlient.pcap", "ndpi-youtubeupload.pcap", "ndpi-whatsappfiles.pcap",
    "ndpi-dns-tunnel-iodine.pcap", "ndpi-dns_exfiltration.pcap", "ndpi-youtube_quic.pcap",
    "ndpi-sip.pcap", "ndpi-windowsupdate_over_http.pcap", "ndpi-http_ipv6.pcap",
    "filesamples-simple_http_sll2.pcap", "tcpdump-LINKTYPE_RAW_ipv4.pcap",
    "tcpdump-LINKTYPE_IPV6.pcap", "zeek-get-to-ssh-server.pcap", "zeek-modify-request.pcapng",
    "suricata-verify-pgsql-5000-query-results-truncated.pcap",
]


@pytest.mark.parametrize("name", SHARED)
def test_flow_totals_match_scapy_on_real_captures(shared_pcaps: Path, name: str) -> None:
    path = shared_pcaps / name
    ours, flows = _our_totals(path)
    theirs = _scapy_totals(path)
    assert flows >= len({k for k, _ in theirs})  # at least one flow per distinct key
    assert ours == theirs


@pytest.mark.slow
def test_flow_totals_match_scapy_on_generated_capture(tmp_path: Path) -> None:
    from tests.flowcraft import Conversation, three_uploads

    c = three_uploads()
    d = Conversation("fd00::7", "2001:db8::5", 5000, 53, proto=17)
    for k in range(50):
        d.up(c.packets[0][0] + k * 10**9, payload=40 + k)
        d.down(c.packets[0][0] + k * 10**9 + 10**6, payload=100 + k)
    from tests.craft import pcap_bytes

    path = pcap_bytes(sorted(c.packets + d.packets, key=lambda p: p[0])).write(tmp_path / "g.pcap")
    ours, flows = _our_totals(path)
    assert flows == 2
    assert ours == _scapy_totals(path)
