"""Classic pcap writer: streams records to disk (optionally gzip), in any format variant.

Covers the variants readers meet in practice: microsecond and nanosecond magic, either byte
order, a snaplen that truncates captured bytes, and the link types in
:mod:`burstwatch.synth.linklayer`.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from burstwatch.synth.linklayer import Link, as_link, frame
from burstwatch.synth.model import NS, Packet

MAGIC_MICRO = 0xA1B2C3D4
MAGIC_NANO = 0xA1B23C4D
DEFAULT_SNAPLEN = 262144
_FLUSH_AT = 1 << 20


class PcapWriter:
    """Writes packets (IP datagrams) or ready-made frames as pcap records, in time order.

    Records are buffered up to 1 MiB and then written, so memory stays flat however long the
    capture. A path ending in ``.gz`` is gzip-compressed (with a fixed header time, so the
    same packets always give the same bytes).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        link: Link | str | int = "ethernet",
        nanosecond: bool = False,
        big_endian: bool = False,
        snaplen: int = DEFAULT_SNAPLEN,
        gzip_level: int = 6,
    ) -> None:
        self.link = as_link(link)
        self.nanosecond = nanosecond
        self.big_endian = big_endian
        self.snaplen = snaplen
        self.count = 0
        self.last_ts_ns: int | None = None
        order = ">" if big_endian else "<"
        self._record = struct.Struct(order + "IIII")
        self._raw: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._out: BinaryIO = self._raw
        if str(path).endswith(".gz"):
            self._out = gzip.GzipFile(
                filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=gzip_level
            )  # type: ignore[assignment]
        self._buf = bytearray()
        magic = MAGIC_NANO if nanosecond else MAGIC_MICRO
        self._buf += struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, self.link.linktype)

    def write(self, packet: Packet) -> None:
        """Frame an IP datagram for this file's link type and write it."""
        self.write_frame(packet.ts_ns, frame(self.link, packet.data, self.big_endian))

    def write_frame(self, ts_ns: int, data: bytes, wire_len: int | None = None) -> None:
        """Write one record; bytes past the snaplen are dropped but counted in the wire length."""
        if self.last_ts_ns is not None and ts_ns < self.last_ts_ns:
            raise ValueError(f"packets out of time order: {ts_ns} after {self.last_ts_ns}")
        self.last_ts_ns = ts_ns
        sec, frac = divmod(ts_ns, NS)
        if not self.nanosecond:
            frac //= 1000
        orig = len(data) if wire_len is None else wire_len
        cap = data[: self.snaplen]
        self._buf += self._record.pack(sec, frac, len(cap), orig)
        self._buf += cap
        self.count += 1
        if len(self._buf) >= _FLUSH_AT:
            self.flush()

    def write_all(self, packets: Iterable[Packet]) -> int:
        """Write every packet; returns how many."""
        before = self.count
        for packet in packets:
            self.write(packet)
        return self.count - before

    def flush(self) -> None:
        """Hand buffered records to the file."""
        if self._buf:
            self._out.write(self._buf)
            self._buf = bytearray()

    def close(self) -> None:
        """Flush and close (finishing the gzip stream if any)."""
        self.flush()
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_capture(
    path: str | Path,
    packets: Iterable[Packet],
    *,
    link: Link | str | int = "ethernet",
    nanosecond: bool = False,
    big_endian: bool = False,
    snaplen: int = DEFAULT_SNAPLEN,
) -> int:
    """Write time-ordered ``packets`` to a pcap file (gzip if ``path`` ends in .gz); returns the count."""
    with PcapWriter(
        path, link=link, nanosecond=nanosecond, big_endian=big_endian, snaplen=snaplen
    ) as w:
        return w.write_all(packets)
