"""decode(): every link layer, IP version, extension header and truncation the kernel handles.

Each case is one frame written into a classic pcap, read back through open_capture and
decoded; the expected columns are written out by hand. A mixed capture is cross-checked
against dpkt, and mutated frames are run through the kernel's own source as plain Python,
where numpy raises IndexError on any read past the packet (compiled code would not).
"""

from __future__ import annotations

import random
import socket
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dpkt
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import ARP, LLC, SNAP, CookedLinux, Dot1AD, Dot1Q, Dot3, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from burstwatch.decode import PacketBatch, decode, kernel
from burstwatch.decode.batch import STATUS_NAMES
from burstwatch.ingest import RecordBatch, open_capture
from burstwatch.netaddr import format_addresses
from tests.craft import (
    AF_INET,
    AF_INET6_BSD,
    AF_INET6_DARWIN,
    AF_INET6_FREEBSD,
    loop_header,
    null_header,
    pcap_bytes,
    pcapng_reader_available,
    sll2_header,
)

V4A, V4B = "192.0.2.1", "198.51.100.7"
V6A, V6B = "2001:db8::1", "2001:db8:0:1::2"
NO_ADDR = "::"
TS_NS = 1_700_000_000_123_456_789
TS_US = 1_700_000_000_123_456_000  # the same instant as a microsecond capture keeps it

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
TCP_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]


def b(pkt: Packet) -> bytes:
    return bytes(pkt)


def ip4(**kw: Any) -> Packet:
    return IP(src=V4A, dst=V4B, **kw)


def ip6(**kw: Any) -> Packet:
    return IPv6(src=V6A, dst=V6B, **kw)


def pad(n: int, ch: bytes = b"x") -> Raw:
    return Raw(ch * n)


def with_byte(frame: bytes, at: int, value: int) -> bytes:
    return frame[:at] + bytes([value]) + frame[at + 1 :]


UDP_1008 = b(UDP(sport=5000, dport=6000) / pad(1000, b"f"))  # split into two IPv4 fragments
LLDP_TLVS = (
    b"\x02\x07\x04" + bytes.fromhex("020000000001")  # chassis id (MAC)
    + b"\x04\x03\x07p1"  # port id (local)
    + b"\x06\x02\x00\x78"  # TTL 120 s
    + b"\x00\x00"  # end
)

# Frames reused by truncation cases.
F_TCP_PA = b(ETH / ip4() / TCP(sport=443, dport=40000, flags="PA") / pad(100))
F_V4_OPTS = b(ETH / ip4(options=[IPOption_Router_Alert()]) / UDP(sport=1000, dport=2000) / pad(10))
F_V6_CHAIN = b(
    ETH / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(addresses=["2001:db8::99"])
    / IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(offset=0, m=1, id=9)
    / UDP(sport=5000, dport=6000) / pad(32)
)
F_DOT1Q = b(ETH / Dot1Q(vlan=10) / ip4() / UDP(sport=123, dport=123) / pad(48))
F_SYN_OPTS = b(ETH / ip4() / TCP(sport=40000, dport=443, flags="S", options=TCP_OPTS))
F_ICMP = b(ETH / ip4() / ICMP(type=8, code=0, id=1, seq=1) / pad(56))
F_UDP = b(ETH / ip4() / UDP(sport=53000, dport=53) / pad(30))
F_SLL = b(
    CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\x01")
    / ip4() / TCP(sport=22, dport=50022, flags="A") / pad(36)
)
F_TSO4 = b(ETH / ip4(len=0) / TCP(sport=40000, dport=443, flags="PA") / pad(3000))
F_TSO6 = b(ETH / ip6(plen=0) / TCP(sport=40000, dport=443, flags="PA") / pad(3000))
F_TSO6_VLAN_HBH = b(ETH / Dot1Q(vlan=3) / ip6(plen=0) / IPv6ExtHdrHopByHop()
                    / UDP(sport=4000, dport=5000) / pad(1450))
F_NULL4 = null_header(AF_INET) + b(ip4() / UDP(sport=1000, dport=2000) / pad(10))

# Tunnels: the outer header is between O4A and O4B; offsets below are counted by hand.
O4A, O4B = "203.0.113.1", "203.0.113.2"
OUT4 = ETH / IP(src=O4A, dst=O4B)
F_VXLAN = b(OUT4 / UDP(sport=40000, dport=4789) / VXLAN(vni=42) / ETH / ip4()
            / UDP(sport=5000, dport=6000) / pad(30))  # 14+20+8+8 | 14+20+8 | 30
F_GENEVE_OPT = b(OUT4 / UDP(sport=40000, dport=6081)
                 / GENEVE(proto=0x6558, optionlen=2, options=b"\x01\x02\x03\x01abcd") / ETH / ip6()
                 / TCP(sport=50000, dport=443, flags="PA") / pad(20))  # 14+20+8+16 | 14+40+20 | 20
