"""Check rule files and report every problem at once, for authors and for CI.

Errors are what `load_rules` refuses (bad YAML, unknown fields, wrong value types, duplicate
ids, ...). Warnings are advice that does not stop loading: tags that will not group with
others, bounds that exclude every value, repeated list entries, rules without ATT&CK tags.
"""

from __future__ import annotations

from collections.abc import Iterable

from burstwatch.rules.catalog import FieldCatalog
from burstwatch.rules.findings import Finding
from burstwatch.rules.loader import PathLike, parse_paths
from burstwatch.rules.model import Rule


def lint(paths: Iterable[PathLike], catalog: FieldCatalog) -> list[Finding]:
    """Every finding in the rule files and folders under ``paths``, sorted by place."""
    rules, findings = parse_paths(paths, catalog)
    for rule in rules:
        findings.extend(advice(rule))
    return sorted(findings)


def advice(rule: Rule) -> list[Finding]:
    """Warnings about a rule that loads fine but will be hard to triage or maintain."""
    found: list[Finding] = []
    if not any(tag.startswith("attack.") for tag in rule.tags):
        found.append(Finding(rule.loc, "warning", "no-attack-tag",
                             f"rule '{rule.id}' has no MITRE ATT&CK tag; add e.g. "
                             "tags: [attack.exfiltration, attack.t1041]"))
    if not rule.description:
        found.append(Finding(rule.loc, "warning", "no-description",
                             f"rule '{rule.id}' has no description; say what behaviour it "
                             "catches and why that matters"))
    return found


def summary(findings: Iterable[Finding]) -> str:
    """One line such as '2 errors, 1 warning' for the end of a lint run."""
    items = list(findings)
    errors = sum(1 for f in items if f.is_error)
    warnings = len(items) - errors

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
