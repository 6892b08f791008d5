"""Turn one sanitized YAML document, a Sigma rule, into a `Rule`, reporting every problem
instead of the first.

A rule file is a Sigma rule (specification 2.0): ``title``, ``id`` (a UUID), ``name`` (the
short name burstwatch shows, e.g. bw-001), ``status``, ``description``, ``references``,
``author``, ``date``, ``modified``, ``tags``, ``logsource`` (product burstwatch; category
flow or conversation: which records the rule reads), ``detection`` (see `detection`),
``falsepositives`` and ``level``. Keys outside Sigma are warnings (Sigma allows custom
attributes), unless they look like a misspelt Sigma key.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import cast

from yaml.nodes import MappingNode, Node

from burstwatch.rules.catalog import RULE_LEVELS, FieldCatalog
from burstwatch.rules.detection import parse_detection
from burstwatch.rules.findings import Finding
from burstwatch.rules.model import LEVELS, Level, Location, Rule
from burstwatch.rules.reader import NodeReader, describe, suggest
from burstwatch.rules.yamlnodes import INVALID_TAG, loc_of

TOP_KEYS = (
    "title", "id", "name", "related", "taxonomy", "status", "description", "license",
    "author", "references", "date", "modified", "logsource", "detection", "fields",
    "falsepositives", "level", "tags", "scope",
)
LOGSOURCE_KEYS = ("product", "category", "service", "definition")
REQUIRED = ("title", "id", "logsource", "detection", "level")
LIST_KEYS = ("references", "tags", "falsepositives", "fields", "scope")
TEXT_KEYS = ("description", "author", "license", "taxonomy")
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
PRODUCT = "burstwatch"
# The keys of burstwatch's earlier rule format, and what Sigma writes instead.
OLD_KEYS = {
    "match": "write the condition as Sigma's 'detection:' with named selections and "
             "'condition: selection'",
    "allow": "write each allow-list as a 'filter_...' selection under 'detection:' and end "
             "the condition with 'and not 1 of filter_*'",
}

TAG_RE = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_.-]+)+")
ATTACK_TECHNIQUE_RE = re.compile(r"attack\.t\d{4}(\.\d{3})?")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# ATT&CK tactics as Sigma tags write them now (hyphens, not the old underscores).
TACTICS = (
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence",
    "privilege-escalation", "defense-evasion", "credential-access", "discovery",
    "lateral-movement", "collection", "command-and-control", "exfiltration", "impact",
)


@dataclass
class _Document(NodeReader):
    """One rule document; the parser methods add findings as they go."""

    catalog: FieldCatalog = field(default_factory=FieldCatalog)
    ids: list[tuple[str, Location]] = field(default_factory=list)  # name and uuid, for duplicates

    def rule(self, root: Node) -> Rule | None:
        if root.tag == INVALID_TAG:
            return None
        if not isinstance(root, MappingNode):
            self.error(root, "not-a-rule",
                       f"a rule must be a mapping with {', '.join(REQUIRED)}, not "
                       f"{describe(root)}; separate several rules with a '---' line")
            return None
        before = self.errors
        present = self.keys(root)
        if present is None:
            return None
        for key in REQUIRED:
            if key not in present:
                self.error(root, "missing-key", f"rule has no '{key}'; add '{key}: ...'"
                           + (f" ({_REQUIRED_HINT[key]})" if key in _REQUIRED_HINT else ""))

        rule_uuid = self.uuid(present["id"]) if "id" in present else None
        name = self.name(present["name"]) if "name" in present else None
        category = self.logsource(present["logsource"]) if "logsource" in present else None
        title = self.text(present["title"], "title") if "title" in present else None
        level = self.level(present["level"]) if "level" in present else None
        status = self.status(present["status"]) if "status" in present else ""
        dates = {k: self.date(present[k], k) for k in ("date", "modified") if k in present}
        detection = None  # read even without a category, so its problems are reported too
        if "detection" in present:
            detection = parse_detection(self, present["detection"], self.catalog, category)
        meta = {k: self.text(present[k], k) for k in TEXT_KEYS if k in present}
        lists = {k: self.text_list(present[k], k) for k in LIST_KEYS if k in present}
        if lists.get("tags"):
            self.check_tags(present["tags"])

        if (self.errors > before or rule_uuid is None or title is None or level is None
                or detection is None or category is None):
            return None
        return Rule(
            id=name or rule_uuid,
            title=title.strip(),
            level=level,
            match=detection.match,
            allow=detection.allow,
            description=(meta.get("description") or "").strip(),
            author=(meta.get("author") or "").strip(),
            references=lists.get("references") or (),
            tags=lists.get("tags") or (),
            falsepositives=lists.get("falsepositives") or (),
            uuid=rule_uuid,
            status=status or "",
            date=dates.get("date") or "",
            modified=dates.get("modified") or "",
            applies_to=category,
            loc=loc_of(root, self.file),
        )

    def keys(self, root: MappingNode) -> dict[str, Node] | None:
        """The rule's keys; findings for unknown ones and for documents that are no rule."""
        present: dict[str, Node] = {}
        for key, value in root.value:
            name = str(key.value)
            if name in TOP_KEYS:
                present[name] = value
            elif name == "correlation":
                self.error(key, "unsupported", "Sigma correlation rules are not supported: "
                           "conversation rules (logsource category conversation) judge one "
                           "host and one party over the horizon instead; docs/rules.md says why")
                return None
            elif name == "filter":
                self.error(key, "unsupported", "Sigma filter documents are not supported; write "
                           "the exclusion as a 'filter_...' selection in the rule itself")
                return None
            elif name in OLD_KEYS:
                self.error(key, "unknown-key", f"'{name}' is not a Sigma key; {OLD_KEYS[name]}")
            elif name == "tests":
                self.error(key, "unknown-key",
                           "test cases do not belong in the rule file; move them to a "
                           "'<rule file name>.tests.yml' file beside it")
            elif hint := suggest(name, TOP_KEYS):
                self.error(key, "unknown-key", f"unknown key '{name}'{hint}")
            else:
                self.add(key, "warning", "custom-key", f"'{name}' is not a Sigma key; "
                         "burstwatch ignores it")
        return present

    def uuid(self, node: Node) -> str | None:
        text = self.text(node, "id")
        if text is None:
            return None
        try:
            value = str(uuid.UUID(text.strip()))
        except ValueError:
            self.error(node, "bad-id", f"id '{text}' is not a UUID, as Sigma requires; generate "
                       "one (python3 -c 'import uuid; print(uuid.uuid4())'), keep it for the "
                       "rule's life, and put a short name in 'name:'")
            return None
        self.ids.append((value, loc_of(node, self.file)))
        return value

    def name(self, node: Node) -> str | None:
        text = self.text(node, "name")
        if text is not None and not text.strip():
            self.error(node, "bad-value", "name must not be empty; write a short unique name "
                       "such as 'burst-foreign-tls'")
            return None
        if text is not None:
            self.ids.append((text, loc_of(node, self.file)))
        return text

    def logsource(self, node: Node) -> str | None:
        """Sigma's ``logsource``; its ``category`` says which records the rule reads."""
        if node.tag == INVALID_TAG:
            return None
        if not isinstance(node, MappingNode):
            self.error(node, "bad-value", f"logsource must be a mapping, not {describe(node)}; "
                       "write logsource: {product: burstwatch, category: flow}")
            return None
        category: str | None = None
        product: str | None = None
        for key, value in node.value:
            name = str(key.value)
            if name not in LOGSOURCE_KEYS:
                hint = suggest(name, LOGSOURCE_KEYS) or f"; valid keys: {', '.join(LOGSOURCE_KEYS)}"
                self.error(key, "unknown-key", f"unknown logsource key '{name}'{hint}")
                continue
            text = self.text(value, f"logsource {name}")
            if text is None:
                continue
            if name == "category":
                if text in RULE_LEVELS:
                    category = text
                else:
                    hint = suggest(text, RULE_LEVELS) or f"; write one of {', '.join(RULE_LEVELS)}"
                    self.error(value, "bad-value", f"unknown logsource category '{text}'{hint}")
                    return None
            elif name == "product":
                product = text
                if text != PRODUCT:
                    self.error(value, "bad-value", f"logsource product '{text}' is not "
                               f"burstwatch; write product: {PRODUCT}")
            elif name == "service":
                self.error(value, "bad-value", "burstwatch has no logsource services; remove "
                           "'service' and say which records with 'category'")
        if product is None:
            self.error(node, "missing-key", f"logsource has no 'product'; add product: {PRODUCT}")
        if category is None:
            self.error(node, "missing-key", "logsource has no 'category'; add category: flow "
                       "(flow-windows) or category: conversation (a host and a party)")
        return category

    def level(self, node: Node) -> Level | None:
        text = self.text(node, "level")
        if text is None:
            return None
        if text in LEVELS:
            return cast(Level, text)
        if text == "informational":
            self.add(node, "warning", "level-mapped", "level 'informational' is read as 'low', "
                     f"burstwatch's lowest case level (levels: {', '.join(LEVELS)})")
            return "low"
        hint = suggest(text, LEVELS) or f"; write one of {', '.join(LEVELS)}"
        self.error(node, "bad-value", f"unknown level '{text}'{hint}")
        return None

    def status(self, node: Node) -> str | None:
        text = self.text(node, "status")
        if text is None or text in STATUSES:
            return text
        hint = suggest(text, STATUSES) or f"; write one of {', '.join(STATUSES)}"
        self.error(node, "bad-value", f"unknown status '{text}'{hint}")
        return None

    def date(self, node: Node, key: str) -> str | None:
        text = self.text(node, key)
        if text is None:
            return None
        try:
            if not DATE_RE.fullmatch(text):
                raise ValueError
            dt.date.fromisoformat(text)
        except ValueError:
            fixed = text.replace("/", "-")
            example = fixed if DATE_RE.fullmatch(fixed) else "2025-06-30"
            self.error(node, "bad-value", f"{key} '{text}' is not a date as Sigma writes it "
                       f"(YYYY-MM-DD); write {example}")
            return None
        return text

    def check_tags(self, node: Node) -> None:
        """Warn about tags that will not group with others (case, spaces, technique ids,
        old tactic spellings)."""
        for item in node.value:
            tag = str(item.value)
            tactic = tag.removeprefix("attack.").replace("_", "-")
            if not TAG_RE.fullmatch(tag):
                fixed = re.sub(r"\s+", "_", tag.strip().lower())
                self.add(item, "warning", "tag-style",
                         f"tag '{tag}' should be lowercase 'namespace.name'; write '{fixed}'")
            elif (tag.startswith("attack.t") and tag[8:9].isdigit()
                  and not ATTACK_TECHNIQUE_RE.fullmatch(tag)):
                self.add(item, "warning", "tag-style",
                         f"'{tag}' is not an ATT&CK technique id; write e.g. 'attack.t1041' "
                         "or 'attack.t1048.003'")
            elif tag.startswith("attack.") and "_" in tag and tactic in TACTICS:
                self.add(item, "warning", "tag-style",
                         f"ATT&CK tactic tags use hyphens now; write 'attack.{tactic}'")


_REQUIRED_HINT = {
    "id": "a UUID that stays with the rule; a short name goes in 'name:'",
    "level": "one of " + ", ".join(LEVELS),
    "logsource": "{product: burstwatch, category: flow} or category: conversation",
    "detection": "named selections and a 'condition'",
}


@dataclass(frozen=True)
class ParsedDocument:
    """What one document yielded; ``ids`` (its name and UUID) are kept even when the rule
    has errors, so duplicates are reported in the same pass as everything else."""

    rule: Rule | None
    findings: list[Finding]
    ids: list[tuple[str, Location]]


def parse_document(root: Node, file: str, catalog: FieldCatalog) -> ParsedDocument:
    """One rule from one sanitized document, or None and the reasons why not."""
    doc = _Document(file, catalog=catalog)
    rule = doc.rule(root)
    return ParsedDocument(rule, doc.findings, doc.ids)