# GTP-U with the E flag and one 4-byte extension header (PDU session container), then IPv4
GTP_EXT = bytes([0x34, 0xFF, 0, 46, 0, 0, 0, 7, 0, 0, 0, 0x85, 1, 0, 1, 0])
F_GTP_EXT = b(OUT4 / UDP(sport=2152, dport=2152) / Raw(GTP_EXT) / ip4()
              / UDP(sport=1, dport=2) / pad(10))  # 14+20+8+16 | 20+8 | 10
F_GRE_KEY_SEQ = b(OUT4 / GRE(key_present=1, key=9, seqnum_present=1) / ip4()
                  / TCP(sport=443, dport=40000, flags="PA") / pad(10))  # 14+20+12 | 20+20 | 10
F_PPPOE_QINQ = b(ETH / Dot1AD(vlan=5) / Dot1Q(vlan=7) / PPPoE(sessionid=3) / PPP(proto=0x21)
                 / ip4() / UDP(sport=53000, dport=53) / pad(30))  # 14+4+4+6+2 | 20+8 | 30
F_MPLS2 = b(ETH / MPLS(label=17, s=0) / MPLS(label=18, s=1) / ip6() / UDP(sport=1, dport=2)
            / pad(4))  # 14+4+4 | 40+8 | 4
F_6IN4 = b(ETH / IP(src=O4A, dst=O4B, proto=41) / ip6() / UDP(sport=3, dport=4) / pad(8))  # 34|48|8
F_TEREDO = b(OUT4 / UDP(sport=3544, dport=40000) / Raw(b(ip6() / UDP(sport=5, dport=6) / pad(12))))
ERSPAN2 = bytes([0x10, 0x01, 0x00, 0x05, 0, 0, 0, 0])  # version 1 (type II), session 5
F_ERSPAN2 = b(OUT4 / GRE(seqnum_present=1, proto=0x88BE) / Raw(ERSPAN2) / ETH / ip4()
              / ICMP(type=8, code=0, id=7, seq=1) / pad(56))  # 14+20+8+8 | 14+20+8 | 56
