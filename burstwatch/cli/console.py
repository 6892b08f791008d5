"""Consoles: colour and tables on a terminal, plain stable text when piped.

Everything printed here may hold text from a capture (server names), a database
(organisation names), a rule file or a path, so none of it is trusted as markup or as bytes
for the terminal: strings are printed as rich ``Text`` (never markup, never emoji codes) with
control characters escaped (``clean``). Markup is only what the program builds itself, as
``Text`` objects.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

# C0 and C1 controls, DEL, and the invisible characters that reorder or hide text (bidi
# overrides and isolates, as in "Trojan Source"): each one is shown as an escape instead.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    c = m.group(0)
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def clean(value: object) -> str:
    """``value`` as one line of visible text: every control character escaped (``\\x1b``,
    ``\\n``, ``\\u202e``), so untrusted text can neither drive the terminal nor forge lines."""
    return _CONTROLS.sub(_escape, str(value))


def text(value: object, style: str = "") -> Text:
    """Untrusted text for a table cell or title: cleaned, and never read as markup."""
    return Text(clean(value), style=style)


class SafeConsole(Console):
    """A rich console that prints plain strings as text: no markup, no emoji codes, no
    control characters, no line breaks (one string, one line: a value holding a newline
    cannot forge the next line). Renderables (tables, ``Text``) are printed as they are."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        safe = [text(o) if isinstance(o, str) else o for o in objects]
        kwargs.pop("markup", None)
        super().print(*safe, **kwargs)


class TextTable(Table):
    """A rich table whose string title and cells are untrusted text (see ``text``)."""

    def __init__(self, *headers: str, title: str | Text | None = None, **kwargs: Any) -> None:
        super().__init__(*headers, title=text(title) if isinstance(title, str) else title, **kwargs)

    def add_row(self, *cells: RenderableType | None, **kwargs: Any) -> None:
        super().add_row(*(text(c) if isinstance(c, str) else c for c in cells), **kwargs)


def stdout_console() -> Console:
    return SafeConsole(highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    return SafeConsole(stderr=True, highlight=False, soft_wrap=True)



def error_lines(exc: BaseException) -> list[str]:
    """An error as cleaned lines: one, or one per finding for rule files (each names its place)."""
    findings = getattr(exc, "findings", None)
    if findings is None:
        return [clean(exc)]
    return [clean(str(exc).split("\n", 1)[0])] + [clean(f) for f in findings]
