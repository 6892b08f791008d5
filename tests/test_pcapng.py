"""pcapng reader: crafted files with known decodes, damage handling, and cross-checks."""

from __future__ import annotations

import gzip
import io
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burstwatch.errors import NotACaptureError
from burstwatch.ingest import CaptureWarning, open_capture
from burstwatch.ingest.bytesource import StreamSource
from burstwatch.ingest.pcapng import read_pcapng
from tests.pcapng_builder import (
    CUSTOM_TYPE,
    DSB_TYPE,
    ISB_TYPE,
    NRB_TYPE,
    PcapngBuilder,
)

# file_offset, ts_ns, caplen, wirelen, linktype, iface, data
Record = tuple[int, int, int, int, int, int, bytes]

TS_US = 1_700_000_000_123_456  # 2023-11-14T22:13:20.123456Z in microseconds
NS_FROM_US = TS_US * 1000


def decode(data: bytes, **kw: Any) -> tuple[list[Record], list[CaptureWarning]]:
    """Read crafted bytes through the stream path; return flat records and warnings."""
    warnings: list[CaptureWarning] = []
    out: list[Record] = []
    for b in read_pcapng(StreamSource(io.BytesIO(data)), "t", warnings, **kw):
        assert b.data.dtype.name == "uint8"
        for i in range(len(b)):
            o, c = int(b.offset[i]), int(b.caplen[i])
            out.append(
                (
                    int(b.file_offset[i]),
                    int(b.ts_ns[i]),
                    c,
                    int(b.wirelen[i]),
                    int(b.linktype[i]),
                    int(b.iface[i]),
                    bytes(b.data[o : o + c]),
                )
            )
    return out, warnings


def decode_file(path: Path | str) -> tuple[list[Record], list[CaptureWarning]]:
    """Read a file end to end the way users do (memory-mapped or gzip stream)."""
    reader = open_capture(str(path))
    out: list[Record] = []
    for b in reader.batches():
        for i in range(len(b)):
            o, c = int(b.offset[i]), int(b.caplen[i])
            out.append(
                (
                    int(b.file_offset[i]),
                    int(b.ts_ns[i]),
                    c,
                    int(b.wirelen[i]),
                    int(b.linktype[i]),
                    int(b.iface[i]),
                    bytes(b.data[o : o + c]),
                )
            )
    return out, reader.warnings


def ts_of(r: Record) -> int:
    return r[1]


# --- byte orders, sections, interfaces -------------------------------------------------------


@pytest.mark.parametrize("big", [False, True])
def test_single_section_either_byte_order(big: bool) -> None:
    b = PcapngBuilder()
    b.shb(big=big)
    b.idb(linktype=1, snaplen=65535)
    at1 = b.epb(0, TS_US, b"\x01\x02\x03\x04\x05", wirelen=1514)
    at2 = b.epb(0, TS_US + 1, b"")
    recs, warns = decode(b.bytes())
    assert warns == []
    assert recs == [
        (at1, 1_700_000_000_123_456_000, 5, 1514, 1, 0, b"\x01\x02\x03\x04\x05"),
        (at2, 1_700_000_000_123_457_000, 0, 0, 1, 0, b""),
    ]
    assert at1 == 28 + 32  # after the SHB and an IDB carrying if_name


def test_two_sections_with_different_byte_orders() -> None:
    b = PcapngBuilder()
    b.shb(big=False)
    b.idb(linktype=1)
    b.idb(linktype=113)
    a = b.epb(1, TS_US, b"sll")
    b.shb(big=True)
    b.idb(linktype=101, tsresol=9)  # ids restart: this is interface 0 of section 2
    c = b.epb(0, 1_700_000_001_000_000_007, b"rawip")
    d = b.epb(1, TS_US, b"nope")  # section 2 has one interface only
    e = b.opb(0, 5, b"opb")
    recs, warns = decode(b.bytes())
    assert recs == [
        (a, NS_FROM_US, 3, 3, 113, 1, b"sll"),
        # iface numbers are file-wide: section 2's interface 0 is the file's third.
        (c, 1_700_000_001_000_000_007, 5, 5, 101, 2, b"rawip"),
        (e, 5, 3, 3, 101, 2, b"opb"),
    ]
    assert len(warns) == 1
    assert warns[0].byte_offset == d
    assert "interface not described" in warns[0].message
    assert warns[0].message.startswith("1 packet block")


