"""JSON lines assembled from encoded pieces by a compiled loop, not one Python string per row.

A batch's records are fixed text (keys, braces, commas: one template per pattern of present
fields) with values in between, and each column's values come from a small table of
distinct JSON texts. So the text of every distinct value is encoded once, all of them into
one byte buffer, and a compiled loop copies, row by row, the template's literal pieces and
the row's value texts into the output: the per-row work is two memcpy's per field, at C
speed, whatever the number of fields.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.jit import njit

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
TextsOrTable = list[str] | tuple[U8, I64, Any]


@njit(cache=True, nogil=True)
def _row_lengths(value_idx: I64, text_off: I64, pattern: I64, pat_fields: I64,
                 n_fields: I64, lit_len: I64) -> I64:
    """The byte length of every line, its newline included."""
    n = value_idx.shape[0]
    lengths = np.empty(n, np.int64)
    for i in range(n):
        p = pattern[i]
        total = lit_len[p] + 1
        for k in range(n_fields[p]):
            v = value_idx[i, pat_fields[p, k]]
            total += text_off[v + 1] - text_off[v]
        lengths[i] = total
    return lengths


@njit(cache=True, nogil=True)
def _fill(value_idx: I64, texts: U8, text_off: I64, pattern: I64, pat_fields: I64,
          n_fields: I64, lit: U8, lit_start: I64, lit_end: I64, line_off: I64,
          out: U8) -> None:
    """Write every line at ``line_off``: its pattern's literal piece 0, the value text of
    the pattern's field 0, literal piece 1, ..., the last literal piece, a newline. The byte
    positions are unsigned, so numba indexes with them as they are (a signed index is first
    checked for being negative, at every byte: the loop took 1.45 times as long)."""
    one = np.uint64(1)
    for i in range(value_idx.shape[0]):
        p = pattern[i]
        o = np.uint64(line_off[i])
        for k in range(n_fields[p] + 1):
            for a in range(np.uint64(lit_start[p, k]), np.uint64(lit_end[p, k])):
                out[o] = lit[a]  # short copies: a plain loop
                o += one
            if k == n_fields[p]:
                break
            v = value_idx[i, pat_fields[p, k]]
            for a in range(np.uint64(text_off[v]), np.uint64(text_off[v + 1])):
                out[o] = texts[a]
                o += one
        out[o] = 10  # "\n"


def _utf8_table(texts: list[str]) -> tuple[U8, I64]:
    """All ``texts`` in one UTF-8 buffer, and where each starts (and the last ends)."""
    joined = "".join(texts)
    if joined.isascii():
        lengths = np.fromiter(map(len, texts), np.int64, len(texts))
        data = joined.encode("ascii")
    else:
        encoded = [t.encode("utf-8") for t in texts]
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        data = b"".join(encoded)
    off = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(lengths, out=off[1:])
    return np.frombuffer(data, np.uint8), off


def _text_buffer(columns: Sequence[tuple[TextsOrTable, npt.NDArray[np.int64]]]) -> tuple[U8, I64]:
    """Every column's value texts in one buffer, in column order, and where each starts."""
    datas, offs, at = [], [], 0
    for texts, _ in columns:
        data, off = _utf8_table(texts) if isinstance(texts, list) else texts[:2]
        datas.append(data)
        offs.append(off[:-1] + at)
        at += int(off[-1])
    offs.append(np.array([at], np.int64))
    return (np.concatenate(datas) if datas else np.zeros(0, np.uint8)), np.concatenate(offs)


