"""Signs that high-entropy bytes are compressed content in the clear, not ciphertext.

Compressed data (gzip, PNG, JPEG scans, zip) has a byte histogram as flat as ciphertext over a
kilobyte, so the entropy verdict relies on what surrounds it: a known file-format signature at
the start of a packet, or a plain-text prefix such as an HTTP header.
"""

from __future__ import annotations

from collections.abc import Sequence

MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"PK\x03\x04", "ZIP"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "LZ4"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "RAR"),
    (b"MSCF", "CAB"),
    (b"RIFF", "RIFF (WebP, WAV, AVI)"),
    (b"OggS", "Ogg"),
    (b"fLaC", "FLAC"),
    (b"ID3", "MP3"),
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (b"%PDF", "PDF"),
)
TEXT_PREFIX = 12  # (98/256)^12 ~ 1e-5: random bytes almost never start with this much text
_TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def file_format(payload: bytes) -> str | None:
    """The compressed/media format whose signature starts ``payload``, if any."""
    for magic, name in MAGICS:
        if payload.startswith(magic):
            return name
    if payload[4:8] == b"ftyp":
        return "ISO media (MP4, HEIF)"
    # zlib: deflate method with a 32K window, no preset dictionary, valid header checksum
    zlib_header = len(payload) >= 2 and payload[0] == 0x78 and not payload[1] & 0x20
    if zlib_header and (payload[0] << 8 | payload[1]) % 31 == 0:
        return "zlib"
    return None


def text_prefix(stream: bytes) -> bool:
    """Whether ``stream`` opens with at least TEXT_PREFIX bytes of plain ASCII text."""
    head = stream[:TEXT_PREFIX]
    return len(head) == TEXT_PREFIX and all(b in _TEXT_BYTES for b in head)


def plain_reason(payloads: Sequence[bytes]) -> str | None:
    """Why these payloads look like clear content (a format signature or text), else None."""
    if text_prefix(b"".join(payloads)):
        return "starts with plain text"
    for payload in payloads:
        name = file_format(payload)
        if name is not None:
            return f"carries {name} data in the clear"
    return None
