"""Read YAML as nodes, never as Python objects, so every value keeps its line and column.

Only ``yaml.SafeLoader`` composition is used and nodes are never constructed, so a tag such as
``!!python/object/apply`` is inert here; `sanitize` reports it and cuts it out of the tree.
Aliases (``*name``) are replaced by a marker node at compose time so they can be reported at
their own line; this also rules out alias cycles and "billion laughs" expansion. PyYAML keeps
the last of two equal mapping keys without a word; `sanitize` reports the second one instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from burstwatch.inputfiles import InputFileError
from burstwatch.rules.findings import Finding
from burstwatch.rules.model import Location

YAML_TAG = "tag:yaml.org,2002:"
ALIAS_TAG = "burstwatch:alias"
INVALID_TAG = "burstwatch:invalid"  # stands in for a node already reported as an error
PLAIN_TAGS = frozenset(
    YAML_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)
MAX_DEPTH = 64


class _AliasMarkers(Composer):
    """A composer that turns each alias into a marker scalar instead of a shared node."""

    check_event: Callable[..., bool]  # the parser's, Python's or libyaml's
    get_event: Callable[[], Any]

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            return ScalarNode(ALIAS_TAG, event.anchor, event.start_mark, event.end_mark)
        node: Node | None = super().compose_node(parent, index)
        return node


class _MarkedLoader(_AliasMarkers, yaml.SafeLoader):
    """PyYAML's own reader, scanner and parser: their errors and marks are the ones reported."""


_FastLoader: Any = None
if yaml.__with_libyaml__:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class _FastLoader(_AliasMarkers, CParser, Resolver):  # type: ignore[no-redef]
        """libyaml's parser (events made in C; the Python parser took 12 ms of every scan's
        start for the shipped rules), the same composer: the same nodes and marks."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            Resolver.__init__(self)

        def compose_scalar_node(self, anchor: Any) -> ScalarNode:
            node: ScalarNode = super().compose_scalar_node(anchor)
            if node.style == "":  # libyaml's plain style; PyYAML's parser says None
                node.style = None
            return node


def loc_of(node: Node, file: str) -> Location:
    """Where a node starts, counting from 1 as editors do (PyYAML counts from 0)."""
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def short_tag(tag: str) -> str:
    """Write a tag the way an author would have typed it (``!!python/...``)."""
    return "!!" + tag[len(YAML_TAG):] if tag.startswith(YAML_TAG) else tag


def compose_documents(text: str, file: str) -> tuple[list[Node], list[Finding]]:
    """All documents of a YAML stream up to the first syntax error, plus that error if any.

    Empty documents (e.g. after a trailing ``---``) are dropped. A text libyaml reads without
    a word is composed from its events; anything else (a character the YAML reader refuses, a
    syntax error, nesting too deep) is read again by PyYAML's parser, whose findings these are.
    """
    fast = _compose_fast(text)
    if fast is not None:
        return fast, []
    docs: list[Node] = []
    findings: list[Finding] = []
    try:
        loader = _MarkedLoader(text)  # checks every character first
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return [], [Finding(Location(file, line, column), "error", "yaml-syntax",
                            f"character U+{exc.character if isinstance(exc.character, int) else ord(exc.character):04X} "
                            "is not allowed in YAML; remove it")]
    try:
        _read_documents(loader, docs)
    except yaml.MarkedYAMLError as exc:
        findings.append(_syntax_finding(exc, file))
    except yaml.YAMLError as exc:
        findings.append(
            Finding(Location(file, 1, 1), "error", "yaml-syntax", f"cannot read YAML: {exc}")
        )
    except RecursionError:
        findings.append(
            Finding(Location(file, 1, 1), "error", "yaml-syntax",
                    "YAML is nested too deeply to read; flatten the structure")
        )
    finally:
        loader.dispose()
    return docs, findings


def _read_documents(loader: Any, docs: list[Node]) -> None:
    """Append each non-empty document's root node to ``docs``."""
    while loader.check_node():
        node = loader.get_node()
        if node is None:
            continue
        if isinstance(node, ScalarNode) and node.tag == YAML_TAG + "null":
            continue
        docs.append(node)


