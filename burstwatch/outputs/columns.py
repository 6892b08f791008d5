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
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.outputs.jsonline import json_line
from burstwatch.schema import Field, fields_of
from burstwatch.schema.fields import field_tree

Column = npt.NDArray[Any]


@dataclass(frozen=True)
class Coded:
    """A column given as its distinct values and each row's index among them. Addresses,
    names and constants repeat across a batch, so a builder that knows the distinct values
    gives them this way and every writer converts each distinct value once, not each row
    (the rows' values are ``values[index]``, what ``Columns.get`` returns)."""

    values: Column
    index: npt.NDArray[np.intp]
    # The JSON text of each distinct value, where the builder makes them more cheaply than
    # ``json_codes`` would (None: the general way).
    json: list[str] | None = None

    def expand(self) -> Column:
        return self.values[self.index]


def constant(value: Any, n: int) -> Coded:
    """The same value in every row (a list too)."""
    values = np.empty(1, object)
    values[0] = value
    return Coded(values, np.zeros(n, np.intp))


def choice(names: npt.ArrayLike, index: npt.ArrayLike) -> Coded:
    """One of a few names per row: ``names[index]``."""
    return Coded(np.asarray(names, object), np.asarray(index, np.intp))


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


# A str as JSON text, exactly as ``json.dumps`` writes it (ASCII, escaped), without its
# encoder's per-call set-up: the C function ``json.dumps`` itself ends in.
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _json_list(values: tuple[Any, ...]) -> str:
    """A list as ``json_line`` writes it: strings by ``_json_string``, anything else by
    ``json_line``."""
    return "[" + ",".join(_json_string(v) if type(v) is str else json_line(v)
                          for v in values) + "]"


def _number_text(v: float | int | None) -> str | None:
    if v is None:
        return None
    return repr(v) if isinstance(v, int) or math.isfinite(v) else "null"


def distinct(values: list[Any]) -> tuple[list[Any], npt.NDArray[np.int64]]:
    """The distinct values of ``values`` (hashable) in first-seen order, and each one's index."""
    index = {v: k for k, v in enumerate(dict.fromkeys(values))}
    return list(index), np.fromiter(map(index.__getitem__, values), np.int64, len(values))


def by_distinct(values: list[Any], encode: Any) -> list[str | None]:
    """``encode`` once per distinct value (None stays None), spread back to the rows."""
    uniq, inverse = distinct(values)
    codes = [None if v is None else encode(v) for v in uniq]
    return [codes[k] for k in inverse.tolist()]


def json_texts(f: Field, col: Column) -> list[str | None]:
    """Each value of a column as JSON text (None where missing), as ``json_line`` writes
    it: non-finite numbers null; each distinct value is encoded once."""
    texts, inverse = json_codes(f, col)
    return [texts[k] for k in inverse.tolist()]


def json_codes(f: Field, col: Column) -> tuple[list[str | None], npt.NDArray[np.int64]]:
    """A column as JSON texts of its distinct values (None: missing) and each row's index
    among them; ``json_texts`` spread out."""
    n = col.shape[0]
    if f.array or f.type in ("nested", "value"):
        values = python_values(f, col)
        if all(v is None or type(v) is list for v in values):
            try:  # lists of plain values (addresses, categories): once per distinct list
                keys, inverse = distinct([None if v is None else tuple(v) for v in values])
                return [None if k is None else _json_list(k) for k in keys], inverse
            except TypeError:  # a list holding objects
                pass
        return [None if v is None else json_line(v) for v in values], np.arange(n)
    if f.type in ("keyword", "ip") and col.dtype == object:
        coded = _text_codes(col)
        if coded is not None:
            return coded
    if f.type in ("double", "float", "long") and col.dtype.kind in "fiu":
        # numbers: formatted once per distinct value (np.unique keeps one NaN)
        numbers, at = np.unique(col, return_inverse=True)
        return _number_texts(f, numbers), at.ravel()
    values = python_values(f, col)
    if f.type in ("double", "float", "long"):
        return [_number_text(v) for v in values], np.arange(n)
    uniq, inverse = distinct(values)
    if f.type == "boolean":
        return [None if v is None else "true" if v else "false" for v in uniq], inverse
    return [None if v is None else json.dumps(v) for v in uniq], inverse


def _number_texts(f: Field, numbers: Column) -> list[str | None]:
    """``_number_text`` of ``python_values(f, numbers)``, with the Python work only where a
    value needs rounding: integers (and integral floats) are written by ``str`` in one map."""
    v = np.asarray(numbers, np.float64)
    if numbers.dtype.kind in "iu" and (f.type == "long" or not (np.abs(v) >= 2**53).any()):
        return list(map(str, numbers.tolist()))
    out = np.full(v.shape[0], None, object)
    finite = np.isfinite(v)
    if f.type == "long":  # truncated, as ``python_values`` gives longs
        at = np.flatnonzero(finite)
        out[at] = list(map(str, v[at].astype(np.int64).tolist()))
        out[np.flatnonzero(np.isinf(v))] = "null"
        return out.tolist()
    integral = finite & (v == np.trunc(v)) & (np.abs(v) < 2**53)
    at = np.flatnonzero(integral)
    out[at] = list(map(str, v[at].astype(np.int64).tolist()))
    at = np.flatnonzero(finite & ~integral)
    texts, decided = _six_decimal_texts(v[at])
    out[at[decided]] = texts
    at = at[~decided]
    rounded = [round(x, 6) for x in v[at].tolist()]  # as ``num`` rounds, then writes
    out[at] = [str(int(r)) if r.is_integer() and abs(r) < 2**53 else repr(r) for r in rounded]
    out[np.flatnonzero(np.isinf(v))] = "null"
    return out.tolist()


