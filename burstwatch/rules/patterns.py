"""Rule patterns compiled for RE2, whose matching time is linear in the text.

A rule's ``wildcard`` or ``regex`` runs against values an attacker chooses (a server name in
a ClientHello can be 64 KiB), so a backtracking engine would let one packet stall detection
for minutes (``(a+)+$``, ``*a*a*a*b``). RE2 (google-re2) guarantees time linear in the text
and bounded memory; the price is that backreferences and lookaround are not supported, and
lint says so where the pattern is written.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

import re2

from burstwatch.errors import BurstwatchError

_MAX_MEM = 8 << 20  # RE2's default program budget; a pattern needing more is refused


class PatternError(BurstwatchError):
    """A regex that RE2 cannot compile; the message says why and what to write instead."""


class Matcher(Protocol):
    def search(self, text: str) -> object: ...
    def fullmatch(self, text: str) -> object: ...


def _options(ignore_case: bool) -> re2.Options:
    opts = re2.Options()
    opts.log_errors = False  # errors become PatternError, not lines on stderr
    opts.max_mem = _MAX_MEM
    opts.case_sensitive = not ignore_case
    opts.dot_nl = ignore_case  # wildcards: '*' spans any character, newlines included
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


def matches(matcher: Matcher, text: str, whole: bool) -> bool:
    """``fullmatch`` (wildcards) or ``search`` (regexes); text RE2 cannot take as UTF-8 (lone
    surrogates) is matched with those replaced."""
    try:
        return bool(matcher.fullmatch(text) if whole else matcher.search(text))
    except UnicodeEncodeError:
        return matches(matcher, text.encode("utf-8", "replace").decode("utf-8"), whole)


@lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Matcher:
    """A rule regex (``search`` semantics, case-sensitive unless ``(?i)``)."""
    try:
        return re2.compile(pattern, _options(ignore_case=False))
    except re2.error as exc:
        raise PatternError(_why(exc)) from None


@lru_cache(maxsize=4096)
def compile_wildcard(pattern: str) -> Matcher:
    """A wildcard as a linear matcher: ``*`` any run, ``?`` one character, the rest literal,
    any case; match with ``fullmatch``."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    try:
        return re2.compile("".join(parts), _options(ignore_case=True))
    except re2.error as exc:  # only a pattern too large for the memory budget
        raise PatternError(_why(exc)) from None
