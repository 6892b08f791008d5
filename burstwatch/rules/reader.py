"""Read plain values from YAML nodes, collecting a finding (with file:line:column) for each
value that is not what it should be, so one pass reports every problem.

Values are read from the YAML text, not by YAML's guesses: ``NO`` stays the country code
(YAML 1.1 would read it as false), and ``1e6`` is a number (YAML 1.1 would read it as text).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from burstwatch.rules.findings import Finding, Severity
from burstwatch.rules.yamlnodes import INVALID_TAG, YAML_TAG, loc_of

NUMBER_TAGS = (YAML_TAG + "int", YAML_TAG + "float")
NULL_TAG = YAML_TAG + "null"
BOOL_TAG = YAML_TAG + "bool"


def suggest(word: str, choices: Sequence[str], aliases: dict[str, str] | None = None) -> str:
    """'; did you mean 'x'?' or '' — the closest spelling authors most likely meant."""
    if aliases and word.lower() in aliases:
        return f"; write {aliases[word.lower()]} instead"
    close = difflib.get_close_matches(word.lower(), list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def describe(node: Node) -> str:
    """How a wrong value looks to its author, for 'expected X, got Y' messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL_TAG:
        return "nothing"
    return f"'{node.value}'"


@dataclass
class NodeReader:
    """The findings of one YAML document; the read methods add to them as they go."""

    file: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, node: Node, severity: Severity, code: str, message: str) -> None:
        self.findings.append(Finding(loc_of(node, self.file), severity, code, message))

    def error(self, node: Node, code: str, message: str) -> None:
        self.add(node, "error", code, message)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.is_error)

    def text(self, node: Node, what: str) -> str | None:
        """A scalar's text as written (never YAML 1.1's yes/no/on/off guesses)."""
        if node.tag == INVALID_TAG:
            return None
        if not isinstance(node, ScalarNode) or node.tag == NULL_TAG:
            self.error(node, "bad-value", f"{what} must be text, not {describe(node)}")
            return None
        return str(node.value)

    def text_list(self, node: Node, what: str) -> tuple[str, ...] | None:
        if node.tag == INVALID_TAG:
            return None
        if not isinstance(node, SequenceNode):
            example = f"[{node.value}]" if isinstance(node, ScalarNode) and node.value else "[...]"
            self.error(node, "bad-value",
                       f"{what} must be a list, not {describe(node)}; write {what}: {example}")
            return None
        items = [self.text(item, f"each entry of {what}") for item in node.value]
        return None if any(i is None for i in items) else tuple(cast(list[str], items))

    def number(self, node: Node, where: str) -> float | None:
        """A finite-or-infinite number; plain text such as ``1e6`` is accepted as a number."""
        if node.tag == INVALID_TAG:
            return None
        value: float | None = None
        if isinstance(node, ScalarNode) and node.tag in NUMBER_TAGS:
            value = float(SafeConstructor().construct_object(node))
        elif isinstance(node, ScalarNode) and node.tag == YAML_TAG + "str" and node.style is None:
            try:
                value = float(node.value.replace("_", ""))
            except ValueError:
                value = None
        if value is None:
            hint = "write 1 or 0" if node.tag == BOOL_TAG else "write e.g. 1000000 or 1.5e6"
            self.error(node, "bad-value",
                       f"{where} needs a number, not {describe(node)}; {hint}")
            return None
        if math.isnan(value):
            self.error(node, "bad-value",
                       f"{where}: NaN never compares true; to catch missing values use "
                       "'field|exists: false'")
            return None
        return value

    def boolean(self, node: Node, where: str) -> bool | None:
        if node.tag == INVALID_TAG:
            return None
        if isinstance(node, ScalarNode) and node.value.lower() in ("true", "false"):
            return node.value.lower() == "true"
        self.error(node, "bad-value", f"{where} takes true or false, not {describe(node)}")
        return None
