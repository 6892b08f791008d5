"""Records as columns named by their schema field, and the conversions every writer shares.

A ``Columns`` is one batch of records of one kind (flow, burst, conversation, alert): for
each field of the kind a numpy column, or nothing when no record of the batch has it. The
conventions: ``date`` int64 nanoseconds; ``long``/``double``/``float`` numbers, NaN where
missing; ``keyword``/``ip``/``boolean`` objects, None where missing; arrays and nested lists
objects holding lists. JSON lines, CSV and Parquet are all written from these columns
(``records()`` nests them into one dictionary per row where a caller wants that), so every
writer carries the same fields under the same names, by construction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.outputs.jsonline import json_line
from burstwatch.schema import Field, fields_of
from burstwatch.schema.fields import field_tree

Column = npt.NDArray[Any]


def iso_list(ns: np.ndarray) -> list[str]:
    """RFC 3339 UTC text with nanoseconds of every element, formatted by numpy in one pass."""
    text = np.datetime_as_string(np.asarray(ns, np.int64).astype("datetime64[ns]"), unit="ns")
    return [t + "Z" for t in text.tolist()]


def num(v: float) -> float | int | None:
    """A number as records write it: NaN as None, else rounded to six decimals, integral
    values as ints (so writing a written value again gives it unchanged)."""
    if math.isnan(v):
        return None
    if float(v).is_integer() and abs(v) < 2**53:
        return int(v)
    r = round(float(v), 6)
    return int(r) if r.is_integer() and abs(r) < 2**53 else r


def num_list(v: np.ndarray) -> list[float | int | None]:
    """``num`` of every element: integral values as ints, NaN as None, the rest rounded to
    six decimals by Python's ``round`` (correctly rounded, so the text is the same)."""
    v = np.asarray(v, np.float64)
    out = np.full(v.shape[0], None, object)
    integral = (v == np.trunc(v)) & (np.abs(v) < 2**53)
    at = np.flatnonzero(integral)
    out[at] = v[at].astype(np.int64).tolist()
    at = np.flatnonzero(~integral & ~np.isnan(v))
    rounded = (round(x, 6) for x in v[at].tolist())
    out[at] = [int(r) if r.is_integer() and abs(r) < 2**53 else r for r in rounded]
    return out.tolist()


def _longs(col: Column) -> list[int | None]:
    if col.dtype.kind in "iu":
        return col.tolist()
    v = np.asarray(col, np.float64)
    out = np.full(v.shape[0], None, object)
    at = np.flatnonzero(~np.isnan(v))
    out[at] = v[at].astype(np.int64).tolist()
    return out.tolist()


def _texts(col: Column) -> list[Any]:
    return [None if v is None or v == "" else v for v in col.tolist()]


def python_values(f: Field, col: Column) -> list[Any]:
    """A column as the Python values a JSON record holds (None where missing)."""
    if f.type == "date" and not f.array:
        return iso_list(col) if col.dtype.kind in "iu" else _texts(col)
    if f.array or f.type in ("nested", "value"):
        return col.tolist()
    if f.type == "long":
        return _longs(col)
    if f.type in ("double", "float"):
        return num_list(col)
    return _texts(col)


def _number_text(v: float | int | None) -> str | None:
    if v is None:
        return None
    return repr(v) if isinstance(v, int) or math.isfinite(v) else "null"


def by_distinct(values: list[Any], encode: Any) -> list[str | None]:
    """``encode`` once per distinct value (None stays None), spread back to the rows."""
    codes = {v: None if v is None else encode(v) for v in dict.fromkeys(values)}
    return list(map(codes.__getitem__, values))


def json_texts(f: Field, col: Column) -> list[str | None]:
    """Each value of a column as JSON text (None where missing), as ``json_line`` writes
    it: non-finite numbers null; each distinct value is encoded once."""
    if f.array or f.type in ("nested", "value"):
        values = python_values(f, col)
        if all(v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v))
               for v in values):
            keys = [None if v is None else tuple(v) for v in values]
            return by_distinct(keys, lambda k: json_line(list(k)))
        return [None if v is None else json_line(v) for v in values]
    if f.type in ("double", "float", "long") and col.dtype.kind in "fiu":
        # numbers: formatted once per distinct value (np.unique keeps one NaN)
        uniq, inverse = np.unique(col, return_inverse=True)
        texts = np.empty(uniq.shape[0], object)
        texts[:] = [_number_text(v) for v in python_values(f, uniq)]
        return texts[inverse.ravel()].tolist()
    values = python_values(f, col)
    if f.type in ("double", "float", "long"):
        return [_number_text(v) for v in values]
    if f.type == "boolean":
        return [None if v is None else "true" if v else "false" for v in values]
    return by_distinct(values, json.dumps)


