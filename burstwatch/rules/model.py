"""The typed, immutable form of a rule, so evaluation never has to re-check what lint checked.

Every node remembers where it was written (file, line, column) so that findings and alert
explanations can point back at the exact line of the rule file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Op = Literal[
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "cidr", "wildcard", "regex", "exists",
]
OPS: tuple[Op, ...] = (
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "cidr", "wildcard", "regex", "exists",
)

Kind = Literal["number", "string", "address"]
KINDS: tuple[Kind, ...] = ("number", "string", "address")

Level = Literal["low", "medium", "high", "critical"]
LEVELS: tuple[Level, ...] = ("low", "medium", "high", "critical")  # ascending severity

# eq/ne/gt/gte/lt/lte hold a scalar; in/not_in/cidr/wildcard/regex always hold a tuple;
# exists holds True. String eq/ne/in/not_in compare without regard to case, as Sigma does.
Scalar = float | str
Value = float | str | bool | tuple[float, ...] | tuple[str, ...]


@dataclass(frozen=True, order=True)
class Location:
    """A place in a rule file; line and column count from 1 (0 means 'not from a file')."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Location("<memory>")


@dataclass(frozen=True)
class FieldTest:
    """One comparison of a frame column against a constant written in the rule.

    ``kind`` is the field's kind from the catalog the rule was loaded with; it decides how the
    column is read (numbers, strings, or IP addresses).
    """

    field: str
    op: Op
    value: Value
    kind: Kind = "number"
    loc: Location = dataclasses.field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class All:
    """True where every child is true."""

    children: tuple[Condition, ...]
    loc: Location = dataclasses.field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Any:
    """True where at least one child is true."""

    children: tuple[Condition, ...]
    loc: Location = dataclasses.field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Not:
    """True where the child is false (including rows whose value is missing)."""

    child: Condition
    loc: Location = dataclasses.field(default=NOWHERE, compare=False)


Condition = All | Any | Not | FieldTest


def leaves(cond: Condition) -> Iterator[FieldTest]:
    """Every field test of a tree, depth first, in the order they were written."""
    if isinstance(cond, FieldTest):
        yield cond
    elif isinstance(cond, Not):
        yield from leaves(cond.child)
    else:
        for child in cond.children:
            yield from leaves(child)


@dataclass(frozen=True)
class Rule:
    """One detection: what to flag (``match``) and what never to flag (``allow``).

    Read from a Sigma rule: ``match`` is its condition, except that the condition's
    top-level ``and not 1 of filter_*`` operands (selections named ``filter...``) form
    ``allow``, so alert evidence lists what fired, not every filter that did not hold.
    """

    id: str  # the short human name (Sigma ``name``, e.g. bw-001), else the Sigma id
    title: str
    level: Level
    match: Condition
    allow: Condition | None = None
    description: str = ""
    author: str = ""
    references: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    uuid: str = ""  # the Sigma rule id (a UUID)
    status: str = ""  # Sigma status: stable, test, experimental, deprecated, unsupported
    date: str = ""  # Sigma date, YYYY-MM-DD
    modified: str = ""  # Sigma modified, YYYY-MM-DD
    # What the rule reads: "flow" (flow-windows) or "conversation" (a local host and a
    # remote party over the horizon); written as Sigma's logsource category.
    applies_to: str = "flow"
    loc: Location = dataclasses.field(default=NOWHERE, compare=False)

    @property
    def version(self) -> str:
        """ECS ``rule.version``: the Sigma modified date, else its date."""
        return self.modified or self.date

    @property
    def fields(self) -> frozenset[str]:
        """The frame columns this rule reads, so callers compute only the features needed."""
        used = {t.field for t in leaves(self.match)}
        if self.allow is not None:
            used.update(t.field for t in leaves(self.allow))
        return frozenset(used)
