"""Record writers chosen by the output file's extension: .jsonl, .csv, .parquet."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from burstwatch.errors import BurstwatchError
from burstwatch.outputs.ecs import flatten


class OutputError(BurstwatchError):
    """The output cannot be written (unknown format, unwritable path)."""


def write_records(records: Iterable[dict[str, Any]], path: str, columns: list[str] | None = None) -> int:
    """Write records to ``path`` (``-`` = stdout as JSON lines). Returns the count written."""
    if path == "-" or path.endswith((".jsonl", ".ndjson", ".json")):
        return _write_jsonl(records, path)
    if path.endswith(".csv"):
        return _write_csv(records, path, columns)
    if path.endswith(".parquet"):
        return _write_parquet(records, path)
    raise OutputError(f"{path}: unknown output format (use .jsonl, .csv or .parquet)")


def _open(path: str) -> TextIO:
    if path == "-":
        return sys.stdout
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror})") from None


def _write_jsonl(records: Iterable[dict[str, Any]], path: str) -> int:
    out = _open(path)
    n = 0
    try:
        for rec in records:
            out.write(json.dumps(rec, separators=(",", ":")) + "\n")
            n += 1
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    return n


def _write_csv(records: Iterable[dict[str, Any]], path: str, columns: list[str] | None) -> int:
    out = _open(path)
    n = 0
    writer: csv.DictWriter[str] | None = None
    try:
        for rec in records:
            flat = flatten(rec)
            if writer is None:
                fields = columns or list(flat)
                writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
            writer.writerow(flat)
            n += 1
    finally:
        if out is not sys.stdout:
            out.close()
    return n


def _write_parquet(records: Iterable[dict[str, Any]], path: str) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OutputError(
            "Parquet output needs pyarrow: pip install 'burstwatch[parquet]'"
        ) from None
    rows = [flatten(r) for r in records]
    table = pa.Table.from_pylist(rows)
    try:
        pq.write_table(table, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc})") from None
    return len(rows)


def default_columns(sample: dict[str, Any]) -> list[str]:
    return list(flatten(sample))


__all__ = ["OutputError", "Path", "write_records"]
