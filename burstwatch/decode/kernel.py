"""The per-packet header walk, compiled with numba.

Each packet's headers sit at offsets that depend on the headers before them (VLAN tags,
IPv4 options, IPv6 extension headers), so the walk is a loop; it is compiled, runs over a
whole batch in one call and writes only into preallocated columns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from burstwatch.decode import batch as b

# Link types (LINKTYPE_* values as written in pcap/pcapng headers).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_DLT12 = 12
LINKTYPE_RAW_DLT14 = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
ETH_LLDP = 0x88CC
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8
ETH_QINQ_OLD = 0x9100

_OK = b.STATUS_OK
_MAPPED = np.uint64(0xFFFF << 32)


@njit(cache=True, inline="always")
def _be16(d: np.ndarray, p: int) -> int:
    return (int(d[p]) << 8) | int(d[p + 1])


@njit(cache=True, inline="always")
def _be32(d: np.ndarray, p: int) -> int:
    return (int(d[p]) << 24) | (int(d[p + 1]) << 16) | (int(d[p + 2]) << 8) | int(d[p + 3])


@njit(cache=True, inline="always")
def _be64(d: np.ndarray, p: int) -> np.uint64:
    v = np.uint64(0)
    for k in range(8):
        v = (v << np.uint64(8)) | np.uint64(d[p + k])
    return v


@njit(cache=True, inline="always")
def _ethertype_status(et: int) -> int:
    if et == ETH_ARP:
        return b.STATUS_ARP
    if et == ETH_LLDP:
        return b.STATUS_LLDP
    return b.STATUS_OTHER_ETHERTYPE


@njit(cache=True, nogil=True)
def decode_packets(
    data: np.ndarray,
    offset: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    linktype: np.ndarray,
    status: np.ndarray,
    ip_version: np.ndarray,
    src_hi: np.ndarray,
    src_lo: np.ndarray,
    dst_hi: np.ndarray,
    dst_lo: np.ndarray,
    proto: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    tcp_flags: np.ndarray,
    payload_off: np.ndarray,
    payload_len: np.ndarray,
    fragment: np.ndarray,
) -> None:
    """Decode link, network and transport headers of every packet in a batch."""
    n = offset.shape[0]
    for i in range(n):
        base = offset[i]
        clen = int(caplen[i])
        wlen = int(wirelen[i])
        lt = int(linktype[i])
        status[i] = _OK
        ip_version[i] = 0
        src_hi[i] = 0
        src_lo[i] = 0
        dst_hi[i] = 0
        dst_lo[i] = 0
        proto[i] = 0
        sport[i] = 0
        dport[i] = 0
        tcp_flags[i] = 0
        payload_off[i] = 0
        payload_len[i] = 0
        fragment[i] = False

        # ---- link layer: find the network header and its kind (4, 6, or ethertype) ----
        p = 0  # offset of the network header within the packet
        version = 0
        if lt == LINKTYPE_ETHERNET:
            if clen < 14:
                status[i] = b.STATUS_TRUNCATED_LINK
                continue
            et = _be16(data, base + 12)
            p = 14
            while et == ETH_VLAN or et == ETH_QINQ or et == ETH_QINQ_OLD:
                if clen < p + 4:
                    break
                et = _be16(data, base + p + 2)
                p += 4
            if et == ETH_VLAN or et == ETH_QINQ or et == ETH_QINQ_OLD:
                status[i] = b.STATUS_TRUNCATED_LINK
                continue
            if et == ETH_IPV4:
                version = 4
            elif et == ETH_IPV6:
                version = 6
            else:
                status[i] = _ethertype_status(et)
                continue
        elif lt == LINKTYPE_LINUX_SLL or lt == LINKTYPE_LINUX_SLL2:
            hl = 16 if lt == LINKTYPE_LINUX_SLL else 20
            if clen < hl:
                status[i] = b.STATUS_TRUNCATED_LINK
                continue
            et = _be16(data, base + (14 if lt == LINKTYPE_LINUX_SLL else 0))
            p = hl
            while (et == ETH_VLAN or et == ETH_QINQ) and clen >= p + 4:
                et = _be16(data, base + p + 2)
                p += 4
            if et == ETH_IPV4:
                version = 4
            elif et == ETH_IPV6:
                version = 6
            else:
                status[i] = _ethertype_status(et)
                continue
        elif lt == LINKTYPE_RAW or lt == LINKTYPE_RAW_DLT12 or lt == LINKTYPE_RAW_DLT14:
            if clen < 1:
                status[i] = b.STATUS_TRUNCATED_IP
                continue
            version = int(data[base]) >> 4
            if version != 4 and version != 6:
                status[i] = b.STATUS_BAD_IP_VERSION
                continue
        elif lt == LINKTYPE_IPV4:
            version = 4
        elif lt == LINKTYPE_IPV6:
            version = 6
        elif lt == LINKTYPE_NULL or lt == LINKTYPE_LOOP:
            if clen < 4:
                status[i] = b.STATUS_TRUNCATED_LINK
                continue
            fam = _be32(data, base)
            if lt == LINKTYPE_NULL and fam > 0xFFFF:  # written in little-endian host order
                fam = (
                    ((fam & 0xFF) << 24) | ((fam & 0xFF00) << 8)
                    | ((fam >> 8) & 0xFF00) | (fam >> 24)
                )
            p = 4
            if fam == 2:
                version = 4
            elif fam == 10 or fam == 24 or fam == 28 or fam == 30:
                version = 6
            else:
                status[i] = b.STATUS_OTHER_LINK_PROTOCOL
                continue
        else:
            status[i] = b.STATUS_UNKNOWN_LINKTYPE
            continue

        # ---- network layer ----
        q = base + p
        avail = clen - p
        if avail < 1:
            status[i] = b.STATUS_TRUNCATED_IP
            continue
        if (int(data[q]) >> 4) != version:
            status[i] = b.STATUS_BAD_IP_VERSION
            continue
        l4 = 0  # offset of the transport header within the packet
        l4_len = 0  # transport header + payload length, per the IP header
        nxt = 0
        if version == 4:
            if avail < 20:
                status[i] = b.STATUS_TRUNCATED_IP
                continue
            ihl = (int(data[q]) & 0x0F) * 4
            total = _be16(data, q + 2)
            if total == 0:
                # Segmentation offload: the sending host captured the segment before the NIC
                # split it and filled in the length, so only the frame length tells.
                total = wlen - p
            if ihl < 20 or total < ihl:
                status[i] = b.STATUS_BAD_IP_HEADER
                continue
            if avail < ihl:
                status[i] = b.STATUS_TRUNCATED_IP
                continue
            frag = _be16(data, q + 6)
            more = (frag & 0x2000) != 0
            foff = frag & 0x1FFF
            nxt = int(data[q + 9])
            src_hi[i] = 0
            src_lo[i] = _MAPPED | np.uint64(_be32(data, q + 12))
            dst_hi[i] = 0
            dst_lo[i] = _MAPPED | np.uint64(_be32(data, q + 16))
            ip_version[i] = 4
            proto[i] = nxt
            l4 = p + ihl
            l4_len = total - ihl
            if more or foff != 0:
                fragment[i] = True
                if foff != 0:  # later fragments carry no transport header
                    payload_off[i] = l4
                    payload_len[i] = l4_len
                    continue
        else:
            if avail < 40:
                status[i] = b.STATUS_TRUNCATED_IP
                continue
            plen = _be16(data, q + 4)
            if plen == 0:  # segmentation offload or a jumbogram: the frame length tells
                plen = max(wlen - p - 40, 0)
            nxt = int(data[q + 6])
            src_hi[i] = _be64(data, q + 8)
            src_lo[i] = _be64(data, q + 16)
            dst_hi[i] = _be64(data, q + 24)
            dst_lo[i] = _be64(data, q + 32)
            ip_version[i] = 6
            l4 = p + 40
            l4_len = plen
            later_fragment = False
            bad = False
            # Skip hop-by-hop (0), routing (43), fragment (44), destination options (60).
            while nxt == 0 or nxt == 43 or nxt == 44 or nxt == 60:
                if clen < l4 + 8:
                    bad = True
                    break
                if nxt == 44:
                    foff = _be16(data, base + l4 + 2) >> 3
                    fragment[i] = True
                    if foff != 0:
                        later_fragment = True
                    ext = 8
                else:
                    ext = (int(data[base + l4 + 1]) + 1) * 8
                nxt = int(data[base + l4])
                l4 += ext
                l4_len -= ext
                if later_fragment:
                    break
            proto[i] = nxt
            if bad or l4 > clen:  # the chain of extension headers runs past the capture
                status[i] = b.STATUS_TRUNCATED_IP
                continue
            if l4_len < 0:
                status[i] = b.STATUS_BAD_IP_HEADER
                continue
            if later_fragment:
                payload_off[i] = l4
                payload_len[i] = l4_len
                continue

        # ---- transport layer ----
        t = base + l4
        tavail = clen - l4
        if nxt == b.PROTO_TCP:
            if tavail < 20:
                status[i] = b.STATUS_TRUNCATED_TRANSPORT
                continue
            sport[i] = _be16(data, t)
            dport[i] = _be16(data, t + 2)
            doff = (int(data[t + 12]) >> 4) * 4
            tcp_flags[i] = data[t + 13]
            if doff < 20 or doff > l4_len:
                status[i] = b.STATUS_TRUNCATED_TRANSPORT
                continue
            payload_off[i] = l4 + doff
            payload_len[i] = l4_len - doff
        elif nxt == b.PROTO_UDP:
            if tavail < 8:
                status[i] = b.STATUS_TRUNCATED_TRANSPORT
                continue
            sport[i] = _be16(data, t)
            dport[i] = _be16(data, t + 2)
            payload_off[i] = l4 + 8
            payload_len[i] = max(l4_len - 8, 0)
        elif nxt == b.PROTO_ICMP or nxt == b.PROTO_ICMPV6:
            if tavail < 4:
                status[i] = b.STATUS_TRUNCATED_TRANSPORT
                continue
            icmp_type = int(data[t])
            echo = (
                (nxt == b.PROTO_ICMP and (icmp_type == 0 or icmp_type == 8))
                or (nxt == b.PROTO_ICMPV6 and (icmp_type == 128 or icmp_type == 129))
            )
            if echo and tavail >= 6:
                # Echo request and reply share the identifier: use it as both "ports" so a
                # ping session (or a tunnel riding on it) is one bidirectional flow.
                ident = _be16(data, t + 4)
                sport[i] = ident
                dport[i] = ident
            else:
                sport[i] = icmp_type
                dport[i] = data[t + 1]
            payload_off[i] = l4 + 8 if l4_len >= 8 else l4 + 4
            payload_len[i] = max(l4_len - 8, 0)
        else:  # ESP and other protocols: the whole IP payload is the payload
            payload_off[i] = l4
            payload_len[i] = max(l4_len, 0)