class Buffers:
    """Output byte arrays handed out and given back once written, so a writer of many
    batches fills the same few arrays again. A new array's pages are faulted in and zeroed
    by the kernel at first touch: on this project's test machine that was 2/3 of the fill's
    time (35 ms of a 4,096-record batch's 9 MB, against 9 ms in an array used before).

    Thread-safe: the writing thread gives arrays back while the filling thread takes."""

    KEEP = 4  # arrays kept for reuse at most (a writer has a few batches in flight)

    def __init__(self) -> None:
        self._free: list[U8] = []
        self._lock = threading.Lock()

    def take(self, n: int) -> U8:
        """An array of ``n`` bytes (its contents arbitrary): a view of a given-back array
        large enough, else a new one a little larger than asked (so a slightly longer batch
        next time still fits)."""
        with self._lock:
            for k, array in enumerate(self._free):
                if array.shape[0] >= n:
                    del self._free[k]
                    return array[:n]
        return np.empty(n + n // 8, np.uint8)[:n]

    def give(self, view: Any) -> None:
        """Give back an array ``take`` handed out (anything else is ignored)."""
        base = getattr(view, "base", None)
        if isinstance(base, np.ndarray) and base.dtype == np.uint8 and base.ndim == 1:
            with self._lock:
                self._free.append(base)
                if len(self._free) > self.KEEP:  # the smallest goes
                    self._free.remove(min(self._free, key=len))


def _new_array(n: int) -> U8:
    return np.empty(n, np.uint8)


def table_size(texts: TextsOrTable) -> int:
    """How many value texts a column has."""
    return len(texts) if isinstance(texts, list) else int(texts[1].shape[0]) - 1


def fill_lines(columns: Sequence[tuple[TextsOrTable, npt.NDArray[np.int64]]],
               templates: Sequence[tuple[list[str], list[int]]],
               pattern: npt.NDArray[np.int64],
               out_array: Callable[[int], U8] = _new_array) -> U8:
    """JSON lines, each ending in a newline, as UTF-8 in a byte array (from ``out_array``,
    given the byte count: ``Buffers.take`` to reuse arrays).

    ``columns``: per field, its value texts (a list of strings, or a byte buffer and the
    offsets of its texts, as ``numtext`` makes them) and each row's index among them (where
    a row's pattern leaves the field out, the index is not read). ``templates``: per
    pattern, its literal pieces and the fields between them, in order (one more piece than
    fields). ``pattern``: each row's pattern."""
    n = int(pattern.shape[0])
    if not n:
        return np.zeros(0, np.uint8)
    base = np.cumsum([0] + [table_size(t) for t, _ in columns[:-1]], dtype=np.int64)
    value_idx = np.zeros((n, max(len(columns), 1)), np.int64)
    for j, (_, inverse) in enumerate(columns):
        value_idx[:, j] = np.asarray(inverse, np.int64).ravel() + base[j]
    texts, text_off = _text_buffer(columns)
    width = max(len(fields) for _, fields in templates)
    pat_fields = np.zeros((len(templates), max(width, 1)), np.int64)
    n_fields = np.array([len(fields) for _, fields in templates], np.int64)
    pieces: list[str] = []
    where = np.zeros((len(templates), width + 1), np.int64)  # piece index per slot
    for p, (literals, fields) in enumerate(templates):
        pat_fields[p, : len(fields)] = fields
        where[p, : len(literals)] = np.arange(len(pieces), len(pieces) + len(literals))
        pieces += literals
    lit, piece_off = _utf8_table(pieces)
    lit_start, lit_end = piece_off[where], piece_off[where + 1]
    lit_len = np.array([piece_off[where[p, len(f)] + 1] - piece_off[where[p, 0]]
                        for p, (_, f) in enumerate(templates)], np.int64)
    pat = np.asarray(pattern, np.int64)
    lengths = _row_lengths(value_idx, text_off, pat, pat_fields, n_fields, lit_len)
    line_off = np.zeros(n, np.int64)
    np.cumsum(lengths[:-1], out=line_off[1:])
    out = out_array(int(lengths.sum()))
    _fill(value_idx, texts, text_off, pat, pat_fields, n_fields, lit, lit_start, lit_end,
          line_off, out)
    return out  # written as it is: a copy into bytes cost as much as half the fill