def test_several_interfaces_with_different_link_types() -> None:
    b = PcapngBuilder()
    b.shb(big=True)
    links = [1, 113, 276, 101, 228]
    for lt in links:
        b.idb(linktype=lt)
    order = [4, 0, 2, 2, 1, 3, 0]
    offs = [b.epb(i, TS_US + k, bytes([i]) * (k + 1)) for k, i in enumerate(order)]
    recs, warns = decode(b.bytes())
    assert warns == []
    assert [r[4] for r in recs] == [228, 1, 276, 276, 113, 101, 1]
    assert [r[5] for r in recs] == order
    assert [r[0] for r in recs] == offs
    assert [r[6] for r in recs] == [bytes([i]) * (k + 1) for k, i in enumerate(order)]


def test_idb_between_packets_and_interface_table_across_windows() -> None:
    """A tiny window forces many refills; the interface table must survive them."""
    b = PcapngBuilder()
    b.shb(big=False)
    b.idb(linktype=1, tsresol=9)
    for k in range(20):
        b.epb(0, 1_000 + k, bytes(range(k)))
        if k == 9:
            b.idb(linktype=113, tsresol=3, tsoffset=10)
        if k >= 10:
            b.epb(1, k, b"late")
    whole, warns = decode(b.bytes())
    assert warns == []
    assert len(whole) == 30
    assert [r[1] for r in whole if r[5] == 1] == [k * 1_000_000 + 10 * 10**9 for k in range(10, 20)]
    for window in (12, 40, 64, 100, 333):
        for batch in (1, 3, 1000):
            got, w = decode(b.bytes(), window_bytes=window, batch_size=batch)
            assert w == []
            assert got == whole


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tsresol", "raw", "expected_ns"),
    [
        (None, TS_US, NS_FROM_US),  # default 10^-6
        (6, TS_US, NS_FROM_US),
        (0, 1_700_000_000, 1_700_000_000 * 10**9),  # whole seconds
        (3, 1_700_000_000_123, 1_700_000_000_123_000_000),
        (9, 1_700_000_000_123_456_789, 1_700_000_000_123_456_789),
        (9, 2**63 - 1, 2**63 - 1),  # the last representable instant (2262)
        # 10^-12: rounds to the nearest nanosecond, half up.
        (12, 1_234_567_890_123_456_789, 1_234_567_890_123_457),
        (12, 1_234_567_890_123_456_499, 1_234_567_890_123_456),
        # 10^-10 today needs the 64th bit of the raw count.
        (10, 17_000_000_000_123_456_785, 1_700_000_000_012_345_679),
        # 2^-20: 1 unit is 953.67 ns.
        (0x80 | 20, (1_700_000_000 << 20) | 1, 1_700_000_000_000_000_954),
        (0x80 | 20, (1_700_000_000 << 20) | (1 << 19), 1_700_000_000_500_000_000),
        # 2^-32 after 2038: the raw count passes 2^63.
        (0x80 | 32, (2_200_000_000 << 32) | (1 << 30), 2_200_000_000_250_000_000),
        (0x80 | 32, (1_700_000_000 << 32) | 1, 1_700_000_000_000_000_000),
        # 2^-40: finer than a nanosecond, still exact to the nanosecond here.
        (0x80 | 40, (1_700_000 << 40) | (3 << 38), 1_700_000_750_000_000),
        (0x80 | 0, 12, 12 * 10**9),  # 2^0: seconds
    ],
)
def test_timestamp_resolutions(tsresol: int | None, raw: int, expected_ns: int) -> None:
    for big in (False, True):
        b = PcapngBuilder()
        b.shb(big=big)
        b.idb(tsresol=tsresol)
        b.epb(0, raw, b"p")
        recs, warns = decode(b.bytes())
        assert warns == []
        assert ts_of(recs[0]) == expected_ns


