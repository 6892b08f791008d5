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


def test_column_formatting_agrees_with_the_per_value_functions() -> None:
    """The per-batch conversions give exactly what the per-value functions give, on values
    the demo does not have: huge, tiny, negative, half-way, NaN, infinities, -0.0."""
    import math

    import numpy as np

    from burstwatch.outputs.ecs import _num, _num_list, iso, iso_list

    rng = np.random.default_rng(16)
    v = np.concatenate([
        rng.normal(0, 1e3, 20_000), rng.normal(0, 1e-4, 5_000), rng.integers(-10**6, 10**6, 5_000),
        np.array([0.0, -0.0, 0.5, 2.5, 1.0000005, 2**53, 2**53 + 2.0, -2**53, 1e300, 5e-324,
                  np.nan, np.inf, -np.inf, 0.1 + 0.2, 123456.0000005]),
    ])
    got = _num_list(v)
    want = [_num(x) for x in v.tolist()]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert type(g) is type(w) and (g == w or (g != g and w != w) or math.isinf(w)), (g, w)
        assert repr(g) == repr(w)
    ns = np.concatenate([rng.integers(0, 4_000_000_000 * 10**9, 10_000),
                         np.array([0, 1, 999_999_999, 1_000_000_000, 1_710_252_046_223_762_000])])
    assert iso_list(ns) == [iso(x) for x in ns.tolist()]
