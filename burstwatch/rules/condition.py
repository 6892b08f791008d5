"""Sigma's ``condition`` expression, parsed into a small tree (never evaluated as code).

The grammar is pySigma's: ``or`` binds loosest, then ``and``, then ``not``; both binary
operators are left-associative; parentheses group. An operand is a selection name, or a
quantifier over selection names: ``1 of P``, ``any of P`` (the same) or ``all of P``, where
``P`` is a name with ``*`` wildcards or ``them`` (every selection not starting with ``_``).
Keywords are lower case, as pySigma reads them.

Errors carry the offset of the token that went wrong, so lint points at its column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from burstwatch.errors import BurstwatchError


@dataclass(frozen=True)
class Ref:
    """A selection named in the condition."""

    name: str
    offset: int


@dataclass(frozen=True)
class Quantified:
    """``1 of P`` (``every=False``) or ``all of P`` over the selections ``P`` names."""

    every: bool
    pattern: str
    offset: int

    def selects(self, name: str) -> bool:
        if self.pattern == "them":
            return not name.startswith("_")
        regex = "".join(".*" if c == "*" else re.escape(c) for c in self.pattern)
        return re.fullmatch(regex, name) is not None and (
            self.pattern.startswith("_") or not name.startswith("_"))


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Neg:
    item: Expr


Expr = Ref | Quantified | And | Or | Neg


class ConditionError(BurstwatchError):
    """The condition does not parse; ``offset`` is where, counting from 0."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


_TOKEN = re.compile(r"\s*(?:([()])|([A-Za-z0-9_*-]+)|(\S))")
_KEYWORDS = frozenset({"and", "or", "not", "of", "them"})
_QUANTIFIERS = frozenset({"1", "any", "all"})
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_PATTERN = re.compile(r"[A-Za-z0-9_*]+")


def _tokens(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing white space is left
            break
        if m.group(3) is not None:
            raise ConditionError(f"unexpected character '{m.group(3)}' in the condition; "
                                 "write selection names, and, or, not, 1 of, all of and "
                                 "parentheses", m.start(3))
        word = m.group(1) or m.group(2)
        tokens_at = m.start(1) if m.group(1) else m.start(2)
        out.append((word, tokens_at))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def where(self) -> int:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else len(self.text)

    def take(self) -> tuple[str, int]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Expr:
        if not self.tokens:
            raise ConditionError("the condition is empty; name the selections that must "
                                 "match, e.g. 'selection and not 1 of filter_*'", 0)
        expr = self.disjunction()
        if self.peek() is not None:
            word = self.peek()
            hint = ("; this ')' closes no '('" if word == ")" else
                    "; join conditions with 'and' or 'or'")
            raise ConditionError(f"unexpected '{word}'{hint}", self.where())
        return expr

    def disjunction(self) -> Expr:
        items = [self.conjunction()]
        while self.peek() == "or":
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Expr:
        items = [self.negation()]
        while self.peek() == "and":
            self.take()
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items))

    def negation(self) -> Expr:
        if self.peek() == "not":
            self.take()
            return Neg(self.negation())
        return self.operand()

    def operand(self) -> Expr:
        word = self.peek()
        if word is None:
            before = f" after '{self.tokens[-1][0]}'" if self.tokens else ""
            raise ConditionError(f"the condition ends{before}; a selection name, 'not', "
                                 "'1 of', 'all of' or '(' must follow", len(self.text))
        at = self.where()
        if word == "(":
            self.take()
            inner = self.disjunction()
            if self.peek() != ")":
                found = f"'{self.peek()}'" if self.peek() is not None else "the end"
                raise ConditionError(f"the '(' at column {at + 1} of the condition is not "
                                     f"closed (found {found}); add ')'",
                                     self.where() if self.peek() is not None else at)
            self.take()
            return inner
        if word in _QUANTIFIERS and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][0] == "of":
            self.take()
            self.take()
            if self.peek() is None:
                raise ConditionError(f"'{word} of' needs selection names after it, e.g. "
                                     f"'{word} of selection_*' or '{word} of them'", len(self.text))
            pattern, p_at = self.take()
            if pattern != "them" and (pattern in _KEYWORDS or not _PATTERN.fullmatch(pattern)):
                raise ConditionError(f"'{word} of' needs selection names after it, not "
                                     f"'{pattern}'; write e.g. '{word} of selection_*'", p_at)
            return Quantified(word == "all", pattern, at)
        if "*" in word:
            raise ConditionError(f"'{word}' names several selections; write '1 of {word}' or "
                                 f"'all of {word}'", at)
        if word in _KEYWORDS or word == ")" or not _NAME.fullmatch(word):
            raise ConditionError(f"expected a selection name, 'not', '1 of', 'all of' or '(', "
                                 f"found '{word}'", at)
        self.take()
        return Ref(word, at)


def parse_condition(text: str) -> Expr:
    """The tree of a condition string; raises ConditionError at the first bad token."""
    return _Parser(text).parse()


def references(expr: Expr) -> list[Ref | Quantified]:
    """Every operand of the tree, in the order written."""
    if isinstance(expr, (Ref, Quantified)):
        return [expr]
    if isinstance(expr, Neg):
        return references(expr.item)
    return [r for item in expr.items for r in references(item)]
