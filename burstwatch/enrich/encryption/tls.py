"""TLS over TCP on any port: record headers, then the ClientHello / ServerHello if present.

The ClientHello may span several records and several TCP segments, so each direction's payloads
are concatenated before parsing. A flow picked up mid-stream still shows valid record headers
(application data), which is enough for the verdict, without version or SNI.
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
from burstwatch.enrich.encryption.verdict import PROTO_TCP, EncryptionVerdict, FlowSample

CT_HANDSHAKE = 22
CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}
MAX_RECORD = 16384 + 2048  # TLSCiphertext limit (RFC 8446 section 5.2)


@dataclass(frozen=True)
class Record:
    """One TLS record; ``body`` is cut short when the sample ends inside it."""

    content_type: int
    version: int
    body: bytes


def valid_header(content_type: int, version: int, length: int) -> bool:
    """A plausible TLS record header: known content type, TLS 1.0-1.3 version, sane length."""
    return (
        content_type in CONTENT_TYPES and 0x0301 <= version <= 0x0304 and 0 < length <= MAX_RECORD
    )


def read_records(stream: bytes) -> list[Record]:
    """The TLS records at the start of ``stream``; empty when the first header is not TLS.

    Walking stops at the first implausible header after the first record: a lost or reordered
    segment should not undo what the leading records already show.
    """
    records: list[Record] = []
    r = Reader(stream)
    while r.remaining >= 5:
        content_type, version, length = r.u8(), r.u16(), r.u16()
        if not valid_header(content_type, version, length):
            break
        records.append(Record(content_type, version, r.take(min(length, r.remaining))))
    return records


def _handshake_bytes(records: list[Record]) -> bytes:
    """Handshake records up to the first other content type, joined (messages span records)."""
    out = []
    for rec in records:
        if rec.content_type != CT_HANDSHAKE:
            break
        out.append(rec.body)
    return b"".join(out)


def client_hello_of(records: list[Record]) -> ClientHello | None:
    """The ClientHello leading the client's records, if complete and well formed."""
    try:
        message = first_handshake(_handshake_bytes(records))
        if message is None or message[0] != HS_CLIENT_HELLO:
            return None
        return parse_client_hello(message[1])
    except ParseError:
        return None


def server_hello_of(records: list[Record]) -> ServerHello | None:
    """The ServerHello leading the server's records, if complete and well formed."""
    try:
        message = first_handshake(_handshake_bytes(records))
        if message is None or message[0] != HS_SERVER_HELLO:
            return None
        return parse_server_hello(message[1])
    except ParseError:
        return None


def detect_tls(sample: FlowSample) -> EncryptionVerdict | None:
    """TLS if the originator's byte stream (or, when it sent nothing, the responder's) is TLS."""
    if sample.proto != PROTO_TCP:
        return None
    client = read_records(b"".join(sample.client))
    server = read_records(b"".join(sample.server))
    if sample.client and not client:
        return None
    if not client and not server:
        return None
    hello = client_hello_of(client)
    shello = server_hello_of(server)
    version: str | None = None
    if shello is not None:
        version = version_name(shello.version)
    elif hello is not None:
        version = version_name(hello.max_version)
    if hello is not None:
        detail = "TLS ClientHello " + (f"with SNI {hello.sni}" if hello.sni else "without SNI")
        if shello is not None:
            detail += f", ServerHello chose {version_name(shello.version)}"
        return EncryptionVerdict(
            kind="tls",
            version=version,
            sni=hello.sni,
            alpn=tuple(printable(a) for a in hello.alpn),
            fingerprint=ja4(hello, "t"),
            detail=detail,
        )
    if shello is not None:
        return EncryptionVerdict(kind="tls", version=version, detail="TLS ServerHello")
    first = (client or server)[0]
    return EncryptionVerdict(
        kind="tls",
        detail=f"TLS records ({CONTENT_TYPES[first.content_type]} first; handshake not seen)",
    )
