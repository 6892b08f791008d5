"""Turn one sanitized YAML document into a `Rule`, reporting every problem instead of the first.

Condition syntax, chosen to read like the sentence it encodes:

* a mapping is the conjunction of its entries: ``{burst_count: {gte: 1}, encryption: tls}``;
* ``all: [...]`` / ``any: [...]`` take a non-empty list; ``not: {...}`` takes one condition;
* ``field: {op: value, ...}`` tests one field; several operators must all hold
  (``{gte: 1, lt: 5}``); ``field: value`` is short for ``eq`` and ``field: [a, b]`` for ``in``.

Values are read from the YAML text according to the field's kind, not by YAML's guesses:
for a string field ``NO`` stays the country code (YAML 1.1 would read it as false), and for a
number field ``1e6`` is a million (YAML 1.1 would read it as text).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import cast

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from burstwatch.rules.catalog import RULE_LEVELS, FieldCatalog
from burstwatch.rules.findings import Finding, Severity
from burstwatch.rules.model import (
    COMBINATORS,
    LEVELS,
    OPS,
    All,
    Any,
    Condition,
    FieldTest,
    Kind,
    Level,
    Location,
    Not,
    Op,
    Rule,
    Value,
)
from burstwatch.rules.patterns import PatternError, compile_regex
from burstwatch.rules.yamlnodes import INVALID_TAG, YAML_TAG, loc_of

TOP_KEYS = (
    "id", "title", "description", "author", "references", "tags", "level",
    "falsepositives", "logsource", "match", "allow",
)
LOGSOURCE_KEYS = ("category", "product", "service")
REQUIRED = ("id", "title", "level", "match")
LIST_KEYS = ("references", "tags", "falsepositives")

OPS_FOR: dict[Kind, tuple[Op, ...]] = {
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in"),
    "string": ("eq", "ne", "in", "not_in", "wildcard", "regex"),
    "address": ("eq", "ne", "in", "not_in", "cidr"),
}
LIST_OPS: frozenset[Op] = frozenset({"in", "not_in"})
ONE_OR_MORE_OPS: frozenset[Op] = frozenset({"cidr", "wildcard", "regex"})

# Spellings from other query languages, mapped to what to write here.
OP_ALIASES = {
    ">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "==": "eq", "=": "eq", "!=": "ne",
    "ge": "gte", "le": "lte", "equals": "eq", "is": "eq", "glob": "wildcard",
    "re": "regex", "matches": "regex", "contains": "wildcard ('*text*')",
    "startswith": "wildcard ('text*')", "endswith": "wildcard ('*text')",
    "nin": "not_in", "notin": "not_in", "not in": "not_in", "subnet": "cidr", "network": "cidr",
}
COMBINATOR_ALIASES = {"and": "all", "or": "any", "none": "not: {any: [...]}", "all_of": "all",
                      "any_of": "any", "one_of": "any", "anyof": "any", "allof": "all"}

TAG_RE = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+")
ATTACK_TECHNIQUE_RE = re.compile(r"attack\.t\d{4}(\.\d{3})?")

_NUMBER_TAGS = (YAML_TAG + "int", YAML_TAG + "float")
_NULL_TAG = YAML_TAG + "null"
_BOOL_TAG = YAML_TAG + "bool"


def _suggest(word: str, choices: tuple[str, ...] | list[str], aliases: dict[str, str]) -> str:
    """' (did you mean 'x'?)' or '' — the closest spelling authors most likely meant."""
    if word.lower() in aliases:
        return f"; write {aliases[word.lower()]} instead"
    close = difflib.get_close_matches(word.lower(), choices, n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def _describe(node: Node) -> str:
    """How a wrong value looks to its author, for 'expected X, got Y' messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "nothing"
    return f"'{node.value}'"