F_SNAP = b(Dot3(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
           / SNAP(OUI=0, code=0x0800) / ip4() / UDP(sport=7, dport=9) / pad(2))  # 14+8 | 28 | 2
AH6 = bytes([17, 4, 0, 0]) + bytes(20)  # next header UDP, (4 + 2) * 4 = 24 bytes
F_AH6 = b(ETH / ip6(nh=51) / Raw(AH6 + b(UDP(sport=500, dport=4500) / pad(16))))  # 14+40+24 | 8 | 16
F_GRE_KEEPALIVE = b(OUT4 / GRE(key_present=1, key=40, proto=0))
F_VXLAN_NO_I = b(OUT4 / UDP(sport=40000, dport=4789) / Raw(bytes(8)) / pad(20))


def ip_ok(
    version: int, src: str, dst: str, proto: int, sport: int, dport: int, off: int, plen: int,
    *, flags: int = 0, fragment: bool = False,
) -> dict[str, Any]:
    """Expected columns of a decoded IP packet."""
    return {
        "status": "ok", "ip_version": version, "src": src, "dst": dst, "proto": proto,
        "sport": sport, "dport": dport, "tcp_flags": flags, "payload_off": off,
        "payload_len": plen, "fragment": fragment,
    }


def not_ip(status: str) -> dict[str, Any]:
    """Expected columns of a packet that stopped before the IP addresses."""
    return {
        "status": status, "ip_version": 0, "src": NO_ADDR, "dst": NO_ADDR, "proto": 0,
        "sport": 0, "dport": 0, "tcp_flags": 0, "payload_off": 0, "payload_len": 0,
        "fragment": False,
    }


def ip_stopped(status: str, version: int, src: str, dst: str, proto: int) -> dict[str, Any]:
    """Expected columns of a packet whose IP header decoded but whose next header did not."""
    return {**not_ip(status), "ip_version": version, "src": src, "dst": dst, "proto": proto}


@dataclass(frozen=True)
class Case:
    name: str
    linktype: int
    frame: bytes
    cap_len: int
    wire_len: int
    want: dict[str, Any]
    snaplen: int = 262144


CASES = [
    # ---- Ethernet, IPv4 ----
    Case("eth-ipv4-tcp-syn-options", 1, F_SYN_OPTS, 74, 74,
         ip_ok(4, V4A, V4B, 6, 40000, 443, 74, 0, flags=0x02)),
    Case("eth-ipv4-tcp-psh-ack", 1, F_TCP_PA, 154, 154,
         ip_ok(4, V4A, V4B, 6, 443, 40000, 54, 100, flags=0x18)),
    Case("eth-ipv4-tcp-fin-ack", 1, b(ETH / ip4() / TCP(sport=1, dport=2, flags="FA")), 54, 54,
         ip_ok(4, V4A, V4B, 6, 1, 2, 54, 0, flags=0x11)),
    Case("eth-ipv4-tcp-rst", 1, b(ETH / ip4() / TCP(sport=3, dport=4, flags="R")), 54, 54,
         ip_ok(4, V4A, V4B, 6, 3, 4, 54, 0, flags=0x04)),
    Case("eth-ipv4-tcp-all-flags", 1, b(ETH / ip4() / TCP(sport=5, dport=6, flags="FSRPAUEC")),
         54, 54, ip_ok(4, V4A, V4B, 6, 5, 6, 54, 0, flags=0xFF)),
    Case("eth-ipv4-udp", 1, F_UDP, 72, 72, ip_ok(4, V4A, V4B, 17, 53000, 53, 42, 30)),
    # Ethernet pads short frames to 60 bytes: the payload length comes from the IP header.
    Case("eth-ipv4-udp-padded", 1, b(ETH / ip4() / UDP(sport=7, dport=9) / pad(2)) + bytes(16),
         60, 60, ip_ok(4, V4A, V4B, 17, 7, 9, 42, 2)),
    Case("eth-ipv4-options-udp", 1, F_V4_OPTS, 56, 56, ip_ok(4, V4A, V4B, 17, 1000, 2000, 46, 10)),
    # echo request/reply: the identifier (1) stands in both "ports", pairing them in one flow
    Case("eth-ipv4-icmp-echo", 1, F_ICMP, 98, 98, ip_ok(4, V4A, V4B, 1, 1, 1, 42, 56)),
    Case("eth-ipv4-icmp-unreachable", 1, b(ETH / ip4() / ICMP(type=3, code=1) / pad(28)), 70, 70,
         ip_ok(4, V4A, V4B, 1, 3, 1, 42, 28)),
    Case("eth-ipv4-esp", 1, b(ETH / ip4() / ESP(spi=0x1001, seq=1, data=b"q" * 40)), 82, 82,
         ip_ok(4, V4A, V4B, 50, 0, 0, 34, 48)),
    Case("eth-ipv4-fragment-first", 1,
         b(ETH / ip4(id=7, flags="MF", frag=0, proto=17) / Raw(UDP_1008[:512])), 546, 546,
         ip_ok(4, V4A, V4B, 17, 5000, 6000, 42, 504, fragment=True)),
    Case("eth-ipv4-fragment-later", 1,
         b(ETH / ip4(id=7, frag=64, proto=17) / Raw(UDP_1008[512:])), 530, 530,
         ip_ok(4, V4A, V4B, 17, 0, 0, 34, 496, fragment=True)),
    # ---- Ethernet, IPv6 ----
    Case("eth-ipv6-tcp", 1, b(ETH / ip6() / TCP(sport=50000, dport=443, flags="PA") / pad(200)),
         274, 274, ip_ok(6, V6A, V6B, 6, 50000, 443, 74, 200, flags=0x18)),
    Case("eth-ipv6-hbh-routing-dstopt-fragment-udp", 1, F_V6_CHAIN, 142, 142,
         ip_ok(6, V6A, V6B, 17, 5000, 6000, 110, 32, fragment=True)),
    Case("eth-ipv6-hbh-dstopt-tcp", 1,
         b(ETH / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(sport=1234, dport=80)),
         90, 90, ip_ok(6, V6A, V6B, 6, 1234, 80, 90, 0, flags=0x02)),
    Case("eth-ipv6-fragment-later", 1,
         b(ETH / ip6() / IPv6ExtHdrFragment(offset=100, m=0, nh=17, id=9) / pad(64)), 126, 126,
         ip_ok(6, V6A, V6B, 17, 0, 0, 62, 64, fragment=True)),
    Case("eth-ipv6-icmpv6-echo", 1, b(ETH / ip6() / ICMPv6EchoRequest(id=1, seq=2, data=b"x" * 24)),
         86, 86, ip_ok(6, V6A, V6B, 58, 1, 1, 62, 24)),
    # Segmentation offload: captured on the sending host, the IP length field is still 0.
    Case("eth-ipv4-tso-length-0", 1, F_TSO4, 3054, 3054,
         ip_ok(4, V4A, V4B, 6, 40000, 443, 54, 3000, flags=0x18)),
    Case("eth-ipv4-tso-length-0-cut", 1, F_TSO4, 128, 3054,
         ip_ok(4, V4A, V4B, 6, 40000, 443, 54, 3000, flags=0x18), snaplen=128),
    Case("eth-ipv6-tso-length-0", 1, F_TSO6, 3074, 3074,
         ip_ok(6, V6A, V6B, 6, 40000, 443, 74, 3000, flags=0x18)),
    Case("dot1q-ipv6-tso-length-0-hbh", 1, F_TSO6_VLAN_HBH, 1524, 1524,
         ip_ok(6, V6A, V6B, 17, 4000, 5000, 74, 1450)),
    # ---- VLAN tags ----
    Case("dot1q-ipv4-udp", 1, F_DOT1Q, 94, 94, ip_ok(4, V4A, V4B, 17, 123, 123, 46, 48)),
    Case("qinq-88a8-8100-ipv6-udp", 1,
         b(ETH / Dot1AD(vlan=100) / Dot1Q(vlan=10) / ip6() / UDP(sport=4500, dport=4500) / pad(20)),
         90, 90, ip_ok(6, V6A, V6B, 17, 4500, 4500, 70, 20)),
    # ---- Linux cooked captures ----
    Case("sll-ipv4-tcp", 113, F_SLL, 92, 92, ip_ok(4, V4A, V4B, 6, 22, 50022, 56, 36, flags=0x10)),
    Case("sll2-ipv6-udp", 276,
         sll2_header(0x86DD) + b(ip6() / UDP(sport=51820, dport=51820) / pad(148)), 216, 216,
         ip_ok(6, V6A, V6B, 17, 51820, 51820, 68, 148)),
    Case("sll2-arp", 276, sll2_header(0x0806) + b(ARP(psrc=V4A, pdst=V4B)), 48, 48, not_ip("arp")),
    # ---- raw IP link types ----
    Case("raw101-ipv4-udp", 101, b(ip4() / UDP(sport=33000, dport=53) / pad(29)), 57, 57,
         ip_ok(4, V4A, V4B, 17, 33000, 53, 28, 29)),
    Case("raw101-ipv6-udp", 101, b(ip6() / UDP(sport=33000, dport=53) / pad(29)), 77, 77,
         ip_ok(6, V6A, V6B, 17, 33000, 53, 48, 29)),
    Case("raw228-ipv4-tcp", 228, b(ip4() / TCP(sport=9, dport=10)), 40, 40,
         ip_ok(4, V4A, V4B, 6, 9, 10, 40, 0, flags=0x02)),
    Case("raw229-ipv6-tcp", 229, b(ip6() / TCP(sport=11, dport=12, flags="SA")), 60, 60,
         ip_ok(6, V6A, V6B, 6, 11, 12, 60, 0, flags=0x12)),
    Case("raw12-ipv4-icmp-reply", 12, b(ip4() / ICMP(type=0) / pad(8)), 36, 36,
         ip_ok(4, V4A, V4B, 1, 0, 0, 28, 8)),
    Case("raw14-ipv6-udp", 14, b(ip6() / UDP(sport=1, dport=2)), 48, 48,
         ip_ok(6, V6A, V6B, 17, 1, 2, 48, 0)),
    Case("raw228-carrying-ipv6", 228, b(ip6() / UDP()), 48, 48, not_ip("bad_ip_version")),
    # ---- BSD loopback ----
    Case("null-ipv4-udp", 0, F_NULL4, 42, 42, ip_ok(4, V4A, V4B, 17, 1000, 2000, 32, 10)),
    *(
        Case(f"null-ipv6-af{af}", 0, null_header(af) + b(ip6() / UDP(sport=3, dport=4) / pad(10)),
             62, 62, ip_ok(6, V6A, V6B, 17, 3, 4, 52, 10))
        for af in (AF_INET6_BSD, AF_INET6_FREEBSD, AF_INET6_DARWIN)
    ),
    Case("null-unknown-family", 0, null_header(7) + bytes(30), 34, 34, not_ip("other_link_protocol")),
    Case("loop-ipv4-tcp", 108, loop_header(AF_INET) + b(ip4() / TCP(sport=7, dport=8)), 44, 44,
         ip_ok(4, V4A, V4B, 6, 7, 8, 44, 0, flags=0x02)),
    Case("loop-ipv6-udp", 108, loop_header(AF_INET6_BSD) + b(ip6() / UDP(sport=5, dport=6) / pad(4)),
         56, 56, ip_ok(6, V6A, V6B, 17, 5, 6, 52, 4)),
    # ---- tunnels and other encapsulations: the innermost packet ----
    Case("vxlan-ipv4-udp", 1, F_VXLAN, 122, 122, ip_ok(4, V4A, V4B, 17, 5000, 6000, 92, 30)),
    Case("geneve-options-ipv6-tcp", 1, F_GENEVE_OPT, 152, 152,
         ip_ok(6, V6A, V6B, 6, 50000, 443, 132, 20, flags=0x18)),
    Case("gtp-extension-header-ipv4-udp", 1, F_GTP_EXT, 96, 96, ip_ok(4, V4A, V4B, 17, 1, 2, 86, 10)),
    Case("gre-key-seq-ipv4-tcp", 1, F_GRE_KEY_SEQ, 96, 96,
         ip_ok(4, V4A, V4B, 6, 443, 40000, 86, 10, flags=0x18)),
    Case("pppoe-in-qinq-ipv4-udp", 1, F_PPPOE_QINQ, 88, 88,
         ip_ok(4, V4A, V4B, 17, 53000, 53, 58, 30)),
    Case("mpls-two-labels-ipv6-udp", 1, F_MPLS2, 74, 74, ip_ok(6, V6A, V6B, 17, 1, 2, 70, 4)),
    Case("6in4-udp", 1, F_6IN4, 90, 90, ip_ok(6, V6A, V6B, 17, 3, 4, 82, 8)),
    Case("teredo-ipv6-udp", 1, F_TEREDO, 102, 102, ip_ok(6, V6A, V6B, 17, 5, 6, 90, 12)),
    Case("erspan2-ipv4-icmp", 1, F_ERSPAN2, 148, 148, ip_ok(4, V4A, V4B, 1, 7, 7, 92, 56)),
    Case("llc-snap-ipv4-udp", 1, F_SNAP, 52, 52, ip_ok(4, V4A, V4B, 17, 7, 9, 50, 2)),
    Case("ipv6-ah-udp", 1, F_AH6, 102, 102, ip_ok(6, V6A, V6B, 17, 500, 4500, 86, 16)),
    # GRE carrying no IP, and UDP on a tunnel port that is not that tunnel, stay themselves.
    Case("gre-keepalive-stays-gre", 1, F_GRE_KEEPALIVE, 42, 42,
         ip_ok(4, O4A, O4B, 47, 0, 0, 34, 8)),
    Case("vxlan-port-without-vxlan-flag", 1, F_VXLAN_NO_I, 70, 70,
         ip_ok(4, O4A, O4B, 17, 40000, 4789, 42, 28)),
    Case("cut-in-vxlan-inner-ethernet", 1, F_VXLAN, 60, 122,
         ip_stopped("truncated_tunnel", 4, O4A, O4B, 17), snaplen=60),
    # ---- not IP ----
    Case("eth-arp", 1, b(ETH / ARP(psrc=V4A, pdst=V4B)), 42, 42, not_ip("arp")),
    Case("eth-lldp", 1, b(Ether(src="02:00:00:00:00:01", dst="01:80:c2:00:00:0e", type=0x88CC)
                          / Raw(LLDP_TLVS)), 34, 34, not_ip("lldp")),
    Case("eth-ipx", 1, b(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x8137)
                         / pad(46)), 60, 60, not_ip("other_ethertype")),
    Case("unknown-linktype", 147, bytes(range(40)), 40, 40, not_ip("unknown_linktype")),
    Case("eth-0800-carrying-ipv6", 1, b(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x0800) / ip6() / UDP()), 62, 62,
         not_ip("bad_ip_version")),
    Case("raw101-version-5", 101, with_byte(b(ip4() / UDP()), 0, 0x55), 28, 28,
         not_ip("bad_ip_version")),
    Case("eth-ipv4-ihl-4", 1, with_byte(b(ETH / ip4() / UDP()), 14, 0x44), 42, 42,
         not_ip("bad_ip_header")),
    Case("eth-ipv4-total-below-header", 1, b(ETH / ip4(len=10) / UDP()), 42, 42,
         not_ip("bad_ip_header")),
    # ---- snaplen cuts ----
    Case("cut-in-ethernet-header", 1, F_TCP_PA, 10, 154, not_ip("truncated_link"), snaplen=10),
    Case("cut-in-vlan-tag", 1, F_DOT1Q, 16, 94, not_ip("truncated_link"), snaplen=16),
    Case("cut-in-sll-header", 113, F_SLL, 15, 92, not_ip("truncated_link"), snaplen=15),
    Case("cut-in-null-header", 0, F_NULL4, 3, 42, not_ip("truncated_link"), snaplen=3),
    Case("raw101-empty", 101, b"", 0, 0, not_ip("truncated_ip")),
    Case("cut-in-ipv4-header", 1, F_TCP_PA, 24, 154, not_ip("truncated_ip"), snaplen=24),
    Case("cut-in-ipv4-options", 1, F_V4_OPTS, 36, 56, not_ip("truncated_ip"), snaplen=36),
    Case("cut-in-ipv6-header", 1, F_V6_CHAIN, 53, 142, not_ip("truncated_ip"), snaplen=53),
    Case("cut-in-ipv6-routing-header", 1, F_V6_CHAIN, 66, 142,
         ip_stopped("truncated_ip", 6, V6A, V6B, 43), snaplen=66),
    # An extension header whose length runs past the captured bytes (found by fuzzing: the
    # packet was "ok" with its payload starting beyond the capture).
    Case("ipv6-extension-past-the-capture", 1,
         b(ETH / ip6(nh=0, plen=4000) / Raw(bytes([224, 255]) + bytes(6))), 62, 62,
         ip_stopped("truncated_ip", 6, V6A, V6B, 224)),
    Case("cut-in-tcp-header", 1, F_TCP_PA, 44, 154,
         ip_stopped("truncated_transport", 4, V4A, V4B, 6), snaplen=44),
    Case("cut-in-udp-header", 1, F_UDP, 40, 72,
         ip_stopped("truncated_transport", 4, V4A, V4B, 17), snaplen=40),
    Case("cut-in-icmp-header", 1, F_ICMP, 36, 98,
         ip_stopped("truncated_transport", 4, V4A, V4B, 1), snaplen=36),
    # Headers whole, payload cut: lengths stay those on the wire.
    Case("cut-in-tcp-payload", 1, F_TCP_PA, 64, 154,
         ip_ok(4, V4A, V4B, 6, 443, 40000, 54, 100, flags=0x18), snaplen=64),
    Case("cut-in-tcp-options", 1, F_SYN_OPTS, 60, 74,
         ip_ok(4, V4A, V4B, 6, 40000, 443, 74, 0, flags=0x02), snaplen=60),
]