def _compose_fast(text: str) -> list[Node] | None:
    """The documents as composed from libyaml's events, or None: no libyaml, a character
    PyYAML's reader refuses, or anything libyaml does not read without an error."""
    if _FastLoader is None or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    loader = _FastLoader(text)
    docs: list[Node] = []
    try:
        _read_documents(loader, docs)
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()
    return docs


def _syntax_finding(exc: yaml.MarkedYAMLError, file: str) -> Finding:
    mark = exc.problem_mark or exc.context_mark
    where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
    message = f"YAML syntax error: {exc.problem or exc}"
    ctx = exc.context_mark
    if exc.context and ctx is not None and (mark is None or ctx.line != mark.line):
        message += f" ({exc.context} that started at line {ctx.line + 1}, column {ctx.column + 1})"
    message += "; fix the YAML here (check indentation, colons, and closing brackets or quotes)"
    return Finding(where, "error", "yaml-syntax", message)


def sanitize(root: Node, file: str) -> tuple[Node, list[Finding]]:
    """Report and cut out every node the schema must not see: foreign tags, aliases,
    duplicate or non-scalar keys, and over-deep nesting.

    Each such node is replaced by an inert ``INVALID_TAG`` scalar (in place), so later checks
    skip it instead of reporting it a second time.
    """
    findings: list[Finding] = []

    def bad(node: Node, code: str, message: str) -> Node:
        findings.append(Finding(loc_of(node, file), "error", code, message))
        return ScalarNode(INVALID_TAG, "", node.start_mark, node.end_mark)

    def clean(node: Node, depth: int) -> Node:
        if node.tag == ALIAS_TAG:
            return bad(node, "yaml-alias",
                       f"YAML alias '*{node.value}' is not supported (an alias can expand "
                       "without bound); write the value out in full")
        if node.tag not in PLAIN_TAGS:
            return bad(node, "yaml-tag",
                       f"YAML tag '{short_tag(node.tag)}' is not allowed: these files hold "
                       "plain data only; remove the tag")
        if depth > MAX_DEPTH:
            return bad(node, "too-deep",
                       f"nested more than {MAX_DEPTH} levels deep; simplify the structure")
        if isinstance(node, SequenceNode):
            node.value = [clean(child, depth + 1) for child in node.value]
        elif isinstance(node, MappingNode):
            node.value = _clean_pairs(node, file, findings, lambda n: clean(n, depth + 1))
        return node

    return clean(root, 0), findings


def _clean_pairs(
    node: MappingNode, file: str, findings: list[Finding], clean: Callable[[Node], Node]
) -> list[tuple[Node, Node]]:
    seen: dict[str, Node] = {}
    kept: list[tuple[Node, Node]] = []
    for key, value in node.value:
        if not isinstance(key, ScalarNode) or key.tag not in PLAIN_TAGS:
            findings.append(
                Finding(loc_of(key, file), "error", "yaml-key",
                        "mapping keys must be plain names; write the key as text")
            )
            continue
        first = seen.get(key.value)
        if first is not None:
            findings.append(
                Finding(
                    loc_of(key, file), "error", "duplicate-key",
                    f"key '{key.value}' is repeated (first at line {first.start_mark.line + 1}, "
                    f"column {first.start_mark.column + 1}); "
                    "YAML would silently keep only the last one, so remove or merge one of them",
                    related=(loc_of(first, file),),
                )
            )
            continue
        seen[key.value] = key
        kept.append((key, clean(value)))
    return kept


def plain_data(text: str, where: str) -> Any:
    """The plain data of a one-document YAML text (None when empty), composed and checked as
    rules are (no aliases, tags, duplicate keys or over-deep nesting): for the other YAML
    files burstwatch reads, configuration and rule tests. InputFileError names the place."""
    docs, findings = compose_documents(text, where)
    if not findings and len(docs) > 1:
        raise InputFileError(where, f"expected one YAML document, found {len(docs)}")
    if not findings and docs:
        docs[0], findings = sanitize(docs[0], where)
    if findings:
        loc = findings[0].loc
        raise InputFileError(where, findings[0].message, loc.line, loc.column)
    if not docs:
        return None
    return yaml.SafeLoader("").construct_document(docs[0])
