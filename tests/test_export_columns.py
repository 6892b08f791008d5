"""The pieces writers build columns from, each against the plain way it replaces: CSV text
against ``csv.writer``, hex ids against ``format``, coded columns (distinct values and an
index) against the same column row by row, and the grouping of rows by present fields."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.outputs.columns import Coded, Column, Columns, python_values, row_patterns
from burstwatch.outputs.ecs import _related, address_codes, burst_columns, flow_columns, hex_ids
from burstwatch.outputs.writers import csv_text, table, write_records
from burstwatch.records import FlowBatch

cells = st.one_of(st.none(), st.text(max_size=12), st.integers(-10**20, 10**20),
                  st.floats(allow_nan=False, allow_infinity=False), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(cells, min_size=2, max_size=6))
def test_csv_text_is_what_csv_writer_writes(row: list[Any]) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerow(row)
    assert ",".join(csv_text(v) for v in row) + "\r\n" == buf.getvalue()


def test_hex_ids_are_sixteen_lower_case_digits() -> None:
    ids = np.array([0, 1, 0xABCDEF, 2**63, 2**64 - 1, 0x0123456789ABCDEF], np.uint64)
    assert hex_ids(ids).tolist() == [f"{x:016x}" for x in ids.tolist()]


def test_row_patterns_group_rows_by_the_fields_they_have() -> None:
    rng = np.random.default_rng(3)
    for fields in (5, 70, 130):  # one integer key per row, and packed bytes past 63
        # few distinct patterns, as in records: rows pick one of six
        shapes = rng.random((6, fields)) < 0.5
        shapes[:, 0] = True  # a field every row has
        present = shapes[rng.integers(0, 6, 400)]
        pattern, first = row_patterns(present)
        for p, row in enumerate(first.tolist()):
            same = (present == present[row]).all(axis=1)
            assert (pattern == p).tolist() == same.tolist()
            assert row == int(np.flatnonzero(same)[0])


def test_related_ip_per_distinct_pair_is_the_rows_addresses_in_order() -> None:
    hi = np.zeros(5, np.uint64)
    a = np.array([0xFFFF0A000001, 0xFFFF0A000002, 0xFFFF0A000001, 0xFFFF0A000001,
                  0xFFFF0A000003], np.uint64)
    b = np.array([0xFFFF0A000002, 0xFFFF0A000001, 0xFFFF0A000001, 0xFFFF0A000002,
                  0xFFFF0A000001], np.uint64)
    got = _related(address_codes(hi, a), address_codes(hi, b)).expand().tolist()
    assert got == [["10.0.0.1", "10.0.0.2"], ["10.0.0.2", "10.0.0.1"], ["10.0.0.1"],
                   ["10.0.0.1", "10.0.0.2"], ["10.0.0.3", "10.0.0.1"]]


def test_related_ip_json_texts_are_the_lists_as_json() -> None:
    """The JSON texts ``_related`` makes with numpy are what the encoder writes of its lists,
    IPv6 and a flow to itself included; an address text that is not plainly an address
    leaves them to the general way."""
    from burstwatch.netaddr import parse_addresses
    from burstwatch.outputs.columns import Coded
    from burstwatch.outputs.jsonline import json_line

    src_hi, src_lo = parse_addresses(["10.0.0.1", "2001:db8::1", "::1", "10.0.0.1"])
    dst_hi, dst_lo = parse_addresses(["10.0.0.1", "fe80::a:b", "::1", "192.168.1.200"])
    related = _related(address_codes(src_hi, src_lo), address_codes(dst_hi, dst_lo))
    assert related.json is not None
    assert related.json == [json_line(v) for v in related.values.tolist()]
    assert [related.json[k] for k in related.index] == [
        '["10.0.0.1"]', '["2001:db8::1","fe80::a:b"]', '["::1"]', '["10.0.0.1","192.168.1.200"]']
    odd = Coded(np.array(['a"b'], object), np.zeros(1, np.intp))
    assert _related(odd, odd).json is None


def _expanded(cols: Columns) -> Columns:
    """The same records with every coded column given row by row."""
    def build(name: str) -> Column | None:
        return cols.get(name)

    return Columns(cols.kind, cols.n, build)


@pytest.fixture(scope="module")
def demo_batches() -> list[FlowBatch]:
    from burstwatch.config import load_settings
    from burstwatch.enrich.annotate import FlowAnnotator
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.pipeline import RunStats, run_flows

    settings_, geo = load_settings(), GeoDatabase.bundled()
    root = Path(__file__).resolve().parent.parent
    return [b for b in run_flows([str(root / "pcaps" / "demo.pcap")], None, RunStats(),
                                 lambda: FlowAnnotator(geo, settings_)) if len(b)]


@pytest.mark.parametrize("kind", ["flow", "burst"])
def test_coded_columns_write_what_the_rows_would(demo_batches: list[FlowBatch],
                                                 kind: str) -> None:
    make = flow_columns if kind == "flow" else burst_columns
    coded_fields = set()
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("jsonl", "csv"):
            a, b = Path(tmp) / f"a.{fmt}", Path(tmp) / f"b.{fmt}"
            write_records(kind, [make(x) for x in demo_batches], str(a))
            write_records(kind, [_expanded(make(x)) for x in demo_batches], str(b))
            assert a.read_bytes() == b.read_bytes()
            assert a.stat().st_size > 1000
    for x in demo_batches:
        cols = make(x)
        coded_fields |= {f.name for f in cols.fields if isinstance(cols.coded(f.name), Coded)}
        assert table(cols).equals(table(_expanded(make(x))))
    # the columns that repeat a few values are given coded
    assert {"source.ip", "destination.ip", "ecs.version", "network.transport"} <= coded_fields


def _table_texts(table: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[str | None]:
    data, off, missing = table
    return [None if missing[k] else data[off[k]:off[k + 1]].tobytes().decode()
            for k in range(off.shape[0] - 1)]


_EDGES = [0.0, -0.0, 0.5, 1.5, 2.5e-7, 1e-4, 0.0001234565, 123.4565, 1e9, 2.0**53, 2.0**53 + 2,
          2.0**62, 2.0**63, 1e300, -1e-300, float("nan"), float("inf"), -float("inf"),
          0.1 + 0.2, 1 / 3, 999999.9999995, -12.3456785]
doubles = st.one_of(st.floats(width=64), st.sampled_from(_EDGES),
                    st.integers(-10**7, 10**7).map(lambda k: k / 8), st.integers(-10**9, 10**9)
                    .map(lambda k: k * 1e-6 + 5e-7))


def _field(kind: str, name: str) -> Any:
    from burstwatch.schema import fields_of

    return next(f for f in fields_of(kind) if f.name == name)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # |x| >= 2**63 as a long
@settings(max_examples=200, deadline=None)
@given(st.lists(doubles, min_size=1, max_size=40))
def test_compiled_numbers_are_the_texts_json_and_csv_write(values: list[float]) -> None:
    from burstwatch.outputs.columns import json_texts
    from burstwatch.outputs.numtext import number_table
    from burstwatch.outputs.writers import csv_codes

    col = np.array(values, np.float64)
    for f in (_field("flow", "burstwatch.flow.mean_rate"), _field("flow", "source.as.number")):
        assert f.type in ("double", "float", "long")
        table = number_table(f, col)
        assert table is not None
        assert _table_texts(table) == json_texts(f, col)
        cells, inverse = csv_codes(f, col)
        csv_table = number_table(f, col, csv=True)
        assert csv_table is not None
        assert [t or "" for t in _table_texts(csv_table)] == [cells[k] for k in inverse]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-2**63, 2**63 - 1), min_size=1, max_size=40))
def test_compiled_integers_and_times_are_the_texts_json_and_csv_write(values: list[int]) -> None:
    from burstwatch.outputs.columns import json_texts
    from burstwatch.outputs.numtext import number_table
    from burstwatch.outputs.writers import csv_codes

    col = np.array(values, np.int64)
    for f in (_field("flow", "source.port"), _field("flow", "@timestamp"),
              _field("flow", "event.duration")):
        table = number_table(f, col)
        assert table is not None, f.name
        assert _table_texts(table) == json_texts(f, col), f.name
        cells, inverse = csv_codes(f, col)
        csv_table = number_table(f, col, csv=True)
        assert csv_table is not None
        assert [t or "" for t in _table_texts(csv_table)] == [cells[k] for k in inverse]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.just(""), st.text(max_size=6)), max_size=60))
def test_text_codes_give_each_rows_json_string_and_none_where_missing(values: list[str | None]) -> None:
    """Arrow's dictionary builder factorises a text column; each row's code names its JSON
    string, and a missing value ("" or None) names None."""
    import json

    from burstwatch.outputs.columns import _text_codes

    col = np.empty(len(values), dtype=object)
    col[:] = values
    coded = _text_codes(col)
    assert coded is not None
    texts, inverse = coded
    assert inverse.dtype == np.int64 and inverse.shape == (len(values),)
    for value, code in zip(values, inverse.tolist(), strict=True):
        text = texts[code]
        assert (text is None) if not value else json.loads(text) == value


def test_text_codes_refuse_a_column_that_is_not_text() -> None:
    from burstwatch.outputs.columns import _text_codes

    assert _text_codes(np.array([1, 2, 3], dtype=object)) is None


def test_buffers_hand_the_same_arrays_out_again() -> None:
    """A written array is filled again (its pages already the process's), never one still
    being written; at most ``KEEP`` arrays wait for reuse."""
    from burstwatch.outputs.jsonfill import Buffers

    buffers = Buffers()
    a = buffers.take(1000)
    b = buffers.take(500)
    assert a.shape == (1000,) and b.shape == (500,) and not np.shares_memory(a, b)
    buffers.give(a)
    again = buffers.take(900)  # fits in a's array
    assert again.shape == (900,) and np.shares_memory(again, a)
    assert not np.shares_memory(buffers.take(900), a)  # a's array is out again: a new one
    buffers.give(b"not an array of ours")  # ignored
    for _ in range(Buffers.KEEP + 3):
        buffers.give(np.empty(64, np.uint8)[:10])
    assert len(buffers._free) == Buffers.KEEP


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_file_of_many_batches_is_each_batch_written_in_order(demo_batches: list[FlowBatch],
                                                               fmt: str) -> None:
    """Batches of different sizes, written through reused arrays by the writing thread: the
    file is every batch's own text, in order (a reused array's old bytes never show)."""
    whole = FlowBatch.concat(demo_batches)
    sizes = [37, 5, 64, 1, 23, 64, 2]
    order = np.resize(np.arange(len(whole.rows)), sum(sizes))
    parts, at = [], 0
    for size in sizes:
        parts.append(whole.take(order[at:at + size]))
        at += size
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"many.{fmt}"
        assert write_records("flow", [flow_columns(p) for p in parts], str(path)) == sum(sizes)
        expected = b""
        for k, p in enumerate(parts):
            one = Path(tmp) / f"one{k}.{fmt}"
            write_records("flow", [flow_columns(p)], str(one))
            text = one.read_bytes()
            expected += text if fmt == "jsonl" or k == 0 else text.split(b"\r\n", 1)[1]
        assert path.read_bytes() == expected
        assert expected.count(b"\n") == sum(sizes) + (fmt == "csv")


def test_parquet_text_columns_have_null_where_missing() -> None:
    """A keyword column goes to Arrow as it is, with "" and None null, as the general way
    (``python_values``) has them."""
    import pyarrow as pa

    from burstwatch.outputs.writers import _arrow_column
    from burstwatch.schema import fields_of

    f = next(f for f in fields_of("flow") if f.name == "tls.client.server_name")
    col = np.array(["a.example", "", None, "b.example"], object)
    got = _arrow_column(pa, f, col, 4)
    assert got.type == pa.string() and got.to_pylist() == ["a.example", None, None, "b.example"]
    assert got.equals(pa.array(python_values(f, col), pa.string()))
