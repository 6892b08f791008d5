"""A Sigma rule's ``detection``: named selections and the ``condition`` that combines them,
turned into the engine's condition tree (`model.All`/`Any`/`Not`/`FieldTest`).

Sigma's meaning is kept: a selection mapping is the AND of its entries, a list of mappings
the OR of them, a list of values the OR of them (AND with ``|all``); plain strings match the
whole value in any case, with ``*`` and ``?`` wildcards. Modifiers: ``contains``,
``startswith``, ``endswith``, ``re`` (with ``i``, ``m``, ``s``), ``cidr``, ``gt``, ``gte``,
``lt``, ``lte``, ``all``, ``exists``, ``cased`` and ``neq``. Every value is read by the kind
of its field, and values that can never match (an unknown verdict, a share above 1) are
reported where they are written.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from burstwatch.rules.catalog import RENAMED_FIELDS, FieldCatalog, column_name, rule_name
from burstwatch.rules.condition import (
    And,
    ConditionError,
    Expr,
    Neg,
    Or,
    Quantified,
    Ref,
    parse_condition,
    references,
)
from burstwatch.rules.findings import Finding
from burstwatch.rules.model import All, Any, Condition, FieldTest, Kind, Location, Not, Op
from burstwatch.rules.patterns import PatternError, compile_regex, sigma_string
from burstwatch.rules.reader import NULL_TAG, NodeReader, describe, suggest
from burstwatch.rules.vocab import never_number, never_text
from burstwatch.rules.yamlnodes import INVALID_TAG, loc_of

COMPARE = ("gt", "gte", "lt", "lte")
AROUND = ("contains", "startswith", "endswith")
RE_FLAGS = {"i": "i", "ignorecase": "i", "m": "m", "multiline": "m", "s": "s", "dotall": "s"}
MODIFIERS = (*AROUND, "re", *RE_FLAGS, "cidr", *COMPARE, "all", "exists", "cased", "neq")
# Sigma modifiers burstwatch's records give nothing to apply to.
UNSUPPORTED = {
    "base64": "payloads are not kept", "base64offset": "payloads are not kept",
    "utf16": "payloads are not kept", "utf16le": "payloads are not kept",
    "utf16be": "payloads are not kept", "wide": "payloads are not kept",
    "windash": "there are no command lines", "expand": "there are no placeholders",
    "fieldref": "a field is compared with constants only",
    **{t: "there are no timestamp fields to test"
       for t in ("minute", "hour", "day", "week", "month", "year")},
}
MODIFIER_ALIASES = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "ge": "gte", "le": "lte",
                    "regex": "re", "subnet": "cidr", "not": "neq", "ne": "neq",
                    "wildcard": "a plain value with * and ?", "in": "a list of values"}
SELECTION_NAME = re.compile(r"[A-Za-z0-9_-]+")
_TUPLE_OPS = ("wildcard", "regex", "cidr")
_KIND_OF = {"gt": "number", "gte": "number", "lt": "number", "lte": "number", "cidr": "address"}


@dataclass(frozen=True)
class Detection:
    """The rule's condition; ``allow`` holds the top-level ``and not <filters>`` part."""

    match: Condition
    allow: Condition | None


