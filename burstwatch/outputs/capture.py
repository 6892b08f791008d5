"""A rotating pcap writer for live capture (``--write-pcap DIR``), so a later `scan` can
look at what was seen. Records are copied batch by batch with a compiled loop."""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np

from burstwatch.errors import BurstwatchError
from burstwatch.ingest.records import RecordBatch
from burstwatch.jit import njit

MAGIC_NS = 0xA1B23C4D


class CaptureWriteError(BurstwatchError):
    """The capture folder cannot be written."""


@njit(cache=True, nogil=True)
def _pack(data: np.ndarray, offset: np.ndarray, caplen: np.ndarray, wirelen: np.ndarray,
          ts_ns: np.ndarray, out: np.ndarray) -> int:
    """Write nanosecond pcap records (header + bytes) for every packet into ``out``."""
    p = 0
    for i in range(offset.shape[0]):
        fields = (
            np.int64(ts_ns[i] // 1_000_000_000), np.int64(ts_ns[i] % 1_000_000_000),
            np.int64(caplen[i]), np.int64(wirelen[i]),
        )
        for k in range(4):
            v = fields[k] & 0xFFFFFFFF
            for j in range(4):
                out[p + 4 * k + j] = (v >> (8 * j)) & 0xFF
        p += 16
        n = caplen[i]
        for j in range(n):  # not a slice from an array: see flows.kernel._emit_row
            out[p + j] = data[offset[i] + j]
        p += n
    return p


class RotatingPcapWriter:
    """Nanosecond pcap files ``burstwatch-YYYYmmdd-HHMMSS-N.pcap``, rotated by size, oldest
    deleted beyond ``keep`` files."""

    def __init__(self, folder: str, linktype: int = 1, max_bytes: int = 100 << 20, keep: int = 10) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaptureWriteError(f"{folder}: cannot create capture folder ({exc.strerror})") from None
        self.linktype = linktype
        self.max_bytes = max_bytes
        self.keep = keep
        self.files: list[Path] = []
        self._file: BinaryIO | None = None
        self._size = 0
        self._seq = 0

    def _rotate(self) -> None:
        self.close()
        self._seq += 1
        name = time.strftime("burstwatch-%Y%m%d-%H%M%S", time.gmtime()) + f"-{self._seq}.pcap"
        path = self.folder / name
        try:
            self._file = open(path, "wb")  # noqa: SIM115 (kept open across batches)
        except OSError as exc:
            raise CaptureWriteError(f"{path}: cannot write ({exc.strerror})") from None
        self._file.write(struct.pack("<IHHiIII", MAGIC_NS, 2, 4, 0, 0, 262144, self.linktype))
        self._size = 24
        self.files.append(path)
        while len(self.files) > self.keep:
            self.files.pop(0).unlink(missing_ok=True)

    def write(self, batch: RecordBatch) -> None:
        if not len(batch):
            return
        if self._file is None or self._size >= self.max_bytes:
            self._rotate()
        assert self._file is not None
        total = int(batch.caplen.sum(dtype=np.int64)) + 16 * len(batch)
        out = np.empty(total, np.uint8)
        _pack(batch.data, batch.offset, batch.caplen, batch.wirelen, batch.ts_ns, out)
        self._file.write(out.tobytes())
        self._size += total

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
