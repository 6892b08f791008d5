"""Record writers chosen by the output file's extension: .jsonl, .csv, .parquet.

All three write ``Columns`` batches of one record kind, and take their columns and types
from the schema (``burstwatch/schema/fields.py``): the CSV header and the Parquet columns
are every field of the kind, in declaration order, whether or not a record has a value, so
CSV and Parquet carry every field JSON lines carries. CSV and Parquet are written column by
column; lists and nested objects are JSON text in CSV (and nested objects in Parquet).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from burstwatch.errors import BurstwatchError
from burstwatch.outputs.columns import (
    Column,
    Columns,
    by_distinct,
    distinct,
    json_codes,
    json_texts,
    python_values,
)
from burstwatch.outputs.jsonline import json_line
from burstwatch.schema import Field, fields_of


class OutputError(BurstwatchError):
    """The output cannot be written (unknown format, unwritable path)."""


def write_records(kind: str, batches: Iterable[Columns], path: str) -> int:
    """Write the ``kind`` records of ``batches`` to ``path`` (``-`` = stdout as JSON lines).
    Returns the count written."""
    if path == "-" or path.endswith((".jsonl", ".ndjson", ".json")):
        return _write_jsonl(batches, path)
    if path.endswith(".csv"):
        return _write_csv(kind, batches, path)
    if path.endswith(".parquet"):
        return _write_parquet(kind, batches, path)
    raise OutputError(f"{path}: unknown output format (use .jsonl, .csv or .parquet)")


@contextmanager
def _sink(path: str) -> Iterator[TextIO]:
    """The output stream (standard output for ``-``), closed at the end; a write error (full
    disk, I/O error, closed pipe) is an OutputError naming the path."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        out = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with out:
            yield out
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _write_jsonl(batches: Iterable[Columns], path: str) -> int:
    n = 0
    with _sink(path) as out:
        # A file takes the bytes as they are, from a thread of its own; standard output keeps
        # its text stream (its errors, a closed pipe among them, are reported where that
        # stream is set up).
        raw = None if path == "-" else getattr(out, "buffer", None)
        if raw is None:
            for batch in batches:
                out.write(batch.json_text())
                n += len(batch)
            return n
        out.flush()  # (nothing is written through the text layer after this)
        from burstwatch.outputs.jsonfill import Buffers

        buffers = Buffers()
        with _write_behind(raw, buffers.give) as behind:
            for batch in batches:
                behind.write(batch.json_buffer(buffers.take))
                n += len(batch)
    return n


@contextmanager
def _write_behind(raw: Any, written: Callable[[Any], None]) -> Iterator[_WriteBehind]:
    """A ``_WriteBehind`` on ``raw``, closed at the end: what was handed over is written
    even when the caller fails (an interrupted run keeps it), and a write error is raised
    unless another exception is already on its way."""
    behind = _WriteBehind(raw, written)
    try:
        yield behind
    except BaseException:
        behind.close(quietly=True)
        raise
    behind.close()