class _Detection:
    def __init__(self, reader: NodeReader, catalog: FieldCatalog, category: str | None) -> None:
        self.r = reader
        self.catalog = catalog
        self.category = category
        self.selections: dict[str, Condition | None] = {}
        self.cond_node: Node = MappingNode("", [])  # the condition, once found

    # -- the detection mapping -------------------------------------------------------

    def parse(self, node: Node) -> Detection | None:
        if node.tag == INVALID_TAG:
            return None
        if not isinstance(node, MappingNode):
            self.r.error(node, "bad-value", f"detection must be a mapping of named selections "
                         f"and a condition, not {describe(node)}")
            return None
        before = self.r.errors
        cond_node: Node | None = None
        keys: dict[str, Node] = {}
        for key, value in node.value:
            name = str(key.value)
            if name == "condition":
                cond_node = self.cond_node = value
            elif name == "timeframe":
                self.r.error(key, "unsupported", "'timeframe' belongs to Sigma's old aggregations, "
                             "which burstwatch does not run; conversation rules judge a host "
                             "and a party over the horizon (docs/rules.md)")
            elif not SELECTION_NAME.fullmatch(name):
                self.r.error(key, "bad-selection", f"selection name '{name}' may hold only "
                             "letters, digits, '_' and '-'")
            else:
                keys[name] = key
                self.selections[name] = self.selection(name, value)
        if cond_node is None:
            self.r.error(node, "missing-key", "detection has no 'condition'; add e.g. "
                         "'condition: selection and not 1 of filter_*'")
        elif not keys:
            self.r.error(node, "missing-key", "detection has no selections; add e.g. "
                         "'selection: {burstwatch.destination.scope: foreign}'")
        expr = self.condition(cond_node) if cond_node is not None and keys else None
        if expr is None:
            return None
        used = set()
        for ref in references(expr):
            used.update(self.resolve(ref))
        for name, key in keys.items():
            if name not in used:
                self.r.add(key, "warning", "unused-selection",
                           f"selection '{name}' is not used in the condition")
        if self.r.errors > before:
            return None
        at = loc_of(self.cond_node, self.r.file)
        match, allow = _split(expr, self.resolve_quiet)
        return Detection(self.build(match, at), None if allow is None else self.build(allow, at))

    def condition(self, node: Node) -> Expr | None:
        if node.tag == INVALID_TAG:
            return None
        if isinstance(node, SequenceNode):
            self.r.error(node, "bad-condition", "write one condition, not a list; join the "
                         "parts with 'or' (Sigma's list of conditions is deprecated)")
            return None
        text = self.r.text(node, "condition")
        if text is None:
            return None
        try:
            expr = parse_condition(text)
        except ConditionError as exc:
            self.cond_error(node, exc.offset, exc.message)
            return None
        return expr

    def cond_error(self, node: Node, offset: int, message: str, code: str = "bad-condition") -> None:
        """A finding at the column of the token in the condition where that is known (a plain
        or quoted scalar on one line), else at the condition's start."""
        start = loc_of(node, self.r.file)
        one_line = isinstance(node, ScalarNode) and node.start_mark.line == node.end_mark.line
        shift = {None: 0, "'": 1, '"': 1}.get(cast(ScalarNode, node).style) if one_line else None
        where = start if shift is None else Location(start.file, start.line,
                                                      start.column + shift + offset)
        self.r.findings.append(Finding(where, "error", code, message))

    def resolve(self, ref: Ref | Quantified) -> list[str]:
        """The selections an operand names; an unknown name is a finding at its column."""
        if isinstance(ref, Ref):
            if ref.name in self.selections:
                return [ref.name]
            names = list(self.selections)
            message = (f"the condition names selection '{ref.name}', which the detection "
                       f"does not define" + (suggest(ref.name, names) or
                                             f"; selections: {', '.join(names)}"))
            self.cond_error(self.cond_node, ref.offset, message, "unknown-selection")
            return []
        names = [n for n in self.selections if ref.selects(n)]
        if not names:
            self.cond_error(self.cond_node, ref.offset,
                            f"'{'all' if ref.every else '1'} of {ref.pattern}' matches no selection; "
                            f"selections: {', '.join(self.selections)}", "unknown-selection")
        return names

    def resolve_quiet(self, ref: Ref | Quantified) -> list[str]:
        return [ref.name] if isinstance(ref, Ref) else [n for n in self.selections if ref.selects(n)]

    def build(self, expr: Expr, at: Location) -> Condition:
        if isinstance(expr, (Ref, Quantified)):
            parts = [cast(Condition, self.selections[n]) for n in self.resolve_quiet(expr)]
            if len(parts) == 1:
                return parts[0]
            every = isinstance(expr, Quantified) and expr.every
            return All(tuple(parts), at) if every else Any(tuple(parts), at)
        if isinstance(expr, Neg):
            return Not(self.build(expr.item, at), at)
        kids = tuple(self.build(e, at) for e in expr.items)
        return All(kids, at) if isinstance(expr, And) else Any(kids, at)

    # -- selections --------------------------------------------------------------------

    def selection(self, name: str, node: Node) -> Condition | None:
        if node.tag == INVALID_TAG:
            return None
        if isinstance(node, MappingNode):
            return self.conjunction(name, node)
        if isinstance(node, SequenceNode) and node.value and all(
                isinstance(item, MappingNode) for item in node.value):
            parts = [self.conjunction(name, item) for item in node.value]
            if any(p is None for p in parts):
                return None
            done = cast(list[Condition], parts)
            return done[0] if len(done) == 1 else Any(tuple(done), loc_of(node, self.r.file))
        if (isinstance(node, ScalarNode) and node.tag == NULL_TAG) or (
                isinstance(node, (SequenceNode, MappingNode)) and not node.value):
            self.r.error(node, "empty-selection", f"selection '{name}' is empty; write "
                         "'field: value' entries under it")
            return None
        self.r.error(node, "bad-selection",
                     f"selection '{name}' lists values without a field (a keyword search), "
                     "which burstwatch's records do not support; write 'field: value'")
        return None

    def conjunction(self, name: str, node: MappingNode) -> Condition | None:
        if not node.value:
            self.r.error(node, "empty-selection", f"selection '{name}' has an empty mapping; "
                         "write 'field: value' entries in it")
            return None
        parts = [self.item(key, value) for key, value in node.value]
        if any(p is None for p in parts):
            return None
        done = cast(list[Condition], parts)
        self.check_bounds(node, done)
        return done[0] if len(done) == 1 else All(tuple(done), loc_of(node, self.r.file))

    # -- one 'field|modifiers: values' entry --------------------------------------------

    def field_kind(self, name: str, key: Node) -> tuple[str, Kind] | None:
        """The frame column and kind of a rule field; findings for unknown or renamed ones."""
        if name in RENAMED_FIELDS:
            self.r.error(key, "renamed-field", f"'{name}' is renamed: write {RENAMED_FIELDS[name]}")
            return None
        column = column_name(name, self.catalog)
        spec = self.catalog.spec(column)
        if spec is None:
            names = [rule_name(n) for n in self.catalog.names()]
            hint = suggest(name, names) or ("; no known field is close, so check the field "
                                            "list in docs/rules.md")
            self.r.error(key, "unknown-field", f"unknown field '{name}'{hint}")
            return None
        if self.category is not None and self.category not in spec.levels:
            other = sorted(spec.levels)[0]
            names = [rule_name(n) for n in self.catalog.at_level(self.category).names()]
            self.r.error(key, "unknown-field",
                         f"'{name}' is a field of {other} records, and this rule reads "
                         f"{self.category}s (logsource category {self.category})"
                         + suggest(name, names))
            return None
        return column, spec.kind

    def modifiers(self, key: Node, mods: list[str], kind: Kind | None) -> bool:
        ok = True
        for mod in mods:
            if mod in MODIFIERS:
                continue
            ok = False
            if mod in UNSUPPORTED:
                self.r.error(key, "unsupported-modifier", f"modifier '{mod}' is not supported "
                             f"here: {UNSUPPORTED[mod]}")
            else:
                hint = suggest(mod, MODIFIERS, MODIFIER_ALIASES) or f"; modifiers: {', '.join(MODIFIERS)}"
                self.r.error(key, "bad-modifier", f"unknown modifier '{mod}'{hint}")
        if not ok:
            return False
        problem = _combination_problem(mods)
        code = "bad-modifier"
        if problem is None and kind is not None:
            problem, code = _kind_problem(mods, kind), "modifier-kind"
        if problem is not None:
            self.r.error(key, code, problem)
            return False
        return True

    def item(self, key: Node, node: Node) -> Condition | None:
        raw = str(key.value)
        name, *mods = raw.split("|")
        if not name:
            self.r.error(key, "bad-selection", f"'{raw}' has no field name: keyword searches are "
                         "not supported; write 'field|modifier: value'")
            return None
        resolved = self.field_kind(name, key)
        if not self.modifiers(key, mods, resolved[1] if resolved else None) or resolved is None:
            return None
        column, kind = resolved
        at = loc_of(key, self.r.file)
        if node.tag == INVALID_TAG:
            return None
        if isinstance(node, MappingNode):
            self.r.error(node, "bad-value", f"'{raw}' takes a value or a list of values, not a "
                         "mapping; put each modifier in the key, e.g. 'field|gte: 5'")
            return None
        if "exists" in mods:
            present = self.r.boolean(node, f"'{raw}'")
            if present is None:
                return None
            test = FieldTest(column, "exists", True, kind, at)
            return test if present else Not(test, at)
        values = node.value if isinstance(node, SequenceNode) else [node]
        if not values:
            self.r.error(node, "bad-value", f"'{raw}' has an empty list, which never matches; "
                         "list at least one value")
            return None
        if any(not isinstance(v, ScalarNode) for v in values):
            self.r.error(node, "bad-value", f"'{raw}' takes plain values, not nested lists or "
                         "mappings")
            return None
        if "all" in mods and len(values) < 2:
            self.r.error(key, "bad-modifier", "'all' needs a list of two or more values; for one "
                         "value leave 'all' out")
            return None
        if any(v.tag == NULL_TAG for v in values):  # Sigma's 'field: null': the field is absent
            if len(values) > 1 or mods:
                self.r.error(node, "bad-value", f"'{raw}': null stands alone and without "
                             "modifiers; it means the field has no value")
                return None
            return Not(FieldTest(column, "exists", True, kind, at), at)
        tests = self.tests(name, column, kind, mods, values, at)
        if tests is None:
            return None
        if len(tests) == 1:
            cond: Condition = tests[0]
        else:
            cond = All(tuple(tests), at) if "all" in mods else Any(tuple(tests), at)
        return Not(cond, at) if "neq" in mods else cond

    def tests(self, name: str, column: str, kind: Kind, mods: list[str],
              values: list[Node], at: Location) -> list[FieldTest] | None:
        """The field tests of one entry: one per value with 'all', else grouped by how they
        match (plain values in one eq/in test, wildcards in one, regexes in one)."""
        split = "all" in mods
        groups: dict[tuple[Op, Kind], list[float | str]] = defaultdict(list)
        order: list[tuple[Op, Kind, float | str]] = []
        ok = True
        for node in cast(list[ScalarNode], values):
            got = self.value(name, kind, mods, node)
            if got is None:
                ok = False
                continue
            order.append(got)
            groups[(got[0], got[1])].append(got[2])
        if not ok:
            return None
        if split:
            return [FieldTest(column, op, (v,) if op in _TUPLE_OPS else v, k, at)  # type: ignore[arg-type]
                    for op, k, v in order]
        out = []
        for (op, k), vs in groups.items():
            if op == "eq" and len(vs) > 1:
                out.append(FieldTest(column, "in", _unique(vs), k, at))
            elif op in _TUPLE_OPS:
                out.append(FieldTest(column, op, _unique(vs), k, at))
            else:
                out.extend(FieldTest(column, op, v, k, at) for v in _unique(vs))
        return out

    def value(self, name: str, kind: Kind, mods: list[str],
              node: ScalarNode) -> tuple[Op, Kind, float | str] | None:
        """One value as (operator, kind the column is read as, constant)."""
        where = f"'{name}'"
        compare = next((m for m in mods if m in COMPARE), None)
        if kind == "number":
            number = self.r.number(node, where)
            if number is None:
                return None
            op: Op = cast(Op, compare or "eq")
            never = never_number(name, op, number)
            if never is not None:
                self.r.add(node, "error" if never[0] else "warning",
                           "never-matches" if never[0] else "always-true", never[1])
                return None if never[0] else (op, kind, number)
            return op, kind, number
        text = self.r.text(node, where)
        if text is None:
            return None
        if "cidr" in mods:
            net = self.network(node, where, text)
            return None if net is None else ("cidr", "address", net)
        if "re" in mods:
            flags = "".join(sorted({RE_FLAGS[m] for m in mods if m in RE_FLAGS}))
            pattern = self.regex(node, where, text)
            if pattern is None:
                return None
            return "regex", "string", (f"(?{flags})" if flags else "") + pattern
        around = next((m for m in mods if m in AROUND), None)
        if around is not None:
            text = {"contains": f"*{text}*", "startswith": f"{text}*", "endswith": f"*{text}"}[around]
        how, pattern = sigma_string(text, cased="cased" in mods)
        impossible = never_text(name, how, pattern)
        if impossible is not None:
            self.r.error(node, "never-matches", impossible)
            return None
        if how == "plain" and kind == "address":
            addr = self.address(node, where, pattern)
            return None if addr is None else ("eq", "address", addr)
        return cast(Op, {"plain": "eq"}.get(how, how)), "string", pattern

    def regex(self, node: Node, where: str, text: str) -> str | None:
        try:
            re.compile(text)
        except re.error as exc:
            self.r.error(node, "bad-value",
                         f"{where}: bad regular expression ({exc.msg} at position {exc.pos}); "
                         "escape special characters with a backslash, e.g. '\\.' for a dot, "
                         "or use a plain value with * and ? wildcards")
            return None
        try:
            compile_regex(text)
        except PatternError as exc:
            self.r.error(node, "bad-value", f"{where}: {exc}")
            return None
        return text

    def network(self, node: Node, where: str, text: str) -> str | None:
        try:
            return str(ipaddress.ip_network(text.strip(), strict=True))
        except ValueError as exc:
            try:
                loose = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                self.r.error(node, "bad-value",
                             f"{where}: '{text}' is not a network ({exc}); write e.g. "
                             "203.0.113.0/24 or 2001:db8::/32")
                return None
            self.r.error(node, "bad-value", f"{where}: '{text}' has host bits set; write {loose}")
            return None

    def address(self, node: Node, where: str, text: str) -> str | None:
        try:
            addr = ipaddress.ip_address(text.strip())
        except ValueError:
            hint = "; for a network use |cidr" if "/" in text else ""
            self.r.error(node, "bad-value", f"{where}: '{text}' is not an IP address; write "
                         f"e.g. 192.0.2.1 or 2001:db8::1{hint}")
            return None
        mapped = getattr(addr, "ipv4_mapped", None)
        return str(mapped or addr)

    def check_bounds(self, node: Node, tests: list[Condition]) -> None:
        """Warn when one selection's bounds on a field exclude every number (gte 5, lt 1)."""
        by_field: dict[str, list[FieldTest]] = defaultdict(list)
        for t in tests:
            if isinstance(t, FieldTest) and t.op in COMPARE:
                by_field[t.field].append(t)
        for field, bounds in by_field.items():
            lows = [(cast(float, t.value), t.op == "gt") for t in bounds if t.op in ("gt", "gte")]
            highs = [(cast(float, t.value), t.op == "lt") for t in bounds if t.op in ("lt", "lte")]
            if not lows or not highs:
                continue
            low = max(lows)
            high = min(highs, key=lambda b: (b[0], not b[1]))
            if low[0] > high[0] or (low[0] == high[0] and (low[1] or high[1])):
                self.r.add(node, "warning", "never-true",
                           f"no value of '{rule_name(field)}' satisfies all of these bounds; "
                           "check the direction of gt/gte and lt/lte")


