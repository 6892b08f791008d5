"""The raw-record batch every reader yields: one byte buffer plus per-record columns.

A record's bytes are ``data[offset[i] : offset[i] + caplen[i]]``. The buffer may be a view of
an mmap or a freshly read chunk; batches never copy packet bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
U16 = npt.NDArray[np.uint16]


@dataclass(frozen=True)
class CaptureWarning:
    """Something wrong with the input that did not stop us from using what came before it."""

    source: str
    byte_offset: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}: at byte offset {self.byte_offset}: {self.message}"


@dataclass
class RecordBatch:
    """Records of one capture chunk, as columns."""

    data: U8
    offset: I64  # start of each record's bytes within ``data``
    caplen: U32
    wirelen: U32
    ts_ns: I64
    linktype: U16
    iface: U16
    file_offset: I64  # byte offset of each record's header in the (decompressed) input

    def __len__(self) -> int:
        return int(self.offset.shape[0])

    def release_pages(self) -> None:
        """Say that nothing will read these records' bytes again: where they are pages of a
        mapped capture file, those are given back (``bytesource.release_read``)."""
        if self.offset.shape[0]:
            from burstwatch.ingest.bytesource import release_read

            release_read(self.data, int((self.offset + self.caplen).max()))

    @staticmethod
    def empty() -> RecordBatch:
        return RecordBatch(
            data=np.zeros(0, np.uint8),
            offset=np.zeros(0, np.int64),
            caplen=np.zeros(0, np.uint32),
            wirelen=np.zeros(0, np.uint32),
            ts_ns=np.zeros(0, np.int64),
            linktype=np.zeros(0, np.uint16),
            iface=np.zeros(0, np.uint16),
            file_offset=np.zeros(0, np.int64),
        )
