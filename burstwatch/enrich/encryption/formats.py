"""Signs that high-entropy bytes are compressed content in the clear, not ciphertext.

Compressed data (gzip, PNG, JPEG scans, zip) has a byte histogram as flat as ciphertext over a
kilobyte, so the entropy verdict relies on what surrounds it: a known file-format signature at
the start of a packet, or a plain-text prefix such as an HTTP header. The compiled checks are
in :mod:`burstwatch.enrich.encryption.entropy_detector`; this module is their table.
"""

from __future__ import annotations

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
# The MAGICS names, then the two signatures that are not a prefix: "ftyp" at offset 4, and a
# zlib header (deflate method, 32K window, no preset dictionary, valid check bits).
FORMAT_NAMES: tuple[str, ...] = (*(name for _, name in MAGICS), "ISO media (MP4, HEIF)", "zlib")
TEXT_PREFIX = 12  # (98/256)^12 ~ 1e-5: random bytes almost never start with this much text
TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}
