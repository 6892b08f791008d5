"""The per-packet header walk, compiled with numba.

Each packet's headers sit at offsets that depend on the headers before them (VLAN tags,
IPv4 options, IPv6 extension headers, tunnels), so the walk is a loop; it is compiled, runs
over a whole batch in one call and writes only into preallocated columns.

Decapsulation is the same walk going on: after the link layer, a small state machine moves
through what each header says comes next (an Ethernet frame, an ethertype, PPP, an MPLS
stack, an IP header) until it reaches an IP packet that carries no tunnel, or gives up with a
status. The innermost IP header gives the flow's addresses; the outermost one is kept as the
tunnel's endpoints. Every read is checked against the captured length.
"""

from __future__ import annotations

import numpy as np

from burstwatch.decode import batch as b
from burstwatch.jit import njit
from burstwatch.prefetch import prefetch

_AHEAD = 8  # packets decoded while the next one's headers load

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
ETH_PPPOE_SESSION = 0x8864
ETH_MPLS = 0x8847
ETH_MPLS_MC = 0x8848
ETH_TEB = 0x6558  # transparent Ethernet bridging (GRE, Geneve)
ETH_ERSPAN_1_2 = 0x88BE
ETH_ERSPAN_3 = 0x22EB
ETH_PPP = 0x880B  # PPP in enhanced GRE (PPTP)

PROTO_IPIP = 4
PROTO_IPV6 = 41
PROTO_GRE = 47
PROTO_AH = 51

# What the walk expects at the current offset.
_K_DONE = 0  # a status was set
_K_ETHER = 1  # an Ethernet header
_K_ETYPE = 2  # the payload of ethertype ``val``
_K_PPP = 3  # a PPP protocol field (PPPoE session, PPTP)
_K_MPLS = 4  # an MPLS label stack
_K_IP = 5  # an IP header of version ``val``
_K_L4 = 6  # the transport header of the innermost IP packet
_MAX_LABELS = 16
_TEREDO_BY_CONTENT = 6  # a UDP tunnel kind beyond decode.config's: Teredo off its port

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


@njit(cache=True, inline="always")
def _link(data: np.ndarray, base: int, clen: int, lt: int) -> tuple[int, int, int, int]:
    """(status, kind, val, offset) where the link layer hands over to the walk."""
    if lt == LINKTYPE_ETHERNET:
        if clen >= 14:  # the common case first: IP right behind the Ethernet header
            et = _be16(data, base + 12)
            if et == ETH_IPV4:
                return _OK, _K_IP, 4, 14
            if et == ETH_IPV6:
                return _OK, _K_IP, 6, 14
        return _OK, _K_ETHER, 0, 0
    if lt == LINKTYPE_LINUX_SLL or lt == LINKTYPE_LINUX_SLL2:
        hl = 16 if lt == LINKTYPE_LINUX_SLL else 20
        if clen < hl:
            return b.STATUS_TRUNCATED_LINK, _K_DONE, 0, 0
        return _OK, _K_ETYPE, _be16(data, base + (14 if lt == LINKTYPE_LINUX_SLL else 0)), hl
    if lt == LINKTYPE_RAW or lt == LINKTYPE_RAW_DLT12 or lt == LINKTYPE_RAW_DLT14:
        if clen < 1:
            return b.STATUS_TRUNCATED_IP, _K_DONE, 0, 0
        version = int(data[base]) >> 4
        if version != 4 and version != 6:
            return b.STATUS_BAD_IP_VERSION, _K_DONE, 0, 0
        return _OK, _K_IP, version, 0
    if lt == LINKTYPE_IPV4:
        return _OK, _K_IP, 4, 0
    if lt == LINKTYPE_IPV6:
        return _OK, _K_IP, 6, 0
    if lt == LINKTYPE_NULL or lt == LINKTYPE_LOOP:
        if clen < 4:
            return b.STATUS_TRUNCATED_LINK, _K_DONE, 0, 0
        fam = _be32(data, base)
        if lt == LINKTYPE_NULL and fam > 0xFFFF:  # written in little-endian host order
            fam = (
                ((fam & 0xFF) << 24) | ((fam & 0xFF00) << 8)
                | ((fam >> 8) & 0xFF00) | (fam >> 24)
            )
        if fam == 2:
            return _OK, _K_IP, 4, 4
        if fam == 10 or fam == 24 or fam == 28 or fam == 30:
            return _OK, _K_IP, 6, 4
        return b.STATUS_OTHER_LINK_PROTOCOL, _K_DONE, 0, 0
    return b.STATUS_UNKNOWN_LINKTYPE, _K_DONE, 0, 0


