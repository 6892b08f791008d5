"""A damaged gzip capture gives every packet before the damage and a warning with the offset,
as a damaged plain capture does."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import pytest

from burstwatch.cli.main import main
from burstwatch.ingest.source import open_capture
from tests.craft import pcap_bytes

# Incompressible frames, so a cut in the compressed file lands inside the record stream.
RNG = np.random.default_rng(5)
FRAMES = [(1_700_000_000_000_000_000 + k * 1_000_000, RNG.bytes(1000)) for k in range(400)]
CAPTURE = pcap_bytes(FRAMES, nanosecond=True)
RECORD = 16 + 1000


def read(path: Path) -> tuple[int, list[str]]:
    reader = open_capture(str(path))
    packets = sum(len(b) for b in reader.batches())
    return packets, [str(w) for w in reader.warnings]


def whole_records(prefix: bytes) -> int:
    """Records complete in a decompressed prefix (hand count: the frames are equal in size)."""
    return max(0, (len(prefix) - 24) // RECORD)


def test_gzip_cut_short_keeps_every_record_before_the_cut(tmp_path: Path) -> None:
    gz = gzip.compress(CAPTURE.data)
    for cut in (len(gz) // 3, len(gz) - 12, len(gz) - 1):
        path = tmp_path / f"cut{cut}.pcap.gz"
        path.write_bytes(gz[:cut])
        expected = whole_records(zlib.decompressobj(31).decompress(gz[:cut]))
        assert 0 < expected <= len(FRAMES)
        packets, warnings = read(path)
        assert packets == expected
        assert any("gzip" in w and f"compressed byte {cut}" in w for w in warnings), warnings


def test_gzip_trailing_garbage_keeps_everything_and_names_where_it_starts(tmp_path: Path) -> None:
    gz = gzip.compress(CAPTURE.data)
    path = tmp_path / "garbage.pcap.gz"
    path.write_bytes(gz + b"this is not gzip at all")
    packets, warnings = read(path)
    assert packets == len(FRAMES)
    assert any(f"compressed byte {len(gz)}" in w and "trailing" in w for w in warnings), warnings


def test_gzip_bad_crc_keeps_the_data_and_warns(tmp_path: Path) -> None:
    gz = bytearray(gzip.compress(CAPTURE.data))
    gz[-8] ^= 0xFF  # the CRC-32 of the member
    path = tmp_path / "crc.pcap.gz"
    path.write_bytes(bytes(gz))
    packets, warnings = read(path)
    assert packets == len(FRAMES)
    assert any("incorrect data check" in w for w in warnings), warnings


def test_gzip_damaged_deflate_data_keeps_what_came_before(tmp_path: Path) -> None:
    gz = bytearray(gzip.compress(CAPTURE.data))
    at = len(gz) // 2
    gz[at : at + 64] = bytes(64)  # a run of zeros: not a valid deflate block stream
    path = tmp_path / "mid.pcap.gz"
    path.write_bytes(bytes(gz))
    packets, warnings = read(path)
    good = whole_records(zlib.decompressobj(31).decompress(bytes(gz[:at])))
    assert good <= packets < len(FRAMES)
    assert any("gzip" in w for w in warnings), warnings


def test_concatenated_gzip_members_are_one_capture_without_warning(tmp_path: Path) -> None:
    half = len(CAPTURE.data) // 2
    path = tmp_path / "two.pcap.gz"
    path.write_bytes(gzip.compress(CAPTURE.data[:half]) + gzip.compress(CAPTURE.data[half:]))
    assert read(path) == (len(FRAMES), [])


def test_scan_of_a_cut_gzip_capture_reports_the_packets_and_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gz = gzip.compress(CAPTURE.data)
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(gz[: len(gz) // 2])
    code = main(["info", "--json", str(path)])
    out, err = capsys.readouterr()
    assert code == 0
    expected = whole_records(zlib.decompressobj(31).decompress(gz[: len(gz) // 2]))
    assert f'"packets": {expected}' in out
    assert err.count("warning") >= 1 and "compressed byte" in err
