"""Problems found in rule files, reported all at once so an author fixes them in one pass."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from burstwatch.errors import BurstwatchError
from burstwatch.rules.model import Location

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at one place; ``message`` says what to write instead.

    ``code`` is a stable short name (e.g. ``unknown-field``) for filtering and for tests;
    ``related`` lists other places involved (e.g. the first definition of a duplicate id).
    """

    loc: Location
    severity: Severity
    code: str
    message: str
    related: tuple[Location, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        return f"{self.loc}: {self.severity}: {self.message} [{self.code}]"


class RuleError(BurstwatchError):
    """Rule files have errors; carries every finding so the CLI can print them all."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.findings: tuple[Finding, ...] = tuple(findings)
        errors = sum(1 for f in self.findings if f.is_error)
        lines = [f"{errors} error(s) in rule files:"] + [str(f) for f in self.findings]
        super().__init__("\n".join(lines))