@dataclass
class _Document:
    """Findings for one YAML document; the parser methods add to them as they go."""

    file: str
    catalog: FieldCatalog
    findings: list[Finding] = field(default_factory=list)
    rule_id: tuple[str, Location] | None = None  # the id and where its value is written
    applies_to: str = "flow"  # the rule's logsource category: which records it reads

    def add(self, node: Node, severity: Severity, code: str, message: str) -> None:
        self.findings.append(Finding(loc_of(node, self.file), severity, code, message))

    def error(self, node: Node, code: str, message: str) -> None:
        self.add(node, "error", code, message)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.is_error)

    # -- plain values --------------------------------------------------------------------

    def text(self, node: Node, what: str) -> str | None:
        """A scalar's text as written (never YAML 1.1's yes/no/on/off guesses)."""
        if node.tag == INVALID_TAG:
            return None
        if not isinstance(node, ScalarNode) or node.tag == _NULL_TAG:
            self.error(node, "bad-value", f"{what} must be text, not {_describe(node)}")
            return None
        return str(node.value)

    def text_list(self, node: Node, what: str) -> tuple[str, ...] | None:
        if node.tag == INVALID_TAG:
            return None
        if not isinstance(node, SequenceNode):
            example = f"[{node.value}]" if isinstance(node, ScalarNode) and node.value else "[...]"
            self.error(node, "bad-value",
                       f"{what} must be a list, not {_describe(node)}; write {what}: {example}")
            return None
        items = [self.text(item, f"each entry of {what}") for item in node.value]
        return None if any(i is None for i in items) else tuple(cast(list[str], items))

    def number(self, node: Node, where: str) -> float | None:
        """A finite-or-infinite number; plain text such as ``1e6`` is accepted as a number."""
        if node.tag == INVALID_TAG:
            return None
        value: float | None = None
        if isinstance(node, ScalarNode) and node.tag in _NUMBER_TAGS:
            value = float(SafeConstructor().construct_object(node))
        elif isinstance(node, ScalarNode) and node.tag == YAML_TAG + "str" and node.style is None:
            try:
                value = float(node.value.replace("_", ""))
            except ValueError:
                value = None
        if value is None:
            hint = "write 1 or 0" if node.tag == _BOOL_TAG else "write e.g. 1000000 or 1.5e6"
            self.error(node, "bad-value",
                       f"{where} needs a number, not {_describe(node)}; {hint}")
            return None
        if math.isnan(value):
            self.error(node, "bad-value",
                       f"{where}: NaN never compares true; to catch missing values use "
                       "not: {field: {gte: -.inf}}")
            return None
        return value

    # -- the rule document ---------------------------------------------------------------

    def rule(self, root: Node) -> Rule | None:
        if root.tag == INVALID_TAG:
            return None
        if not isinstance(root, MappingNode):
            self.error(root, "not-a-rule",
                       f"a rule must be a mapping with {', '.join(REQUIRED)}, not "
                       f"{_describe(root)}; separate several rules with a '---' line")
            return None
        before = self.errors
        present: dict[str, Node] = {}
        for key, value in root.value:
            name = str(key.value)
            if name in TOP_KEYS:
                present[name] = value
            elif name == "tests":
                self.error(key, "unknown-key",
                           "test cases do not belong in the rule file; move them to a "
                           "'<rule file name>.tests.yml' file beside it")
            else:
                hint = _suggest(name, TOP_KEYS, {}) or f"; valid keys: {', '.join(TOP_KEYS)}"
                self.error(key, "unknown-key", f"unknown key '{name}'{hint}")
        for name in REQUIRED:
            if name not in present:
                self.error(root, "missing-key", f"rule has no '{name}'; add '{name}: ...'"
                           + (f" ({_REQUIRED_HINT[name]})" if name in _REQUIRED_HINT else ""))

        rule_id = self.text(present["id"], "id") if "id" in present else None
        if rule_id is not None and not rule_id.strip():
            self.error(present["id"], "bad-value", "id must not be empty; write a unique name "
                       "such as 'burst-foreign-tls' or a UUID")
            rule_id = None
        if rule_id is not None:
            self.rule_id = (rule_id, loc_of(present["id"], self.file))
        if "logsource" in present:
            self.logsource(present["logsource"])
        title = self.text(present["title"], "title") if "title" in present else None
        level = self.level(present["level"]) if "level" in present else None
        match = self.condition(present["match"], "match", 0) if "match" in present else None
        allow = self.condition(present["allow"], "allow", 0) if "allow" in present else None
        meta = {k: self.text(present[k], k) for k in ("description", "author") if k in present}
        lists = {k: self.text_list(present[k], k) for k in LIST_KEYS if k in present}
        if lists.get("tags"):
            self.check_tags(present["tags"])

        if self.errors > before or rule_id is None or title is None or level is None:
            return None
        if match is None:
            return None
        return Rule(
            id=rule_id,
            title=title.strip(),
            level=level,
            match=match,
            allow=allow,
            description=(meta.get("description") or "").strip(),
            author=(meta.get("author") or "").strip(),
            references=lists.get("references") or (),
            tags=lists.get("tags") or (),
            falsepositives=lists.get("falsepositives") or (),
            applies_to=self.applies_to,
            loc=loc_of(root, self.file),
        )

    def logsource(self, node: Node) -> None:
        """Sigma's ``logsource``: ``category`` says which records the rule reads."""
        if node.tag == INVALID_TAG:
            return
        if not isinstance(node, MappingNode):
            self.error(node, "bad-value", f"logsource must be a mapping, not {_describe(node)}; "
                       "write logsource: {category: conversation}")
            return
        for key, value in node.value:
            name = str(key.value)
            if name not in LOGSOURCE_KEYS:
                hint = _suggest(name, LOGSOURCE_KEYS, {}) or f"; valid keys: {', '.join(LOGSOURCE_KEYS)}"
                self.error(key, "unknown-key", f"unknown logsource key '{name}'{hint}")
                continue
            text = self.text(value, f"logsource {name}")
            if text is None:
                continue
            if name == "category":
                if text in RULE_LEVELS:
                    self.applies_to = text
                else:
                    hint = _suggest(text, RULE_LEVELS, {}) or f"; write one of {', '.join(RULE_LEVELS)}"
                    self.error(value, "bad-value", f"unknown logsource category '{text}'{hint}")
            elif name == "product" and text != "burstwatch":
                self.error(value, "bad-value", f"logsource product '{text}' is not burstwatch; "
                           "write product: burstwatch or leave it out")

    def level(self, node: Node) -> Level | None:
        text = self.text(node, "level")
        if text is None:
            return None
        if text in LEVELS:
            return cast(Level, text)
        hint = _suggest(text, LEVELS, {}) or f"; write one of {', '.join(LEVELS)}"
        self.error(node, "bad-value", f"unknown level '{text}'{hint}")
        return None

    def check_tags(self, node: Node) -> None:
        """Warn about tags that will not group with others (case, spaces, technique ids)."""
        for item in node.value:
            tag = str(item.value)
            if not TAG_RE.fullmatch(tag):
                fixed = re.sub(r"\s+", "_", tag.strip().lower())
                self.add(item, "warning", "tag-style",
                         f"tag '{tag}' should be lowercase 'namespace.name'; write '{fixed}'")
            elif (tag.startswith("attack.t") and tag[8:9].isdigit()
                  and not ATTACK_TECHNIQUE_RE.fullmatch(tag)):
                self.add(item, "warning", "tag-style",
                         f"'{tag}' is not an ATT&CK technique id; write e.g. 'attack.t1041' "
                         "or 'attack.t1048.003'")

    # -- conditions ----------------------------------------------------------------------

    def condition(self, node: Node, where: str, depth: int) -> Condition | None:
        """A mapping is the conjunction of its entries; each entry a combinator or a field."""
        if node.tag == INVALID_TAG:
            return None
        if isinstance(node, SequenceNode):
            self.error(node, "bad-condition",
                       f"{where} got a list; say how to combine it: write 'all:' (every item "
                       "must hold) or 'any:' (one is enough) above the list")
            return None
        if not isinstance(node, MappingNode):
            self.error(node, "bad-condition",
                       f"{where} needs a condition such as 'field: {{op: value}}' or "
                       f"'all: [...]', not {_describe(node)}")
            return None
        if not node.value:
            self.error(node, "empty-combinator",
                       f"{where} is empty; write at least one 'field: {{op: value}}'")
            return None
        parts: list[Condition | None] = []
        for key, value in node.value:
            name = str(key.value)
            if name in ("all", "any"):
                parts.append(self.combinator(name, key, value, depth))
            elif name == "not":
                parts.append(self.negation(key, value, depth))
            else:
                parts.extend(self.field_tests(name, key, value))
        if any(p is None for p in parts):
            return None
        done = cast(list[Condition], parts)
        return done[0] if len(done) == 1 else All(tuple(done), loc_of(node, self.file))

    def combinator(self, name: str, key: Node, node: Node, depth: int) -> Condition | None:
        if node.tag == INVALID_TAG:
            return None
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG or (
            isinstance(node, SequenceNode) and not node.value
        ):
            self.error(key, "empty-combinator",
                       f"'{name}' has no conditions; list at least one under it, or remove it")
            return None
        if not isinstance(node, SequenceNode):
            self.error(node, "bad-condition",
                       f"'{name}' takes a list; start each condition under it with '- '")
            return None
        children = [self.condition(c, f"an item of '{name}'", depth + 1) for c in node.value]
        if any(c is None for c in children):
            return None
        kids = tuple(cast(list[Condition], children))
        where = loc_of(key, self.file)
        return All(kids, where) if name == "all" else Any(kids, where)

    def negation(self, key: Node, node: Node, depth: int) -> Condition | None:
        if node.tag == INVALID_TAG:
            return None
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG or (
            isinstance(node, MappingNode) and not node.value
        ):
            self.error(key, "empty-combinator", "'not' has no condition; write one under it")
            return None
        if isinstance(node, SequenceNode):
            self.error(node, "bad-condition",
                       "'not' takes one condition, not a list; write not: {any: [...]} "
                       "(none may hold) or not: {all: [...]} (not all may hold)")
            return None
        child = self.condition(node, "'not'", depth + 1)
        return None if child is None else Not(child, loc_of(key, self.file))

    def field_tests(self, name: str, key: Node, node: Node) -> list[FieldTest | None]:
        spec = self.catalog.spec(name)
        kind = spec.kind if spec is not None else None
        if spec is None:
            self.unknown_field(name, key)
        elif self.applies_to not in spec.levels:
            other = sorted(spec.levels)[0]
            close = self.catalog.at_level(self.applies_to).close_matches(name)
            hint = ("; did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else ""
            self.error(key, "unknown-field",
                       f"'{name}' is a field of {other} records, and this rule reads "
                       f"{self.applies_to}s (logsource category {self.applies_to}){hint}")
            kind = None
        if node.tag == INVALID_TAG:
            return [None]
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
            self.error(key, "bad-value",
                       f"'{name}' has no test; write e.g. '{name}: {{eq: value}}'")
            return [None]
        if isinstance(node, ScalarNode):  # shorthand: field: value
            return [self.field_test(name, kind, "eq", node, node)]
        if isinstance(node, SequenceNode):  # shorthand: field: [a, b]
            return [self.field_test(name, kind, "in", node, node)]
        if not node.value:
            self.error(node, "empty-combinator",
                       f"'{name}' has no operator; write e.g. '{name}: {{eq: value}}'")
            return [None]
        tests: list[FieldTest | None] = []
        for op_node, value in node.value:
            op = str(op_node.value)
            if op not in OPS:
                hint = _suggest(op, OPS, OP_ALIASES) or f"; operators: {', '.join(OPS)}"
                self.error(op_node, "unknown-operator", f"unknown operator '{op}'{hint}")
                tests.append(None)
                continue
            tests.append(self.field_test(name, kind, cast(Op, op), op_node, value))
        if kind == "number" and all(t is not None for t in tests):
            self.check_range(name, node, cast(list[FieldTest], tests))
        return tests

    def unknown_field(self, name: str, key: Node) -> None:
        if name.lower() in COMBINATOR_ALIASES or name.lower() in COMBINATORS:
            fix = COMBINATOR_ALIASES.get(name.lower(), name.lower())
            self.error(key, "unknown-field", f"'{name}' is not a field or combinator; write "
                       f"{fix} (combinators: all, any, not)")
            return
        close = self.catalog.close_matches(name)
        hint = ("; did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else (
            "; no registered field is close, so check the field catalog for its name")
        self.error(key, "unknown-field", f"unknown field '{name}'{hint}")

    def field_test(
        self, name: str, kind: Kind | None, op: Op, at: Node, node: Node
    ) -> FieldTest | None:
        if node.tag == INVALID_TAG:
            return None
        if kind is not None and op not in OPS_FOR[kind]:
            self.error(at, "operator-kind",
                       f"'{op}' cannot test '{name}', a {kind} field; use one of "
                       f"{', '.join(OPS_FOR[kind])}" + _KIND_HINT.get((kind, op), ""))
            return None
        if kind is None:
            return None  # already reported; the value cannot be checked without a kind
        value = self.op_value(name, kind, op, node)
        if value is None:
            return None
        return FieldTest(name, op, value, kind, loc_of(at, self.file))

    def op_value(self, name: str, kind: Kind, op: Op, node: Node) -> Value | None:
        where = f"'{name}: {{{op}: ...}}'"
        if op in LIST_OPS or op in ONE_OR_MORE_OPS:
            if isinstance(node, SequenceNode):
                items = node.value
            elif op in ONE_OR_MORE_OPS and isinstance(node, ScalarNode):
                items = [node]
            else:
                self.error(node, "bad-value",
                           f"{where} takes a list, not {_describe(node)}; write "
                           f"'{op}: [{node.value if isinstance(node, ScalarNode) else '...'}]'"
                           + (" or use eq for a single value" if op == "in" else ""))
                return None
            if not items:
                self.error(node, "bad-value", f"{where} has an empty list, which never "
                           f"matches; list at least one value")
                return None
            values = [self.scalar(where, kind, op, item) for item in items]
            if any(v is None for v in values):
                return None
            if len(set(values)) < len(values):
                self.add(node, "warning", "duplicate-value",
                         f"{where} lists the same value more than once; remove the repeats")
            return tuple(values)  # type: ignore[return-value]
        if isinstance(node, (SequenceNode, MappingNode)):
            alt = " (or 'in' for a list of values)" if op == "eq" else ""
            self.error(node, "bad-value",
                       f"{where} takes a single value, not {_describe(node)}{alt}")
            return None
        return self.scalar(where, kind, op, node)

    def scalar(self, where: str, kind: Kind, op: Op, node: Node) -> float | str | None:
        if node.tag == INVALID_TAG:
            return None
        if kind == "number":
            return self.number(node, where)
        text = self.text(node, where)
        if text is None:
            return None
        if op == "regex":
            return self.regex(node, where, text)
        if op == "cidr":
            return self.network(node, where, text)
        if kind == "address":
            return self.address(node, where, text)
        return text

    def regex(self, node: Node, where: str, text: str) -> str | None:
        try:
            re.compile(text)
        except re.error as exc:
            self.error(node, "bad-value",
                       f"{where}: bad regular expression ({exc.msg} at position {exc.pos}); "
                       "escape special characters with a backslash, e.g. '\\.' for a dot, "
                       "or use wildcard for simple patterns")
            return None
        try:
            compile_regex(text)
        except PatternError as exc:
            self.error(node, "bad-value", f"{where}: {exc}")
            return None
        return text

    def network(self, node: Node, where: str, text: str) -> str | None:
        try:
            return str(ipaddress.ip_network(text.strip(), strict=True))
        except ValueError as exc:
            try:
                loose = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                self.error(node, "bad-value",
                           f"{where}: '{text}' is not a network ({exc}); write e.g. "
                           "203.0.113.0/24 or 2001:db8::/32")
                return None
            self.error(node, "bad-value", f"{where}: '{text}' has host bits set; write {loose}")
            return None

    def address(self, node: Node, where: str, text: str) -> str | None:
        try:
            addr = ipaddress.ip_address(text.strip())
        except ValueError:
            hint = "; for a network use cidr" if "/" in text else ""
            self.error(node, "bad-value", f"{where}: '{text}' is not an IP address; write e.g. "
                       f"192.0.2.1 or 2001:db8::1{hint}")
            return None
        mapped = getattr(addr, "ipv4_mapped", None)
        return str(mapped or addr)

    def check_range(self, name: str, node: Node, tests: list[FieldTest]) -> None:
        """Warn when a field's bounds exclude every number ({gte: 5, lt: 1})."""
        bounds = [(cast(float, t.value), t.op) for t in tests]
        low = max(((v, op == "gt") for v, op in bounds if op in ("gt", "gte")), default=None)
        high = min(((v, op == "lt") for v, op in bounds if op in ("lt", "lte")),
                   default=None, key=lambda b: (b[0], not b[1]))
        if low is None or high is None:
            return
        if low[0] > high[0] or (low[0] == high[0] and (low[1] or high[1])):
            self.add(node, "warning", "never-true",
                     f"no value of '{name}' satisfies all of these bounds; check the "
                     "direction of gt/gte and lt/lte")


_REQUIRED_HINT = {
    "id": "a unique name such as burst-foreign-tls",
    "level": "one of " + ", ".join(LEVELS),
    "match": "the condition that flags a row",
}
_KIND_HINT: dict[tuple[Kind, Op], str] = {
    ("string", "gt"): "; gt/gte/lt/lte compare numbers",
    ("string", "gte"): "; gt/gte/lt/lte compare numbers",
    ("string", "lt"): "; gt/gte/lt/lte compare numbers",
    ("string", "lte"): "; gt/gte/lt/lte compare numbers",
    ("string", "cidr"): "; cidr applies to address fields such as destination.ip",
    ("address", "wildcard"): "; for address ranges use cidr",
    ("address", "regex"): "; for address ranges use cidr",
    ("number", "wildcard"): "; numbers are compared with eq/gt/gte/lt/lte",
    ("number", "regex"): "; numbers are compared with eq/gt/gte/lt/lte",
}

@dataclass(frozen=True)
class ParsedDocument:
    """What one document yielded; ``rule_id`` is kept even when the rule has errors, so
    duplicate ids are reported in the same pass as everything else."""

    rule: Rule | None
    findings: list[Finding]
    rule_id: tuple[str, Location] | None


def parse_document(root: Node, file: str, catalog: FieldCatalog) -> ParsedDocument:
    """One rule from one sanitized document, or None and the reasons why not."""
    doc = _Document(file, catalog)
    rule = doc.rule(root)
    return ParsedDocument(rule, doc.findings, doc.rule_id)