def _six_decimal_texts(v: npt.NDArray[np.float64]) -> tuple[list[str], npt.NDArray[np.bool_]]:
    """``_number_text(num(x))`` (round to six decimals, then the shortest text) for the
    values of ``v`` where numpy can decide it, and which those are; the rest are left to
    Python. Decided: 1e-4 <= |round(x, 6)| < 1e9, so the rounded value has at most 15
    significant digits and its shortest text is its six decimals with trailing zeros
    dropped (``repr`` switches to exponents outside that range); and x * 1e6 not within
    its rounding error of a half, where Python's correctly rounded ``round`` could differ
    from rounding the product."""
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: not decided here
        y = v * 1e6
        k = np.rint(y)
        frac = np.abs(y - np.trunc(y))
        decided = ((np.abs(k) >= 100) & (np.abs(k) < 1e15)
                   & (np.abs(frac - 0.5) > np.abs(y) * 1e-15 + 1e-9))
    if not decided.any():
        return [], decided
    k = k[decided].astype(np.int64)
    whole, part = np.divmod(np.abs(k), 1_000_000)
    sign = np.where(k < 0, "-", "")
    digits = np.char.rstrip(np.char.zfill(part.astype(str), 6), "0")
    dot = np.where(part != 0, ".", "")
    texts = np.char.add(np.char.add(sign, whole.astype(str)), np.char.add(dot, digits))
    return texts.tolist(), decided


def _text_codes(col: Column) -> tuple[list[str | None], npt.NDArray[np.int64]] | None:
    """A text column's distinct values as JSON strings, factorised by Arrow's dictionary
    builder (in C, not a Python call per row; nor pyarrow's compute module, 60 ms to import,
    whose dictionary_encode took eight times as long); "" is missing, as in
    ``python_values``. None when the column holds something other than text (the caller then
    takes the general way)."""
    import pyarrow as pa

    try:
        encoded = pa.array(col, type=pa.dictionary(pa.int32(), pa.string()), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    values = encoded.dictionary.to_pylist()
    texts: list[str | None] = [_json_string(v) if v else None for v in values] + [None]
    indices = encoded.indices
    n, at = len(indices), indices.offset
    validity, data = indices.buffers()
    inverse = np.frombuffer(data, np.int32, count=n, offset=4 * at).astype(np.int64)
    if indices.null_count:  # a missing value: the last text, None
        valid = np.unpackbits(np.frombuffer(validity, np.uint8), count=at + n,
                              bitorder="little")[at:].view(np.bool_)
        inverse[~valid] = len(values)
    return texts, inverse


def row_patterns(present: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.int64],
                                                          npt.NDArray[np.int64]]:
    """Group rows by which fields they have (``present``: rows x fields): each row's group,
    and the first row of each group. Only fields present in some rows and missing in others
    tell groups apart; up to 63 of those make one integer key per row (one 1-d sort),
    more are compared as packed bytes."""
    varying = np.flatnonzero(present.any(axis=0) & ~present.all(axis=0))
    if varying.shape[0] <= 63:
        bits = np.left_shift(np.int64(1), np.arange(varying.shape[0], dtype=np.int64))
        key = present[:, varying].astype(np.int64) @ bits
        _, first_row, pattern = np.unique(key, return_index=True, return_inverse=True)
    else:
        _, first_row, pattern = np.unique(np.packbits(present[:, varying], axis=1), axis=0,
                                          return_index=True, return_inverse=True)
    return pattern.ravel().astype(np.int64), first_row.astype(np.int64)


def _with_null(table: tuple[Any, Any, npt.NDArray[np.bool_]], rows: npt.NDArray[np.int64]
               ) -> tuple[tuple[Any, Any, npt.NDArray[np.bool_]], npt.NDArray[np.int64]]:
    """A compiled number table with one more text, ``null``, which its missing rows point
    to (a field every record carries is written as null where it has no value)."""
    data, off, missing = table
    null = np.frombuffer(b"null", np.uint8)
    table = (np.concatenate([data, null]), np.append(off, off[-1] + null.shape[0]),
             np.append(missing, False))
    return table, np.where(missing, off.shape[0] - 1, rows)


