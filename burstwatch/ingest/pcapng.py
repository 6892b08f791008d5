"""pcapng reader (placeholder until the block walker lands)."""

from __future__ import annotations

from collections.abc import Iterator

from burstwatch.errors import NotACaptureError
from burstwatch.ingest.bytesource import ByteSource
from burstwatch.ingest.records import CaptureWarning, RecordBatch

SHB_MAGIC = b"\x0a\x0d\x0d\x0a"


def read_pcapng(
    src: ByteSource, name: str, warnings: list[CaptureWarning], batch_size: int = 65536
) -> Iterator[RecordBatch]:
    raise NotACaptureError("pcapng is not supported yet")
    yield  # pragma: no cover
