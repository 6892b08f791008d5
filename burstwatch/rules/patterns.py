"""Rule patterns matched in time linear in the text.

A rule's ``wildcard`` or ``regex`` runs against values an attacker chooses (a server name in
a ClientHello), so a backtracking engine would let one packet stall detection for minutes
(``(a+)+$``, or ``*a*a*a*b`` translated to ``.*a.*a.*a.*b``). Wildcards are matched without
any regex (``Glob``); regexes go to RE2 (google-re2), which guarantees time linear in the
text and bounded memory. RE2 has no backreferences or lookaround, and lint says so where the
pattern is written.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

import numpy as np
import numpy.typing as npt
import re2

from burstwatch.errors import BurstwatchError

Text = npt.NDArray[np.str_]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

_MAX_MEM = 8 << 20  # RE2's default program budget; a pattern needing more is refused


class PatternError(BurstwatchError):
    """A regex that RE2 cannot compile; the message says why and what to write instead."""


class Matcher(Protocol):
    def search(self, text: bytes) -> object: ...


def _options() -> re2.Options:
    opts = re2.Options()
    opts.log_errors = False  # errors become PatternError, not lines on stderr
    opts.max_mem = _MAX_MEM
    return opts


# RE2's message prefix -> what a rule writer needs to know.
_UNSUPPORTED = (
    (re.compile(r"invalid escape sequence: \\[1-9]|invalid perl operator: \(\?P="),
     "backreferences are not supported"),
    (re.compile(r"invalid perl operator: \(\?<?[=!]"), "lookahead and lookbehind are not supported"),
    (re.compile(r"invalid perl operator: \(\?>"), "atomic groups are not supported"),
)


def _why(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    for start, reason in _UNSUPPORTED:
        if start.match(text):
            return (f"{reason}: rules use a regex engine whose time is linear in the text "
                    "(RE2), so a hostile value cannot stall matching")
    return text


def regex_mask(patterns: tuple[str, ...], values: Text) -> Mask:
    """Which of ``values`` any of the regexes matches anywhere (RE2 ``search``). The values
    are handed over as UTF-8 bytes, once (lone surrogates replaced): RE2 works on bytes."""
    # One pass per value: the patterns as one alternation (each in its own group, so inline
    # flags stay its own), which RE2 matches in the same linear time.
    try:
        each = [compile_regex("|".join(f"(?:{p})" for p in patterns))]
    except PatternError:  # together past the memory budget: one at a time
        each = [compile_regex(p) for p in patterns]
    raw = [v.encode("utf-8", "replace") for v in values.tolist()]
    return np.array([any(r.search(b) for r in each) for b in raw], dtype=bool)


@lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Matcher:
    """A rule regex (``search`` semantics, case-sensitive unless ``(?i)``), over UTF-8 bytes."""
    try:
        return re2.compile(pattern.encode("utf-8", "replace"), _options())
    except re2.error as exc:
        raise PatternError(_why(exc)) from None


class _Piece:
    """A run of a wildcard between stars: literals and ``?`` (one character), fixed length."""

    def __init__(self, text: str) -> None:
        self.size = len(text)
        self.runs = [(m.start(), m.group()) for m in re.finditer(r"[^?]+", text)]

    def fits(self, t: Text, at: Ints) -> Mask:
        """Rows of ``t`` where the piece fits at ``at`` (``at`` >= 0)."""
        ok = np.ones(t.shape, bool)
        for k, run in self.runs:
            ok &= np.char.startswith(t, run, at + k)
        return ok

    def find(self, t: Text, pos: Ints, end: Ints) -> Ints:
        """Per row, the leftmost place >= pos where the piece fits and ends by ``end``; -1
        where there is none."""
        if not self.runs:  # only '?'
            return np.where(pos + self.size <= end, pos, -1)
        k0, run0 = self.runs[0]
        found = np.full(t.shape, -1, np.int64)
        start = pos + k0
        todo = np.flatnonzero(start <= end)
        while todo.size:  # each round moves every undecided row past one false start
            at = np.char.find(t[todo], run0, start[todo], end[todo]).astype(np.int64)
            hit = (at >= 0) & (at - k0 + self.size <= end[todo])
            fits = np.zeros(todo.shape, bool)
            fits[hit] = self.fits(t[todo][hit], at[hit] - k0)
            found[todo[fits]] = at[fits] - k0
            again = hit & ~fits
            start[todo[again]] = at[again] + 1
            todo = todo[again]
        return found


class Glob:
    """A wildcard matched without any regex: ``*`` any run, ``?`` one character, the rest
    literal, any case, over the whole value. The first and last pieces are anchored and each
    piece between is taken at its leftmost place after the one before (always right, as
    pieces have a fixed length), so time is at most text length times pattern length, never
    exponential. Works on all distinct values of a column at once (numpy string functions)."""

    def __init__(self, pattern: str) -> None:
        pieces = pattern.lower().split("*")
        self.star = len(pieces) > 1
        self.first = _Piece(pieces[0])
        self.last = _Piece(pieces[-1] if self.star else "")
        self.mid = [_Piece(m) for m in pieces[1:-1] if m]
        self.least = self.first.size + self.last.size + sum(m.size for m in self.mid)

    def match_lowered(self, t: Text) -> Mask:
        """Which of the lower-cased values ``t`` the whole wildcard matches."""
        n = np.char.str_len(t).astype(np.int64)
        if not self.star:
            ok = n == self.first.size
            return ok & self.first.fits(t, np.zeros(t.shape, np.int64))
        end = np.maximum(n - self.last.size, 0)
        ok = n >= self.least
        ok &= self.first.fits(t, np.zeros(t.shape, np.int64)) & self.last.fits(t, end)
        pos = np.full(t.shape, self.first.size, np.int64)
        for piece in self.mid:
            at = piece.find(t, pos, end)
            ok &= at >= 0
            pos = np.where(ok, at + piece.size, pos)
        return ok


@lru_cache(maxsize=4096)
def compile_wildcard(pattern: str) -> Glob:
    """A wildcard as a linear matcher (``Glob``)."""
    return Glob(pattern)


def wildcard_mask(patterns: tuple[str, ...], values: Text) -> Mask:
    """Which of ``values`` any of the wildcards matches (any case, whole value)."""
    lowered = np.char.lower(values)
    hit = np.zeros(values.shape, bool)
    for p in patterns:
        hit |= compile_wildcard(p).match_lowered(lowered)
    return hit


_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")


def _escape(ch: str) -> str:
    return "\\" + ch if ch in _REGEX_SPECIAL else ch


def sigma_string(value: str, cased: bool = False) -> tuple[str, str]:
    """How a Sigma string value is matched, as (how, text):

    * ``("plain", text)``: no wildcard; equal to the value, any case;
    * ``("wildcard", glob)``: ``*`` and ``?`` are wildcards; matched by `Glob`, any case;
    * ``("regex", pattern)``: an anchored RE2 pattern, for what `Glob` cannot say: a
      literal ``*`` or ``?`` (written ``\\*``, ``\\?``) beside wildcards, or ``cased``.

    Sigma's escapes: ``\\*``, ``\\?`` and ``\\\\`` stand for the character itself; a
    backslash before anything else is a backslash.
    """
    pieces: list[str | None] = []  # a literal character, or None for '*' and '' for '?'
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "*?\\":
            pieces.append(value[i + 1])
            i += 2
            continue
        pieces.append(None if ch == "*" else "" if ch == "?" else ch)
        i += 1
    wild = any(p is None or p == "" for p in pieces)
    literal_wild = any(p in ("*", "?") for p in pieces)
    if not cased and not wild:
        return "plain", "".join(p for p in pieces if p)
    if not cased and not literal_wild:
        return "wildcard", "".join("*" if p is None else "?" if p == "" else p for p in pieces)
    body = "".join(".*" if p is None else "." if p == "" else _escape(p) for p in pieces)
    return "regex", ("(?s)" if cased else "(?is)") + "^" + body + "$"
