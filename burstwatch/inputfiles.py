"""The files a user hands burstwatch (configuration, rules, rule tests, models), read so that
no file can do more than be refused with one line.

Every read is bounded (``--config /dev/zero`` reads a little over the limit, then stops);
text must be UTF-8 without NUL bytes; YAML goes through the rule loader's safe composer
(``rules.yamlnodes.plain_data``: aliases, so no "billion laughs", tags, duplicate keys and
nesting past 64 levels are refused, with their line).
"""

from __future__ import annotations

from pathlib import Path

from burstwatch.errors import BurstwatchError

MAX_TEXT_BYTES = 1 << 20  # configuration and rule-test files are a few KiB


class InputFileError(BurstwatchError):
    """A file given to burstwatch is unreadable, too large, not text, or not valid; where
    (``line`` and ``column`` from 1, 0 when the problem is the whole file) and what."""

    def __init__(self, path: str | Path, problem: str, line: int = 0, column: int = 0) -> None:
        self.path, self.problem, self.line, self.column = str(path), problem, line, column
        super().__init__(f"{path}:{line}:{column}: {problem}" if line else f"{path}: {problem}")


def read_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of ``path`` (any kind of file: a pipe, a device), refused past ``limit``."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputFileError(path, f"cannot read {what} ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise InputFileError(path, f"larger than {limit:,} bytes, too large for {what}")
    return data


def decode_text(data: bytes, where: str) -> str:
    """UTF-8 text (a leading byte-order mark dropped), refused with the offending place when
    it is not UTF-8 or holds a NUL byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(where, f"not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise InputFileError(where, "a NUL byte; this must be a text file", line, column)
    return text


def read_text(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    return decode_text(read_bounded(path, limit, what), str(path))