class _WriteBehind:
    """Writes byte buffers to a file in a thread of its own, in order. The kernel's copy into
    the page cache, and any wait for writeback, took up to 0.9 s per 70 MB here, and the
    records still to be made waited for it; a write error is raised at the next ``write`` or
    at ``close`` as the exception it was (an OSError for a full disk). ``written`` is called
    with each buffer once the file has it (``jsonfill.Buffers.give``: the array is filled
    again)."""

    def __init__(self, raw: Any, written: Callable[[Any], None] | None = None) -> None:
        import queue
        import threading

        self._raw = raw
        self._written = written
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._failure: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="burstwatch-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from burstwatch import priority

        priority.behind()
        while (data := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._raw.write(data)
                    if self._written is not None:
                        self._written(data)
                except Exception as exc:  # an OSError (a full disk) or anything else: kept for
                    self._failure = exc  # the caller; the rest is drained, never left blocking

    def write(self, data: Any) -> None:
        self._raise()
        self._queue.put(data)

    def close(self, quietly: bool = False) -> None:
        """Wait until everything handed over is written; raise a write error unless
        ``quietly`` (another exception is on its way)."""
        self._queue.put(None)
        self._thread.join()
        if not quietly:
            self._raise()

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure


def _json_text(value: Any) -> str | None:
    return None if value is None else json_line(value)


def cell_values(f: Field, col: Column | None, n: int) -> list[Any]:
    """The CSV cells of one column as Python values (``csv.writer`` formats them): lists
    and nested objects as JSON text, missing empty."""
    if col is None:
        return [None] * n
    if f.array or f.type in ("nested", "value"):
        return json_texts(f, col)
    if f.type in ("keyword", "ip"):
        return by_distinct(python_values(f, col), _csv_cell)
    if f.type in ("double", "float", "long") and col.dtype.kind in "fiu":
        uniq, inverse = np.unique(col, return_inverse=True)  # each distinct number once
        cells = np.empty(uniq.shape[0], object)
        cells[:] = [_finite(v) for v in python_values(f, uniq)]
        return cells[inverse.ravel()].tolist()
    values = python_values(f, col)
    return [_finite(v) for v in values] if f.type in ("double", "float") else values


def _finite(v: Any) -> Any:
    """As in JSON lines: no NaN or Infinity in a cell, empty instead."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def csv_text(value: Any) -> str:
    """One cell's text exactly as ``csv.writer`` (the excel dialect) writes it: None empty,
    floats by ``repr``, the rest by ``str``; quoted, with its quotes doubled, where it holds
    a comma, a quote or a line break."""
    if value is None:
        return ""
    text = repr(value) if isinstance(value, float) else str(value)
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_codes(f: Field, col: Column) -> tuple[list[str], npt.NDArray[np.int64]]:
    """A column's CSV cells as the texts of its distinct values and each row's index among
    them, as ``cell_values`` and ``csv.writer`` would write them."""
    n = col.shape[0]
    if f.array or f.type in ("nested", "value") or (
            f.type in ("double", "float", "long") and col.dtype.kind in "fiu"):
        texts, inverse = json_codes(f, col)  # JSON text of lists; numbers, null missing
        plain = not (f.array or f.type in ("nested", "value"))
        return [("" if t == "null" else t) if plain and t is not None else
                csv_text(t) for t in texts], inverse
    if f.type in ("keyword", "ip"):
        uniq, inverse = distinct(python_values(f, col))
        return [csv_text(None if v is None else _csv_cell(v)) for v in uniq], inverse
    values = cell_values(f, col, n)
    try:
        uniq, inverse = distinct(values)
    except TypeError:  # an unhashable cell: each row on its own
        return [csv_text(v) for v in values], np.arange(n, dtype=np.int64)
    return [csv_text(v) for v in uniq], inverse


def _write_csv(kind: str, batches: Iterable[Columns], path: str) -> int:
    """Every batch's cells filled in by ``_csv_lines``, each distinct value of a column
    formatted once; a file is written from a thread of its own, as JSON lines are."""
    fields = fields_of(kind)
    template = ([""] + [","] * (len(fields) - 1) + ["\r"], list(range(len(fields))))
    n = 0
    with _sink(path) as out:
        out.write(",".join(csv_text(f.name) for f in fields) + "\r\n")
        raw = None if path == "-" else getattr(out, "buffer", None)
        if raw is None:
            for batch in batches:
                if batch.n:
                    out.write(_csv_lines(batch, fields, template).tobytes().decode("utf-8"))
                    n += batch.n
            return n
        out.flush()  # (nothing is written through the text layer after this)
        from burstwatch.outputs.jsonfill import Buffers

        buffers = Buffers()
        with _write_behind(raw, buffers.give) as behind:
            for batch in batches:
                if batch.n:
                    behind.write(_csv_lines(batch, fields, template, buffers.take))
                    n += batch.n
    return n


def _csv_lines(batch: Columns, fields: Sequence[Field], template: tuple[list[str], list[int]],
               out_array: Callable[[int], npt.NDArray[np.uint8]] | None = None
               ) -> npt.NDArray[np.uint8]:
    """A batch's CSV lines (CRLF each) in UTF-8: the cells filled into one template (all
    fields, comma-separated) by the compiled loop JSON lines use."""
    from burstwatch.outputs.jsonfill import fill_lines  # compiled: loaded by writers only
    from burstwatch.outputs.numtext import number_table

    tables: list[tuple[Any, npt.NDArray[np.int64]]] = []
    for f in fields:
        coded = batch.coded(f.name)
        col = batch.get(f.name) if coded is None else coded.values
        if col is None:
            tables.append(([""], np.zeros(batch.n, np.int64)))
            continue
        table = None if coded is not None else number_table(f, col, csv=True)
        if table is not None:
            tables.append((table, np.arange(batch.n, dtype=np.int64)))
            continue
        if coded is not None and coded.json is not None and f.array:  # lists: as JSON text
            tables.append(([csv_text(t) for t in coded.json], np.asarray(coded.index, np.int64)))
            continue
        texts, inverse = csv_codes(f, col)
        tables.append((texts, inverse if coded is None else inverse[coded.index]))
    pattern = np.zeros(batch.n, np.int64)
    if out_array is None:
        return fill_lines(tables, [template], pattern)
    return fill_lines(tables, [template], pattern, out_array)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab,
    CR first) gets a leading ``'``, as OWASP advises; numbers, also written as text, stay."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def arrow_type(pa: Any, f: Field) -> Any:
    """A field's Parquet type: timestamps (ns, UTC), int64, float64, bool, strings, lists of
    strings; nested objects as JSON text."""
    if f.type == "nested" or f.type == "value":
        return pa.string()
    scalar = {"date": pa.timestamp("ns", tz="UTC"), "long": pa.int64(), "double": pa.float64(),
              "float": pa.float64(), "boolean": pa.bool_()}.get(f.type, pa.string())
    return pa.list_(scalar) if f.array else scalar


def arrow_schema(kind: str) -> Any:
    import pyarrow as pa

    return pa.schema([(f.name, arrow_type(pa, f)) for f in fields_of(kind)])


def _arrow_column(pa: Any, f: Field, col: Column | None, n: int) -> Any:
    typ = arrow_type(pa, f)
    if col is None:
        return pa.nulls(n, typ)
    if f.type == "nested" or f.type == "value":
        return pa.array([_json_text(v) for v in col.tolist()], typ)
    if not f.array and f.type in ("date", "long", "double", "float"):
        arr = np.asarray(col)
        if arr.dtype.kind == "f":
            missing = np.isnan(arr)
            if f.type in ("date", "long"):
                return pa.array(np.where(missing, 0, arr).astype(np.int64), typ, mask=missing)
            return pa.array(arr, typ, mask=missing)
        return pa.array(arr.astype(np.int64) if f.type != "double" else arr, typ)
    if f.type in ("keyword", "ip") and not f.array and col.dtype == object:
        try:  # text as it is, "" missing (as ``python_values`` has it), converted by Arrow
            return pa.array(col, typ, from_pandas=True, mask=col == "")
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: the general way
            pass
    return pa.array(python_values(f, col) if f.type not in ("date",) else col.tolist(), typ)


def table(batch: Columns) -> Any:
    """One batch as an Arrow table with the kind's schema."""
    import pyarrow as pa

    arrays = []
    for f in fields_of(batch.kind):
        coded = batch.coded(f.name)
        if coded is None:
            arrays.append(_arrow_column(pa, f, batch.get(f.name), batch.n))
        else:  # each distinct value converted once, then taken per row by Arrow
            distinct_values = _arrow_column(pa, f, coded.values, coded.values.shape[0])
            arrays.append(distinct_values.take(pa.array(coded.index)))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(batch.kind))


def _write_parquet(kind: str, batches: Iterable[Columns], path: str) -> int:
    """Each batch as a row group (memory stays bounded)."""
    import pyarrow.parquet as pq  # imported here: only Parquet output pays for loading it

    n = 0
    try:
        with pq.ParquetWriter(path, arrow_schema(kind)) as writer:
            for batch in batches:
                if batch.n:
                    writer.write_table(table(batch))
                    n += batch.n
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc})") from None
    return n


__all__ = ["OutputError", "arrow_schema", "table", "write_records"]
