"""The demo capture's records, every kind (flow, burst, conversation, alert) in every format,
pinned: JSON lines and CSV byte for byte, Parquet value for value (its file bytes carry the
writer's version). Any change to any field, its name, key order, number formatting or
escaping fails here; after an intended change, `python tests/golden/regenerate.py` writes
them again and the diff shows the change."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.golden.regenerate import COMMANDS, GOLDEN, write

STALE = "differs from tests/golden/{name}: if the change is intended, run " \
        "`python tests/golden/regenerate.py` and review the diff"
ROWS = {"flows": 61, "bursts": 28, "conversations": 19, "alerts": 1}


@pytest.mark.parametrize("stem", list(COMMANDS))
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_text_exports_match_the_golden_files(stem: str, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"{stem}.{fmt}"
    assert write(stem, fmt, out) in (0, 1)
    assert out.read_bytes() == (GOLDEN / out.name).read_bytes(), STALE.format(name=out.name)


@pytest.mark.parametrize("stem", list(COMMANDS))
def test_parquet_exports_match_the_golden_tables(stem: str, tmp_path: Path) -> None:
    out = tmp_path / f"{stem}.parquet"
    assert write(stem, "parquet", out) in (0, 1)
    got, want = pq.read_table(out), pq.read_table(GOLDEN / out.name)
    assert got.schema == want.schema, STALE.format(name=out.name)
    assert got.num_rows == want.num_rows == ROWS[stem]
    assert got.equals(want), STALE.format(name=out.name)


def test_column_formatting_agrees_with_the_per_value_functions() -> None:
    """The per-batch conversions give exactly what the per-value functions give, on values
    the demo does not have: huge, tiny, negative, half-way, NaN, infinities, -0.0."""
    import math

    import numpy as np

    from burstwatch.outputs.columns import iso_list, num, num_list
    from burstwatch.outputs.ecs import iso

    rng = np.random.default_rng(16)
    v = np.concatenate([
        rng.normal(0, 1e3, 20_000), rng.normal(0, 1e-4, 5_000), rng.integers(-10**6, 10**6, 5_000),
        np.array([0.0, -0.0, 0.5, 2.5, 1.0000005, 2**53, 2**53 + 2.0, -2**53, 1e300, 5e-324,
                  np.nan, np.inf, -np.inf, 0.1 + 0.2, 123456.0000005]),
    ])
    got = num_list(v)
    want = [num(x) for x in v.tolist()]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert type(g) is type(w) and (g == w or (g != g and w != w) or math.isinf(w)), (g, w)
        assert repr(g) == repr(w)
    ns = np.concatenate([rng.integers(0, 4_000_000_000 * 10**9, 10_000),
                         np.array([0, 1, 999_999_999, 1_000_000_000, 1_710_252_046_223_762_000])])
    assert iso_list(ns) == [iso(x) for x in ns.tolist()]