# The four classic pcap flavours, spread over the cases.
FLAVOURS = [
    {"big_endian": False, "nanosecond": False},
    {"big_endian": True, "nanosecond": True},
    {"big_endian": True, "nanosecond": False},
    {"big_endian": False, "nanosecond": True},
]


def columns(pb: PacketBatch, i: int) -> dict[str, Any]:
    """One packet's decoded columns, addresses as text."""
    return {
        "status": STATUS_NAMES[int(pb.status[i])],
        "ip_version": int(pb.ip_version[i]),
        "src": format_addresses(pb.src_hi[i : i + 1], pb.src_lo[i : i + 1])[0],
        "dst": format_addresses(pb.dst_hi[i : i + 1], pb.dst_lo[i : i + 1])[0],
        "proto": int(pb.proto[i]),
        "sport": int(pb.sport[i]),
        "dport": int(pb.dport[i]),
        "tcp_flags": int(pb.tcp_flags[i]),
        "payload_off": int(pb.payload_off[i]),
        "payload_len": int(pb.payload_len[i]),
        "fragment": bool(pb.fragment[i]),
    }


def decode_file(path: Path) -> PacketBatch:
    """The whole capture, decoded as one batch."""
    reader = open_capture(str(path))
    batches = list(reader.batches())
    assert reader.warnings == []
    assert len(batches) == 1
    return decode(batches[0])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decode_case(case: Case, tmp_path: Path) -> None:
    flavour = FLAVOURS[CASES.index(case) % len(FLAVOURS)]
    assert len(case.frame) == case.wire_len, "the frame builder changed: fix the case"
    cap = pcap_bytes([(TS_NS, case.frame)], snaplen=case.snaplen, linktype=case.linktype, **flavour)
    pb = decode_file(cap.write(tmp_path / "one.pcap"))

    assert len(pb) == 1
    assert int(pb.ts_ns[0]) == (TS_NS if flavour["nanosecond"] else TS_US)
    assert int(pb.cap_len[0]) == case.cap_len
    assert int(pb.wire_len[0]) == case.wire_len
    assert int(pb.linktype[0]) == case.linktype
    assert columns(pb, 0) == case.want
    assert pb.raw(0) == case.frame[: case.cap_len]


