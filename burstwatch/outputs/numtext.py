"""Numbers and timestamps written as text by compiled loops, a column at a time.

Numbers and times are mostly distinct per record (rates, durations, timestamps), so
formatting them once per distinct value still made a Python string per row. Here a column
becomes one byte buffer and the offsets of its values, with the text ``columns.json_codes``
gives each value: integers as digits; doubles rounded to six decimals, trailing zeros
dropped, exactly where numpy can decide that (``columns._six_decimal_texts``'s rule);
timestamps as RFC 3339 UTC with nanoseconds (int64 nanoseconds span the years 1677-2262,
always four digits). A value outside those rules (huge, tiny, a half
at the sixth decimal, the int64 minimum) is formatted by the Python functions the records
are defined by, so every text is theirs, byte for byte.
"""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt

from burstwatch.jit import njit
from burstwatch.schema import Field

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
Table = tuple[U8, I64, npt.NDArray[np.bool_]]
"""Text k is ``data[off[k]:off[k + 1]]``; ``missing[k]`` where the value is absent."""

WRITTEN, MISSING, NULL, PYTHON = 0, 1, 2, 3
_INT64_MIN = np.iinfo(np.int64).min


@njit(cache=True, nogil=True)
def _digits(v: int) -> int:
    """Characters of ``v`` in decimal, its sign included (v > int64 min)."""
    n = 1
    if v < 0:
        n += 1
        v = -v
    while v >= 10:
        v //= 10
        n += 1
    return n


@njit(cache=True, nogil=True)
def _put_digits(out: U8, o: int, v: int, width: int) -> None:
    """``v`` (>= 0) in ``width`` decimal digits at ``out[o:]``, zero-padded on the left."""
    for k in range(width - 1, -1, -1):
        out[o + k] = 48 + v % 10
        v //= 10


@njit(cache=True, nogil=True)
def _put_int(out: U8, o: int, v: int) -> int:
    """``v`` in decimal at ``out[o:]``; returns the end."""
    n = _digits(v)
    if v < 0:
        out[o] = 45  # "-"
        _put_digits(out, o + 1, -v, n - 1)
    else:
        _put_digits(out, o, v, n)
    return o + n


@njit(cache=True, nogil=True)
def _plan_longs(v: I64, status: npt.NDArray[np.int8], length: I64) -> None:
    for i in range(v.shape[0]):
        if v[i] == _INT64_MIN:
            status[i] = PYTHON
        else:
            length[i] = _digits(v[i])


@njit(cache=True, nogil=True)
def _write_longs(v: I64, status: npt.NDArray[np.int8], off: I64, out: U8) -> None:
    for i in range(v.shape[0]):
        if status[i] == WRITTEN:
            _put_int(out, off[i], v[i])


@njit(cache=True, nogil=True)
def _plan_doubles(v: npt.NDArray[np.float64], truncate: bool, null_len: int,
                  status: npt.NDArray[np.int8], length: I64, whole: I64,
                  part: I64) -> None:
    """Decide each value's text: integral (or, with ``truncate``, truncated) values as
    integers; others rounded to six decimals where |k| = |rint(x * 1e6)| is in [100, 1e15)
    and x * 1e6 is not within its rounding error of a half (else Python decides)."""
    for i in range(v.shape[0]):
        x = v[i]
        if np.isnan(x):
            status[i] = MISSING
        elif np.isinf(x):
            status[i] = NULL
            length[i] = null_len
        elif truncate or (x == np.trunc(x) and abs(x) < 2.0**53):
            if abs(x) >= 2.0**62:
                status[i] = PYTHON
            else:
                whole[i] = np.int64(x)
                part[i] = -1
                length[i] = _digits(whole[i])
        else:
            y = x * 1e6
            k = np.rint(y)
            frac = abs(y - np.trunc(y))
            if abs(k) >= 100 and abs(k) < 1e15 and abs(frac - 0.5) > abs(y) * 1e-15 + 1e-9:
                kk = int(k)
                a = -kk if kk < 0 else kk
                w, p = a // 1_000_000, a % 1_000_000
                whole[i] = -w if kk < 0 else w
                part[i] = p
                n = _digits(w) + (1 if kk < 0 else 0)
                if p:
                    width = 6
                    while p % 10 == 0:
                        p //= 10
                        width -= 1
                    n += 1 + width
                length[i] = n
            else:
                status[i] = PYTHON


@njit(cache=True, nogil=True)
def _write_doubles(v: npt.NDArray[np.float64], status: npt.NDArray[np.int8], whole: I64,
                   part: I64, null: U8, off: I64, out: U8) -> None:
    for i in range(v.shape[0]):
        o = off[i]
        if status[i] == NULL:
            for k in range(null.shape[0]):
                out[o + k] = null[k]
        elif status[i] == WRITTEN:
            if part[i] < 0:
                _put_int(out, o, whole[i])
                continue
            if v[i] < 0:
                out[o] = 45
                o += 1
            w = -whole[i] if whole[i] < 0 else whole[i]
            o = _put_int(out, o, w)
            p = part[i]
            if p:
                width = 6
                while p % 10 == 0:
                    p //= 10
                    width -= 1
                out[o] = 46  # "."
                _put_digits(out, o + 1, p, width)


