"""A gzip stream that ends at the damage instead of failing whole.

``gzip.GzipFile`` raises on a cut-short file, trailing garbage or a bad CRC, and a reader that
fills a chunk before handing it on then loses every byte of that chunk. Here the members are
decompressed with zlib as they come; damage ends the stream as if the capture ended there,
so the capture readers use every whole record before it, and ``damage`` says what and where
(the offset in the compressed file), for a warning.
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around deflate data
# Compressed bytes fed at a time; deflate expands at most about 1032 times, so one step holds
# at most ~16 MiB of output.
_READ = 16 << 10


class GzipStream(io.RawIOBase):
    """Decompressed bytes of concatenated gzip members, up to the first damage."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(_WBITS)
        self._out = b""  # decompressed, not yet read
        self._fed = 0  # compressed bytes given to zlib so far
        self._done = False
        self.damage: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        while not self._out and not self._done:
            self._step()
        n = min(len(buf), len(self._out))
        buf[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _stop(self, why: str, at: int) -> None:
        self.damage = f"gzip stream {why} at compressed byte {at}"
        self._done = True

    def _step(self) -> None:
        d = self._inflate
        if d.eof:  # a member ended: another member, the end, or garbage
            rest = d.unused_data
            if len(rest) < 2:
                rest += self._raw.read(_READ)
            if not rest:
                self._done = True
                return
            start = self._fed - len(d.unused_data)
            if not rest.startswith(GZIP_MAGIC):
                self._stop("has trailing data that is not gzip", start)
                return
            self._inflate = zlib.decompressobj(_WBITS)
            self._fed = start
            self._feed(rest)
            return
        chunk = self._raw.read(_READ)
        if not chunk:
            self._stop("is cut short", self._fed)
            return
        self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        at = self._fed
        self._fed += len(chunk)
        before = self._inflate.copy()
        try:
            self._out = self._inflate.decompress(chunk)
        except zlib.error:
            # Again from before this chunk, a byte at a time: everything up to the damaged
            # byte is kept, and that byte is named.
            self._inflate = before
            out = []
            for i in range(len(chunk)):
                try:
                    out.append(before.decompress(chunk[i : i + 1]))
                except zlib.error as exc:
                    self._stop(f"is damaged ({exc})", at + i)
                    break
            self._out = b"".join(out)

    def close(self) -> None:
        self._raw.close()
        super().close()
