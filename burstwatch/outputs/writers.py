"""Record writers chosen by the output file's extension: .jsonl, .csv, .parquet."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from burstwatch.errors import BurstwatchError
from burstwatch.outputs.ecs import flatten
from burstwatch.outputs.jsonline import json_line


class OutputError(BurstwatchError):
    """The output cannot be written (unknown format, unwritable path)."""


def write_records(records: Iterable[dict[str, Any]], path: str, columns: list[str] | None = None) -> int:
    """Write records to ``path`` (``-`` = stdout as JSON lines). Returns the count written."""
    if path == "-" or path.endswith((".jsonl", ".ndjson", ".json")):
        return _write_jsonl(records, path)
    if path.endswith(".csv"):
        return _write_csv(records, path, columns)
    if path.endswith(".parquet"):
        return _write_parquet(records, path, columns)
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


def _write_jsonl(records: Iterable[dict[str, Any]], path: str) -> int:
    n = 0
    with _sink(path) as out:
        for rec in records:
            out.write(json_line(rec) + "\n")
            n += 1
    return n


def _write_csv(records: Iterable[dict[str, Any]], path: str, columns: list[str] | None) -> int:
    n = 0
    writer: csv.DictWriter[str] | None = None
    with _sink(path) as out:
        for rec in records:
            flat = flatten(rec)
            if writer is None:
                fields = columns or list(flat)
                writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
            writer.writerow({k: _csv_cell(v) for k, v in flat.items()})
            n += 1
    return n


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


_INT_SUFFIXES = (".port", ".packets", ".bytes", ".duration", ".window_index", ".number")


def _arrow_type(pa: Any, column: str) -> Any:
    """Column types fixed up front, so every row group has the same schema."""
    from burstwatch.features import FEATURE_NAMES

    if column.startswith("burstwatch.") and column.split(".", 1)[1] in FEATURE_NAMES:
        return pa.float64()
    if column.endswith(_INT_SUFFIXES) or column == "burstwatch.entropy":
        return pa.float64() if column == "burstwatch.entropy" else pa.int64()
    if column.startswith("burstwatch.burst.") and column != "burstwatch.burst.rate":
        return pa.int64()
    if column == "burstwatch.burst.rate":
        return pa.float64()
    return pa.string()


def _write_parquet(
    records: Iterable[dict[str, Any]], path: str, columns: list[str] | None, chunk: int = 50_000
) -> int:
    """Flattened records in row groups of ``chunk`` rows (memory stays bounded)."""
    import pyarrow as pa  # imported here: only Parquet output pays for loading it
    import pyarrow.parquet as pq
    writer = None
    schema = None
    n = 0
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal writer, schema
        if not rows:
            return
        if schema is None:
            names = columns or list(rows[0])
            schema = pa.schema([(c, _arrow_type(pa, c)) for c in names])
        for r in rows:
            for c in schema.names:
                v = r.get(c)
                if v is not None and pa.types.is_string(schema.field(c).type):
                    r[c] = str(v)
        table = pa.Table.from_pylist(rows, schema=schema)
        if writer is None:
            writer = pq.ParquetWriter(path, schema)
        writer.write_table(table)
        rows.clear()

    try:
        for rec in records:
            rows.append(flatten(rec))
            n += 1
            if len(rows) >= chunk:
                flush()
        flush()
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc})") from None
    finally:
        if writer is not None:
            writer.close()
    return n


__all__ = ["OutputError", "write_records"]
