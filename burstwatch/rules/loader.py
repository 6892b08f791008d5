"""Find rule files, read them, and build rules; errors anywhere stop loading, all reported.

Layout convention for rule folders:

* every ``*.yml`` / ``*.yaml`` file below a given folder is a rule file (searched recursively,
  in sorted order so results do not depend on the file system);
* one file holds one rule, or several separated by ``---`` lines;
* test cases for a rule file sit beside it as ``<name>.tests.yml`` (or ``.tests.yaml``), or
  anywhere in a folder named ``tests``; those are never read as rules;
* a file named explicitly on the command line is always read as rules.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from burstwatch.inputfiles import InputFileError, decode_text, read_bounded
from burstwatch.rules.catalog import FieldCatalog
from burstwatch.rules.findings import Finding, RuleError
from burstwatch.rules.model import Location, Rule
from burstwatch.rules.schema import parse_document
from burstwatch.rules.yamlnodes import compose_documents, sanitize

RULE_SUFFIXES = (".yml", ".yaml")
TEST_SUFFIXES = (".tests.yml", ".tests.yaml")
TESTS_DIR = "tests"
MAX_FILE_BYTES = 4 * 1024 * 1024

PathLike = str | os.PathLike[str]


def is_rule_file(path: Path) -> bool:
    """True for rule files found in a folder walk (not test-case files, not ``tests/``)."""
    name = path.name.lower()
    return name.endswith(RULE_SUFFIXES) and not name.endswith(TEST_SUFFIXES)


def rule_files(paths: Iterable[PathLike]) -> tuple[list[Path], list[Finding]]:
    """Expand files and folders into rule files; missing paths and empty folders are findings."""
    found: list[Path] = []
    findings: list[Finding] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(
                p for p in path.rglob("*")
                if p.is_file() and is_rule_file(p)
                and TESTS_DIR not in p.relative_to(path).parts[:-1]
            )
            if not inside:
                findings.append(Finding(Location(str(path)), "warning", "no-rules",
                                        "no *.yml or *.yaml rule files in this folder"))
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            findings.append(Finding(Location(str(path)), "error", "read-error",
                                    "no such file or folder; check the path"))
    unique = list(dict.fromkeys(found))  # a file named twice is read once
    return unique, findings


def parse_text(text: str, file: str, catalog: FieldCatalog) -> tuple[list[Rule], list[Finding]]:
    """Rules from one YAML stream (one rule per document) and every problem in it."""
    rules, ids, findings = _parse_text(text, file, catalog)
    return rules, findings + duplicate_ids(ids)


def _parse_text(
    text: str, file: str, catalog: FieldCatalog
) -> tuple[list[Rule], list[tuple[str, Location]], list[Finding]]:
    docs, findings = compose_documents(text, file)
    rules: list[Rule] = []
    ids: list[tuple[str, Location]] = []
    for doc in docs:
        clean, problems = sanitize(doc, file)
        findings.extend(problems)
        parsed = parse_document(clean, file, catalog)
        findings.extend(parsed.findings)
        ids.extend(parsed.ids)
        if parsed.rule is not None:
            rules.append(parsed.rule)
    return rules, ids, findings


def _parse_file(
    path: Path, catalog: FieldCatalog
) -> tuple[list[Rule], list[tuple[str, Location]], list[Finding]]:
    file = str(path)
    try:
        text = decode_text(read_bounded(path, MAX_FILE_BYTES, "a rule file (split it)"), file)
    except InputFileError as exc:
        return [], [], [Finding(Location(file, exc.line, exc.column), "error", "read-error",
                                exc.problem)]
    return _parse_text(text, file, catalog)


def duplicate_ids(ids: Iterable[tuple[str, Location]]) -> list[Finding]:
    """One error at each definition of a reused id, naming the other places it is defined."""
    by_id: dict[str, list[Location]] = defaultdict(list)
    for rule_id, loc in ids:
        by_id[rule_id].append(loc)
    findings = []
    for rule_id, places in by_id.items():
        if len(places) < 2:
            continue
        for i, here in enumerate(places):
            others = tuple(p for j, p in enumerate(places) if j != i)
            findings.append(Finding(
                here, "error", "duplicate-id",
                f"rule id '{rule_id}' is also used at {', '.join(map(str, others))}; "
                f"ids must be unique, so rename one (e.g. '{rule_id}-2')",
                related=others,
            ))
    return findings


def parse_paths(
    paths: Iterable[PathLike], catalog: FieldCatalog
) -> tuple[list[Rule], list[Finding]]:
    """Every rule that parsed and every finding (errors and warnings), sorted by place."""
    files, findings = rule_files(paths)
    rules: list[Rule] = []
    ids: list[tuple[str, Location]] = []
    for path in files:
        got, got_ids, problems = _parse_file(path, catalog)
        rules.extend(got)
        ids.extend(got_ids)
        findings.extend(problems)
    findings.extend(duplicate_ids(ids))
    return rules, sorted(findings)


def load_rules(paths: Iterable[PathLike], catalog: FieldCatalog) -> list[Rule]:
    """Rules ready to evaluate; raises `RuleError` with all findings if any is an error."""
    rules, findings = parse_paths(paths, catalog)
    if any(f.is_error for f in findings):
        raise RuleError(findings)
    return rules
