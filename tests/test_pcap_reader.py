"""Classic pcap reading: header flavours, batching, gzip, format detection and damaged files."""

from __future__ import annotations

import gzip
import io
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from burstwatch.decode import decode
from burstwatch.decode.batch import STATUS_NAMES
from burstwatch.errors import InputError, NotACaptureError
from burstwatch.ingest import CaptureReader, CaptureWarning, RecordBatch, open_capture
from burstwatch.ingest.bytesource import StreamSource
from burstwatch.ingest.gzipstream import GzipStream
from burstwatch.ingest.pcap import read_pcap
from tests.craft import (
    GLOBAL_HEADER_LEN,
    Capture,
    Record,
    catalog_packet_counts,
    pcap_bytes,
    pcapng_bytes,
    pcapng_reader_available,
    raw_record,
)

CUT_SHORT = "capture is cut short inside a record"
IMPOSSIBLE_LENGTH = "record claims an impossible captured length"
DAMAGED_GZIP = "gzip stream"

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
FRAMES = [
    bytes(ETH / IP(src="192.0.2.1", dst="198.51.100.7") / TCP(flags="S")),
    bytes(ETH / IP(src="192.0.2.1", dst="198.51.100.7") / UDP(dport=53) / Raw(b"q" * 40)),
    bytes(ETH / Dot1Q(vlan=7) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP() / Raw(b"6" * 700)),
    bytes(ETH / ARP()),
    bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="PA") / Raw(bytes(range(256)) * 5)),
]
T0 = 1_700_000_000_000_000_000


def sample_capture(n: int = 10, **kw: Any) -> Capture:
    """``n`` packets cycling through FRAMES, about a second apart."""
    return pcap_bytes([(T0 + k * 1_000_123_457, FRAMES[k % len(FRAMES)]) for k in range(n)], **kw)


Row = tuple[int, int, int, int, bytes]  # file offset, ts_ns, caplen, wirelen, bytes


def rows(batches: list[RecordBatch]) -> list[Row]:
    """Every record of the batches, in order, as plain values."""
    out = []
    for batch in batches:
        for i in range(len(batch)):
            start = int(batch.offset[i])
            out.append((
                int(batch.file_offset[i]), int(batch.ts_ns[i]), int(batch.caplen[i]),
                int(batch.wirelen[i]), bytes(batch.data[start : start + int(batch.caplen[i])]),
            ))
    return out


def expected_rows(records: tuple[Record, ...] | list[Record]) -> list[Row]:
    return [(r.header_offset, r.ts_ns, r.caplen, r.wirelen, r.data) for r in records]


def read_path(path: Path, batch_size: int = 65536) -> tuple[list[RecordBatch], list[CaptureWarning]]:
    reader = open_capture(str(path))
    batches = list(reader.batches(batch_size))
    return batches, reader.warnings


def read_stream(data: bytes, *, chunk: int, window: int, batch_size: int) -> tuple[list[RecordBatch], list[CaptureWarning]]:
    """Read through the stream path with small chunks and windows, so records straddle them."""
    warnings: list[CaptureWarning] = []
    src = StreamSource(io.BufferedReader(io.BytesIO(data)), chunk=chunk)  # type: ignore[arg-type]
    batches = list(read_pcap(src, "mem", warnings, batch_size=batch_size, window_bytes=window))
    return batches, warnings


# ---- header flavours ----


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("nanosecond", [False, True], ids=["us", "ns"])
@pytest.mark.parametrize("snaplen", [65535, 262144, 0x7FFFFFFF, 96])
def test_header_flavours(tmp_path: Path, big_endian: bool, nanosecond: bool, snaplen: int) -> None:
    cap = sample_capture(12, big_endian=big_endian, nanosecond=nanosecond, snaplen=snaplen)
    batches, warnings = read_path(cap.write(tmp_path / "c.pcap"))
    assert warnings == []
    assert rows(batches) == expected_rows(cap.records)
    assert all((b.linktype == 1).all() and (b.iface == 0).all() for b in batches)
    if snaplen == 96:  # tiny snaplen: captured bytes are cut, wire lengths are not
        assert [r[2] for r in rows(batches)] == [min(len(FRAMES[k % 5]), 96) for k in range(12)]
        assert [r[3] for r in rows(batches)] == [len(FRAMES[k % 5]) for k in range(12)]


