"""Which payload samples the classifier needs whole: those that may open a known protocol.

This is the policy the flow table samples by (:mod:`burstwatch.flows.sampling`). A payload
"opens" a protocol when it meets the cheapest necessary condition of a detector that reads
more than the first bytes: a TLS record header, an SSH banner or any plain-text start (a
banner may follow other lines of text), an OpenVPN-over-TCP record holding a hard reset; on UDP a
QUIC long header (any version, with connection ids of at most 20 bytes), a DTLS datagram, a
WireGuard message (either framing), an OpenVPN-shaped packet, IKE's ports; and every ESP packet.
The single-payload conditions are the prefilter's (:mod:`prefilter`). A direction keeps whole
payloads from the first one that opens something (a STUN exchange before DTLS, or discovery
packets before WireGuard, do not hide it). Flows where no payload opens anything get the entropy test only, which reads the first
:data:`SAMPLE_BYTES` of each direction and the first bytes of each payload: what is kept.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from burstwatch.enrich.encryption import openvpn
from burstwatch.enrich.encryption.entropy_detector import MAGIC, SAMPLE_BYTES, TEXT
from burstwatch.enrich.encryption.formats import TEXT_PREFIX
from burstwatch.enrich.encryption.prefilter import (
    QUIC_NO,
    banner_at,
    dtls_datagram,
    ovpn_opcode,
    quic_kind,
    tls_header,
    u16,
    wg_kind,
)
from burstwatch.enrich.encryption.verdict import PROTO_ESP, PROTO_TCP, PROTO_UDP
from burstwatch.flows.sampling import SamplePolicy
from burstwatch.jit import njit

_OVPN_MIN_CONTROL, _OVPN_MAX = openvpn.MIN_CONTROL, openvpn.MAX_PACKET
# Bytes of every payload kept even past the prefix: the clear-content checks read a format
# signature at the start of each payload (at most MAGIC's width, or "ftyp" at offset 4).
HEAD_BYTES = max(16, MAGIC.shape[1], TEXT_PREFIX)


@njit(cache=True)
def _text_start(buf: npt.NDArray[np.uint8], o: int, n: int, text: npt.NDArray[np.bool_]) -> bool:
    if n < TEXT_PREFIX:
        return False
    i = o
    while i < o + TEXT_PREFIX and text[buf[i]]:
        i += 1
    return i == o + TEXT_PREFIX


@njit(cache=True)
def _ovpn_tcp_opening(buf: npt.NDArray[np.uint8], o: int, n: int) -> bool:
    """A length prefix, then an OpenVPN hard reset with key id 0 (how such a stream opens)."""
    if n < 3:
        return False
    length = u16(buf, o)
    if length < _OVPN_MIN_CONTROL or length > _OVPN_MAX:
        return False
    first = np.int64(buf[o + 2])
    op = first >> 3
    return (first & 7) == 0 and (op == 1 or op == 7 or op == 10 or op == 2 or op == 8)


@njit(cache=True, nogil=True)
def _opens(
    buf: npt.NDArray[np.uint8], offset: npt.NDArray[np.int64], length: npt.NDArray[np.int64],
    proto: npt.NDArray[np.uint8], orig_port: npt.NDArray[np.uint16],
    resp_port: npt.NDArray[np.uint16], text: npt.NDArray[np.bool_], out: npt.NDArray[np.bool_],
) -> None:
    for k in range(offset.shape[0]):
        o, n, p = offset[k], length[k], proto[k]
        hit = False
        if p == PROTO_TCP:
            hit = (
                tls_header(buf, o, o + n) or _text_start(buf, o, n, text)
                or banner_at(buf, o, o + n) or _ovpn_tcp_opening(buf, o, n)
            )
        elif p == PROTO_UDP:
            a, b = orig_port[k], resp_port[k]
            hit = (
                a == 500 or a == 4500 or b == 500 or b == 4500
                or quic_kind(buf, o, n) != QUIC_NO or dtls_datagram(buf, o, n)
                or wg_kind(buf, o, n) > 0 or ovpn_opcode(buf, o, n) >= 0
            )
        elif p == PROTO_ESP:
            hit = True
        out[k] = hit


def opens_protocol(
    data: npt.NDArray[np.uint8], offset: npt.NDArray[np.int64], length: npt.NDArray[np.int64],
    proto: npt.NDArray[np.uint8], orig_port: npt.NDArray[np.uint16],
    resp_port: npt.NDArray[np.uint16],
) -> npt.NDArray[np.bool_]:
    """For each payload ``data[offset:offset + length]``: may it open a recognised protocol?"""
    out = np.zeros(offset.shape[0], np.bool_)
    if offset.shape[0]:
        _opens(data, offset, length, proto, orig_port, resp_port, TEXT, out)
    return out


SAMPLE_POLICY = SamplePolicy(opens=opens_protocol, prefix=SAMPLE_BYTES, head=HEAD_BYTES)
