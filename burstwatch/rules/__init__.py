"""Detection rules: Sigma rules, checked against a field catalog, applied to frames.

Typical use::

    catalog = default_catalog().register("burst_duration", "number")
    rules = load_rules(["rules/"], catalog)          # raises RuleError listing every problem
    for result in evaluate_all(rules, frame):
        for row, evidence in result.explanations():
            ...
"""

from burstwatch.rules.catalog import FieldCatalog, FieldSpec, default_catalog
from burstwatch.rules.columns import FrameError
from burstwatch.rules.evaluate import Evidence, RuleResult, evaluate, evaluate_all
from burstwatch.rules.findings import Finding, RuleError
from burstwatch.rules.lint import lint
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
    "default_catalog", "evaluate", "evaluate_all", "leaves", "lint", "load_rules",
    "parse_paths", "parse_text", "rule_files",
]