def test_timestamps_exact(tmp_path: Path) -> None:
    ts = 1_700_000_000_123_456_789
    us = pcap_bytes([(ts, FRAMES[0])], nanosecond=False)
    ns = pcap_bytes([(ts, FRAMES[0])], nanosecond=True, big_endian=True)
    got_us = rows(read_path(us.write(tmp_path / "us.pcap"))[0])[0][1]
    got_ns = rows(read_path(ns.write(tmp_path / "ns.pcap"))[0])[0][1]
    assert got_us == 1_700_000_000_123_456_000
    assert got_ns == 1_700_000_000_123_456_789


def test_latest_representable_timestamp_does_not_overflow(tmp_path: Path) -> None:
    ts = (2**32 - 1) * 1_000_000_000 + 999_999_999
    cap = pcap_bytes([(ts, FRAMES[0])], nanosecond=True)
    assert rows(read_path(cap.write(tmp_path / "late.pcap"))[0])[0][1] == 4_294_967_295_999_999_999


def test_jumbo_record_with_big_snaplen(tmp_path: Path) -> None:
    jumbo = bytes(ETH / Raw(b"j" * 70_000))  # bigger than any 16-bit length field allows
    cap = pcap_bytes([(T0, FRAMES[0]), (T0 + 1, jumbo), (T0 + 2, FRAMES[1])], snaplen=262144)
    batches, warnings = read_path(cap.write(tmp_path / "jumbo.pcap"))
    assert warnings == []
    assert rows(batches) == expected_rows(cap.records)
    assert rows(batches)[1][2] == len(jumbo)


def test_linktype_from_header(tmp_path: Path) -> None:
    cap = pcap_bytes([(T0, bytes(IP() / UDP()))], linktype=101, big_endian=True)
    batches, _ = read_path(cap.write(tmp_path / "raw.pcap"))
    assert batches[0].linktype.tolist() == [101]


def test_header_only_capture_is_empty(tmp_path: Path) -> None:
    cap = pcap_bytes([])
    reader = open_capture(str(cap.write(tmp_path / "empty.pcap")))
    assert list(reader.batches()) == []
    assert reader.warnings == []


@pytest.mark.parametrize("batch_size", [1, 3, 7, 100])
def test_batches_split_and_rejoin(tmp_path: Path, batch_size: int) -> None:
    cap = sample_capture(20)
    batches, warnings = read_path(cap.write(tmp_path / "c.pcap"), batch_size)
    assert warnings == []
    assert [len(b) for b in batches] == [min(batch_size, 20 - k) for k in range(0, 20, batch_size)]
    assert rows(batches) == expected_rows(cap.records)


@pytest.mark.parametrize(("chunk", "window"), [(1, 16), (7, 40), (64, 1000), (4096, 64)])
def test_records_straddling_stream_chunks_and_windows(chunk: int, window: int) -> None:
    cap = sample_capture(15, big_endian=True)
    batches, warnings = read_stream(cap.data, chunk=chunk, window=window, batch_size=4)
    assert warnings == []
    assert rows(batches) == expected_rows(cap.records)


def test_gzip_input(tmp_path: Path) -> None:
    cap = sample_capture(25, nanosecond=True)
    path = tmp_path / "c.pcap.gz"
    path.write_bytes(gzip.compress(cap.data))
    reader = open_capture(str(path))
    assert (reader.format, reader.compressed) == ("pcap-ns", True)
    assert rows(list(reader.batches())) == expected_rows(cap.records)
    assert reader.warnings == []


# ---- format detection: by magic number, never by name ----


@pytest.mark.parametrize(
    ("name", "flavour", "fmt"),
    [
        ("really-pcap.pcapng", {}, "pcap"),
        ("nanosecond.cap", {"nanosecond": True, "big_endian": True}, "pcap-ns"),
        ("no-extension", {"big_endian": True}, "pcap"),
    ],
)
def test_pcap_identified_whatever_its_name(
    tmp_path: Path, name: str, flavour: dict[str, bool], fmt: str
) -> None:
    cap = sample_capture(6, **flavour)
    reader = open_capture(str(cap.write(tmp_path / name)))
    assert (reader.format, reader.compressed) == (fmt, False)
    assert rows(list(reader.batches())) == expected_rows(cap.records)
    assert reader.warnings == []


