"""Rules are Sigma rules: pySigma reads the shipped ones, an analyst's Sigma rule works
unchanged, the Elasticsearch backend turns them into queries over burstwatch's fields, and
`rules test` counts what it ran."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from burstwatch.alerts.frame import rule_catalog
from burstwatch.cli.main import main
from burstwatch.rules import evaluate, load_rules
from burstwatch.rules.catalog import RENAMED_FIELDS, column_name
from burstwatch.rules.condition import And, Neg, Or, Quantified, Ref, parse_condition
from burstwatch.rules.lint import lint

RULES = Path(__file__).resolve().parent.parent / "rules"
SHIPPED = sorted(p for p in RULES.glob("*.yml"))

# Written the way SigmaHQ's network rules are (title, id, status, description, references,
# author, date, tags, logsource, detection with selection and filter, falsepositives, level),
# for burstwatch's logsource.
ANALYST_RULE = """\
title: Large Encrypted Upload Bursts To Russia Or China Outside Known Backup Hosts
id: 2f1d7c1e-6a0b-4c52-9a43-7c3b5b0e9d10
status: experimental
description: Detects encrypted upload bursts to RU or CN endpoints, except to backup hosts.
references:
    - https://attack.mitre.org/techniques/T1048/
author: A. Analyst
date: 2026-11-30
tags:
    - attack.exfiltration
    - attack.t1048.002
logsource:
    product: burstwatch
    category: flow
detection:
    selection_dst:
        destination.geo.country_iso_code:
            - 'RU'
            - 'CN'
    selection_burst:
        burstwatch.encryption.verdict|contains: 'tls'
        burstwatch.flow.up_burst_bytes_max|gte: 1000000
    filter_main_backup:
        tls.client.server_name|endswith: '.backup.example.com'
    filter_optional_net:
        destination.ip|cidr: '203.0.113.0/24'
    condition: all of selection_* and not 1 of filter_*
falsepositives:
    - Unknown