def _main(mods: list[str]) -> list[str]:
    """The modifiers that say how a value is compared (at most one may be given)."""
    return [m for m in mods if m in (*AROUND, "re", "cidr", *COMPARE, "exists")]


def _combination_problem(mods: list[str]) -> str | None:
    main = _main(mods)
    if len(main) > 1:
        return f"modifiers {' and '.join(main)} cannot be combined; use one of them"
    if any(m in RE_FLAGS for m in mods) and "re" not in mods:
        return "modifiers i, m and s are flags of 're'; write e.g. 'field|re|i: ...'"
    if "exists" in mods and len(mods) > 1:
        return "'exists' stands alone: write 'field|exists: true' (or false)"
    if "cased" in mods and main and main[0] not in AROUND:
        return f"'cased' applies to plain strings and {', '.join(AROUND)}, not '{main[0]}'"
    return None


def _kind_problem(mods: list[str], kind: Kind) -> str | None:
    """Why these modifiers cannot test a field of ``kind`` (None when they can)."""
    main = _main(mods)
    how = main[0] if main else "cased" if "cased" in mods else None
    if how is None or how == "exists":
        return None
    wanted = _KIND_OF.get(how)
    if wanted == "number" and kind != "number":
        return f"'{how}' cannot test a {kind} field; gt, gte, lt and lte compare numbers"
    if wanted == "address" and kind != "address":
        return f"'{how}' cannot test a {kind} field; cidr applies to address fields such as destination.ip"
    if wanted is None and kind == "number":
        return (f"'{how}' cannot test a number field; numbers are compared with plain values, "
                "gt, gte, lt and lte")
    return None


