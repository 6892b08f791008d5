"""Decapsulation and fragment reassembly: real tunnel captures against their projects' own
baselines, and the demo capture wrapped in every encapsulation (scapy, a test-only oracle)
giving the flows and bursts of the plain capture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.contrib.geneve import GENEVE
from scapy.contrib.gtp import GTP_U_Header
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import GRE, IP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw
from scapy.utils import rdpcap, wrpcap

from burstwatch.decode import DecodeConfig
from burstwatch.flows import FlowConfig
from burstwatch.flows import state as st
from burstwatch.netaddr import format_addresses
from burstwatch.pipeline import run_flows
from burstwatch.records import FlowBatch, RunStats
from tests.craft import catalog_packet_counts

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "pcaps" / "demo.pcap"
O_SRC, O_DST = "203.0.113.1", "203.0.113.2"
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def run(path: Path, config: FlowConfig | None = None) -> tuple[list[FlowBatch], RunStats]:
    stats = RunStats()
    return list(run_flows([str(path)], config, stats)), stats


def flow_set(batches: list[FlowBatch], wire: bool = False) -> list[tuple[object, ...]]:
    """Each flow as (proto, local ip:port, remote ip:port, packets and payload bytes per
    direction[, wire bytes]), sorted."""
    out = []
    for batch in batches:
        r = batch.rows
        src = format_addresses(r.orig_hi, r.orig_lo)
        dst = format_addresses(r.resp_hi, r.resp_lo)
        acc = r.acc_i
        for i in range(len(r)):
            row: tuple[object, ...] = (
                int(r.kind[i]), int(r.proto[i]), src[i], int(r.orig_port[i]), dst[i],
                int(r.resp_port[i]), int(acc[i, st.I_PKTS0]), int(acc[i, st.I_PKTS1]),
                int(acc[i, st.I_PAY0]), int(acc[i, st.I_PAY1]), int(acc[i, st.I_FIRST]),
                int(acc[i, st.I_LAST]),
            )
            if wire:
                row += (int(acc[i, st.I_WIRE0]), int(acc[i, st.I_WIRE1]))
            out.append(row)
    return sorted(out)


def burst_set(batches: list[FlowBatch]) -> list[tuple[int, ...]]:
    out = []
    for batch in batches:
        bu = batch.bursts
        for i in range(len(bu)):
            out.append((int(bu.direction[i]), int(bu.start_ns[i]), int(bu.end_ns[i]),
                        int(bu.packets[i]), int(bu.bytes[i]), int(bu.orig_port[i]),
                        int(bu.resp_port[i])))
    return sorted(out)


# ---- real captures ----

TUNNEL_PORTS = {4789, 6081, 2152, 3544, 6635}


def test_every_encap_capture_is_read_whole_and_opened(shared_pcaps: Path) -> None:
    encap = shared_pcaps / "encap"
    counts = catalog_packet_counts(encap / "CATALOG.md")
    assert len(counts) == 29
    for name, want in counts.items():
        batches, stats = run(encap / name)
        assert stats.packets == want, name
        assert not stats.warnings, name
        flows = flow_set(batches)
        # Every decoded packet is in a flow: none was lost between decode and the table.
        assert sum(f[6] + f[7] for f in flows) == stats.decode.get("ok", 0), name
        # No flow is left on a tunnel's outer header (GRE with nothing inside stays GRE:
        # keepalives and the like, tcpdump-various-gre).
        for f in flows:
            assert f[1] not in (4, 41), (name, f)
            assert not (f[1] == 17 and {f[3], f[5]} & TUNNEL_PORTS), (name, f)
            if name != "tcpdump-various-gre.pcap":
                assert f[1] != 47, (name, f)


def _flows(shared_pcaps: Path, name: str) -> list[tuple[object, ...]]:
    return [f[1:8] for f in flow_set(run(shared_pcaps / "encap" / name)[0])]


def test_gtp_outer_fragments_give_the_inner_http_flow(shared_pcaps: Path) -> None:
    # zeek/zeek testing/btest/Baseline/core.tunnels.gtp.outer_ip_frag/conn.log: one inner
    # TCP connection 10.131.47.185:1923 -> 79.101.110.141:80, 27 packets out, 41 back.
    assert _flows(shared_pcaps, "zeek-tunnel-gtp1-fragmented.pcap") == [
        (6, "10.131.47.185", 1923, "79.101.110.141", 80, 27, 41)]


def test_mpls_over_udp_gives_the_inner_ping(shared_pcaps: Path) -> None:
    # the-tcpdump-group/tcpdump tests/mpls-over-udp.out: an ICMP echo request 10.3.0.10 ->
    # 10.1.0.10 and its reply, id 42731, inside MPLS over UDP port 6635.
    assert _flows(shared_pcaps, "tcpdump-mpls-over-udp.pcap") == [
        (1, "10.3.0.10", 42731, "10.1.0.10", 42731, 1, 1)]


def test_various_gre_keeps_gre_without_ip_inside(shared_pcaps: Path) -> None:
    # the-tcpdump-group/tcpdump tests/various_gre.out: 30 GRE packets between 10.172.64.6
    # and 10.172.64.7 carry keepalives, CDP and protocol 0x8909, no IP; the rest is STP,
    # loopback and DTP frames (not IP).
    flows = _flows(shared_pcaps, "tcpdump-various-gre.pcap")
    assert [f[:5] for f in flows] == [(47, "10.172.64.7", 0, "10.172.64.6", 0)]
    assert flows[0][5] + flows[0][6] == 30


def test_garbage_fragments_are_survived_and_counted(shared_pcaps: Path) -> None:
    batches, stats = run(shared_pcaps / "encap" / "ndpi-ip-fragmented-garbage.pcap")
    assert stats.packets == 1252
    assert stats.decode.get("fragment", 0) + stats.decode.get("bad_fragment", 0) > 1200
    assert sum(stats.reassembly.values()) > 0


def test_overlapping_fragments_are_dropped(shared_pcaps: Path) -> None:
    # zeek-ipv4-fragmented-1: a 26-byte non-final first fragment, the last fragment, and a
    # second first fragment overlapping the first: nothing reassembles, nothing crashes.
    batches, stats = run(shared_pcaps / "encap" / "zeek-ipv4-fragmented-1.pcap")
    assert flow_set(batches) == []
    assert stats.reassembly["misaligned"] == 1
    assert stats.reassembly["overlapping"] == 1


# ---- the demo capture, wrapped ----

Wrap = Callable[[Packet], Packet]


def _inner(p: Packet) -> Packet:
    return p[Ether].payload


def _nh(p: Packet) -> int:
    """The IP protocol number of IP-in-IP for this packet's IP version."""
    return 4 if IP in p else 41