def test_payload_bytes_are_the_transport_payload(tmp_path: Path) -> None:
    frames = [
        b(ETH / ip4() / TCP(sport=1, dport=2, options=TCP_OPTS) / Raw(b"hello tcp")),
        b(ETH / Dot1Q(vlan=5) / ip6() / IPv6ExtHdrDestOpt() / UDP(sport=3, dport=4) / Raw(b"udp!")),
        b(ETH / ip4() / UDP(sport=7, dport=9) / Raw(b"ab")) + bytes(16),  # Ethernet padding
        F_TCP_PA,
    ]
    cap = pcap_bytes([(TS_NS + k, f) for k, f in enumerate(frames)], snaplen=100)
    pb = decode_file(cap.write(tmp_path / "p.pcap"))
    assert [pb.payload(i) for i in range(len(pb))] == [b"hello tcp", b"udp!", b"ab", b"x" * 46]


def test_fcs_bits_in_the_linktype_field_are_ignored(tmp_path: Path) -> None:
    # Bits 26-31 of the header's link-type field announce an FCS; the link type is the low 16.
    cap = pcap_bytes([(TS_NS, F_UDP)], linktype=(4 << 28) | (1 << 26) | 1)
    pb = decode_file(cap.write(tmp_path / "fcs.pcap"))
    assert int(pb.linktype[0]) == 1
    assert columns(pb, 0) == ip_ok(4, V4A, V4B, 17, 53000, 53, 42, 30)


