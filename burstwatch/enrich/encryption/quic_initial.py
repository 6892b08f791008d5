"""Optional: decrypt a client's QUIC v1/v2 Initial packets to read its TLS ClientHello.

Initial keys derive from the client's Destination Connection ID and a salt published in the RFC,
so anyone on the path can remove this layer (RFC 9001 section 5.2). AES is taken from the
``cryptography`` package when it is installed; without it this module returns None and the QUIC
verdict simply carries no SNI or fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from burstwatch.enrich.encryption._bytes import ParseError, Reader
from burstwatch.enrich.encryption.hello import HS_CLIENT_HELLO, ClientHello, parse_client_hello


@functools.cache
def _aes() -> Any:
    """The ``cryptography`` parts this module uses, imported on first use (most captures
    hold no QUIC Initial, and importing them costs every command's start-up), or None."""
    try:  # pragma: no cover - depends on the environment
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return SimpleNamespace(InvalidTag=InvalidTag, Cipher=Cipher, algorithms=algorithms,
                           modes=modes, AESGCM=AESGCM)


def __getattr__(name: str) -> Any:
    if name == "AVAILABLE":  # whether Initials can be decrypted here
        return _aes() is not None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


VERSION_1 = 0x00000001
VERSION_2 = 0x6B3343CF
DRAFT_29 = 0xFF00001D

# (salt, label prefix, long-header type bits of an Initial packet)
_PARAMS: dict[int, tuple[bytes, str, int]] = {
    VERSION_1: (bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), "quic ", 0),
    VERSION_2: (bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"), "quicv2 ", 1),
    DRAFT_29: (bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899"), "quic ", 0),
}

_FRAME_PADDING = 0x00
_FRAME_PING = 0x01
_FRAME_ACK = (0x02, 0x03)
_FRAME_CRYPTO = 0x06
_MAX_CRYPTO = 1 << 16


def _hkdf_expand_label(secret: bytes, label: str, length: int) -> bytes:
    """HKDF-Expand-Label from TLS 1.3 with an empty context, SHA-256 (RFC 8446 section 7.1)."""
    full = b"tls13 " + label.encode("ascii")
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def client_keys(version: int, dcid: bytes) -> tuple[bytes, bytes, bytes]:
    """(key, iv, header-protection key) of the client's Initial packets."""
    salt, prefix, _ = _PARAMS[version]
    initial = hmac.new(salt, dcid, hashlib.sha256).digest()
    secret = _hkdf_expand_label(initial, "client in", 32)
    return (
        _hkdf_expand_label(secret, prefix + "key", 16),
        _hkdf_expand_label(secret, prefix + "iv", 12),
        _hkdf_expand_label(secret, prefix + "hp", 16),
    )


def _aes_ecb(key: bytes, block: bytes) -> bytes:
    aes = _aes()
    encryptor: Any = aes.Cipher(aes.algorithms.AES(key), aes.modes.ECB()).encryptor()
    return bytes(encryptor.update(block) + encryptor.finalize())


def decrypt_initial(packet: bytes) -> tuple[bytes, int] | None:
    """Decrypt the Initial packet at the start of ``packet``: (frames, packet length) or None."""
    r = Reader(packet)
    first = r.u8()
    version = r.u32()
    if version not in _PARAMS or not first & 0x80:
        return None
    if (first >> 4) & 0x03 != _PARAMS[version][2]:
        return None
    dcid = r.vector(1)
    if len(dcid) > 20:
        return None
    r.vector(1)  # source connection id
    r.take(r.varint())  # token
    length = r.varint()
    pn_offset = r.pos
    end = pn_offset + length
    if end > len(packet) or length < 20:
        return None
    key, iv, hp = client_keys(version, dcid)
    mask = _aes_ecb(hp, packet[pn_offset + 4 : pn_offset + 20])
    first ^= mask[0] & 0x0F
    pn_len = (first & 0x03) + 1
    protected = packet[pn_offset : pn_offset + pn_len]
    pn_bytes = bytes(b ^ m for b, m in zip(protected, mask[1:], strict=False))
    header = bytes([first]) + packet[1:pn_offset] + pn_bytes
    nonce = (int.from_bytes(iv, "big") ^ int.from_bytes(pn_bytes, "big")).to_bytes(12, "big")
    try:
        frames = _aes().AESGCM(key).decrypt(nonce, packet[pn_offset + pn_len : end], header)
    except _aes().InvalidTag:
        return None
    return frames, end


def _crypto_frames(frames: bytes) -> list[tuple[int, bytes]]:
    """(offset, data) of the CRYPTO frames; stops at the first frame type it does not know."""
    r = Reader(frames)
    out: list[tuple[int, bytes]] = []
    try:
        while r.remaining:
            frame_type = r.varint()
            if frame_type in (_FRAME_PADDING, _FRAME_PING):
                continue
            if frame_type in _FRAME_ACK:
                _skip_ack(r, ecn=frame_type == 0x03)
                continue
            if frame_type != _FRAME_CRYPTO:
                break
            offset = r.varint()
            data = r.take(r.varint())
            if offset + len(data) <= _MAX_CRYPTO:
                out.append((offset, data))
    except ParseError:
        pass
    return out


def _skip_ack(r: Reader, *, ecn: bool) -> None:
    r.varint()  # largest acknowledged
    r.varint()  # ack delay
    ranges = r.varint()
    r.varint()  # first range
    for _ in range(min(ranges, r.remaining)):
        r.varint()  # gap
        r.varint()  # range length
    if ecn:
        for _ in range(3):
            r.varint()


def _contiguous(chunks: list[tuple[int, bytes]]) -> bytes:
    """The crypto stream from offset 0 for as long as it has no gap (frames may come shuffled)."""
    stream = bytearray()
    pending = sorted(chunks)
    progressed = True
    while progressed:
        progressed = False
        for offset, data in pending:
            if offset <= len(stream) < offset + len(data):
                stream += data[len(stream) - offset :]
                progressed = True
    return bytes(stream)


def initial_client_hello(datagrams: Sequence[bytes]) -> ClientHello | None:
    """The ClientHello carried by a client's first Initial packets, or None.

    Each datagram may coalesce several long-header packets; every Initial among them is
    decrypted and its CRYPTO frames put back in order, since large hellos span datagrams.
    """
    if _aes() is None:
        return None
    chunks: list[tuple[int, bytes]] = []
    for datagram in datagrams:
        pos = 0
        while pos < len(datagram):
            try:
                result = decrypt_initial(datagram[pos:])
            except ParseError:
                break
            if result is None:
                break
            frames, used = result
            chunks.extend(_crypto_frames(frames))
            pos += used
    stream = _contiguous(chunks)
    try:
        r = Reader(stream)
        if r.u8() != HS_CLIENT_HELLO:
            return None
        return parse_client_hello(r.take(r.u24()))
    except ParseError:
        return None
