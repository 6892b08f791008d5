"""Decapsulation and fragment reassembly: real tunnel captures against their projects' own
baselines, and the demo capture wrapped in every encapsulation (scapy, a test-only oracle)
giving the flows and bursts of the plain capture."""

from __future__ import annotations

import json
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

from burstwatch.cli.main import main
from burstwatch.config.settings import ConfigError, load_settings
from burstwatch.decode import DecodeConfig
from burstwatch.flows import FlowConfig
from burstwatch.flows import state as st
from burstwatch.netaddr import format_addresses
from burstwatch.outputs.ecs import flow_records
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


def _records(shared_pcaps: Path, name: str) -> list[tuple[object, ...]]:
    """(transport, source ip:port, destination ip:port, network.tunnel) per flow record."""
    out = []
    for batch in run(shared_pcaps / "encap" / name)[0]:
        for r in flow_records(batch):
            out.append((r["network"]["transport"], r["source"]["ip"], r["source"]["port"],
                        r["destination"]["ip"], r["destination"]["port"], r["network"].get("tunnel")))
    return sorted(out, key=repr)


def _ip_tunnel(src: str, dst: str) -> dict[str, object]:
    return {"type": ["ip_in_ip"], "source": {"ip": src}, "destination": {"ip": dst}}


@pytest.mark.parametrize(("name", "want"), [
    # zeek/zeek testing/btest/Baseline/core.tunnels.ip-in-ip/output: the inner connection
    # and the outermost tunnel endpoints of each trace.
    ("zeek-tunnel-4in4.pcap", ("udp", "10.0.0.1", 30000, "10.0.0.2", 13000,
                               _ip_tunnel("1.2.3.4", "5.6.7.8"))),
    ("zeek-tunnel-6in4.pcap", ("udp", "dead::beef", 30000, "cafe::babe", 13000,
                               _ip_tunnel("1.2.3.4", "5.6.7.8"))),
    ("zeek-tunnel-4in6.pcap", ("tcp", "70.55.213.211", 31337, "192.88.99.1", 80,
                               _ip_tunnel("2002:4637:d5d3::4637:d5d3", "2001:4860:0:2001::68"))),
    ("zeek-tunnel-6in6in6.pcap", ("udp", "dead::beef", 30000, "cafe::babe", 13000,
                                  _ip_tunnel("feed::beef", "feed::cafe"))),
])
def test_ip_in_ip_as_zeek_sees_it(shared_pcaps: Path, name: str, want: tuple[object, ...]) -> None:
    assert _records(shared_pcaps, name) == [want]


def _packets_per_tuple(shared_pcaps: Path, name: str) -> dict[tuple[object, ...], tuple[int, int]]:
    """Packets per direction of each 5-tuple, over all its flow rows (a flow the table
    split after its close is still one connection to Zeek)."""
    out: dict[tuple[object, ...], tuple[int, int]] = {}
    for f in flow_set(run(shared_pcaps / "encap" / name)[0]):
        a, b = out.get(f[1:6], (0, 0))
        out[f[1:6]] = (a + int(f[6]), b + int(f[7]))
    return out


def test_pppoe_over_qinq_as_zeek_sees_it(shared_pcaps: Path) -> None:
    # zeek/zeek testing/btest/Baseline/core.pppoe-over-qinq/conn.log: one TLS connection
    # 1.1.1.1:20394 -> 2.2.2.2:443, 44 packets out, 42 back.
    assert _packets_per_tuple(shared_pcaps, "zeek-pppoe-over-qinq.pcap") == {
        (6, "1.1.1.1", 20394, "2.2.2.2", 443): (44, 42)}


def test_pptp_as_zeek_sees_it(shared_pcaps: Path) -> None:
    # zeek/zeek testing/btest/Baseline/core.tunnels.gre-pptp/conn.log: a DNS query
    # 172.16.44.3:40768 -> 8.8.8.8:53 and its answer, inside PPP inside enhanced GRE.
    assert _packets_per_tuple(shared_pcaps, "zeek-tunnel-gre-pptp.pcap") == {
        (17, "172.16.44.3", 40768, "8.8.8.8", 53): (1, 1)}


def test_teredo_as_zeek_sees_it(shared_pcaps: Path) -> None:
    # zeek/zeek testing/btest/Baseline/core.tunnels.teredo/conn.log: the connections inside
    # Teredo, also those with the relay's port 32900 (Zeek finds Teredo there by content).
    got = _packets_per_tuple(shared_pcaps, "zeek-tunnel-teredo.pcap")
    teredo = "2001:0:4137:9e50:8000:f12a:b9c8:2815"
    assert got[(6, teredo, 1286, "2001:4860:0:2001::68", 80)] == (10, 12)
    assert got[(58, teredo, 54131, "2001:4860:0:2001::68", 54131)] == (1, 1)  # echo 128/129
    assert got[(58, "fe80::8000:f227:bec8:61af", 134, "fe80::8000:ffff:ffff:fffd", 0)] == (1, 0)
    assert got[(58, "fe80::8000:ffff:ffff:fffd", 133, "ff02::2", 0)] == (1, 0)
    # the IPv4 connections beside the tunnel, as Zeek logs them
    assert got[(6, "192.168.2.16", 1580, "67.228.110.120", 80)] == (7, 6)
    assert got[(17, "192.168.2.16", 1920, "192.168.2.1", 53)] == (5, 5)
    assert not any(k[0] == 17 and 32900 in (k[2], k[4]) for k in got)


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
                                                                  seqnum_present=1, sequence_number=1)
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