# ---- cross-check against dpkt ----


def mixed_frames(count: int, seed: int) -> list[bytes]:
    """Ethernet frames of every common kind, some VLAN-tagged, random sizes and addresses."""
    rng = random.Random(seed)
    frames = []
    for _ in range(count):
        v6 = rng.random() < 0.35
        if v6:
            net: Packet = IPv6(src=f"2001:db8::{rng.randrange(1, 0xFFFF):x}",
                               dst=f"2001:db8:1::{rng.randrange(1, 0xFFFF):x}")
            if rng.random() < 0.3:
                net = net / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
        else:
            net = IP(src=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                     dst=f"203.0.113.{rng.randrange(1, 255)}")
            if rng.random() < 0.2:
                net.options = [IPOption_Router_Alert()]
        kind = rng.choice(["tcp", "tcp", "udp", "udp", "icmp", "arp"])
        body = Raw(bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 40, 300, 1400]))))
        sport, dport = rng.randrange(1, 65536), rng.randrange(1, 65536)
        if kind == "arp":
            l3: Packet = ARP(psrc="10.0.0.1", pdst="10.0.0.2")
        elif kind == "tcp":
            flags = rng.choice(["S", "SA", "A", "PA", "FA", "R"])
            opts = TCP_OPTS if rng.random() < 0.3 else []
            l3 = net / TCP(sport=sport, dport=dport, flags=flags, options=opts) / body
        elif kind == "udp":
            l3 = net / UDP(sport=sport, dport=dport) / body
        elif v6:
            l3 = net / ICMPv6EchoRequest(id=1, seq=2, data=bytes(body))
        else:
            l3 = net / ICMP(type=rng.choice([0, 8]), code=0) / body
        link: Packet = ETH
        if rng.random() < 0.25:
            link = link / Dot1Q(vlan=rng.randrange(1, 4095))
        frames.append(b(link / l3))
    return frames


