"""`flows -o` output for the demo capture, pinned byte for byte (JSON lines, CSV) and value for
value (Parquet, whose file bytes carry the writer's version). A faster writer must produce
exactly these files: any difference in key order, number formatting or escaping fails here."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from burstwatch.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("name,extra", [
    ("flows.jsonl", []), ("flows.csv", []), ("bursts.jsonl", ["--bursts"]),
    ("bursts.csv", ["--bursts"]),
])
def test_text_exports_match_the_golden_files(name: str, extra: list[str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the records name the capture as given: pcaps/demo.pcap
    out = tmp_path / name
    assert main(["flows", "pcaps/demo.pcap", "-o", str(out), *extra]) == 0
    assert out.read_bytes() == (GOLDEN / name).read_bytes()


def test_parquet_export_matches_the_golden_table(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "flows.parquet"
    assert main(["flows", "pcaps/demo.pcap", "-o", str(out)]) == 0
    got, want = pq.read_table(out), pq.read_table(GOLDEN / "flows.parquet")
    assert got.schema == want.schema
    assert got.num_rows == want.num_rows == 61
    assert got.equals(want)