WRAPS: dict[str, Wrap] = {
    "pppoe-qinq": lambda p: ETH / Dot1AD(vlan=5) / Dot1Q(vlan=7) / PPPoE(sessionid=3)
    / PPP(proto=0x21 if IP in p else 0x57) / _inner(p),
    "mpls": lambda p: ETH / MPLS(label=17, s=0) / MPLS(label=18, s=1) / _inner(p),
    "gre-key-seq": lambda p: ETH / IP(src=O_SRC, dst=O_DST) / GRE(key_present=1, key=9,
                                                                  seqnum_present=1, seqence_number=1)
    / _inner(p),
    "gre-teb": lambda p: ETH / IP(src=O_SRC, dst=O_DST) / GRE(proto=0x6558) / p,
    "vxlan": lambda p: ETH / IP(src=O_SRC, dst=O_DST) / UDP(sport=40000, dport=4789)
    / VXLAN(vni=42) / p,
    "geneve-options": lambda p: ETH / IP(src=O_SRC, dst=O_DST) / UDP(sport=40000, dport=6081)
    / GENEVE(proto=0x6558, optionlen=2, options=b"\x01\x02\x03\x01abcd") / p,
    "gtp": lambda p: ETH / IP(src=O_SRC, dst=O_DST) / UDP(sport=2152, dport=2152)
    / GTP_U_Header(teid=7) / _inner(p),
    "ip-in-ip4": lambda p: ETH / IP(src=O_SRC, dst=O_DST, proto=_nh(p)) / _inner(p),
    "ip-in-ip6": lambda p: ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", nh=_nh(p)) / _inner(p),
    # two nested: VXLAN inside GRE, and IP-in-IP inside GTP
    "vxlan-in-gre": lambda p: ETH / IP(src=O_SRC, dst=O_DST) / GRE()
    / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=40000, dport=4789) / VXLAN(vni=1) / p,
    "4in4-in-gtp": lambda p: ETH / IP(src=O_SRC, dst=O_DST) / UDP(sport=2152, dport=2152)
    / GTP_U_Header(teid=7) / IP(src="198.18.0.1", dst="198.18.0.2", proto=_nh(p))
    / _inner(p),
}


