"""Detection rules: Sigma rules, checked against a field catalog, applied to frames.

Typical use::

    catalog = default_catalog().register("burst_duration", "number")
    rules = load_rules(["rules/"], catalog)          # raises RuleError listing every problem
    for result in evaluate_all(rules, frame):
        for row, evidence in result.explanations():
            ...

The members are loaded on first use (``burstwatch.lazy``): the configuration reads its YAML
with ``rules.yamlnodes`` without loading the rule machinery, which a scan loads while its
input is being read.
"""

from typing import TYPE_CHECKING

from burstwatch.lazy import lazy_attributes

# Loaded now: a function named as its module would otherwise be shadowed by the module once
# that is imported (``lint`` is imported from ``burstwatch.rules.lint`` for that reason).
from burstwatch.rules.evaluate import Evidence, RuleResult, evaluate, evaluate_all

if TYPE_CHECKING:
    from burstwatch.rules.catalog import FieldCatalog, FieldSpec, default_catalog
    from burstwatch.rules.columns import FrameError
    from burstwatch.rules.findings import Finding, RuleError
    from burstwatch.rules.loader import load_rules, parse_paths, parse_text, rule_files
    from burstwatch.rules.model import (
        LEVELS,
        OPS,
        All,
        Any,
        Condition,
        FieldTest,
        Location,
        Not,
        Rule,
        leaves,
    )

__all__ = [
    "LEVELS", "OPS", "All", "Any", "Condition", "Evidence", "FieldCatalog", "FieldSpec",
    "FieldTest", "Finding", "FrameError", "Location", "Not", "Rule", "RuleError", "RuleResult",
    "default_catalog", "evaluate", "evaluate_all", "leaves", "load_rules",
    "parse_paths", "parse_text", "rule_files",
]

__getattr__ = lazy_attributes(__name__, {
    "FieldCatalog": "catalog", "FieldSpec": "catalog", "default_catalog": "catalog",
    "FrameError": "columns", "Finding": "findings",
    "RuleError": "findings", "load_rules": "loader", "parse_paths": "loader",
    "parse_text": "loader", "rule_files": "loader", "LEVELS": "model", "OPS": "model",
    "All": "model", "Any": "model", "Condition": "model", "FieldTest": "model",
    "Location": "model", "Not": "model", "Rule": "model", "leaves": "model"})