def _template_parts(fields: list[Field]) -> tuple[list[str], list[int]]:
    """A record of these fields as JSON text: its literal pieces (keys, braces, commas) and,
    between piece k and k + 1, the value of ``fields[order[k]]``."""
    position = {f.name: i for i, f in enumerate(fields)}
    literals = [""]
    order: list[int] = []

    def obj(node: dict[str, Any]) -> None:
        literals[-1] += "{"
        for k, (key, sub) in enumerate(node.items()):
            literals[-1] += ("," if k else "") + json.dumps(key) + ":"
            if isinstance(sub, Field):
                order.append(position[sub.name])
                literals.append("")
            else:
                obj(sub)
        literals[-1] += "}"

    obj(field_tree(fields))
    return literals, order


class Columns:
    """One batch of ``kind`` records as columns. ``build`` gives the column of a field name
    (or None when no record has it); columns are built the first time they are read, so a
    reader of a few fields (the rule frame) pays for those only."""

    def __init__(self, kind: str, n: int, build: Callable[[str], Column | Coded | None],
                 records: list[dict[str, Any]] | None = None) -> None:
        self.kind = kind
        self.n = n
        self.fields = fields_of(kind)
        self._build = build
        self._built: dict[str, Column | Coded | None] = {}
        self._cols: dict[str, Column | None] = {}
        self._records = records

    def __len__(self) -> int:
        return self.n

    def _made(self, name: str) -> Column | Coded | None:
        if name not in self._built:
            self._built[name] = self._build(name)
        return self._built[name]

    def get(self, name: str) -> Column | None:
        """The column of field ``name``, one value per row (None: no record has it)."""
        if name not in self._cols:
            made = self._made(name)
            self._cols[name] = made.expand() if isinstance(made, Coded) else made
        return self._cols[name]

    def coded(self, name: str) -> Coded | None:
        """The column as distinct values and indices, where its builder gave it so."""
        made = self._made(name)
        return made if isinstance(made, Coded) else None

    def json_codes(self, f: Field) -> tuple[list[str | None], npt.NDArray[np.int64]] | None:
        """``json_codes`` of field ``f``'s column (None: no record has it), each distinct
        value encoded once where the column is coded."""
        coded = self.coded(f.name)
        if coded is not None and coded.json is not None:
            return list(coded.json), np.asarray(coded.index, np.int64)
        if coded is not None:
            texts, inverse = json_codes(f, coded.values)
            return texts, inverse[coded.index]
        col = self.get(f.name)
        return None if col is None else json_codes(f, col)

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

    def json_text(self) -> str:
        """``json_bytes`` as text."""
        return self.json_bytes().decode("utf-8")

    def json_bytes(self) -> bytes:
        """``json_buffer`` as bytes."""
        return bytes(self.json_buffer())

    def json_buffer(self, out_array: Callable[[int], npt.NDArray[np.uint8]] | None = None
                    ) -> bytes | npt.NDArray[np.uint8]:
        """``records()`` as JSON lines in UTF-8 (as ``jsonline.json_line`` writes each record, byte
        for byte, each followed by a newline), built column by column: each distinct value
        of a column is encoded once; rows with the same fields present share one template,
        and a compiled loop copies the template's pieces and the rows' value texts into
        place (``outputs.jsonfill``), so nothing is built per row in Python. ``out_array``:
        where the bytes go (``jsonfill.Buffers.take``; default a new array)."""
        if self._records is not None:
            return "".join(json_line(r) + "\n" for r in self._records).encode("utf-8")
        n = self.n
        if not n:
            return b""
        from burstwatch.outputs.jsonfill import fill_lines  # compiled: loaded by writers only
        from burstwatch.outputs.numtext import number_table

        fields: list[Field] = []
        tables: list[tuple[Any, npt.NDArray[np.int64]]] = []
        present: list[npt.NDArray[np.bool_]] = []
        for f in self.fields:
            required = self.kind in f.required
            col = None if self.coded(f.name) is not None else self.get(f.name)
            table = None if col is None else number_table(f, col)
            if table is not None:
                fields.append(f)
                rows = np.arange(n, dtype=np.int64)
                if required and table[2].any():  # always written: null where missing
                    table, rows = _with_null(table, rows)
                    present.append(np.ones(n, np.bool_))
                else:
                    present.append(~table[2])
                tables.append((table, rows))
                continue
            coded = self.json_codes(f)
            if coded is None and not required:
                continue
            texts: list[str | None]
            if coded is None:
                texts, inverse = [None], np.zeros(n, np.int64)
            else:
                texts, inverse = coded
            if required:
                texts = ["null" if t is None else t for t in texts]
            fields.append(f)
            tables.append(([t or "" for t in texts], inverse))
            present.append(np.array([t is not None for t in texts], np.bool_)[inverse])
        pattern, first_row = row_patterns(np.stack(present, axis=1))
        templates = []
        for row in first_row.tolist():
            have = [j for j in range(len(fields)) if present[j][row]]
            literals, order = _template_parts([fields[j] for j in have])
            templates.append((literals, [have[k] for k in order]))
        if out_array is None:
            return fill_lines(tables, templates, pattern)
        return fill_lines(tables, templates, pattern, out_array)

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