@pytest.mark.parametrize(
    "tsresol", [6, 9, 10, 12, 15, 18, 0x80 | 10, 0x80 | 20, 0x80 | 30, 0x80 | 33]
)
def test_timestamp_rounding_matches_exact_arithmetic(tsresol: int) -> None:
    units = 2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10 ** (tsresol & 0x7F)
    raws = [0, 1, units - 1, units, units + units // 2, 2**63 - 1, 2**64 - 1, 0xFEDCBA9876543210]
    b = PcapngBuilder()
    b.shb(big=True)
    b.idb(tsresol=tsresol)
    for r in raws:
        b.epb(0, r, b"")
    recs, warns = decode(b.bytes())
    # half up; int() floors a positive Fraction
    wants = [int(Fraction(r * 10**9, units) + Fraction(1, 2)) for r in raws]
    kept = [w for w in wants if w < 2**63]  # beyond 2262 a time is damage: skipped, not wrapped
    assert [ts_of(rec) for rec in recs] == kept, units
    assert len(warns) == (len(kept) < len(wants))


def test_tsoffset_seconds_added_to_every_timestamp() -> None:
    b = PcapngBuilder()
    b.shb(big=True)
    b.idb(linktype=1, tsoffset=1_600_000_000)  # relative timestamps + base
    b.idb(linktype=1, tsresol=9, tsoffset=-3600)
    b.epb(0, 1_500_000, b"a")  # 1.5 s after the base
    b.epb(1, 1_700_000_000_000_000_001, b"b")
    recs, warns = decode(b.bytes())
    assert warns == []
    assert [ts_of(r) for r in recs] == [1_600_000_001_500_000_000, 1_699_996_400_000_000_001]


def test_unusable_resolution_and_bad_option_lengths_warn_but_continue() -> None:
    b = PcapngBuilder()
    b.shb()
    idb_at = b.idb(linktype=1, tsresol=60)  # 10^-60 s
    b.idb(linktype=1, opts=[(9, b"\x06\x06"), (14, b"\x01")])
    b.epb(0, 123, b"x")
    b.epb(1, 123, b"y")
    recs, warns = decode(b.bytes())
    assert [(ts_of(r), r[6]) for r in recs] == [(0, b"x"), (123_000, b"y")]
    assert [w.byte_offset for w in warns][0] == idb_at
    assert len(warns) == 3


# --- packet block kinds ----------------------------------------------------------------------


def test_simple_packet_blocks() -> None:
    b = PcapngBuilder()
    b.shb(big=True)
    b.idb(linktype=1, snaplen=6)
    s0 = b.spb(b"\xaa" * 4)  # before any timestamp: 0
    b.epb(0, TS_US, b"e")
    s1 = b.spb(b"\xbb" * 10, wirelen=10)  # cut to the interface snaplen
    s2 = b.spb(b"\xcc" * 3, wirelen=3)
    recs, warns = decode(b.bytes())
    assert warns == []
    assert recs[0] == (s0, 0, 4, 4, 1, 0, b"\xaa" * 4)
    assert recs[2] == (s1, NS_FROM_US, 6, 10, 1, 0, b"\xbb" * 6)
    assert recs[3] == (s2, NS_FROM_US, 3, 3, 1, 0, b"\xcc" * 3)


def test_simple_packet_block_capped_by_block_room() -> None:
    b = PcapngBuilder()
    b.shb()
    b.idb(linktype=101, snaplen=0)
    at = b.spb(b"\x45" * 20, wirelen=1500)  # a snapped packet: only 20 bytes stored
    recs, _ = decode(b.bytes())
    assert recs == [(at, 0, 20, 1500, 101, 0, b"\x45" * 20)]


def test_simple_packet_block_without_interface_is_skipped() -> None:
    b = PcapngBuilder()
    b.shb()
    at = b.spb(b"zz")
    recs, warns = decode(b.bytes())
    assert recs == []
    assert len(warns) == 1 and warns[0].byte_offset == at


@pytest.mark.parametrize("big", [False, True])
def test_obsolete_packet_block(big: bool) -> None:
    b = PcapngBuilder()
    b.shb(big=big)
    b.idb(linktype=1)
    b.idb(linktype=105, tsresol=9)
    at = b.opb(1, 1_700_000_000_000_000_042, b"wifi!", wirelen=99, drops=7)
    recs, warns = decode(b.bytes())
    assert warns == []
    assert recs == [(at, 1_700_000_000_000_000_042, 5, 99, 105, 1, b"wifi!")]


def test_unknown_blocks_are_skipped() -> None:
    b = PcapngBuilder()
    b.shb()
    b.block(NRB_TYPE, struct.pack("<HH", 1, 8) + b"\x0a\0\0\x01" + b"host" + b"\0" * 4)
    b.idb(linktype=1)
    b.block(ISB_TYPE, struct.pack("<III", 0, 1, 2))
    a = b.epb(0, TS_US, b"one")
    b.block(DSB_TYPE, struct.pack("<II", 0x544C534B, 5) + b"keys!")
    b.block(CUSTOM_TYPE, b"")  # a bare 12-byte block
    b.block(0x40000BAD, b"\xff" * 100)
    c = b.epb(0, TS_US, b"two")
    recs, warns = decode(b.bytes())
    assert warns == []
    assert [(r[0], r[6]) for r in recs] == [(a, b"one"), (c, b"two")]


# --- damage ----------------------------------------------------------------------------------


def _three_packets() -> tuple[PcapngBuilder, list[int]]:
    b = PcapngBuilder()
    b.shb(big=True)
    b.idb(linktype=1)
    offs = [b.epb(0, TS_US + k, bytes([k]) * 50) for k in range(3)]
    return b, offs


def test_truncated_file_keeps_every_complete_packet() -> None:
    b, offs = _three_packets()
    data = b.bytes()
    last = offs[2]
    for cut in range(last + 1, len(data)):
        recs, warns = decode(data[:cut])
        assert [r[0] for r in recs] == offs[:2]
        assert len(warns) == 1
        assert warns[0].byte_offset == last
        assert "cut short" in warns[0].message
    recs, warns = decode(data[:last])  # cut on a block boundary: nothing to complain about
    assert len(recs) == 2 and warns == []


def test_truncated_file_through_open_capture(tmp_path: Path) -> None:
    b, offs = _three_packets()
    path = tmp_path / "cut.pcapng"
    path.write_bytes(b.bytes()[: offs[2] + 30])
    recs, warns = decode_file(path)
    assert len(recs) == 2
    assert len(warns) == 1 and warns[0].byte_offset == offs[2]


@pytest.mark.parametrize(
    ("length", "trailer"),
    [(8, None), (0, None), (14, None), (1 << 30, None), (0xFFFFFFFC, None), (32, 36)],
)
def test_impossible_block_length_stops_with_offset(length: int, trailer: int | None) -> None:
    b, offs = _three_packets()
    bad = b.size
    if trailer is None:
        b.raw(struct.pack(">II", 6, length) + b"\0" * 40)
    else:
        b.raw(
            struct.pack(">II", 0xBAD, length) + b"\0" * (length - 12) + struct.pack(">I", trailer)
        )
    b.epb(0, 0, b"after the damage")
    recs, warns = decode(b.bytes())
    assert [r[0] for r in recs] == offs
    assert len(warns) == 1
    assert warns[0].byte_offset == bad
    assert "impossible length" in warns[0].message
    assert str(length) in warns[0].message
    if trailer is not None:
        assert f"trailing copy says {trailer}" in warns[0].message


def test_packet_longer_than_its_block_is_skipped() -> None:
    b = PcapngBuilder()
    b.shb()
    b.idb()
    a = b.epb(0, 1, b"ok")
    bad = b.epb(0, 2, b"four", caplen=5000)
    c = b.epb(0, 3, b"ok too")
    recs, warns = decode(b.bytes())
    assert [r[0] for r in recs] == [a, c]
    assert len(warns) == 1 and warns[0].byte_offset == bad


def test_damaged_later_section_header_stops() -> None:
    b, offs = _three_packets()
    bad = b.size
    b.raw(
        struct.pack(">II", 0x0A0D0D0A, 28)
        + b"\x00\x00\x00\x00"
        + b"\0" * 12
        + struct.pack(">I", 28)
    )
    b.epb(0, 0, b"x")
    recs, warns = decode(b.bytes())
    assert [r[0] for r in recs] == offs
    assert len(warns) == 1 and warns[0].byte_offset == bad and "byte-order" in warns[0].message


def test_later_section_with_unsupported_version_stops() -> None:
    b, offs = _three_packets()
    bad = b.shb(big=False, version=(2, 0))
    b.idb()
    b.epb(0, 0, b"x")
    recs, warns = decode(b.bytes())
    assert [r[0] for r in recs] == offs
    assert len(warns) == 1 and warns[0].byte_offset == bad and "version 2.0" in warns[0].message


def test_interface_block_too_short_stops() -> None:
    b, offs = _three_packets()
    bad = b.block(1, b"\x00\x01")  # 16 bytes: no room for link type and snaplen
    b.epb(0, 0, b"x")
    recs, warns = decode(b.bytes())
    assert [r[0] for r in recs] == offs
    assert len(warns) == 1 and warns[0].byte_offset == bad


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x0a\x0d\x0d\x0a",
        b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00",  # cut inside the SHB
        b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\xde\xad\xbe\xef" + b"\0" * 16,  # bad byte-order magic
        b"\x0a\x0d\x0d\x0a\x10\x00\x00\x00\x4d\x3c\x2b\x1a" + b"\0" * 16,  # SHB length 16
        b"\xd4\xc3\xb2\xa1" + b"\0" * 24,  # a classic pcap
    ],
)
def test_first_block_not_a_valid_section_header(data: bytes) -> None:
    with pytest.raises(NotACaptureError):
        decode(data)


