"""Link-layer framing of IP datagrams for every capture link type the generator writes.

Readers must cope with all of these in the wild (Ethernet with VLAN/QinQ tags from switch
SPAN ports, Linux "any" captures in SLL/SLL2, raw IP from tunnels, BSD loopback), so the
test captures cover each.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from dataclasses import dataclass

from burstwatch.synth.addresses import is_internal, mac_for

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8

AF_INET = 2
AF_INET6_BSD_NULL = 30  # Darwin's value; DLT_NULL captures mostly come from macOS
AF_INET6_LOOP = 24  # OpenBSD's value; DLT_LOOP is OpenBSD's link type

SLL_HOST = 0  # packet addressed to the capturing host
SLL_OUTGOING = 4  # packet sent by the capturing host
ETH_MIN_FRAME = 60  # frames arriving on the wire are padded to this (FCS not captured)


@dataclass(frozen=True)
class Link:
    """How to frame packets: a link-type name (see :data:`LINK_NAMES`) and its options."""

    name: str = "ethernet"
    vlan: int = 100  # VLAN ID for "vlan" and the inner tag of "qinq"
    outer_vlan: int = 200  # service VLAN ID of "qinq"
    ifindex: int = 2  # interface index written in SLL2 headers
    pad: bool = True  # pad received Ethernet frames to 60 bytes, as NICs deliver them

    @property
    def linktype(self) -> int:
        """The pcap LINKTYPE_ value."""
        return LINK_NAMES[self.name]


LINK_NAMES: dict[str, int] = {
    "ethernet": LINKTYPE_ETHERNET,
    "vlan": LINKTYPE_ETHERNET,
    "qinq": LINKTYPE_ETHERNET,
    "sll": LINKTYPE_LINUX_SLL,
    "sll2": LINKTYPE_LINUX_SLL2,
    "raw": LINKTYPE_RAW,
    "ipv4": LINKTYPE_IPV4,
    "ipv6": LINKTYPE_IPV6,
    "null": LINKTYPE_NULL,
    "loop": LINKTYPE_LOOP,
}
_BY_NUMBER = {
    LINKTYPE_ETHERNET: "ethernet",
    LINKTYPE_LINUX_SLL: "sll",
    LINKTYPE_LINUX_SLL2: "sll2",
    LINKTYPE_RAW: "raw",
    LINKTYPE_IPV4: "ipv4",
    LINKTYPE_IPV6: "ipv6",
    LINKTYPE_NULL: "null",
    LINKTYPE_LOOP: "loop",
}


def as_link(link: Link | str | int) -> Link:
    """Accept a :class:`Link`, a name from :data:`LINK_NAMES`, or a LINKTYPE_ number."""
    if isinstance(link, Link):
        spec = link
    elif isinstance(link, int):
        if link not in _BY_NUMBER:
            raise ValueError(f"unsupported link type {link}")
        spec = Link(_BY_NUMBER[link])
    else:
        spec = Link(link)
    if spec.name not in LINK_NAMES:
        raise ValueError(f"unknown link {spec.name!r}; choose from {sorted(LINK_NAMES)}")
    return spec


@functools.lru_cache(maxsize=4096)
def _mac(addr: bytes) -> bytes:
    return mac_for(str(ipaddress.ip_address(addr)))


@functools.lru_cache(maxsize=4096)
def _internal(addr: bytes) -> bool:
    return is_internal(str(ipaddress.ip_address(addr)))


def _addresses(ip: bytes) -> tuple[int, bytes, bytes]:
    version = ip[0] >> 4
    if version == 4:
        return 4, ip[12:16], ip[16:20]
    if version == 6:
        return 6, ip[8:24], ip[24:40]
    raise ValueError(f"not an IP packet (version nibble {version})")


def frame(link: Link, ip: bytes, big_endian: bool = False) -> bytes:
    """Wrap one IP datagram in ``link``'s header; ``big_endian`` is the file's byte order (NULL)."""
    version, src, dst = _addresses(ip)
    ethertype = ETH_IPV4 if version == 4 else ETH_IPV6
    name = link.name
    if name in ("ethernet", "vlan", "qinq"):
        head = _mac(dst) + _mac(src)
        if name == "vlan":
            head += struct.pack("!HH", ETH_VLAN, link.vlan & 0xFFF)
        elif name == "qinq":
            head += struct.pack(
                "!HHHH", ETH_QINQ, link.outer_vlan & 0xFFF, ETH_VLAN, link.vlan & 0xFFF
            )
        out = head + struct.pack("!H", ethertype) + ip
        if link.pad and not _internal(src) and len(out) < ETH_MIN_FRAME:
            out += bytes(ETH_MIN_FRAME - len(out))
        return out
    if name == "sll":
        kind = SLL_OUTGOING if _internal(src) else SLL_HOST
        return struct.pack("!HHH8sH", kind, 1, 6, _mac(src), ethertype) + ip
    if name == "sll2":
        kind = SLL_OUTGOING if _internal(src) else SLL_HOST
        return struct.pack("!HHIHBB8s", ethertype, 0, link.ifindex, 1, kind, 6, _mac(src)) + ip
    if name == "raw":
        return ip
    if name == "ipv4" or name == "ipv6":
        if (name == "ipv4") != (version == 4):
            raise ValueError(
                f"an IPv{version} packet cannot go in a LINKTYPE_{name.upper()} capture"
            )
        return ip
    if name == "null":
        family = AF_INET if version == 4 else AF_INET6_BSD_NULL
        return struct.pack(">I" if big_endian else "<I", family) + ip
    if name == "loop":
        family = AF_INET if version == 4 else AF_INET6_LOOP
        return struct.pack("!I", family) + ip
    raise ValueError(f"unknown link {name!r}")
