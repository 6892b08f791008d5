"""Classic libpcap files: both byte orders, microsecond and nanosecond magic, any snaplen.

The record walk is inherently sequential (each header says where the next one starts), so it
is a small numba-compiled loop that fills preallocated columns; everything else is numpy.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from burstwatch.errors import NotACaptureError
from burstwatch.ingest.bytesource import WINDOW_BYTES, ByteSource
from burstwatch.ingest.records import U8, CaptureWarning, RecordBatch
from burstwatch.jit import njit
from burstwatch.prefetch import ask_ahead

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
GLOBAL_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
# A record longer than this is treated as corruption (Wireshark's limit for most link types).
MAX_RECORD_LEN = 262144

# Walk status codes.
WALK_FULL = 0  # output columns are full
WALK_NEED_MORE = 1  # the window ends inside a record
WALK_BAD_LENGTH = 2  # a record claims an impossible length


@njit(cache=True, nogil=True, inline="always")
def _u32(buf: U8, p: int, big: bool) -> int:
    if big:
        return (int(buf[p]) << 24) | (int(buf[p + 1]) << 16) | (int(buf[p + 2]) << 8) | int(buf[p + 3])
    return (int(buf[p + 3]) << 24) | (int(buf[p + 2]) << 16) | (int(buf[p + 1]) << 8) | int(buf[p])


@njit(cache=True, nogil=True)
def walk_records(
    buf: U8,
    base: int,
    big: bool,
    ts_mult: int,
    max_len: int,
    link: int,
    offset: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    ts_ns: np.ndarray,
    linktype: np.ndarray,
    iface: np.ndarray,
    file_offset: np.ndarray,
) -> tuple[int, int, int]:
    """Fill columns from consecutive records in ``buf`` (``base`` is the file offset of
    ``buf[0]``; every record has the file's link type ``link`` and interface 0): every column
    of the batch in this one call, which lets go of the GIL, where numpy steps for the
    constant columns and the file offsets each took it back.

    Returns (records found, bytes consumed, status).
    """
    n = 0
    pos = 0
    end = buf.shape[0]
    cap = offset.shape[0]
    ahead = 0  # every cache line before this one has been asked for
    while n < cap:
        ahead = ask_ahead(buf, ahead, pos)
        if pos + RECORD_HEADER_LEN > end:
            return n, pos, WALK_NEED_MORE
        incl = _u32(buf, pos + 8, big)
        if incl > max_len:
            return n, pos, WALK_BAD_LENGTH
        if pos + RECORD_HEADER_LEN + incl > end:
            return n, pos, WALK_NEED_MORE
        sec = _u32(buf, pos, big)
        frac = _u32(buf, pos + 4, big)
        ts_ns[n] = sec * 1_000_000_000 + frac * ts_mult
        caplen[n] = incl
        wirelen[n] = _u32(buf, pos + 12, big)
        offset[n] = pos + RECORD_HEADER_LEN
        linktype[n] = link
        iface[n] = 0
        file_offset[n] = base + pos
        n += 1
        pos += RECORD_HEADER_LEN + incl
    return n, pos, WALK_FULL


class PcapHeader:
    """The 24-byte global header."""

    def __init__(self, head: U8) -> None:
        if head.shape[0] < GLOBAL_HEADER_LEN:
            raise NotACaptureError("file ends inside the pcap global header")
        raw = bytes(head[:GLOBAL_HEADER_LEN])
        le = int.from_bytes(raw[:4], "little")
        be = int.from_bytes(raw[:4], "big")
        if le in (MAGIC_US, MAGIC_NS):
            self.big_endian, magic = False, le
        elif be in (MAGIC_US, MAGIC_NS):
            self.big_endian, magic = True, be
        else:
            raise NotACaptureError("not a pcap file (bad magic number)")
        order = "big" if self.big_endian else "little"
        self.nanosecond = magic == MAGIC_NS
        self.version = (
            int.from_bytes(raw[4:6], order),  # type: ignore[arg-type]
            int.from_bytes(raw[6:8], order),  # type: ignore[arg-type]
        )
        self.snaplen = int.from_bytes(raw[16:20], order)  # type: ignore[arg-type]
        # The low 16 bits carry the link type; upper bits may hold FCS information.
        self.linktype = int.from_bytes(raw[20:24], order) & 0xFFFF  # type: ignore[arg-type]


def read_pcap(
    src: ByteSource,
    name: str,
    warnings: list[CaptureWarning],
    batch_size: int = 65536,
    window_bytes: int = WINDOW_BYTES,
) -> Iterator[RecordBatch]:
    """Yield record batches from a classic pcap stream positioned at its first byte."""
    header = PcapHeader(src.window(GLOBAL_HEADER_LEN))
    src.advance(GLOBAL_HEADER_LEN)
    ts_mult = 1 if header.nanosecond else 1000
    max_len = max(MAX_RECORD_LEN, header.snaplen if header.snaplen < (1 << 26) else 0)
    want = window_bytes
    while True:
        buf = src.window(want)
        if buf.shape[0] == 0:
            return
        offset = np.empty(batch_size, np.int64)
        caplen = np.empty(batch_size, np.uint32)
        wirelen = np.empty(batch_size, np.uint32)
        ts_ns = np.empty(batch_size, np.int64)
        linktype = np.empty(batch_size, np.uint16)
        iface = np.empty(batch_size, np.uint16)
        file_offset = np.empty(batch_size, np.int64)
        n, used, status = walk_records(
            buf, src.pos, header.big_endian, ts_mult, max_len, header.linktype, offset, caplen,
            wirelen, ts_ns, linktype, iface, file_offset,
        )  # fmt: skip
        if n:
            yield RecordBatch(
                data=buf,
                offset=offset[:n],
                caplen=caplen[:n],
                wirelen=wirelen[:n],
                ts_ns=ts_ns[:n],
                linktype=linktype[:n],
                iface=iface[:n],
                file_offset=file_offset[:n],
            )
        src.advance(used)
        if status == WALK_BAD_LENGTH:
            incl = int.from_bytes(bytes(buf[used + 8 : used + 12]), "big" if header.big_endian else "little")
            warnings.append(
                CaptureWarning(
                    name,
                    src.pos,
                    f"record claims an impossible captured length of {incl} bytes; "
                    "stopped reading here",
                )
            )
            return
        if status == WALK_NEED_MORE:
            if buf.shape[0] < want:  # the input ended inside a record
                if buf.shape[0] > used:
                    warnings.append(
                        CaptureWarning(
                            name,
                            src.pos,
                            f"capture is cut short inside a record ({buf.shape[0] - used} "
                            "trailing bytes ignored)",
                        )
                    )
                return
            if n == 0:  # one record larger than the window: widen it
                want *= 2
            else:
                want = window_bytes