level: high
"""


def test_pysigma_parses_every_shipped_rule() -> None:
    sigma_rule = pytest.importorskip("sigma.rule", reason="pySigma is not installed (test extra)")
    from sigma.collection import SigmaCollection

    assert len(SHIPPED) == 8
    ids = set()
    for path in SHIPPED:
        rule = sigma_rule.SigmaRule.from_yaml(path.read_text(encoding="utf-8"))
        assert rule.errors == [], (path, rule.errors)
        assert rule.logsource.product == "burstwatch"
        assert rule.logsource.category in ("flow", "conversation")
        assert rule.status is not None and rule.date is not None and rule.level is not None
        assert rule.name == path.name[:6]  # bw-001 ...: the short name
        ids.add(str(rule.id))
        condition = rule.detection.parsed_condition[0].parse()  # the condition parses
        assert condition is not None
    assert len(ids) == len(SHIPPED)
    collection = SigmaCollection.from_yaml("\n---\n".join(p.read_text() for p in SHIPPED))
    assert len(collection.rules) == len(SHIPPED) and not collection.errors


def test_shipped_rules_pass_pysigmas_offline_validators() -> None:
    pytest.importorskip("sigma.validators.core", reason="pySigma is not installed (test extra)")
    from sigma.collection import SigmaCollection
    from sigma.validators.core.condition import (
        AllOfThemConditionValidator,
        DanglingConditionValidator,
        DanglingDetectionValidator,
        ThemConditionWithSingleDetectionValidator,
    )
    from sigma.validators.core.metadata import (
        DuplicateTitleValidator,
        IdentifierExistenceValidator,
        IdentifierUniquenessValidator,
    )
    from sigma.validators.core.modifiers import InvalidModifierCombinationsValidator
    from sigma.validators.core.tags import (
        DuplicateTagValidator,
        NamespaceTagValidator,
        TagFormatValidator,
    )
    from sigma.validators.core.values import (
        DoubleWildcardValidator,
        NumberAsStringValidator,
        WildcardsInsteadOfModifiersValidator,
    )

    collection = SigmaCollection.from_yaml("\n---\n".join(p.read_text() for p in SHIPPED))
    validators = [DanglingConditionValidator(), DanglingDetectionValidator(),
                  ThemConditionWithSingleDetectionValidator(), AllOfThemConditionValidator(),
                  IdentifierExistenceValidator(), IdentifierUniquenessValidator(),
                  DuplicateTitleValidator(), InvalidModifierCombinationsValidator(),
                  TagFormatValidator(), NamespaceTagValidator(), DuplicateTagValidator(),
                  DoubleWildcardValidator(), NumberAsStringValidator(),
                  WildcardsInsteadOfModifiersValidator()]
    issues = [issue for rule in collection.rules for v in validators for issue in v.validate(rule)]
    issues += [issue for v in validators for issue in v.finalize()]
    assert issues == []


def test_an_analysts_sigma_rule_works_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "analyst.yml"
    path.write_text(ANALYST_RULE, encoding="utf-8")
    catalog = rule_catalog()
    assert [f for f in lint([path], catalog) if f.is_error] == []
    (rule,) = load_rules([path], catalog)
    assert (rule.id, rule.uuid, rule.status, rule.level) == (
        "2f1d7c1e-6a0b-4c52-9a43-7c3b5b0e9d10", "2f1d7c1e-6a0b-4c52-9a43-7c3b5b0e9d10",
        "experimental", "high")

    def col(name: str) -> str:
        return column_name(name, catalog)

    # Row by row: fires; China, fires; France; a 0.9 MB burst; not encrypted; a backup host;
    # the excluded network; upper-case verdict text still matches (Sigma matches any case).
    frame = {
        col("destination.geo.country_iso_code"):
            np.array(["RU", "CN", "FR", "RU", "RU", "RU", "RU", "RU"], object),
        col("burstwatch.encryption.verdict"):
            np.array(["tls", "tls", "tls", "tls", "none", "tls", "tls", "TLS"], object),
        col("burstwatch.flow.up_burst_bytes_max"):
            np.array([2e6, 1e6, 5e6, 9e5, 5e6, 5e6, 5e6, 5e6]),
        col("tls.client.server_name"):
            np.array(["x.example.ru", None, "a.fr", "y.ru", None, "n1.BACKUP.example.com",
                      None, "z.ru"], object),
        col("destination.ip"):
            np.array(["77.88.8.8", "114.114.114.114", "192.0.2.1", "77.88.8.8", "77.88.8.8",
                      "77.88.8.9", "203.0.113.7", "77.88.8.8"], object),
    }
    result = evaluate(rule, frame)
    assert result.mask.tolist() == [True, True, False, False, False, False, False, True]
    assert result.allowed.tolist() == [False, False, False, False, False, True, True, False]

    sigma_rule = pytest.importorskip("sigma.rule", reason="pySigma is not installed (test extra)")
    assert sigma_rule.SigmaRule.from_yaml(ANALYST_RULE).errors == []


def test_the_elasticsearch_backend_queries_burstwatch_fields() -> None:
    pytest.importorskip("sigma.backends.elasticsearch",
                        reason="pysigma-backend-elasticsearch is not installed (test extra)")
    from sigma.backends.elasticsearch import LuceneBackend
    from sigma.collection import SigmaCollection

    collection = SigmaCollection.from_yaml("\n---\n".join(p.read_text() for p in SHIPPED))
    queries = LuceneBackend().convert(collection)
    assert len(queries) == len(SHIPPED)
    assert queries[3] == ("burstwatch.encryption.verdict:entropy AND "
                          "burstwatch.destination.scope:foreign AND "
                          "burstwatch.flow.up_burst_count:>=1 AND "
                          "burstwatch.flow.up_peak_burst_rate:>=500000 AND "
                          "burstwatch.flow.burst_upload_share:>=0.7")
    catalog = rule_catalog()
    for query in queries:
        fields = set(re.findall(r"([A-Za-z_][\w.]*):", query))
        assert fields, query
        for name in fields:  # each is a field rules may use, in its record-path form
            assert name not in RENAMED_FIELDS and column_name(name, catalog) in catalog, name


def test_condition_precedence_is_pysigmas() -> None:
    assert parse_condition("a or b and not c") == Or((
        Ref("a", 0), And((Ref("b", 5), Neg(Ref("c", 15))))))
    assert parse_condition("not (a or b) and all of sel_*") == And((
        Neg(Or((Ref("a", 5), Ref("b", 10)))), Quantified(True, "sel_*", 17)))
    them = parse_condition("1 of them")
    assert isinstance(them, Quantified) and them.selects("x") and not them.selects("_x")


def test_rules_test_counts_and_reports_rules_without_cases(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "lonely.yml").write_text(ANALYST_RULE, encoding="utf-8")
    assert main(["rules", "test", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert "NO TESTS" in out
    assert err.strip().splitlines()[-1] == "0 passed, 0 failed, 1 rule without test cases"

    # A case file that names another rule: the rule is untested and the case fails.
    (folder / "tests").mkdir()
    (folder / "tests" / "lonely.tests.yml").write_text(
        "rule: bw-999\ncases:\n  - name: x\n    capture: nowhere.pcap\n    expect: []\n")
    assert main(["rules", "test", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert "no rule with id bw-999" in out
    assert err.strip().splitlines()[-1] == "0 passed, 1 failed, 1 rule without test cases"


def test_rules_test_on_a_missing_path_is_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "passed" not in err


def test_value_vocabularies_match_what_enrichment_writes() -> None:
    from burstwatch.enrich.annotate import SCOPE_NAMES
    from burstwatch.enrich.encryption.verdict import KINDS
    from burstwatch.rules.vocab import SCOPES, VERDICTS

    assert set(SCOPES) == set(SCOPE_NAMES.values())
    assert VERDICTS == KINDS


def test_the_examples_in_docs_rules_md_load(tmp_path: Path) -> None:
    text = (RULES.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    for k, block in enumerate(blocks):
        path = tmp_path / f"example{k}.yml"
        path.write_text(block, encoding="utf-8")
        assert [str(f) for f in lint([path], rule_catalog()) if f.is_error] == []
        (rule,) = load_rules([path], rule_catalog())
        assert rule.id == ("my-001", "my-101")[k]
    first = load_rules([tmp_path / "example0.yml"], rule_catalog())[0]
    assert first.allow is not None  # the filter_* selections
