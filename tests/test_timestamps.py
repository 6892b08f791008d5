"""Packet times outside what int64 nanoseconds since 1970 hold (before 1970 after a negative
if_tsoffset, or past 2262) are damage: skipped with a warning, never wrapped or clamped into
the -1 'unset' value of the flow table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from burstwatch.cli.main import main
from burstwatch.ingest.source import open_capture
from tests.pcapng_builder import PcapngBuilder

FRAME = bytes(Ether() / IP(src="192.168.1.5", dst="77.88.8.8")
              / TCP(sport=40000, dport=443, flags="PA") / Raw(b"x" * 1000))
US_2023 = 1_700_000_000_000_000  # microseconds (the default resolution)


def capture(path: Path, raws: list[int], tsoffset: int | None = None,
            tsresol: int | None = None) -> Path:
    b = PcapngBuilder()
    b.shb()
    b.idb(tsoffset=tsoffset, tsresol=tsresol)
    for raw in raws:
        b.epb(0, raw, FRAME)
    path.write_bytes(b.bytes())
    return path


def read(path: Path) -> tuple[list[int], list[str]]:
    reader = open_capture(str(path))
    times = [int(t) for batch in reader.batches() for t in batch.ts_ns]
    return times, [str(w) for w in reader.warnings]


def test_a_negative_offset_that_puts_packets_before_1970_skips_them_with_a_warning(
    tmp_path: Path,
) -> None:
    # -1,700,000,001 s: the first packet lands at -0.000001 s, the other two after 1970
    path = capture(tmp_path / "neg.pcapng", [US_2023 + 999_999, US_2023 + 1_000_000,
                                             US_2023 + 1_000_001], tsoffset=-1_700_000_001)
    times, warnings = read(path)
    assert times == [0, 1000]
    assert len(warnings) == 1 and "1 packet block(s)" in warnings[0]
    assert "outside" in warnings[0] and "if_tsoffset" in warnings[0]


def test_times_past_2262_are_not_wrapped(tmp_path: Path) -> None:
    # one-second units (if_tsresol 0): 2^40 s is far past what int64 nanoseconds hold
    path = capture(tmp_path / "big.pcapng", [1_700_000_000, 1 << 40, (1 << 64) - 1, 1_700_000_001],
                   tsresol=0)
    times, warnings = read(path)
    assert times == [1_700_000_000 * 10**9, 1_700_000_001 * 10**9]
    assert len(warnings) == 1 and "2 packet block(s)" in warnings[0]


@pytest.mark.parametrize(("raw", "tsresol", "ok"), [
    ((1 << 63) // 1000 + 1, None, False),  # microseconds: just past the limit once multiplied
    ((1 << 63) // 1000, None, True),  # the last whole microsecond that fits
    ((1 << 64) - 1, 9, False),  # nanoseconds: the raw count itself is past 2^63
    ((1 << 63) - 1, 9, True),
    ((1 << 64) - 1, 0x80 | 32, True),  # 2^-32 s units: 2^32 s is the year 2106
    ((1 << 64) - 1, 0x80 | 1, False),  # half seconds: 2^63 s
    ((1 << 64) - 1, 12, True),  # picoseconds: a 64-bit count is only 213 days
])
def test_the_limit_is_exact(tmp_path: Path, raw: int, tsresol: int | None, ok: bool) -> None:
    times, warnings = read(capture(tmp_path / "edge.pcapng", [raw], tsresol=tsresol))
    assert (len(times), len(warnings)) == ((1, 0) if ok else (0, 1))


def test_a_positive_offset_that_passes_2262_is_damage_too(tmp_path: Path) -> None:
    path = capture(tmp_path / "off.pcapng", [US_2023], tsoffset=(1 << 62) // 10**9 * 3)
    times, warnings = read(path)
    assert times == [] and len(warnings) == 1


def test_flows_never_write_1969(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = capture(tmp_path / "neg.pcapng", [US_2023, US_2023 + 100_000, US_2023 + 200_000],
                   tsoffset=-1_800_000_000)
    out = tmp_path / "flows.jsonl"
    assert main(["flows", str(path), "-o", str(out)]) == 0
    assert out.read_text() == ""  # every packet was before 1970: none is used
    assert "3 packet block(s)" in capsys.readouterr().err
    good = capture(tmp_path / "good.pcapng", [US_2023, US_2023 + 100_000], tsoffset=-1_600_000_000)
    assert main(["flows", str(good), "-o", str(out)]) == 0
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["event"]["start"], r["event"]["end"]) for r in records] == [
        ("1973-03-03T09:46:40.000000000Z", "1973-03-03T09:46:40.100000000Z")]
