"""Community ID v1: the flow hash Zeek, Suricata, Elastic and others print, so an analyst can
pivot from a burstwatch case to the same connection in another tool's logs.

The hash is SHA-1 over: a 2-byte seed, the two addresses and ports ordered so both directions
give the same value, the IP protocol and a zero pad byte (corelight/community-id-spec). ICMP
types that have a reply type (echo, router solicitation, ...) are paired with it so request
and reply share one id; other ICMP messages are one-way and keep their order.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct

ICMP, ICMP6 = 1, 58
PORT_PROTOCOLS = frozenset((6, 17, 132))  # TCP, UDP, SCTP: ids include the ports
_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 139: 140, 140: 139,
                144: 145, 145: 144}


def community_id(proto: int, saddr: str, daddr: str, sport: int | None = None,
                 dport: int | None = None, seed: int = 0) -> str:
    """The ``1:...`` id of a connection. For ICMP, ``sport`` is the type and ``dport`` the
    code; for protocols without ports they are ignored."""
    src = ipaddress.ip_address(saddr).packed
    dst = ipaddress.ip_address(daddr).packed
    one_way = False
    ports = proto in PORT_PROTOCOLS or proto in (ICMP, ICMP6)
    sp, dp = int(sport or 0), int(dport or 0)
    if proto in (ICMP, ICMP6):
        pairs = _ICMP4_PAIRS if proto == ICMP else _ICMP6_PAIRS
        if sp in pairs:
            dp = pairs[sp]
        else:
            one_way = True
    if not one_way and (src, sp) > (dst, dp):
        src, dst, sp, dp = dst, src, dp, sp
    data = struct.pack("!H", seed) + src + dst + struct.pack("!BB", proto, 0)
    if ports:
        data += struct.pack("!HH", sp, dp)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()