@njit(cache=True, nogil=True)
def _write_times(ns: I64, quote: bool, status: npt.NDArray[np.int8], off: I64,
                 out: U8) -> None:
    """``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (in quotes with ``quote``) of each time (the
    proleptic Gregorian calendar, days to civil dates as in H. Hinnant's algorithm)."""
    q = 1 if quote else 0
    for i in range(ns.shape[0]):
        if status[i] != WRITTEN:
            continue
        t = ns[i]
        secs = t // 1_000_000_000
        frac = t - secs * 1_000_000_000
        days = secs // 86400
        sod = secs - days * 86400
        z = days + 719468
        era = (z if z >= 0 else z - 146096) // 146097
        doe = z - era * 146097
        yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        day = doy - (153 * mp + 2) // 5 + 1
        month = mp + 3 if mp < 10 else mp - 9
        year = yoe + era * 400 + (1 if month <= 2 else 0)
        o = off[i]
        if quote:
            out[o] = 34
            out[o + 31] = 34
        o += q
        _put_digits(out, o, year, 4)
        out[o + 4] = 45
        _put_digits(out, o + 5, month, 2)
        out[o + 7] = 45
        _put_digits(out, o + 8, day, 2)
        out[o + 10] = 84  # "T"
        _put_digits(out, o + 11, sod // 3600, 2)
        out[o + 13] = 58
        _put_digits(out, o + 14, (sod // 60) % 60, 2)
        out[o + 16] = 58
        _put_digits(out, o + 17, sod % 60, 2)
        out[o + 19] = 46
        _put_digits(out, o + 20, frac, 9)
        out[o + 29] = 90  # "Z"


def number_table(f: Field, col: np.ndarray, csv: bool = False) -> Table | None:
    """The column's values as text, as ``columns.json_codes`` writes them (``csv``: as
    ``writers.csv_codes`` does: no quotes around times, an empty cell for null); None where
    this column is not numbers or times of a scalar field (the caller takes the general way).
    """
    from burstwatch.outputs.columns import _number_texts, iso_list

    if f.array or col.ndim != 1:
        return None
    n = col.shape[0]
    status = np.zeros(n, np.int8)
    length = np.zeros(n, np.int64)
    if col.dtype.kind == "u" and col.shape[0] and col.max() > np.iinfo(np.int64).max:
        return None
    if f.type == "date" and col.dtype.kind in "iu":
        ns = col.astype(np.int64, copy=False)
        status[ns == _INT64_MIN] = PYTHON  # NaT
        length[:] = 30 if csv else 32

        def python(values: np.ndarray) -> list[str | None]:
            texts: list[str | None] = list(iso_list(values))
            return texts if csv else [json.dumps(t) for t in texts]

        def write(off: I64, out: U8) -> None:
            _write_times(ns, not csv, status, off, out)
    elif f.type in ("long", "double", "float") and col.dtype.kind in "iu":
        if f.type != "long" and (np.abs(col.astype(np.float64)) >= 2**53).any():
            return None
        ints = col.astype(np.int64, copy=False)
        _plan_longs(ints, status, length)

        def python(values: np.ndarray) -> list[str | None]:
            return _number_texts(f, values)

        def write(off: I64, out: U8) -> None:
            _write_longs(ints, status, off, out)
    elif f.type in ("long", "double", "float") and col.dtype.kind == "f":
        v = col.astype(np.float64, copy=False)
        whole, part = np.zeros(n, np.int64), np.zeros(n, np.int64)
        null = np.frombuffer(b"" if csv else b"null", np.uint8)
        _plan_doubles(v, f.type == "long", null.shape[0], status, length, whole, part)

        def python(values: np.ndarray) -> list[str | None]:
            return _number_texts(f, values)

        def write(off: I64, out: U8) -> None:
            _write_doubles(v, status, whole, part, null, off, out)
    else:
        return None
    slow = np.flatnonzero(status == PYTHON)
    by_python = python(col[slow]) if slow.shape[0] else []
    slow_texts = [b"" if t is None or (csv and t == "null") else t.encode("utf-8")
                  for t in by_python]
    missing = status == MISSING
    if slow.shape[0]:
        missing[slow] = [t is None for t in by_python]
        length[slow] = [len(t) for t in slow_texts]
    off = np.zeros(n + 1, np.int64)
    np.cumsum(length, out=off[1:])
    out = np.empty(int(off[-1]), np.uint8)
    write(off, out)
    for i, text in zip(slow.tolist(), slow_texts, strict=True):
        out[off[i]:off[i + 1]] = np.frombuffer(text, np.uint8)
    return out, off, missing
