"""Classic pcap writer: streams records to disk (optionally gzip), in any format variant.

Covers the variants readers meet in practice: microsecond and nanosecond magic, either byte
order, a snaplen that truncates captured bytes, and the link types in
:mod:`burstwatch.synth.linklayer`.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable, Sequence
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


def _pcap_stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".pcap", ".cap"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name or "capture"


def split_capture(path: str | Path, out_dir: str | Path, cuts: Sequence[int]) -> list[Path]:
    """Split a classic pcap at packet indices ``cuts``, as ``tcpdump -C``/``-G`` rotation does.

    Part ``k`` holds packets ``cuts[k-1]`` up to (not including) ``cuts[k]``; there are
    ``len(cuts) + 1`` parts, each a complete pcap file starting with the input's global
    header, written to ``out_dir`` as ``<stem>.<k>.pcap`` (``k`` zero-padded). Cuts must be
    non-decreasing and within [0, packets]: equal cuts, or a cut at 0 or at the end, give an
    empty part (just the header), as a rotation interval without traffic does. Records are
    copied byte for byte; a gzip input (by its magic) is read decompressed. Returns the paths.
    """
    path, out_dir = Path(path), Path(out_dir)
    cuts = [int(c) for c in cuts]
    if any(b < a for a, b in zip(cuts, cuts[1:], strict=False)) or any(c < 0 for c in cuts):
        raise ValueError(f"cuts must be non-decreasing packet indices >= 0, not {cuts}")
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    out_dir.mkdir(parents=True, exist_ok=True)
    width = max(2, len(str(len(cuts))))
    stem = _pcap_stem(path)
    paths = [out_dir / f"{stem}.{k:0{width}d}.pcap" for k in range(len(cuts) + 1)]
    src: BinaryIO = gzip.open(path, "rb") if gzipped else open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
    with src:
        header = src.read(24)
        if len(header) < 24:
            raise ValueError(f"{path}: too short for a pcap header")
        magic_le = struct.unpack("<I", header[:4])[0]
        if magic_le in (MAGIC_MICRO, MAGIC_NANO):
            record = struct.Struct("<IIII")
        elif struct.unpack(">I", header[:4])[0] in (MAGIC_MICRO, MAGIC_NANO):
            record = struct.Struct(">IIII")
        else:
            raise ValueError(f"{path}: not a classic pcap file (magic {header[:4].hex()})")
        index = 0
        for k, part in enumerate(paths):
            stop = cuts[k] if k < len(cuts) else None
            with open(part, "wb") as out:
                out.write(header)
                while stop is None or index < stop:
                    head = src.read(16)
                    if not head:
                        if stop is not None:
                            raise ValueError(f"cut {stop} is past the last packet ({index})")
                        break
                    if len(head) < 16:
                        raise ValueError(f"{path}: truncated record header at packet {index}")
                    incl = record.unpack(head)[2]
                    data = src.read(incl)
                    if len(data) < incl:
                        raise ValueError(f"{path}: truncated record at packet {index}")
                    out.write(head + data)
                    index += 1
    return paths