def dpkt_ip_view(ip: Any, *, full: bool = True) -> dict[str, Any]:
    """What dpkt makes of a network-layer packet, in the same terms as ``columns``.

    ``full`` False: the packet was cut by the snaplen, so payload lengths are not compared.
    """
    if isinstance(ip, dpkt.ip.IP):
        version, src, dst = 4, socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst)
    else:
        assert isinstance(ip, dpkt.ip6.IP6)
        version = 6
        src, dst = socket.inet_ntop(socket.AF_INET6, ip.src), socket.inet_ntop(socket.AF_INET6, ip.dst)
    l4 = ip.data
    view = {"status": "ok", "ip_version": version, "src": src, "dst": dst, "proto": ip.p}
    if isinstance(l4, dpkt.tcp.TCP):
        view |= {"sport": l4.sport, "dport": l4.dport, "tcp_flags": l4.flags}
    elif isinstance(l4, dpkt.udp.UDP):
        view |= {"sport": l4.sport, "dport": l4.dport, "tcp_flags": 0}
    elif isinstance(l4, (dpkt.icmp.ICMP, dpkt.icmp6.ICMP6)):
        raw = bytes(l4)
        echo = l4.type in ((0, 8) if isinstance(l4, dpkt.icmp.ICMP) else (128, 129))
        if echo and len(raw) >= 6:  # echo pairs are keyed by their identifier
            ident = int.from_bytes(raw[4:6], "big")
            view |= {"sport": ident, "dport": ident, "tcp_flags": 0}
        else:
            view |= {"sport": l4.type, "dport": l4.code, "tcp_flags": 0}
        if full:
            view["payload_len"] = len(bytes(l4)) - 8
    if full and isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
        view["payload_len"] = len(l4.data)
    return view


def dpkt_view(frame: bytes) -> dict[str, Any]:
    """What dpkt makes of one Ethernet frame."""
    net = dpkt.ethernet.Ethernet(frame).data
    if isinstance(net, dpkt.arp.ARP):
        return {"status": "arp"}
    view = dpkt_ip_view(net)
    assert "sport" in view, "the mixed capture holds only TCP, UDP and ICMP"
    return view


def test_mixed_capture_matches_dpkt(tmp_path: Path) -> None:
    frames = mixed_frames(400, seed=20240611)
    cap = pcap_bytes([(TS_NS + k * 1000, f) for k, f in enumerate(frames)], big_endian=True)
    pb = decode_file(cap.write(tmp_path / "mixed.pcap"))
    assert len(pb) == len(frames)
    kinds = set()
    for i, frame in enumerate(frames):
        want = dpkt_view(frame)
        got = {k: v for k, v in columns(pb, i).items() if k in want}
        assert got == want, f"frame {i}: {frame.hex()}"
        assert int(pb.wire_len[i]) == int(pb.cap_len[i]) == len(frame)
        kinds.add((want["status"], want.get("ip_version"), want.get("proto")))
    # The mix really covered what it is meant to cover.
    assert {("arp", None, None), ("ok", 4, 6), ("ok", 4, 17), ("ok", 4, 1), ("ok", 6, 6),
            ("ok", 6, 17), ("ok", 6, 58)} <= kinds


DPKT_LINK = {
    1: lambda raw: dpkt.ethernet.Ethernet(raw).data,
    113: lambda raw: dpkt.sll.SLL(raw).data,
    276: lambda raw: dpkt.sll2.SLL2(raw).data,
    101: lambda raw: (dpkt.ip.IP if raw[0] >> 4 == 4 else dpkt.ip6.IP6)(raw),
    228: dpkt.ip.IP,
    229: dpkt.ip6.IP6,
}


@pytest.mark.slow
def test_real_captures_match_dpkt(shared_pcaps: Path) -> None:
    have_pcapng = pcapng_reader_available()
    compared = 0
    for path in sorted(shared_pcaps.glob("*.pcap*")):
        if path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a" and not have_pcapng:
            continue
        for records in open_capture(str(path)).batches():
            pb = decode(records)
            for i in range(len(pb)):
                link = DPKT_LINK.get(int(pb.linktype[i]))
                if link is None:
                    continue
                net = link(pb.raw(i))
                got = columns(pb, i)
                if not isinstance(net, (dpkt.ip.IP, dpkt.ip6.IP6)):
                    assert got["status"] != "ok", f"{path.name} #{i}"
                    continue
                want = dpkt_ip_view(net, full=int(pb.cap_len[i]) == int(pb.wire_len[i]))
                assert {k: got[k] for k in want} == want, f"{path.name} #{i}"
                compared += 1
    assert compared > 6000  # the classic pcaps alone hold more IP packets than this