def _cases(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list[dict], list[object]]:
    """The scan's case records without what names the capture or the tunnel, and the tunnels
    their flow-rule findings name."""
    main(["scan", "--format", "jsonl", str(path)])
    cases = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    tunnels = []
    for case in cases:
        case["burstwatch"].pop("capture")
        for finding in case["burstwatch"]["rules"]:
            if finding["kind"] == "flow rule":
                tunnels.append(finding.pop("tunnel", None))
    return cases, tunnels


@pytest.mark.parametrize("name", ["pppoe-qinq", "vxlan-in-gre", "fragmented-gtp"])
def test_wrapped_demo_gives_the_plain_cases(
    name: str, demo_packets: list[Packet], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = []
    for p in demo_packets:
        w = WRAPS["gtp" if name == "fragmented-gtp" else name](p)
        parts = [ETH / f for f in fragment(w[IP], fragsize=384)] if (
            name == "fragmented-gtp" and len(w) > 600) else [w]
        for f in parts:
            f.time = p.time
            out.append(f)
    want, plain_tunnels = _cases(DEMO, capsys)
    assert want, "the demo capture raises cases"
    assert plain_tunnels and not any(plain_tunnels)
    got, tunnels = _cases(_write(out, tmp_path / f"{name}.pcap"), capsys)
    assert got == want
    kinds = {"pppoe-qinq": ["pppoe"], "vxlan-in-gre": ["gre", "vxlan"],
             "fragmented-gtp": ["gtp"]}[name]
    assert all(t is not None and t["type"] == kinds for t in tunnels)


def test_tunnel_ports_come_from_the_config_file(tmp_path: Path) -> None:
    # Linux's VXLAN default port before IANA's, 8472: opened only when the config says so.
    inner = ETH / IP(src="10.0.0.1", dst="93.184.216.34") / UDP(sport=50000, dport=443) / Raw(b"x" * 20)
    frame = ETH / IP(src=O_SRC, dst=O_DST) / UDP(sport=40000, dport=8472) / VXLAN(vni=1) / inner
    path = _write([frame], tmp_path / "linux-vxlan.pcap")
    config = tmp_path / "site.yaml"
    config.write_text("decode:\n  vxlan_ports: [4789, 8472]\n")
    settings = load_settings(str(config))
    assert settings.decode.vxlan_ports == (4789, 8472)
    opened = flow_set(run(path, FlowConfig(decode=settings.decode))[0])
    assert [f[1:6] for f in opened] == [(17, "10.0.0.1", 50000, "93.184.216.34", 443)]
    plain = flow_set(run(path)[0])
    assert [f[1:6] for f in plain] == [(17, O_SRC, 40000, O_DST, 8472)]


@pytest.mark.parametrize("text", ["decode:\n  vxlan_ports: [70000]\n", "decode:\n  decap: 1\n",
                                  "decode:\n  tunnels: []\n"])
def test_bad_decode_settings_are_one_clear_error(tmp_path: Path, text: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=r"decode"):
        load_settings(str(config))


def _fragmented(count: int, size: int = 3000, spacing_s: float = 0.0) -> list[Packet]:
    """``count`` UDP datagrams of ``size`` bytes, each cut into 1480-byte IPv4 fragments."""
    out = []
    for k in range(count):
        dgram = IP(src="10.0.0.1", dst="93.184.216.34", id=1000 + k) / UDP(
            sport=50000, dport=443) / Raw(bytes([k % 256]) * size)
        for j, f in enumerate(fragment(dgram, fragsize=1480)):
            pkt = ETH / f
            pkt.time = 1_700_000_000 + k + j * spacing_s
            out.append(pkt)
    return out


def test_reassembly_bounds_are_kept_and_counted(tmp_path: Path) -> None:
    path = _write(_fragmented(3), tmp_path / "frags.pcap")
    batches, stats = run(path)
    assert stats.reassembly["reassembled"] == 3
    flows = flow_set(batches)
    assert [(f[6], f[8]) for f in flows] == [(3, 3 * 3000)]  # 3 datagrams, their payloads
    # A total limit smaller than one datagram: its later fragments are dropped and counted.
    small = FlowConfig(decode=DecodeConfig(frag_max_total_bytes=2000))
    batches, stats = run(path, small)
    assert stats.reassembly["reassembled"] == 0 and stats.reassembly["over_memory"] > 0
    assert flow_set(batches) == []
    # Fragments of one datagram further apart than the timeout never make a datagram.
    late = _write(_fragmented(1, spacing_s=45.0), tmp_path / "late.pcap")
    _, stats = run(late)
    # three fragments 45 s apart: the first datagram times out at the second fragment, the
    # one the second starts at the third; the third is left waiting.
    assert stats.reassembly["reassembled"] == 0 and stats.reassembly["timed_out"] == 2


def test_a_retransmitted_fragment_is_nothing_new(tmp_path: Path) -> None:
    frags = _fragmented(1)
    path = _write([frags[0], frags[0], *frags[1:]], tmp_path / "dup.pcap")
    batches, stats = run(path)
    assert stats.reassembly["reassembled"] == 1 and stats.reassembly["overlapping"] == 0
    assert [(f[6], f[8]) for f in flow_set(batches)] == [(1, 3000)]


def test_ipv6_fragments_are_reassembled(shared_pcaps: Path) -> None:
    # zeek-ipv6-fragmented-dns: a DNS answer in three IPv6 fragments; its flow sees one packet
    # carrying the whole answer.
    batches, stats = run(shared_pcaps / "encap" / "zeek-ipv6-fragmented-dns.pcap")
    assert stats.reassembly["reassembled"] == 1 and stats.decode == {"ok": 5, "fragment": 3}
    flows = {f[3]: f for f in flow_set(batches)}
    assert flows[51851][6:8] == (2, 1) and flows[51851][9] > 2800  # the answer, whole
