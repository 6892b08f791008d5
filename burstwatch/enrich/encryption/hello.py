"""TLS ClientHello / ServerHello bodies, as carried by TLS, DTLS and QUIC alike.

Only the fields the verdict and the JA4 fingerprint need are kept; everything is read through
the bounds-checked :class:`Reader`, so malformed hellos raise ParseError and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstwatch.enrich.encryption._bytes import ParseError, Reader, printable

HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2

EXT_SERVER_NAME = 0x0000
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B

VERSION_NAMES = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
    0xFEFF: "DTLS 1.0",
    0xFEFD: "DTLS 1.2",
    0xFEFC: "DTLS 1.3",
    0x0100: "DTLS 1.0 (pre-standard 0x0100)",
}


def is_grease(value: int) -> bool:
    """GREASE values (RFC 8701) are noise a client adds on purpose; JA4 ignores them."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def version_name(value: int) -> str:
    """A protocol version as people write it ("TLS 1.3"), or its hex when unknown."""
    return VERSION_NAMES.get(value, f"0x{value:04x}")


@dataclass(frozen=True)
class ClientHello:
    """What a client offered: enough for the verdict and for JA4."""

    legacy_version: int
    ciphers: tuple[int, ...]
    extensions: tuple[int, ...]
    sni: str | None
    alpn: tuple[bytes, ...]
    supported_versions: tuple[int, ...]
    signature_algorithms: tuple[int, ...]

    @property
    def max_version(self) -> int:
        """The highest version offered: supported_versions wins over the legacy field."""
        offered = [v for v in self.supported_versions if not is_grease(v)]
        return max(offered) if offered else self.legacy_version


@dataclass(frozen=True)
class ServerHello:
    """What the server chose."""

    legacy_version: int
    cipher: int
    selected_version: int | None

    @property
    def version(self) -> int:
        """The negotiated version: the supported_versions extension says TLS 1.3 and later."""
        return self.selected_version if self.selected_version is not None else self.legacy_version


def _server_name(body: bytes) -> str | None:
    r = Reader(body)
    names = r.sub(r.u16())
    while names.remaining:
        name_type = names.u8()
        name = names.vector(2)
        if name_type == 0:
            return printable(name)
    return None


def _alpn(body: bytes) -> tuple[bytes, ...]:
    r = Reader(body)
    protos = r.sub(r.u16())
    out = []
    while protos.remaining:
        out.append(protos.vector(1))
    return tuple(out)


def _u16_list(data: bytes) -> tuple[int, ...]:
    if len(data) % 2:
        raise ParseError("odd length in a list of 16-bit values")
    return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def parse_client_hello(body: bytes, *, dtls: bool = False) -> ClientHello:
    """Parse a ClientHello message body (after the 4-byte, or DTLS 12-byte, handshake header)."""
    r = Reader(body)
    legacy_version = r.u16()
    r.skip(32)  # random
    r.vector(1)  # legacy_session_id
    if dtls:
        r.vector(1)  # cookie
    ciphers = _u16_list(r.vector(2))
    if not ciphers:
        raise ParseError("ClientHello without cipher suites")
    r.vector(1)  # compression methods
    extensions: list[int] = []
    sni: str | None = None
    alpn: tuple[bytes, ...] = ()
    versions: tuple[int, ...] = ()
    sigalgs: tuple[int, ...] = ()
    if r.remaining:
        exts = r.sub(r.u16())
        while exts.remaining:
            ext_type = exts.u16()
            data = exts.vector(2)
            extensions.append(ext_type)
            if ext_type == EXT_SERVER_NAME and data:
                sni = _server_name(data)
            elif ext_type == EXT_ALPN:
                alpn = _alpn(data)
            elif ext_type == EXT_SUPPORTED_VERSIONS:
                versions = _u16_list(Reader(data).vector(1))
            elif ext_type == EXT_SIGNATURE_ALGORITHMS:
                sigalgs = _u16_list(Reader(data).vector(2))
    return ClientHello(
        legacy_version=legacy_version,
        ciphers=ciphers,
        extensions=tuple(extensions),
        sni=sni,
        alpn=alpn,
        supported_versions=versions,
        signature_algorithms=sigalgs,
    )


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse a ServerHello message body (the same layout in TLS and DTLS)."""
    r = Reader(body)
    legacy_version = r.u16()
    r.skip(32)  # random
    r.vector(1)  # session id
    cipher = r.u16()
    r.u8()  # compression method
    selected: int | None = None
    if r.remaining:
        exts = r.sub(r.u16())
        while exts.remaining:
            ext_type = exts.u16()
            data = exts.vector(2)
            if ext_type == EXT_SUPPORTED_VERSIONS and len(data) == 2:
                selected = int.from_bytes(data, "big")
    return ServerHello(legacy_version=legacy_version, cipher=cipher, selected_version=selected)


def first_handshake(stream: bytes, *, dtls: bool = False) -> tuple[int, bytes] | None:
    """The first handshake message in ``stream`` as (type, body), or None if it is incomplete.

    DTLS messages carry message_seq and a fragment offset/length; only an unfragmented first
    message (offset 0, fragment length = length) is returned.
    """
    r = Reader(stream)
    msg_type = r.u8()
    length = r.u24()
    if dtls:
        r.u16()  # message_seq
        offset = r.u24()
        frag_len = r.u24()
        if offset != 0 or frag_len != length:
            return None
    if length > r.remaining:
        return None
    return msg_type, r.take(length)
