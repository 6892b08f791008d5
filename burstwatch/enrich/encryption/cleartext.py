"""Well-known plaintext binary protocols, recognised by their framing on their own ports.

Some protocols that are not encrypted still carry high-entropy blobs near their start:
Kerberos tickets and authenticators (AS-REP, TGS-REQ), the same tickets inside LDAP SASL binds
and SMB session setups, GSS-TSIG keys in DNS TKEY queries, EAP-TLS records inside RADIUS. Their
first kilobyte can pass the entropy test, yet the flow is a directory, name or authentication
service talking in the clear. The entropy test therefore treats a direction that opens with one
of these framings, on that protocol's port, as clear content (like a text or file-format
start). The port alone never decides: random bytes on port 88 still look random, since the
framing checks below match about one random payload in 10^6 or fewer (RADIUS: 1 in 10^5).

Left out, with the reason: NTP (a packet is 48 bytes, under the test's 128-byte minimum; NTS
extension fields are in fact encrypted); SNMPv3 (its scoped PDU may be encrypted); SMB3
transform headers (0xFD "SMB": encrypted SMB).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from burstwatch.enrich.encryption.prefilter import at, u16
from burstwatch.enrich.encryption.verdict import PROTO_TCP, PROTO_UDP
from burstwatch.jit import njit

U8 = npt.NDArray[np.uint8]

DNS_PORTS = (53, 5353, 5355, 137)  # DNS, mDNS, LLMNR, NetBIOS name service (UDP; TCP: 53)
KERBEROS_PORTS = (88,)
LDAP_PORTS = (389, 3268)  # LDAP, global catalog (UDP: CLDAP on 389)
SMB_PORTS = (139, 445)
RADIUS_PORTS = (1645, 1646, 1812, 1813)
SNMP_PORTS = (161, 162)
# Index k + 1 is what cleartext_framing returns for CLEARTEXT[k].
CLEARTEXT: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("DNS", DNS_PORTS),
    ("Kerberos", KERBEROS_PORTS),
    ("LDAP", LDAP_PORTS),
    ("SMB", SMB_PORTS),
    ("RADIUS", RADIUS_PORTS),
    ("SNMP", SNMP_PORTS),
)
DNS, KERBEROS, LDAP, SMB, RADIUS, SNMP = range(1, len(CLEARTEXT) + 1)
# The port sets as arrays for the kernels: tuples of different lengths (and literal values)
# are different types, and numba would compile ``_on`` once for each.
_DNS_UDP, _DNS_TCP = np.array(DNS_PORTS, np.int64), np.array(DNS_PORTS[:1], np.int64)
_KERBEROS = np.array(KERBEROS_PORTS, np.int64)
_LDAP_UDP, _LDAP_TCP = np.array(LDAP_PORTS[:1], np.int64), np.array(LDAP_PORTS, np.int64)
_SMB, _RADIUS = np.array(SMB_PORTS, np.int64), np.array(RADIUS_PORTS, np.int64)
_SNMP = np.array(SNMP_PORTS, np.int64)
_KRB_TAGS = (0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x74, 0x75, 0x76, 0x7E)
_RADIUS_CODES = (1, 2, 3, 4, 5, 11, 12, 13, 40, 41, 42, 43, 44, 45)


@njit(cache=True)
def _on(a: int, b: int, ports: npt.NDArray[np.int64]) -> bool:
    """Either port is one of ``ports``."""
    hit = False
    for p in ports:
        hit |= a == p or b == p
    return hit


@njit(cache=True)
def _der_length(buf: U8, i: int, end: int) -> int:
    """Bytes taken by the DER length at ``i`` (1-5), or 0 if it is not one or runs past end."""
    if i >= end:
        return 0
    first = at(buf, i)
    if first < 0x80:
        return 1
    size = first - 0x80
    if size < 1 or size > 4 or i + 1 + size > end:
        return 0
    return 1 + size


@njit(cache=True)
def _dns(buf: U8, h: int, end: int) -> bool:
    """A DNS header: opcode query/iquery/status/notify/update, each count under 1024, some
    record."""
    if end - h < 12:
        return False
    opcode = (at(buf, h + 2) >> 3) & 0xF
    if not (opcode <= 2 or opcode == 4 or opcode == 5):
        return False
    total = 0
    for k in range(4):
        count = u16(buf, h + 4 + 2 * k)
        if count > 1023:
            return False
        total += count
    return total > 0


@njit(cache=True)
def _kerberos(buf: U8, h: int, end: int) -> bool:
    """A Kerberos message: application tag, DER length, SEQUENCE, then pvno [0] or [1] = 5."""
    if end - h < 2 or at(buf, h) not in _KRB_TAGS:
        return False
    i = h + 1 + _der_length(buf, h + 1, end)
    if i == h + 1 or i >= end or buf[i] != 0x30:
        return False
    skip = _der_length(buf, i + 1, end)
    i += 1 + skip
    if skip == 0 or end - i < 5:
        return False
    return bool(
        (buf[i] == 0xA0 or buf[i] == 0xA1)
        and buf[i + 1] == 3 and buf[i + 2] == 2 and buf[i + 3] == 1 and buf[i + 4] == 5
    )


@njit(cache=True)
def _ber_sequence(buf: U8, h: int, end: int) -> int:
    """The offset after a SEQUENCE header at ``h``, or -1."""
    if end - h < 2 or buf[h] != 0x30:
        return -1
    skip = _der_length(buf, h + 1, end)
    return -1 if skip == 0 else h + 1 + skip


@njit(cache=True)
def _ldap(buf: U8, h: int, end: int) -> bool:
    """An LDAPMessage: SEQUENCE, INTEGER messageID (1-4 bytes), a protocolOp tag."""
    i = _ber_sequence(buf, h, end)
    if i < 0 or end - i < 3 or buf[i] != 2 or buf[i + 1] < 1 or buf[i + 1] > 4:
        return False
    i += 2 + at(buf, i + 1)
    if i >= end:
        return False
    op = at(buf, i)
    return 0x60 <= op <= 0x79 or op == 0x42 or op == 0x4A or op == 0x50


@njit(cache=True)
def _snmp(buf: U8, h: int, end: int) -> bool:
    """An SNMPv1/v2c message: SEQUENCE, INTEGER version 0 or 1, OCTET STRING community."""
    i = _ber_sequence(buf, h, end)
    return bool(
        i >= 0 and end - i >= 4 and buf[i] == 2 and buf[i + 1] == 1 and buf[i + 2] <= 1
        and buf[i + 3] == 4
    )


@njit(cache=True)
def _smb(buf: U8, h: int, end: int) -> bool:
    """NetBIOS session message holding SMB1/SMB2 (0xFF/0xFE "SMB"), or a session request."""
    if end - h >= 5 and buf[h] == 0x81 and buf[h + 4] == 0x20:
        return True  # session request: the called name, 32 encoded bytes
    return bool(
        end - h >= 8 and buf[h] == 0 and (buf[h + 4] == 0xFF or buf[h + 4] == 0xFE)
        and buf[h + 5] == 83 and buf[h + 6] == 77 and buf[h + 7] == 66
    )


@njit(cache=True)
def _radius(buf: U8, h: int, end: int, whole: bool) -> bool:
    """A RADIUS packet: known code, length 20-4096 equal to the datagram when it is whole."""
    if end - h < 20 or at(buf, h) not in _RADIUS_CODES:
        return False
    length = u16(buf, h + 2)
    return 20 <= length <= 4096 and (length == end - h or not whole)


@njit(cache=True)
def cleartext_framing(
    buf: U8, o: int, n: int, proto: int, port_a: int, port_b: int, whole: bool
) -> int:
    """Which CLEARTEXT protocol (1-based) the payload ``buf[o:o + n]`` opens on its port, else
    0. ``whole`` says the payload is not cut short (only RADIUS compares a length with it)."""
    end = o + n
    if proto == PROTO_UDP:
        if _on(port_a, port_b, _DNS_UDP) and _dns(buf, o, end):
            return DNS
        if _on(port_a, port_b, _KERBEROS) and _kerberos(buf, o, end):
            return KERBEROS
        if _on(port_a, port_b, _LDAP_UDP) and _ldap(buf, o, end):
            return LDAP
        if _on(port_a, port_b, _RADIUS) and _radius(buf, o, end, whole):
            return RADIUS
        if _on(port_a, port_b, _SNMP) and _snmp(buf, o, end):
            return SNMP
    elif proto == PROTO_TCP:
        if _on(port_a, port_b, _DNS_TCP) and n >= 2 and _dns(buf, o + 2, end):
            return DNS  # a 2-byte length, then the message
        if _on(port_a, port_b, _KERBEROS) and n >= 4 and buf[o] < 0x80 and _kerberos(buf, o + 4, end):
            return KERBEROS  # a 4-byte record mark (high bit clear), then the message
        if _on(port_a, port_b, _LDAP_TCP) and _ldap(buf, o, end):
            return LDAP
        if _on(port_a, port_b, _SMB) and _smb(buf, o, end):
            return SMB
    return 0