@pytest.mark.parametrize("name", ["really-pcapng.pcap", "really-pcapng.pcap.gz"])
def test_pcapng_identified_whatever_its_name(tmp_path: Path, name: str) -> None:
    data = pcapng_bytes([(T0, FRAMES[0])])
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    reader = open_capture(str(path))
    assert (reader.format, reader.compressed) == ("pcapng", name.endswith(".gz"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "too short to be a capture file"),
        (b"\xd4\xc3", "too short to be a capture file"),
        (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", "starts with 0x47455420"),
        (bytes(100), "starts with 0x00000000"),
        (b"\x1f\x8b not really gzip at all", "gzip data is damaged"),
        (gzip.compress(b"plain text, compressed"), "starts with 0x706c6169"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "notes.pcap"
    path.write_bytes(content)
    with pytest.raises(NotACaptureError) as exc:
        open_capture(str(path))
    assert str(exc.value).startswith(f"{path}: ")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_capture(str(tmp_path / "absent.pcap"))
    with pytest.raises(InputError, match="is a directory"):
        open_capture(str(tmp_path))


@pytest.mark.parametrize("keep", [4, 10, 23])
def test_cut_inside_global_header(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "stub.pcap"
    path.write_bytes(sample_capture(1).data[:keep])
    reader = open_capture(str(path))
    with pytest.raises(NotACaptureError, match="ends inside the pcap global header"):
        list(reader.batches())


# ---- damaged part-way: keep what came before, warn with the byte offset ----


@pytest.mark.parametrize("into", [1, 8, 15, 16, 17, 50])
@pytest.mark.parametrize("via", ["file", "gzip", "stream"])
def test_cut_mid_record(tmp_path: Path, into: int, via: str) -> None:
    cap = sample_capture(6)
    cut_record = cap.records[4]
    assert cut_record.header_offset == 1032  # written out so a change in craft.py shows up here
    data = cap.data[: cut_record.header_offset + into]
    if via == "stream":
        batches, warnings = read_stream(data, chunk=100, window=256, batch_size=2)
    else:
        path = tmp_path / "cut.pcap"
        path.write_bytes(gzip.compress(data) if via == "gzip" else data)
        batches, warnings = read_path(path)
    assert rows(batches) == expected_rows(cap.records[:4])
    assert len(warnings) == 1
    assert warnings[0].byte_offset == 1032
    assert warnings[0].message == f"{CUT_SHORT} ({into} trailing bytes ignored)"
    assert str(warnings[0]).endswith(f"at byte offset 1032: {warnings[0].message}")


def test_cut_at_record_boundary_is_clean(tmp_path: Path) -> None:
    cap = sample_capture(6)
    path = tmp_path / "clean.pcap"
    path.write_bytes(cap.data[: cap.records[4].header_offset])
    batches, warnings = read_path(path)
    assert rows(batches) == expected_rows(cap.records[:4])
    assert warnings == []


@pytest.mark.parametrize("bad_len", [0x7FFFFFFF, 0xFFFFFFFF, 262145])
@pytest.mark.parametrize("big_endian", [False, True])
def test_impossible_record_length(tmp_path: Path, bad_len: int, big_endian: bool) -> None:
    good = sample_capture(3, big_endian=big_endian)
    after = sample_capture(2, big_endian=big_endian)
    data = good.data + raw_record(1, 0, bad_len, 60, big_endian=big_endian) + bytes(60)
    data += after.data[GLOBAL_HEADER_LEN:]  # perfectly good records the reader must not reach
    assert len(good.data) == 974
    path = tmp_path / "liar.pcap"
    path.write_bytes(data)
    batches, warnings = read_path(path)
    assert rows(batches) == expected_rows(good.records)
    assert warnings == [
        CaptureWarning(str(path), 974, f"{IMPOSSIBLE_LENGTH} of {bad_len} bytes; stopped reading here")
    ]


def test_record_up_to_wireshark_limit_is_accepted_despite_small_snaplen(tmp_path: Path) -> None:
    # Writers do exceed their own snaplen; only beyond 256 KiB is a length taken as corruption.
    big = bytes(ETH / Raw(b"b" * 100_000))
    cap = pcap_bytes([(T0, big)], snaplen=262144)
    data = bytearray(cap.data)
    data[16:20] = struct.pack("<I", 1500)  # header now claims a 1500-byte snaplen
    path = tmp_path / "over.pcap"
    path.write_bytes(bytes(data))
    batches, warnings = read_path(path)
    assert warnings == []
    assert rows(batches)[0][2] == len(big)


@pytest.mark.parametrize("via", ["file", "stream"])
def test_cut_at_every_byte(tmp_path: Path, via: str) -> None:
    cap = pcap_bytes([(T0 + k, f[:90]) for k, f in enumerate(FRAMES)], big_endian=True)
    starts = [r.header_offset for r in cap.records]
    for cut in range(GLOBAL_HEADER_LEN, len(cap.data) + 1):
        data = cap.data[:cut]
        if via == "stream":
            batches, warnings = read_stream(data, chunk=16, window=64, batch_size=2)
        else:
            path = tmp_path / "cut.pcap"
            path.write_bytes(data)
            batches, warnings = read_path(path, batch_size=2)
        whole = [r for r in cap.records if r.end <= cut]
        assert rows(batches) == expected_rows(whole), cut
        stop = whole[-1].end if whole else GLOBAL_HEADER_LEN
        if cut in starts or cut == len(cap.data):
            assert warnings == [], cut
        else:
            assert [(w.byte_offset, w.message) for w in warnings] == [
                (stop, f"{CUT_SHORT} ({cut - stop} trailing bytes ignored)")
            ], cut


# ---- property: damage never escapes as anything but the documented outcomes ----

SMALL_FRAMES = st.sampled_from(FRAMES).flatmap(lambda f: st.integers(0, len(f)).map(lambda n: f[:n]))


@st.composite
def damaged_captures(draw: st.DrawFn) -> tuple[Capture, bytes, int, bool]:
    """A valid capture, then optionally cut at a random byte and/or random bytes changed.

    Returns the capture, the damaged bytes, where the damage starts, and whether only a cut
    was applied.
    """
    frames = draw(st.lists(SMALL_FRAMES, min_size=0, max_size=8))
    cap = pcap_bytes(
        [(T0 + k * 999_999_937, f) for k, f in enumerate(frames)],
        big_endian=draw(st.booleans()), nanosecond=draw(st.booleans()),
        snaplen=draw(st.sampled_from([65535, 262144, 64])),
        linktype=draw(st.sampled_from([1, 101, 113, 276, 0])),
    )
    data = bytearray(cap.data)
    damage = len(data)
    flips = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)), max_size=4))
    for at, mask in flips:
        data[at] ^= mask
        damage = min(damage, at)
    cut = draw(st.none() | st.integers(0, len(data)))
    if cut is not None:
        del data[cut:]
        damage = min(damage, cut)
    return cap, bytes(data), damage, not flips


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_captures(), st.sampled_from(["file", "gzip", "stream"]))
def test_damage_yields_intact_prefix_and_documented_warning(
    sample: tuple[Capture, bytes, int, bool], via: str
) -> None:
    cap, data, damage, cut_only = sample
    intact = [r for r in cap.records if r.end <= damage]
    try:
        if via == "stream":
            batches, warnings = read_stream(data, chunk=37, window=128, batch_size=3)
        else:
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / "damaged.pcap"
                path.write_bytes(gzip.compress(data) if via == "gzip" else data)
                batches, warnings = read_path(path, batch_size=3)
    except NotACaptureError:
        # Only damage inside the 24-byte global header can make a capture unreadable.
        event("not a capture")
        assert damage < GLOBAL_HEADER_LEN
        return

    got = rows(batches)
    assert got[: len(intact)] == expected_rows(intact)
    assert len(warnings) <= 1
    stopped_at = got[-1][0] + 16 + got[-1][2] if got else GLOBAL_HEADER_LEN
    event(warnings[0].message.split(" (")[0].split(" of ")[0] if warnings else "no warning")
    for w in warnings:
        assert w.message.startswith((CUT_SHORT, IMPOSSIBLE_LENGTH)), w.message
        assert w.byte_offset == stopped_at
    if damage == len(cap.data):  # nothing damaged
        assert got == expected_rows(cap.records) and warnings == []
    elif cut_only and damage >= GLOBAL_HEADER_LEN:
        assert got == expected_rows(intact)
        at_boundary = damage in {r.header_offset for r in cap.records} | {len(cap.data)}
        if at_boundary:
            assert warnings == []
        else:
            assert [(w.byte_offset, w.message.startswith(CUT_SHORT)) for w in warnings] == [(stopped_at, True)]

    for batch in batches:  # whatever came out must decode without crashing
        pb = decode(batch)
        assert len(pb) == len(batch)
        assert int(pb.status.max(initial=0)) < len(STATUS_NAMES)
        ok = pb.status == 0
        assert np.isin(pb.ip_version[ok], [4, 6]).all()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=3),
    st.sampled_from([None, 64, 4096]),
)
def test_damaged_gzip_stream_warns_or_refuses(flips: list[tuple[int, int]], chunk: int | None) -> None:
    """Corrupt deflate data: a warning or NotACaptureError, never another exception.

    With ``chunk`` None the file goes through open_capture, which inflates its first chunk
    (8 MiB) up front; small chunks make the damage surface part-way through the batches.
    """
    packed = bytearray(gzip.compress(sample_capture(30).data))
    for at, mask in flips:
        packed[10 + at % (len(packed) - 10)] ^= mask  # past the fixed part of the gzip header
    try:
        if chunk is None:
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / "bad.pcap.gz"
                path.write_bytes(bytes(packed))
                reader = open_capture(str(path))
                batches = list(reader.batches())
        else:
            stream = GzipStream(io.BytesIO(bytes(packed)))
            source = StreamSource(stream, chunk=chunk)  # type: ignore[arg-type]
            reader = CaptureReader("bad.pcap.gz", "pcap", True, source, _gzip=stream)
            batches = list(reader.batches())
    except NotACaptureError:
        event("not a capture")
        return
    event(reader.warnings[0].message.split(" (")[0] if reader.warnings else "no warning")
    # at most one from the record walk, plus where the gzip stream broke (a record can be cut
    # by it: both are said, with the offset of each)
    assert len(reader.warnings) <= 1 + any(w.message.startswith(DAMAGED_GZIP) for w in reader.warnings)
    for w in reader.warnings:
        assert w.message.startswith((DAMAGED_GZIP, CUT_SHORT, IMPOSSIBLE_LENGTH)), w.message
    for batch in batches:
        decode(batch)