def _unique(values: list[float | str]) -> tuple[float, ...] | tuple[str, ...]:
    return tuple(dict.fromkeys(values))  # type: ignore[return-value]


def _split(expr: Expr, resolve: Callable[[Ref | Quantified], list[str]]
           ) -> tuple[Expr, Expr | None]:
    """Sigma's exclusions: top-level 'and not X' operands where X names only selections
    called filter... become the allow part."""
    items = list(expr.items) if isinstance(expr, And) else [expr]

    def only_filters(e: Expr) -> bool:
        found = [n for r in references(e) for n in resolve(r)]
        return bool(found) and all(n.startswith("filter") for n in found)

    filters = [i.item for i in items if isinstance(i, Neg) and only_filters(i.item)]
    rest = [i for i in items if not (isinstance(i, Neg) and only_filters(i.item))]
    if not filters or not rest:
        return expr, None
    match = rest[0] if len(rest) == 1 else And(tuple(rest))
    allow = filters[0] if len(filters) == 1 else Or(tuple(filters))
    return match, allow


def parse_detection(reader: NodeReader, node: Node, catalog: FieldCatalog,
                    category: str | None) -> Detection | None:
    """The condition tree of a rule's detection, or None with findings saying why not;
    without a category (a bad logsource) fields of either level are accepted."""
    return _Detection(reader, catalog, category).parse(node)