@njit(cache=True, inline="always")
def _truncated(nip: int) -> int:
    """A header cut short: the link layer's when no IP layer was crossed, else a tunnel's."""
    return b.STATUS_TRUNCATED_LINK if nip == 0 else b.STATUS_TRUNCATED_TUNNEL


@njit(cache=True)
def _gre(data: np.ndarray, base: int, clen: int, g: int) -> tuple[int, int, int, int, int]:
    """GRE at ``g`` (RFC 2784/2890; version 1 is PPTP's enhanced GRE, RFC 2637) and ERSPAN
    I/II/III behind it: (status, kind, val, offset, encap bits); next kind ``_K_L4`` when it
    carries nothing the walk opens (then the packet stays a GRE packet)."""
    if clen < g + 4:
        return b.STATUS_TRUNCATED_TUNNEL, _K_DONE, 0, 0, b.ENC_GRE
    flags = _be16(data, base + g)
    ptype = _be16(data, base + g + 2)
    ver = flags & 7
    h = 4
    seq = (flags & 0x1000) != 0
    if ver == 0:
        if flags & 0x4000:  # RFC 1701 source routing: obsolete, not followed
            return b.STATUS_OTHER_TUNNEL_PAYLOAD, _K_DONE, 0, 0, b.ENC_GRE
        if flags & 0x8000:
            h += 4
        if flags & 0x2000:
            h += 4
        if seq:
            h += 4
    elif ver == 1:
        if ptype != ETH_PPP:
            return b.STATUS_OTHER_TUNNEL_PAYLOAD, _K_DONE, 0, 0, b.ENC_GRE
        h += 4  # payload length and call id (the key field, always present)
        if seq:
            h += 4
        if flags & 0x0080:  # acknowledgment number
            h += 4
    else:
        return b.STATUS_OTHER_TUNNEL_PAYLOAD, _K_DONE, 0, 0, b.ENC_GRE
    p = g + h
    if clen < p:
        return b.STATUS_TRUNCATED_TUNNEL, _K_DONE, 0, 0, b.ENC_GRE
    if ptype == ETH_ERSPAN_1_2:
        if seq:  # type II: an 8-byte header; type I has none (and no sequence number)
            p += 8
        if clen < p:
            return b.STATUS_TRUNCATED_TUNNEL, _K_DONE, 0, 0, b.ENC_GRE | b.ENC_ERSPAN
        return _OK, _K_ETHER, 0, p, b.ENC_GRE | b.ENC_ERSPAN
    if ptype == ETH_ERSPAN_3:
        if clen < p + 12:
            return b.STATUS_TRUNCATED_TUNNEL, _K_DONE, 0, 0, b.ENC_GRE | b.ENC_ERSPAN
        p += 20 if data[base + p + 11] & 1 else 12  # O flag: a platform sub-header follows
        return _OK, _K_ETHER, 0, p, b.ENC_GRE | b.ENC_ERSPAN
    if ptype == ETH_PPP:
        return _OK, _K_PPP, 0, p, b.ENC_GRE | b.ENC_PPTP
    if ptype == ETH_TEB:
        return _OK, _K_ETHER, 0, p, b.ENC_GRE
    if ptype == ETH_IPV4 or ptype == ETH_IPV6 or ptype == ETH_MPLS or ptype == ETH_MPLS_MC:
        return _OK, _K_ETYPE, ptype, p, b.ENC_GRE
    # Keepalives (type 0), routing protocols and the like: the GRE packet stays a flow.
    return _OK, _K_L4, 0, 0, 0