def _template(fields: list[Field]) -> str:
    """A record of these fields as JSON text with a ``%s`` for each value, in order."""
    def obj(node: dict[str, Any]) -> str:
        members = (json.dumps(key).replace("%", "%%") + ":"
                   + ("%s" if isinstance(sub, Field) else obj(sub)) for key, sub in node.items())
        return "{" + ",".join(members) + "}"

    return obj(field_tree(fields))


class Columns:
    """One batch of ``kind`` records as columns. ``build`` gives the column of a field name
    (or None when no record has it); columns are built the first time they are read, so a
    reader of a few fields (the rule frame) pays for those only."""

    def __init__(self, kind: str, n: int, build: Callable[[str], Column | None],
                 records: list[dict[str, Any]] | None = None) -> None:
        self.kind = kind
        self.n = n
        self.fields = fields_of(kind)
        self._build = build
        self._cols: dict[str, Column | None] = {}
        self._records = records

    def __len__(self) -> int:
        return self.n

    def get(self, name: str) -> Column | None:
        if name not in self._cols:
            self._cols[name] = self._build(name)
        return self._cols[name]

    def records(self) -> Iterator[dict[str, Any]]:
        """One nested record per row, keys in declaration order; a missing value is left
        out, except where the field is always present (then null)."""
        if self._records is not None:
            yield from self._records
            return
        if not self.n:
            return
        plan = []
        for f in self.fields:
            col = self.get(f.name)
            if col is None:
                continue
            keep = self.kind in f.required
            plan.append((*_split(f.name), python_values(f, col), keep))
        for i in range(self.n):
            rec: dict[str, Any] = {}
            for parents, leaf, values, keep in plan:
                v = values[i]
                if v is None and not keep:
                    continue
                d = rec
                for p in parents:
                    d = d.get(p) or d.setdefault(p, {})
                d[leaf] = v
            yield rec

    def json_lines(self) -> list[str]:
        """``records()`` as JSON text (as ``jsonline.json_line`` writes each record, byte
        for byte), built column by column: each value is encoded once per column; rows that
        have the same fields present share one template, filled with ``%`` per row, so no
        dictionary is built per row."""
        if self._records is not None:
            return [json_line(r) for r in self._records]
        n = self.n
        if not n:
            return []
        fields, texts = [], []
        for f in self.fields:
            col = self.get(f.name)
            if col is None and self.kind not in f.required:
                continue
            t = np.empty(n, object)
            t[:] = ["null"] * n if col is None else json_texts(f, col)
            if self.kind in f.required:
                t[~t.astype(bool)] = "null"  # JSON texts are never empty: only None is false
            fields.append(f)
            texts.append(t)
        present = np.stack([t.astype(bool) for t in texts], axis=1)
        patterns, inverse = np.unique(np.packbits(present, axis=1), axis=0, return_inverse=True)
        out = np.empty(n, object)
        for k in range(patterns.shape[0]):
            rows = np.flatnonzero(inverse.ravel() == k)
            have = [j for j in range(len(fields)) if present[rows[0], j]]
            template = _template([fields[j] for j in have])
            out[rows] = [template % values for values in zip(*(texts[j][rows] for j in have), strict=True)]
        return out.tolist()

    @staticmethod
    def from_records(kind: str, records: list[dict[str, Any]]) -> Columns:
        """Columns of records built as dicts (cases); JSON lines write the dicts as they are."""
        fields = {f.name: f for f in fields_of(kind)}

        def build(name: str) -> Column | None:
            f = fields[name]
            values = [_dig(r, f.path) for r in records]
            if all(v is None for v in values):
                return None
            if f.type == "date" and not f.array:
                return _parse_dates(values)
            if f.type in ("long", "double", "float") and not f.array:
                return np.array([np.nan if v is None else v for v in values], np.float64)
            col = np.empty(len(values), object)
            col[:] = values
            return col

        return Columns(kind, len(records), build, records)


def _split(dotted: str) -> tuple[tuple[str, ...], str]:
    *parents, leaf = dotted.split(".")
    return tuple(parents), leaf


def _dig(rec: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = rec
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _parse_dates(values: list[Any]) -> Column:
    text = [str(v).rstrip("Z") if v is not None else "NaT" for v in values]
    return np.array(text, "datetime64[ns]").astype(np.int64)


def strings(col: npt.ArrayLike | None, n: int) -> npt.NDArray[np.object_]:
    """A text column with empty values as None (a missing value)."""
    if col is None:
        return np.full(n, None, object)
    out = np.array(col, dtype=object, copy=True)
    out[out == ""] = None  # (None stays None)
    return out