def test_first_section_with_unsupported_version() -> None:
    b = PcapngBuilder()
    b.shb(version=(2, 0))
    with pytest.raises(NotACaptureError, match="version"):
        decode(b.bytes())


def test_block_larger_than_window_widens_it() -> None:
    b = PcapngBuilder()
    b.shb()
    b.idb()
    b.block(0xBAD, b"\x11" * 5000)
    a = b.epb(0, 1, b"\x22" * 3000)
    recs, warns = decode(b.bytes(), window_bytes=256)
    assert warns == [] and [(r[0], r[6]) for r in recs] == [(a, b"\x22" * 3000)]


# --- end to end and cross-checks -------------------------------------------------------------


def _mixed_single_section(big: bool) -> bytes:
    b = PcapngBuilder()
    b.shb(big=big)
    b.idb(linktype=1, snaplen=1500)
    b.idb(linktype=113, tsresol=9)
    b.idb(linktype=101, tsresol=0x80 | 24)
    b.block(NRB_TYPE, b"")
    for k in range(40):
        iface = k % 3
        raw = [TS_US + k, 1_700_000_000_000_000_000 + k, (1_700_000_000 << 24) + 977 * k][iface]
        b.epb(iface, raw, bytes((k * j) & 0xFF for j in range(k * 7)), wirelen=k * 7 + k)
    b.opb(1, 1_700_000_000_999_999_999, b"old block")
    return b.bytes()