# ---- memory safety on damaged frames ----

SEED_FRAMES = [(c.linktype, c.frame) for c in CASES if c.frame] + [
    (1, b(OUT4 / GRE(proto=0x880B) / Raw(b"\xff\x03\x00\x21") / ip4() / UDP())),  # PPTP
    (1, b(OUT4 / GRE(proto=0x22EB) / Raw(bytes(11) + b"\x01" + bytes(8)) / ETH / ip4() / UDP())),
    (1, F_V6_CHAIN), (113, F_SLL), (276, sll2_header(0x8100) + b"\0\x05\x08\x00" + b(ip4() / UDP())),
]
LINKTYPES = sorted({c.linktype for c in CASES})

KernelFn = Callable[..., None]


def pure_python_kernel() -> KernelFn:
    """``decode_packets`` run as plain Python: numpy bounds-checks every read it makes."""
    py = kernel.decode_packets.py_func
    scope = dict(py.__globals__)
    for name, obj in py.__globals__.items():  # compiled helpers -> their Python source too
        if callable(getattr(obj, "py_func", None)):
            scope[name] = obj.py_func
    return types.FunctionType(py.__code__, scope, py.__name__)


PY_KERNEL = pure_python_kernel()


def decode_with(fn: KernelFn, records: RecordBatch) -> PacketBatch:
    """Like ``decode`` but through ``fn``: the same columns, filled by another kernel build."""
    return decode(records, kernel=fn)


def single_record(frame: bytes, linktype: int, wire_extra: int = 0) -> RecordBatch:
    """A batch whose buffer ends exactly where the packet ends."""
    n = len(frame)
    return RecordBatch(
        data=np.frombuffer(frame, np.uint8).copy(), offset=np.zeros(1, np.int64),
        caplen=np.array([n], np.uint32), wirelen=np.array([n + wire_extra], np.uint32),
        ts_ns=np.zeros(1, np.int64), linktype=np.array([linktype], np.uint16),
        iface=np.zeros(1, np.uint16), file_offset=np.zeros(1, np.int64),
    )


@st.composite
def damaged_frames(draw: st.DrawFn) -> tuple[int, bytes]:
    """A real frame, maybe under another link type, cut short and with header bytes changed."""
    linktype, frame = draw(st.sampled_from(SEED_FRAMES))
    if draw(st.booleans()):
        linktype = draw(st.sampled_from(LINKTYPES))
    # Headers all lie in the first 140 bytes: cut there (or not at all) to hit every check.
    frame = bytearray(frame[: draw(st.integers(0, min(len(frame), 140)) | st.just(len(frame)))])
    for _ in range(draw(st.integers(0, 6))):
        if not frame:
            break
        at = draw(st.integers(0, min(len(frame), 140) - 1))
        frame[at] = draw(st.sampled_from([0x00, 0xFF, 0x0F, 0xF0, 0x2C, 0x3C, 0x06, 0x11]) | st.integers(0, 255))
    return linktype, bytes(frame)


@pytest.mark.slow
def test_kernel_reads_only_captured_bytes_at_every_cut() -> None:
    # Every seed frame cut at every length that ends inside its headers, as a snaplen would.
    # Random cuts rarely land in the few bytes where a missing check shows, so sweep them all.
    for linktype, frame in SEED_FRAMES:
        for keep in range(min(len(frame), 140) + 1):
            records = single_record(frame[:keep], linktype, wire_extra=len(frame) - keep)
            slow = decode_with(PY_KERNEL, records)  # IndexError here = a read past the cut
            assert columns(decode(records), 0) == columns(slow, 0), (linktype, frame.hex(), keep)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_frames(), st.sampled_from([0, 0, 1, 1500, 70_000]))
def test_kernel_reads_only_captured_bytes(sample: tuple[int, bytes], wire_extra: int) -> None:
    linktype, frame = sample
    records = single_record(frame, linktype, wire_extra)
    slow = decode_with(PY_KERNEL, records)  # IndexError here = a read past the packet
    fast = decode(records)
    assert columns(fast, 0) == columns(slow, 0)
    got = columns(fast, 0)
    if got["status"] == "ok":
        assert got["ip_version"] in (4, 6)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=200), st.sampled_from(LINKTYPES))
def test_kernel_survives_random_bytes(frame: bytes, linktype: int) -> None:
    records = single_record(frame, linktype)
    assert columns(decode(records), 0) == columns(decode_with(PY_KERNEL, records), 0)


def test_pure_python_kernel_does_catch_overreads() -> None:
    # The safety tests above rely on the plain-Python build raising on a read past the buffer.
    records = single_record(F_TCP_PA[:40], 1)
    records.caplen[0] = len(F_TCP_PA)  # claim bytes the buffer does not have
    with pytest.raises(IndexError):
        decode_with(PY_KERNEL, records)
