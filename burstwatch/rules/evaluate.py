"""Apply rules to a frame of per-row features, and say for each flagged row why it fired.

Everything is computed as one boolean mask per field test and combined with numpy; only the
explanation of flagged rows looks at individual rows, and only at the few that fired.

Explanations follow the condition tree: for ``all`` every child counts, for ``any`` the
children that held, and under ``not`` the tests that did *not* hold are the reason (reported
with ``held=False``). Allow-listed rows are not flagged and get no explanation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from burstwatch.rules.columns import Columns, Frame, FrameError, Mask
from burstwatch.rules.model import All, Any, Condition, FieldTest, Not, Rule, leaves

__all__ = ["Evidence", "FrameError", "RuleResult", "evaluate", "evaluate_all"]


def _plain(value: object) -> object:
    """numpy scalars as Python values, so evidence prints and serialises cleanly."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


@dataclass(frozen=True)
class Evidence:
    """One test that made a row fire, with the row's value for the tested field.

    ``held`` is True when the test held; False when it failed and a ``not`` turned that into
    a reason to fire (e.g. ``not: {burst_upload_share: {lt: 0.7}}`` with a value of 0.9).
    """

    test: FieldTest
    value: object
    held: bool = True

    @property
    def field(self) -> str:
        return self.test.field

    def __str__(self) -> str:
        value = self.test.value
        shown = list(value) if isinstance(value, tuple) else value
        verb = "" if self.held else "not "
        return f"{self.test.field}={self.value!r} ({verb}{self.test.op} {shown!r})"


@dataclass(frozen=True, eq=False)
class RuleResult:
    """What one rule flagged in one frame.

    ``mask`` marks flagged rows (matched and not allow-listed); ``matched`` and ``allowed``
    keep the two halves apart so allow-lists can be audited. ``because[k, j]`` says whether
    ``tests[j]`` is part of the reason row ``rows[k]`` fired; ``held[j]`` says whether that
    test counts by holding (True) or by failing under a ``not`` (False).
    """

    rule: Rule
    mask: Mask
    matched: Mask
    allowed: Mask
    rows: npt.NDArray[np.intp]
    tests: tuple[FieldTest, ...]
    held: tuple[bool, ...]
    because: Mask
    columns: Frame

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def explain(self, row: int) -> tuple[Evidence, ...]:
        """Why ``row`` (a row index of the frame) fired; empty if it did not."""
        k = int(np.searchsorted(self.rows, row))
        if k >= len(self.rows) or self.rows[k] != row:
            return ()
        return tuple(
            Evidence(test, _plain(self.columns[test.field][row]), self.held[j])
            for j, test in enumerate(self.tests)
            if self.because[k, j]
        )

    def explanations(self) -> Iterator[tuple[int, tuple[Evidence, ...]]]:
        """(row, evidence) for every flagged row, in row order."""
        for row in self.rows.tolist():
            yield row, self.explain(row)


class _Tree:
    """Masks for every node of one condition tree over one frame."""

    def __init__(self, cond: Condition, columns: Columns, who: str) -> None:
        self.columns = columns
        self.who = who
        self.node_masks: dict[int, Mask] = {}
        self.value = self._eval(cond)

    def _eval(self, node: Condition) -> Mask:
        if isinstance(node, FieldTest):
            mask = self.columns.mask(node, self.who)
        elif isinstance(node, Not):
            mask = ~self._eval(node.child)
        else:
            kids = [self._eval(child) for child in node.children]
            is_all = isinstance(node, All)
            if kids:
                mask = (np.logical_and if is_all else np.logical_or).reduce(kids, axis=0)
            else:  # only built in code, never from YAML: vacuous truth for all, none for any
                mask = np.full(self.columns.rows or 0, is_all, dtype=bool)
        self.node_masks[id(node)] = mask
        return mask

    def reasons(self, cond: Condition, rows: npt.NDArray[np.intp]) -> tuple[list[bool], Mask]:
        """Per leaf (depth-first order): its polarity, and which of ``rows`` it explains."""
        held: list[bool] = []
        cols: list[Mask] = []
        self._walk(cond, np.ones(rows.shape, dtype=bool), True, rows, held, cols)
        matrix = np.stack(cols, axis=1) if cols else np.zeros((rows.size, 0), dtype=bool)
        return held, matrix

    def _walk(self, node: Condition, want: Mask, polarity: bool, rows: npt.NDArray[np.intp],
              held: list[bool], cols: list[Mask]) -> None:
        # A method, not a closure that calls itself: such a closure is a reference cycle that
        # keeps the tree, and with it the batch's columns, until a full garbage collection.
        if isinstance(node, FieldTest):
            held.append(polarity)
            cols.append(want)
        elif isinstance(node, Not):
            self._walk(node.child, want, not polarity, rows, held, cols)
        elif isinstance(node, All):
            for child in node.children:
                self._walk(child, want if polarity else want & ~self._at(child, rows), polarity,
                           rows, held, cols)
        elif isinstance(node, Any):
            for child in node.children:
                self._walk(child, want & self._at(child, rows) if polarity else want, polarity,
                           rows, held, cols)

    def _at(self, node: Condition, rows: npt.NDArray[np.intp]) -> Mask:
        return self.node_masks[id(node)][rows]


def _evaluate(rule: Rule, columns: Columns) -> RuleResult:
    who = f"rule '{rule.id}' ({rule.loc})"
    tree = _Tree(rule.match, columns, who)
    matched = tree.value
    allowed = np.zeros_like(matched)
    if rule.allow is not None and matched.any():
        allowed = _Tree(rule.allow, columns, who).value & matched
    mask = matched & ~allowed
    rows = np.flatnonzero(mask)
    held, because = tree.reasons(rule.match, rows)
    used = {t.field: columns.frame[t.field] for t in leaves(rule.match)}
    return RuleResult(
        rule=rule,
        mask=mask,
        matched=matched,
        allowed=allowed,
        rows=rows,
        tests=tuple(leaves(rule.match)),
        held=tuple(held),
        because=because,
        columns=used,
    )


def evaluate(rule: Rule, frame: Frame) -> RuleResult:
    """Flag the rows of ``frame`` (field name -> 1-D column) that ``rule`` matches."""
    return _evaluate(rule, Columns(frame))


def evaluate_all(rules: Iterable[Rule], frame: Frame) -> list[RuleResult]:
    """Evaluate several rules on one frame, sharing column preparation and equal tests."""
    columns = Columns(frame)
    return [_evaluate(rule, columns) for rule in rules]