@pytest.fixture(scope="module")
def demo_packets() -> list[Packet]:
    return list(rdpcap(str(DEMO)))


@pytest.fixture(scope="module")
def plain() -> tuple[list[tuple[object, ...]], list[tuple[int, ...]]]:
    batches, _ = run(DEMO)
    return flow_set(batches), burst_set(batches)


def _write(packets: list[Packet], path: Path) -> Path:
    wrpcap(str(path), packets)
    return path


@pytest.mark.parametrize("name", list(WRAPS))
def test_wrapped_demo_gives_the_plain_flows_and_bursts(
    name: str, demo_packets: list[Packet], plain: tuple[list, list], tmp_path: Path,
) -> None:
    wrapped = []
    for p in demo_packets:
        w = WRAPS[name](p)
        w.time = p.time
        wrapped.append(w)
    batches, stats = run(_write(wrapped, tmp_path / f"{name}.pcap"))
    assert stats.packets == len(demo_packets)
    assert flow_set(batches) == plain[0]
    assert burst_set(batches) == plain[1]
    assert stats.encap, "no encapsulation was counted"


def test_no_decap_keys_flows_on_the_outer_header(demo_packets: list[Packet], tmp_path: Path) -> None:
    wrapped = []
    for p in demo_packets:
        w = WRAPS["vxlan"](p)
        w.time = p.time
        wrapped.append(w)
    path = _write(wrapped, tmp_path / "vxlan.pcap")
    batches, _ = run(path, FlowConfig(decode=DecodeConfig(decap=False)))
    assert {(f[1], f[5]) for f in flow_set(batches)} == {(17, 4789)}


@pytest.mark.parametrize("wrap", ["plain", "gtp"])
def test_fragmented_demo_gives_the_plain_flows_and_bursts(
    wrap: str, demo_packets: list[Packet], plain: tuple[list, list], tmp_path: Path,
) -> None:
    out = []
    for p in demo_packets:
        w = p if wrap == "plain" else WRAPS[wrap](p)
        if IP in w and len(w) > 600:
            # the outermost IP header is fragmented (an inner one for plain)
            frags = fragment(w[IP], fragsize=384)
            parts = [ETH / f for f in frags]
        else:
            parts = [w]
        for f in parts:
            f.time = p.time
            out.append(f)
    batches, stats = run(_write(out, tmp_path / f"frag-{wrap}.pcap"))
    assert stats.reassembly["reassembled"] > 0
    assert flow_set(batches) == plain[0]
    assert burst_set(batches) == plain[1]
    if wrap == "plain":  # rebuilt datagrams have the wire length of the unfragmented packet
        assert flow_set(batches, wire=True) == flow_set(run(DEMO)[0], wire=True)


def test_too_deep_nesting_is_counted(tmp_path: Path) -> None:
    inner = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"x" * 10)
    pkt: Packet = inner
    for _ in range(9):
        pkt = IP(src=O_SRC, dst=O_DST, proto=4) / pkt
    _, stats = run(_write([ETH / pkt], tmp_path / "deep.pcap"))
    assert stats.decode == {"too_deep": 1}


def test_mostly_undecoded_capture_is_said(tmp_path: Path) -> None:
    frames = [Ether(type=0x88B5) / Raw(b"z" * 50) for _ in range(97)]
    frames += [ETH / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() for _ in range(3)]
    _, stats = run(_write(frames, tmp_path / "odd.pcap"))
    assert stats.decode_warning() == "97 % of packets were not IP: ethertype 0x88b5 (97)"
