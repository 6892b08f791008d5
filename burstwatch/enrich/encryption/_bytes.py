"""A bounds-checked cursor over untrusted bytes: every overrun becomes one exception type.

Detectors catch :class:`ParseError` and nothing else, so a truncated or hostile payload turns
into "no match" without hiding real bugs behind a blanket ``except``.
"""

from __future__ import annotations


class ParseError(ValueError):
    """The bytes do not hold what the parser expected (too short, bad length, bad value)."""


class Reader:
    """Read big-endian integers and slices from ``data``, raising ParseError on overrun."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else min(end, len(data))

    @property
    def remaining(self) -> int:
        """Bytes left before the end of this reader's window."""
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        if n < 0 or self.pos + n > self.end:
            raise ParseError(f"need {n} bytes at {self.pos}, have {self.end - self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        """Step over ``n`` bytes."""
        self.take(n)

    def uint(self, n: int) -> int:
        """A big-endian unsigned integer of ``n`` bytes."""
        return int.from_bytes(self.take(n), "big")

    def u8(self) -> int:
        """One byte."""
        return self.uint(1)

    def u16(self) -> int:
        """Two bytes, big-endian."""
        return self.uint(2)

    def u24(self) -> int:
        """Three bytes, big-endian (TLS handshake lengths)."""
        return self.uint(3)

    def u32(self) -> int:
        """Four bytes, big-endian."""
        return self.uint(4)

    def vector(self, len_bytes: int) -> bytes:
        """A length-prefixed byte string (TLS ``opaque x<..>``)."""
        return self.take(self.uint(len_bytes))

    def sub(self, n: int) -> Reader:
        """A reader over the next ``n`` bytes; this reader moves past them."""
        start = self.pos
        self.skip(n)
        return Reader(self.data, start, start + n)

    def varint(self) -> int:
        """A QUIC variable-length integer (RFC 9000 section 16)."""
        first = self.u8()
        size = 1 << (first >> 6)
        value = first & 0x3F
        for byte in self.take(size - 1):
            value = (value << 8) | byte
        return value


def printable(data: bytes, limit: int = 255) -> str:
    """Hostile bytes as a short, printable ASCII string for reports."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in data[:limit])
