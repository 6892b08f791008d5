"""Open any capture a user is likely to have: pcap, pcapng, gzip'd either, a file or stdin.

The format is always decided by the magic number, never by the file name.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from burstwatch.errors import InputError, NotACaptureError
from burstwatch.ingest import pcap, pcapng
from burstwatch.ingest.bytesource import ByteSource, MmapSource, StreamSource
from burstwatch.ingest.gzipstream import GZIP_MAGIC, GzipStream
from burstwatch.ingest.records import CaptureWarning, RecordBatch

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "pcap",
    b"\xa1\xb2\xc3\xd4": "pcap",
    b"\x4d\x3c\xb2\xa1": "pcap-ns",
    b"\xa1\xb2\x3c\x4d": "pcap-ns",
    pcapng.SHB_MAGIC: "pcapng",
}


def sniff_format(head: bytes) -> str:
    """Name the capture format from the first bytes, or raise NotACaptureError."""
    fmt = PCAP_MAGICS.get(head[:4])
    if fmt is None:
        if len(head) < 4:
            raise NotACaptureError("too short to be a capture file")
        raise NotACaptureError(
            f"not a pcap or pcapng capture (starts with 0x{head[:4].hex()})"
        )
    return fmt


@dataclass
class CaptureReader:
    """One opened capture: its format, its record batches, and what went wrong on the way."""

    name: str
    format: str
    compressed: bool
    _source: ByteSource
    warnings: list[CaptureWarning] = field(default_factory=list)
    _gzip: GzipStream | None = None

    def batches(self, batch_size: int = 65536) -> Iterator[RecordBatch]:
        """Stream the capture as record batches; damage ends the stream with a warning."""
        reader = pcapng.read_pcapng if self.format == "pcapng" else pcap.read_pcap
        try:
            yield from reader(self._source, self.name, self.warnings, batch_size)
        except OSError as exc:
            self.warnings.append(CaptureWarning(self.name, self._source.pos, f"read error: {exc}"))
        finally:
            if self._gzip is not None and self._gzip.damage:
                self.warnings.append(CaptureWarning(
                    self.name, self._source.pos, f"{self._gzip.damage}; the capture ends there"))
            self._source.close()

    @property
    def bytes_consumed(self) -> int:
        return self._source.pos

    @property
    def size_hint(self) -> int:
        """Total bytes for a plain file (for progress bars), 0 when unknown."""
        return int(getattr(self._source, "size", 0))


def _open_binary(path: str) -> BinaryIO:
    if path == "-":
        if sys.stdin is None:
            raise InputError("<stdin>: standard input is closed")
        stdin = sys.stdin.buffer
        return stdin if isinstance(stdin, io.BufferedReader) else io.BufferedReader(stdin)  # type: ignore[type-var]
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def _peek(stream: BinaryIO, n: int) -> bytes:
    if isinstance(stream, io.BufferedReader):
        return stream.peek(n)[:n]
    pos = stream.tell()
    head = stream.read(n)
    stream.seek(pos)
    return head


def open_capture(path: str) -> CaptureReader:
    """Open ``path`` (or ``-`` for standard input) and identify its format."""
    name = "<stdin>" if path == "-" else path
    raw = _open_binary(path)
    try:
        head = _peek(raw, 4)
        compressed = head[:2] == GZIP_MAGIC
        source: ByteSource
        unzip = None
        if compressed:
            unzip = GzipStream(raw)
            source = StreamSource(unzip)  # type: ignore[arg-type]
            try:
                inner = bytes(source.window(4))
            except OSError as exc:
                raise NotACaptureError(f"cannot read gzip data ({exc})") from None
            if len(inner) < 4 and unzip.damage:
                raise NotACaptureError(f"gzip data is damaged: {unzip.damage}")
            fmt = sniff_format(inner)
        else:
            fmt = sniff_format(head)
            source = MmapSource(raw) if path != "-" and raw.seekable() else StreamSource(raw)
    except NotACaptureError as exc:
        raw.close()
        raise NotACaptureError(f"{name}: {exc}") from None
    return CaptureReader(name=name, format=fmt, compressed=compressed, _source=source,
                         _gzip=unzip)
