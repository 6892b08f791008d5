"""DTLS over UDP: 13-byte record headers (type, version, epoch, sequence, length).

A datagram holds whole records, so every record header in it must parse and the lengths must
add up to the datagram's size exactly; that is what keeps random UDP payloads out.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstwatch.enrich.encryption._bytes import ParseError, Reader, printable
from burstwatch.enrich.encryption.hello import (
    HS_CLIENT_HELLO,
    HS_SERVER_HELLO,
    ClientHello,
    ServerHello,
    first_handshake,
    parse_client_hello,
    parse_server_hello,
    version_name,
)
from burstwatch.enrich.encryption.ja4 import ja4
from burstwatch.enrich.encryption.verdict import PROTO_UDP, EncryptionVerdict, FlowSample

# 0x0100: DTLS 1.0 as OpenSSL spoke it before RFC 4347 (DTLS1_BAD_VER), still Cisco AnyConnect's.
DTLS_VERSIONS = (0xFEFF, 0xFEFD, 0xFEFC, 0x0100)
CT_HANDSHAKE = 22
MAX_RECORD = 16384 + 2048


@dataclass(frozen=True)
class DtlsRecord:
    """One DTLS record."""

    content_type: int
    version: int
    epoch: int
    body: bytes


def read_datagram(payload: bytes) -> list[DtlsRecord]:
    """All records of one datagram, or an empty list unless the whole datagram is DTLS."""
    r = Reader(payload)
    records: list[DtlsRecord] = []
    try:
        while r.remaining:
            content_type, version, epoch = r.u8(), r.u16(), r.u16()
            r.skip(6)  # sequence number
            length = r.u16()
            if content_type not in (20, 21, 22, 23) or version not in DTLS_VERSIONS:
                return []
            if length == 0 or length > MAX_RECORD:
                return []
            records.append(DtlsRecord(content_type, version, epoch, r.take(length)))
    except ParseError:
        return []
    return records


def _hello(records: list[DtlsRecord], want: int) -> ClientHello | ServerHello | None:
    for rec in records:
        if rec.content_type != CT_HANDSHAKE or rec.epoch != 0:
            continue
        try:
            message = first_handshake(rec.body, dtls=True)
            if message is None or message[0] != want:
                continue
            if want == HS_CLIENT_HELLO:
                return parse_client_hello(message[1], dtls=True)
            return parse_server_hello(message[1])
        except ParseError:
            continue
    return None


def detect_dtls(sample: FlowSample) -> EncryptionVerdict | None:
    """DTLS if some datagram is made of DTLS records only (WebRTC sends STUN before it)."""
    if sample.proto != PROTO_UDP:
        return None
    client = [read_datagram(p) for p in sample.client]
    server = [read_datagram(p) for p in sample.server]
    if not any(client + server):
        return None
    hello = _hello([r for recs in client for r in recs], HS_CLIENT_HELLO)
    shello = _hello([r for recs in server for r in recs], HS_SERVER_HELLO)
    version: str | None = None
    if isinstance(shello, ServerHello):
        version = version_name(shello.version)
    elif isinstance(hello, ClientHello):
        version = version_name(hello.max_version)
    else:
        first = next(recs[0] for recs in client + server if recs)
        version = version_name(first.version)
    if isinstance(hello, ClientHello):
        return EncryptionVerdict(
            kind="dtls",
            version=version,
            sni=hello.sni,
            alpn=tuple(printable(a) for a in hello.alpn),
            fingerprint=ja4(hello, "d"),
            detail="DTLS ClientHello " + (f"with SNI {hello.sni}" if hello.sni else "without SNI"),
        )
    return EncryptionVerdict(kind="dtls", version=version, detail="DTLS records")