@njit(cache=True)
def _udp_tunnel(
    data: np.ndarray, base: int, clen: int, u: int, ulen: int, kind: int,
) -> tuple[int, int, int, int, int]:
    """The UDP payload at ``u`` (``ulen`` bytes on the wire) as tunnel ``kind``: (status,
    next kind, val, offset, encap bits); next kind ``_K_L4`` when it does not look like one
    (then the packet stays a UDP packet)."""
    if kind == 1:  # VXLAN: flags with the I bit, 3 reserved, VNI, reserved
        if clen < u + 8 or (data[base + u] & 0x08) == 0:
            return _OK, _K_L4, 0, 0, 0
        return _OK, _K_ETHER, 0, u + 8, b.ENC_VXLAN
    if kind == 2:  # Geneve: version 0, option length in 4-byte words, protocol type
        if clen < u + 8 or (data[base + u] >> 6) != 0:
            return _OK, _K_L4, 0, 0, 0
        p = u + 8 + (int(data[base + u]) & 0x3F) * 4
        ptype = _be16(data, base + u + 2)
        if clen < p:
            return b.STATUS_TRUNCATED_TUNNEL, _K_DONE, 0, 0, b.ENC_GENEVE
        if ptype == ETH_TEB:
            return _OK, _K_ETHER, 0, p, b.ENC_GENEVE
        return _OK, _K_ETYPE, ptype, p, b.ENC_GENEVE
    if kind == 3:  # GTP-U version 1, protocol type GTP, message type G-PDU
        if clen < u + 8:
            return _OK, _K_L4, 0, 0, 0
        f = int(data[base + u])
        if (f >> 5) != 1 or (f & 0x10) == 0 or data[base + u + 1] != 0xFF:
            return _OK, _K_L4, 0, 0, 0  # GTP', v2 or signalling (echo, error): not a tunnel
        p = u + 8
        if f & 0x07:  # sequence number, N-PDU number, next extension header type
            if clen < u + 12:
                return b.STATUS_TRUNCATED_TUNNEL, _K_DONE, 0, 0, b.ENC_GTP
            nxt = int(data[base + u + 11])
            p = u + 12
            while nxt != 0 and (f & 0x04):
                if clen < p + 1:
                    return b.STATUS_TRUNCATED_TUNNEL, _K_DONE, 0, 0, b.ENC_GTP
                el = int(data[base + p]) * 4
                if el == 0 or clen < p + el:
                    return b.STATUS_TRUNCATED_TUNNEL, _K_DONE, 0, 0, b.ENC_GTP
                nxt = int(data[base + p + el - 1])
                p += el
        if clen < p + 1:
            return b.STATUS_TRUNCATED_TUNNEL, _K_DONE, 0, 0, b.ENC_GTP
        version = int(data[base + p]) >> 4
        if version != 4 and version != 6:
            return b.STATUS_OTHER_TUNNEL_PAYLOAD, _K_DONE, 0, 0, b.ENC_GTP
        return _OK, _K_IP, version, p, b.ENC_GTP
    if kind == 4 or kind == _TEREDO_BY_CONTENT:
        # Teredo: optional authentication and origin indication, then IPv6
        p = u
        if kind == 4 and clen >= p + 4 and data[base + p] == 0 and data[base + p + 1] == 1:
            p += 4 + int(data[base + p + 2]) + int(data[base + p + 3]) + 9
        if clen >= p + 2 and data[base + p] == 0 and data[base + p + 1] == 0:
            p += 8
        # Only a whole IPv6 header whose length fills the datagram makes it Teredo (as Zeek).
        if clen < p + 40 or (data[base + p] >> 4) != 6:
            return _OK, _K_L4, 0, 0, 0
        if _be16(data, base + p + 4) + 40 != ulen - (p - u):
            return _OK, _K_L4, 0, 0, 0
        # Off the Teredo port (a relay's or a peer's port), one side must hold a Teredo
        # address (2001:0::/32), as Zeek's content-based detection finds it.
        if kind == _TEREDO_BY_CONTENT and not (
            _be32(data, base + p + 8) == 0x20010000 or _be32(data, base + p + 24) == 0x20010000
        ):
            return _OK, _K_L4, 0, 0, 0
        return _OK, _K_IP, 6, p, b.ENC_TEREDO
    if kind == 5:  # MPLS over UDP
        return _OK, _K_MPLS, 0, u, 0
    return _OK, _K_L4, 0, 0, 0