@pytest.mark.parametrize("big", [False, True])
def test_matches_scapy_on_crafted_file(tmp_path: Path, big: bool) -> None:
    from scapy.utils import RawPcapNgReader

    path = tmp_path / "mixed.pcapng"
    path.write_bytes(_mixed_single_section(big))
    ours, warns = decode_file(path)
    assert warns == []
    theirs = _scapy_records(RawPcapNgReader, path)
    assert len(ours) == len(theirs) == 41
    for mine, (data, linktype, wirelen, ts_ns) in zip(ours, theirs, strict=True):
        assert mine[6] == data
        assert mine[4] == linktype
        assert mine[3] == wirelen
        assert mine[1] == ts_ns


def test_gzip_and_mmap_agree(tmp_path: Path) -> None:
    raw = _mixed_single_section(False)
    plain = tmp_path / "m.pcapng"
    plain.write_bytes(raw)
    zipped = tmp_path / "m.pcapng.gz"
    zipped.write_bytes(gzip.compress(raw))
    a, wa = decode_file(plain)
    z, wz = decode_file(zipped)
    assert wa == wz == []
    assert a == z == decode(raw)[0]
    reader = open_capture(str(plain))
    assert reader.format == "pcapng"


def _scapy_records(reader_cls: Any, path: Path) -> list[tuple[bytes, int, int, int]]:
    """(bytes, linktype, wirelen, ts_ns rounded half up) for every packet scapy reads."""
    out = []
    reader = reader_cls(str(path))
    try:
        while True:
            try:
                data, meta = reader._read_packet(size=1 << 20)  # the public iterator cuts at MTU
            except EOFError:
                break
            exact = Fraction(((meta.tshigh << 32) | meta.tslow) * 10**9, meta.tsresol)
            out.append((data, meta.linktype, meta.wirelen, int(exact + Fraction(1, 2))))
    finally:
        reader.close()
    return out


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("ndpi-wireguard.pcap", 52),
        ("ndpi-openvpn.pcap", 706),
        ("ndpi-youtubeupload.pcap", 137),
        ("zeek-modify-request.pcapng", 17),
    ],
)
def test_real_pcapng_files_match_scapy(shared_pcaps: Path, name: str, count: int) -> None:
    from scapy.utils import RawPcapNgReader

    path = shared_pcaps / name
    ours, warns = decode_file(path)
    assert warns == []
    assert len(ours) == count
    theirs = _scapy_records(RawPcapNgReader, path)
    assert len(theirs) == count
    for mine, (data, linktype, wirelen, ts_ns) in zip(ours, theirs, strict=True):
        assert (mine[6], mine[4], mine[3], mine[1]) == (data, linktype, wirelen, ts_ns)
    assert sorted(r[0] for r in ours) == [r[0] for r in ours]


