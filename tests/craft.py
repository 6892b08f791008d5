"""Write capture bytes by hand, so tests control every header field the readers look at.

Real writers are not used on purpose: tests need byte orders, magics, snaplens and damage
that no convenient writer produces on demand.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
GLOBAL_HEADER_LEN = 24
RECORD_HEADER_LEN = 16

# Address families as the NULL / LOOP link layers carry them.
AF_INET = 2
AF_INET6_BSD = 24  # NetBSD, OpenBSD
AF_INET6_FREEBSD = 28
AF_INET6_DARWIN = 30


@dataclass(frozen=True)
class Record:
    """Where one crafted record landed in the file, and what it should read back as."""

    header_offset: int  # byte offset of the 16-byte record header
    ts_ns: int  # timestamp as the reader must report it (after µs truncation)
    caplen: int
    wirelen: int
    data: bytes  # the captured bytes

    @property
    def end(self) -> int:
        """Offset just past the record's last captured byte."""
        return self.header_offset + RECORD_HEADER_LEN + self.caplen


@dataclass(frozen=True)
class Capture:
    """A crafted classic pcap file and the records it holds."""

    data: bytes
    records: tuple[Record, ...]

    def write(self, path: Path) -> Path:
        path.write_bytes(self.data)
        return path


def pcap_bytes(
    packets: Iterable[tuple[int, bytes]],
    *,
    big_endian: bool = False,
    nanosecond: bool = False,
    snaplen: int = 65535,
    linktype: int = 1,
) -> Capture:
    """Classic pcap holding ``(ts_ns, frame)`` packets, each cut to ``snaplen`` as libpcap does.

    With the microsecond magic the sub-microsecond part of ``ts_ns`` is dropped, like a real
    microsecond capture would; ``Record.ts_ns`` holds what a reader must report.
    """
    order = ">" if big_endian else "<"
    magic = MAGIC_NS if nanosecond else MAGIC_US
    out = bytearray(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    records = []
    for ts_ns, frame in packets:
        sec, sub = divmod(ts_ns, 1_000_000_000)
        frac = sub if nanosecond else sub // 1000
        seen_ns = sec * 1_000_000_000 + (frac if nanosecond else frac * 1000)
        cap = frame[:snaplen]
        records.append(Record(len(out), seen_ns, len(cap), len(frame), bytes(cap)))
        out += struct.pack(order + "IIII", sec, frac, len(cap), len(frame))
        out += cap
    return Capture(bytes(out), tuple(records))


def raw_record(ts_sec: int, frac: int, caplen: int, wirelen: int, *, big_endian: bool = False) -> bytes:
    """One bare record header, for records whose header lies about their length."""
    return struct.pack((">" if big_endian else "<") + "IIII", ts_sec, frac, caplen, wirelen)


# ---- link-layer headers scapy does not build the way the captures carry them ----


def null_header(family: int) -> bytes:
    """LINKTYPE_NULL: the address family in the capturing host's order (little-endian here)."""
    return struct.pack("<I", family)


def loop_header(family: int) -> bytes:
    """LINKTYPE_LOOP: the address family always in network order."""
    return struct.pack(">I", family)


def sll2_header(protocol: int, *, ifindex: int = 1, pkttype: int = 0, addr: bytes = b"") -> bytes:
    """The 20-byte Linux "cooked" v2 header (protocol first, unlike SLL v1)."""
    return struct.pack(">HHIHBB8s", protocol, 0, ifindex, 1, pkttype, len(addr), addr[:8])


# ---- pcapng: just enough to be a valid file for format detection ----


def _pcapng_block(block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def pcapng_bytes(packets: Sequence[tuple[int, bytes]], *, linktype: int = 1) -> bytes:
    """A little-endian pcapng: section header, one interface (µs), enhanced packet blocks."""
    shb = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _pcapng_block(0x00000001, struct.pack("<HHI", linktype, 0, 0))
    epbs = b""
    for ts_ns, frame in packets:
        ts = ts_ns // 1000
        epbs += _pcapng_block(
            0x00000006,
            struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame,
        )
    return shb + idb + epbs


def pcapng_reader_available() -> bool:
    """False while ``burstwatch.ingest.pcapng`` is still the "not supported yet" placeholder.

    Any other failure means a reader exists: the tests that need it run and show the failure.
    """
    import io

    from burstwatch.errors import NotACaptureError
    from burstwatch.ingest.bytesource import StreamSource
    from burstwatch.ingest.pcapng import read_pcapng

    data = pcapng_bytes([(1_000_000_000, bytes(60))])
    try:
        list(read_pcapng(StreamSource(io.BufferedReader(io.BytesIO(data))), "probe", []))
    except NotACaptureError as exc:
        if "not supported yet" in str(exc):
            return False
    except Exception:  # a broken reader is for the tests that need it to report
        return True
    return True


def catalog_packet_counts(catalog: Path) -> dict[str, int]:
    """File name -> packet count, from the table in ../shared/pcaps/CATALOG.md."""
    counts: dict[str, int] = {}
    column = None
    for line in catalog.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if column is None and "pkts" in cells:
            column = cells.index("pkts")
        elif column is not None and cells[0].startswith("`"):
            counts[cells[0].strip("`")] = int(cells[column].split()[0])
    return counts