# ---- real captures ----


def walk_classic(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """An independent record walk: (header offset, caplen, wirelen) per whole record, end offset."""
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos, out = GLOBAL_HEADER_LEN, []
    while pos + 16 <= len(data):
        _, _, incl, orig = struct.unpack_from(order + "IIII", data, pos)
        if pos + 16 + incl > len(data):
            break
        out.append((pos, incl, orig))
        pos += 16 + incl
    return out, pos


def test_real_classic_captures(shared_pcaps: Path) -> None:
    counts = catalog_packet_counts(shared_pcaps / "CATALOG.md")
    classic = [p for p in sorted(shared_pcaps.iterdir()) if p.name in counts
               and p.read_bytes()[:4] != b"\x0a\x0d\x0d\x0a"]
    assert len(classic) >= 15
    for path in classic:
        data = path.read_bytes()
        reader = open_capture(str(path))
        assert reader.format in ("pcap", "pcap-ns")
        batches = list(reader.batches())
        got = [(r[0], r[2], r[3]) for r in rows(batches)]
        walked, end = walk_classic(data)
        assert got == walked, path.name
        assert len(got) == counts[path.name], path.name
        for batch in batches:
            assert (decode(batch).status < len(STATUS_NAMES)).all()
        if end == len(data):
            assert reader.warnings == [], path.name
        else:
            assert [(w.byte_offset, w.message.startswith(CUT_SHORT)) for w in reader.warnings] == [
                (end, True)
            ], path.name


def test_real_truncated_capture_warning(shared_pcaps: Path) -> None:
    path = shared_pcaps / "suricata-verify-pgsql-5000-query-results-truncated.pcap"
    reader = open_capture(str(path))
    assert sum(len(b) for b in reader.batches()) == 785
    assert reader.warnings == [
        CaptureWarning(str(path), 3276005, f"{CUT_SHORT} (1 trailing bytes ignored)")
    ]


def test_real_pcapng_captures(shared_pcaps: Path) -> None:
    counts = catalog_packet_counts(shared_pcaps / "CATALOG.md")
    pcapng = [p for p in sorted(shared_pcaps.iterdir()) if p.name in counts
              and p.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"]
    assert {p.name for p in pcapng} >= {"ndpi-wireguard.pcap", "zeek-modify-request.pcapng"}
    for path in pcapng:
        assert open_capture(str(path)).format == "pcapng", path.name
    if not pcapng_reader_available():
        pytest.skip("pcapng reader not available")
    for path in pcapng:
        reader = open_capture(str(path))
        batches = list(reader.batches())
        assert sum(len(b) for b in batches) == counts[path.name], path.name
        assert reader.warnings == [], path.name
        for batch in batches:
            assert (decode(batch).status < len(STATUS_NAMES)).all()