def test_real_file_with_many_interfaces(shared_pcaps: Path) -> None:
    import dpkt

    path = shared_pcaps / "zeek-modify-request.pcapng"
    ours, _ = decode_file(path)
    # Interfaces are numbered by their position among the file's 126 IDBs.
    assert all(0 <= r[5] < 126 for r in ours)
    with open(path, "rb") as f:
        theirs = list(dpkt.pcapng.Reader(f))
    assert [bytes(buf) for _, buf in theirs] == [r[6] for r in ours]


# --- damage never raises ---------------------------------------------------------------------


@st.composite
def crafted_files(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int]], int]:
    """A valid pcapng file, the extent of every block, and the end of the first SHB."""
    b = PcapngBuilder()
    shb_end = 0
    for section in range(draw(st.integers(1, 2))):
        b.shb(big=draw(st.booleans()))
        if section == 0:
            shb_end = b.size
        for _ in range(draw(st.integers(1, 3))):
            b.idb(
                linktype=draw(st.sampled_from([1, 101, 113, 276])),
                snaplen=draw(st.sampled_from([0, 16, 65535])),
                tsresol=draw(st.sampled_from([None, 3, 9, 12, 0x80 | 20, 0x80 | 40])),
                tsoffset=draw(st.sampled_from([None, 0, -86_400, 1_000_000])),
            )
        for _ in range(draw(st.integers(0, 12))):
            kind = draw(st.sampled_from(["epb", "epb", "epb", "spb", "opb", "nrb"]))
            data = draw(st.binary(max_size=40))
            ts = draw(st.integers(0, 2**64 - 1))
            if kind == "epb":
                b.epb(draw(st.integers(0, 2)), ts, data)
            elif kind == "opb":
                b.opb(draw(st.integers(0, 2)), ts, data)
            elif kind == "spb":
                b.spb(data)
            else:
                b.block(NRB_TYPE, data)
    ends = b.block_ends
    extents = list(zip([0, *ends[:-1]], ends, strict=True))
    return b.bytes(), extents, shb_end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    crafted_files(),
    st.data(),
    st.sampled_from([12, 64, 200, 32 << 20]),
)
def test_damage_yields_warnings_only_and_keeps_the_clean_prefix(
    built: tuple[bytes, list[tuple[int, int]], int], data: st.DataObject, window: int
) -> None:
    raw, extents, shb_end = built
    clean, clean_warns = decode(raw)
    cut = data.draw(st.integers(shb_end, len(raw)), label="cut")
    flips = data.draw(
        st.lists(
            st.tuples(st.integers(shb_end, max(shb_end, len(raw) - 1)), st.integers(1, 255)),
            max_size=3,
        ),
        label="flips",
    )
    damaged = bytearray(raw[:cut])
    for at, x in flips:
        if at < len(damaged):
            damaged[at] ^= x
    first_flip = min([at for at, _ in flips if at < cut], default=cut)
    damage_at = min(cut, first_flip)

    recs, warns = decode(bytes(damaged), window_bytes=window, batch_size=4)
    assert all(isinstance(w, CaptureWarning) for w in warns)
    intact = [r for r in clean if _block_end(extents, r[0]) <= damage_at]
    assert recs[: len(intact)] == intact
    if not flips and cut not in {e for _, e in extents} and cut < len(raw):
        assert any("cut short" in w.message for w in warns)
    if not flips and cut == len(raw):
        assert recs == clean and warns == clean_warns


def _block_end(extents: list[tuple[int, int]], start: int) -> int:
    for s, e in extents:
        if s == start:
            return e
    raise AssertionError(f"no block starts at {start}")