@njit(cache=True, nogil=True)
def decode_packets(
    data: np.ndarray,
    offset: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    linktype: np.ndarray,
    cfg: np.ndarray,
    udp_tunnels: np.ndarray,
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
    encap: np.ndarray,
    ip_off: np.ndarray,
    outer_src_hi: np.ndarray,
    outer_src_lo: np.ndarray,
    outer_dst_hi: np.ndarray,
    outer_dst_lo: np.ndarray,
) -> None:
    """Decode link, tunnel, network and transport headers of every packet in a batch.

    ``cfg``: (open tunnels, most IP layers to cross) from ``DecodeConfig.kernel_config``;
    ``udp_tunnels``: the tunnel kind of each UDP port. ``outer_*`` are written only for
    packets with an encapsulation (zero unless it was an IP tunnel): the plain path leaves
    them alone.
    """
    decap = cfg[0] != 0
    max_ip = cfg[1]
    n = offset.shape[0]
    for i in range(n):
        if i + _AHEAD < n:
            prefetch(data, offset[i + _AHEAD])
        base = offset[i]
        clen = int(caplen[i])
        wlen = int(wirelen[i])
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
        ip_off[i] = 0

        code, kind, val, p = _link(data, base, clen, int(linktype[i]))
        enc = 0
        nip = 0  # IP layers crossed
        l4 = 0  # offset of the transport header within the packet
        l4_len = 0  # transport header + payload length, per the IP header
        nxt = 0
        o_src_hi = o_src_lo = o_dst_hi = o_dst_lo = np.uint64(0)
        # Every pass through the walk consumes header bytes (or crosses an IP layer, of which
        # there are at most ``max_ip``), so it ends within the captured length.
        while kind != _K_DONE and kind != _K_L4:
            if kind == _K_IP:
                version = val
                if nip >= max_ip:
                    code, kind = b.STATUS_TOO_DEEP, _K_DONE
                    break
                q = base + p
                avail = clen - p
                if avail < 1:
                    code, kind = b.STATUS_TRUNCATED_IP, _K_DONE
                    break
                if (int(data[q]) >> 4) != version:
                    code, kind = b.STATUS_BAD_IP_VERSION, _K_DONE
                    break
                later_fragment = False
                is_fragment = False
                if version == 4:
                    if avail < 20:
                        code, kind = b.STATUS_TRUNCATED_IP, _K_DONE
                        break
                    ihl = (int(data[q]) & 0x0F) * 4
                    total = _be16(data, q + 2)
                    if total == 0:
                        # Segmentation offload: the sending host captured the segment before
                        # the NIC split it and filled in the length, so only the frame tells.
                        total = wlen - p
                    if ihl < 20 or total < ihl:
                        code, kind = b.STATUS_BAD_IP_HEADER, _K_DONE
                        break
                    if avail < ihl:
                        code, kind = b.STATUS_TRUNCATED_IP, _K_DONE
                        break
                    frag = _be16(data, q + 6)
                    nxt = int(data[q + 9])
                    s_hi = np.uint64(0)
                    s_lo = _MAPPED | np.uint64(_be32(data, q + 12))
                    d_hi = np.uint64(0)
                    d_lo = _MAPPED | np.uint64(_be32(data, q + 16))
                    l4 = p + ihl
                    l4_len = total - ihl
                    if (frag & 0x2000) != 0 or (frag & 0x1FFF) != 0:
                        is_fragment = True
                        later_fragment = (frag & 0x1FFF) != 0
                    elif nxt == PROTO_AH and clen >= l4 + 2:
                        ext = (int(data[base + l4 + 1]) + 2) * 4
                        nxt = int(data[base + l4])
                        l4 += ext
                        l4_len -= ext
                else:
                    if avail < 40:
                        code, kind = b.STATUS_TRUNCATED_IP, _K_DONE
                        break
                    plen = _be16(data, q + 4)
                    if plen == 0:  # segmentation offload or a jumbogram: the frame tells
                        plen = max(wlen - p - 40, 0)
                    nxt = int(data[q + 6])
                    s_hi = _be64(data, q + 8)
                    s_lo = _be64(data, q + 16)
                    d_hi = _be64(data, q + 24)
                    d_lo = _be64(data, q + 32)
                    l4 = p + 40
                    l4_len = plen
                    # Hop-by-hop (0), routing (43), fragment (44), destination options (60), AH (51).
                    while nxt == 0 or nxt == 43 or nxt == 44 or nxt == 60 or nxt == PROTO_AH:
                        if clen < l4 + 8:
                            code = b.STATUS_TRUNCATED_IP
                            break
                        if nxt == 44:
                            is_fragment = True
                            later_fragment = (_be16(data, base + l4 + 2) >> 3) != 0
                            ext = 8
                        elif nxt == PROTO_AH:
                            ext = (int(data[base + l4 + 1]) + 2) * 4
                        else:
                            ext = (int(data[base + l4 + 1]) + 1) * 8
                        nxt = int(data[base + l4])
                        l4 += ext
                        l4_len -= ext
                        if later_fragment:
                            break
                nip += 1
                src_hi[i] = s_hi
                src_lo[i] = s_lo
                dst_hi[i] = d_hi
                dst_lo[i] = d_lo
                ip_version[i] = version
                ip_off[i] = p
                proto[i] = nxt
                if is_fragment:
                    fragment[i] = True
                if code == _OK and l4 > clen:  # the extension-header chain runs past the capture
                    code = b.STATUS_TRUNCATED_IP
                if code != _OK:
                    kind = _K_DONE
                    break
                if l4_len < 0:
                    code, kind = b.STATUS_BAD_IP_HEADER, _K_DONE
                    break
                if later_fragment:  # later fragments carry no transport header
                    payload_off[i] = l4
                    payload_len[i] = l4_len
                    kind = _K_DONE
                    break
                kind = _K_L4
                if not decap or is_fragment:
                    break
                if nip == 1:  # the outermost IP header: the tunnel's endpoints, if one follows
                    o_src_hi, o_src_lo, o_dst_hi, o_dst_lo = s_hi, s_lo, d_hi, d_lo
                if nxt == PROTO_IPIP or nxt == PROTO_IPV6:
                    enc |= b.ENC_IPIP
                    kind, val, p = _K_IP, (4 if nxt == PROTO_IPIP else 6), l4
                elif nxt == PROTO_GRE:
                    code, kind, val, p, bits = _gre(data, base, clen, l4)
                    enc |= bits
                elif nxt == b.PROTO_UDP and clen >= l4 + 8:
                    tk = udp_tunnels[_be16(data, base + l4 + 2)]
                    if tk == 0:
                        tk = udp_tunnels[_be16(data, base + l4)]
                    if tk == 0 and clen >= l4 + 48 and (data[base + l4 + 8] >> 4) == 6:
                        tk = _TEREDO_BY_CONTENT
                    if tk != 0:
                        code, kind, val, p, bits = _udp_tunnel(
                            data, base, clen, l4 + 8, l4_len - 8, int(tk))
                        enc |= bits
            elif kind == _K_ETHER:
                if clen < p + 14:
                    code, kind = _truncated(nip), _K_DONE
                    break
                val = _be16(data, base + p + 12)
                p += 14
                kind = _K_ETYPE
                if val <= 1500:  # an 802.3 length: LLC, and SNAP carries an ethertype
                    if clen < p + 8:
                        code, kind = _truncated(nip), _K_DONE
                    elif data[base + p] == 0xAA and data[base + p + 1] == 0xAA and data[base + p + 2] == 3:
                        val = _be16(data, base + p + 6)
                        p += 8
                        enc |= b.ENC_SNAP
                    else:
                        code, kind = b.STATUS_OTHER_LINK_PROTOCOL, _K_DONE
            elif kind == _K_ETYPE:
                if val == ETH_IPV4:
                    kind, val = _K_IP, 4
                elif val == ETH_IPV6:
                    kind, val = _K_IP, 6
                elif val == ETH_VLAN or val == ETH_QINQ or val == ETH_QINQ_OLD:
                    if clen < p + 4:
                        code, kind = _truncated(nip), _K_DONE
                    else:
                        val = _be16(data, base + p + 2)
                        p += 4
                        enc |= b.ENC_VLAN
                elif val == ETH_PPPOE_SESSION:  # version/type, code, session id, length
                    enc |= b.ENC_PPPOE
                    kind = _K_PPP
                    p += 6
                elif val == ETH_MPLS or val == ETH_MPLS_MC:
                    kind = _K_MPLS
                elif val == ETH_TEB:
                    kind = _K_ETHER
                else:
                    code, kind = _ethertype_status(val), _K_DONE
            elif kind == _K_PPP:
                if clen >= p + 2 and data[base + p] == 0xFF and data[base + p + 1] == 3:
                    p += 2  # HDLC address and control (PPTP)
                if clen < p + 1:
                    code, kind = _truncated(nip), _K_DONE
                    break
                if data[base + p] & 1:  # a compressed, one-byte protocol field
                    val = int(data[base + p])
                    p += 1
                elif clen < p + 2:
                    code, kind = _truncated(nip), _K_DONE
                    break
                else:
                    val = _be16(data, base + p)
                    p += 2
                if val == 0x21:
                    kind, val = _K_IP, 4
                elif val == 0x57:
                    kind, val = _K_IP, 6
                elif val == 0x281:
                    kind = _K_MPLS
                else:  # LCP, IPCP, CHAP...: PPP's own control traffic
                    code, kind = b.STATUS_OTHER_TUNNEL_PAYLOAD, _K_DONE
            else:  # _K_MPLS
                enc |= b.ENC_MPLS
                bottom = False
                for _ in range(_MAX_LABELS):
                    if clen < p + 4:
                        break
                    bottom = (data[base + p + 2] & 1) != 0
                    p += 4
                    if bottom:
                        break
                if not bottom or clen < p + 1:
                    code, kind = _truncated(nip), _K_DONE
                    break
                first = int(data[base + p]) >> 4  # MPLS does not say what it carries: guess
                if first == 4 or first == 6:
                    kind, val = _K_IP, first
                elif first == 0:  # a pseudowire control word, then an Ethernet frame
                    p += 4
                    kind = _K_ETHER
                else:
                    code, kind = b.STATUS_OTHER_TUNNEL_PAYLOAD, _K_DONE

        encap[i] = enc
        if enc != 0:  # elsewhere the outer columns are left unwritten (PacketBatch says so)
            if nip <= 1:
                o_src_hi = o_src_lo = o_dst_hi = o_dst_lo = np.uint64(0)
            outer_src_hi[i] = o_src_hi
            outer_src_lo[i] = o_src_lo
            outer_dst_hi[i] = o_dst_hi
            outer_dst_lo[i] = o_dst_lo
        if code != _OK:
            status[i] = code
            continue
        if kind != _K_L4:
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
