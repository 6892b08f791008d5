"""Rules engine: loading and linting rule files, and vectorised evaluation with explanations."""

from __future__ import annotations

import fnmatch
import ipaddress
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burstwatch.rules import (
    All,
    Any,
    Condition,
    FieldCatalog,
    FieldTest,
    Finding,
    FrameError,
    Not,
    Rule,
    RuleError,
    default_catalog,
    evaluate,
    evaluate_all,
    load_rules,
    parse_text,
)
from burstwatch.rules.lint import lint
from burstwatch.rules.model import Location

UUID = "0b5b2a8e-3c1d-4b8f-9a57-1f2e3d4c5b6a"
# Nine lines, so the first entry of the selection is on line 10 (4 spaces in).
HEADER = f"""\
title: Test rule
id: {UUID}
name: r1
description: Flags what the test needs flagged.
tags: [attack.exfiltration, attack.t1041]
level: high
logsource: {{product: burstwatch, category: flow}}
detection:
  selection:
"""
COUNT = "burstwatch.flow.burst_count"


def sigma(*entries: str, condition: str = "selection", header: str = HEADER) -> str:
    """A rule whose selection holds ``entries`` (one per line, from line 10)."""
    return header + "".join(f"    {e}\n" for e in entries) + f"  condition: {condition}\n"


def write(tmp_path: Path, text: str, name: str = "rule.yml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def findings_for(tmp_path: Path, text: str, name: str = "rule.yml") -> list[Finding]:
    return lint([write(tmp_path, text, name)], default_catalog())


def the(findings: list[Finding], code: str) -> Finding:
    """The single finding with this code (fails loudly if there are none or several)."""
    hits = [f for f in findings if f.code == code]
    assert len(hits) == 1, f"expected one {code!r} finding, got: {[str(f) for f in findings]}"
    return hits[0]


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_error]


# -- lint: one case per kind of problem -------------------------------------------------


def test_valid_rule_has_no_findings(tmp_path: Path) -> None:
    assert findings_for(tmp_path, sigma(f"{COUNT}|gte: 1")) == []


def test_yaml_syntax_error_points_where_pyyaml_stopped(tmp_path: Path) -> None:
    text = HEADER + f"    {COUNT}: {{gte: 1\n"  # flow mapping never closed
    f = the(findings_for(tmp_path, text), "yaml-syntax")
    assert f.is_error
    assert f.loc.line == 11  # end of stream, reported by PyYAML
    assert "started at line 10" in f.message
    assert "closing brackets" in f.message


def test_syntax_error_in_later_document_keeps_earlier_rules(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: 1") + "---\nid: [\n"
    rules, findings = parse_text(text, "x.yml", default_catalog())
    assert [r.id for r in rules] == ["r1"]
    assert [f.code for f in findings] == ["yaml-syntax"]
    assert findings[0].loc.line == 14  # end of stream, as PyYAML reports it


def test_unknown_top_level_key_suggests_closest(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: 1") + "falsepositive: [backups]\n"
    f = the(findings_for(tmp_path, text), "unknown-key")
    assert f.is_error and (f.loc.line, f.loc.column) == (12, 1)
    assert "did you mean 'falsepositives'?" in f.message


def test_a_custom_key_is_a_warning_not_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, sigma(f"{COUNT}|gte: 1") + "x_team_owner: blue\n")
    f = the(lint([path], default_catalog()), "custom-key")
    assert f.severity == "warning" and f.loc.line == 12
    assert [r.id for r in load_rules([path], default_catalog())] == ["r1"]


@pytest.mark.parametrize(("key", "fragment"), [
    ("match", "write the condition as Sigma's 'detection:'"),
    ("allow", "'filter_...' selection"),
])
def test_keys_of_the_earlier_format_say_what_sigma_writes(tmp_path: Path, key: str, fragment: str) -> None:
    f = the(findings_for(tmp_path, sigma(f"{COUNT}|gte: 1") + f"{key}: {{x: 1}}\n"), "unknown-key")
    assert f.loc.line == 12 and fragment in f.message


def test_tests_key_is_pointed_to_the_tests_file(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: 1") + "tests: []\n"
    f = the(findings_for(tmp_path, text), "unknown-key")
    assert f.loc.line == 12
    assert ".tests.yml" in f.message


def test_unknown_field_suggests_registered_names(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: 1", "burstwatch.flow.peak_burst_rat|gte: 1")
    f = the(findings_for(tmp_path, text), "unknown-field")
    assert (f.loc.line, f.loc.column) == (11, 5)
    assert "did you mean 'burstwatch.flow.peak_burst_rate' or" in f.message


def test_an_old_field_name_says_what_to_write(tmp_path: Path) -> None:
    f = the(findings_for(tmp_path, sigma("encryption: tls")), "renamed-field")
    assert (f.loc.line, f.loc.column) == (10, 5)
    assert f.message == "'encryption' is renamed: write burstwatch.encryption.verdict"


def test_unknown_field_uses_the_callers_catalog(tmp_path: Path) -> None:
    path = write(tmp_path, sigma("burst_duration|lt: 2"))
    assert the(lint([path], default_catalog()), "unknown-field").loc.line == 10
    catalog = default_catalog().register("burst_duration", "number", "seconds per burst")
    assert lint([path], catalog) == []


@pytest.mark.parametrize(
    ("entry", "column", "fragment"),
    [
        (f"{COUNT}|gt: abc", 37, "needs a number, not 'abc'"),
        (f"{COUNT}|gt: true", 37, "write 1 or 0"),
        (f"{COUNT}|gte: .nan", 38, "NaN never compares true"),
        ("burstwatch.encryption.verdict: []", 36, "empty list"),
        ("burstwatch.encryption.verdict: {tls: 1}", 36, "not a mapping"),
        ("destination.ip|cidr: [10.0.0.300/8]", 27, "is not a network"),
        ("destination.ip|cidr: 203.0.113.5/24", 26, "write 203.0.113.0/24"),
        ("destination.ip: 10.0.0.0/8", 21, "for a network use |cidr"),
        ("tls.client.server_name|re: '(unclosed'", 32, "bad regular expression"),
        ("tls.client.server_name|exists: maybe", 36, "takes true or false"),
    ],
)
def test_wrong_value_type(tmp_path: Path, entry: str, column: int, fragment: str) -> None:
    f = the(findings_for(tmp_path, sigma(entry)), "bad-value")
    assert f.is_error
    assert (f.loc.line, f.loc.column) == (10, column)
    assert fragment in f.message


def test_unknown_level_suggests_closest(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: 1", header=HEADER.replace("level: high", "level: hgih"))
    f = the(findings_for(tmp_path, text), "bad-value")
    assert (f.loc.line, f.loc.column) == (6, 8)
    assert "did you mean 'high'?" in f.message


@pytest.mark.parametrize(("line", "fragment"), [
    ("id: bw-001", "id 'bw-001' is not a UUID"),
    ("status: beta", "unknown status 'beta'"),
    ("date: 2025/06/30", "write 2025-06-30"),
    ("modified: 2025-13-01", "not a date as Sigma writes it (YYYY-MM-DD)"),
])
def test_bad_sigma_metadata(tmp_path: Path, line: str, fragment: str) -> None:
    key = line.split(":")[0]
    header = "\n".join(line if ln.startswith(key + ":") else ln for ln in HEADER.split("\n"))
    if key + ":" not in HEADER:
        header = header.replace("name: r1\n", f"name: r1\n{line}\n")
    found = errors(findings_for(tmp_path, sigma(f"{COUNT}|gte: 1", header=header)))
    assert len(found) == 1 and fragment in found[0].message, [str(f) for f in found]
    assert found[0].loc.line == header.split("\n").index(line) + 1


def test_sigmas_informational_level_is_read_as_low(tmp_path: Path) -> None:
    path = write(tmp_path, sigma(f"{COUNT}|gte: 1", header=HEADER.replace("level: high", "level: informational")))
    f = the(lint([path], default_catalog()), "level-mapped")
    assert f.severity == "warning" and f.loc.line == 6 and "read as 'low'" in f.message
    assert [r.level for r in load_rules([path], default_catalog())] == ["low"]


@pytest.mark.parametrize(
    ("entry", "code", "fragment"),
    [
        ("burstwatch.encryption.verdict|gt: 5", "modifier-kind", "'gt' cannot test a string field"),
        (f"{COUNT}|contains: 5", "modifier-kind", "'contains' cannot test a number field"),
        ("tls.client.server_name|cidr: 10.0.0.0/8", "modifier-kind", "cidr applies to address fields"),
        (f"{COUNT}|gtee: 1", "bad-modifier", "did you mean 'gte'"),
        (f"{COUNT}|>=: 1", "bad-modifier", "write gte instead"),
        ("tls.client.server_name|base64: x", "unsupported-modifier", "payloads are not kept"),
        ("tls.client.server_name|contains|re: x", "bad-modifier", "contains and re cannot be combined"),
        ("tls.client.server_name|i: x", "bad-modifier", "flags of 're'"),
        ("tls.client.server_name|all: x", "bad-modifier", "'all' needs a list of two or more"),
        ("tls.client.server_name|exists|cased: true", "bad-modifier", "'exists' stands alone"),
    ],
)
def test_bad_modifiers(tmp_path: Path, entry: str, code: str, fragment: str) -> None:
    f = the(findings_for(tmp_path, sigma(entry)), code)
    assert f.is_error and (f.loc.line, f.loc.column) == (10, 5)
    assert fragment in f.message


@pytest.mark.parametrize(
    ("entry", "column", "fragment"),
    [
        ("burstwatch.destination.scope: abroad", 35, "'abroad' is not a scope"),
        ("burstwatch.destination.scope: fore*", None, None),  # a wildcard that can match
        ("burstwatch.destination.scope: abroad*", 35, "'abroad*' is not a scope"),
        ("burstwatch.encryption.verdict: [tls, wiregaurd]", 42, "'wiregaurd' is not an encryption verdict"),
        ("destination.geo.country_iso_code: [RU, UK]", 44, "'UK' is not an ISO 3166-1 alpha-2"),
        ("burstwatch.flow.upload_share|gte: -0.5", 39, "a negative value is never a share"),
        ("burstwatch.flow.upload_share|gte: 1.5", 39, "'gte 1.5' never holds"),
        ("burstwatch.flow.burst_upload_share: 2", 41, "'eq 2' never holds"),
    ],
)
def test_values_that_can_never_match(tmp_path: Path, entry: str, column: int | None,
                                     fragment: str | None) -> None:
    found = findings_for(tmp_path, sigma(entry))
    if column is None:
        assert found == []
        return
    f = the(found, "never-matches")
    assert f.is_error and (f.loc.line, f.loc.column) == (10, column)
    assert fragment in f.message


def test_a_share_bound_that_always_holds_is_a_warning(tmp_path: Path) -> None:
    f = the(findings_for(tmp_path, sigma("burstwatch.flow.upload_share|lte: 2")), "always-true")
    assert f.severity == "warning" and "always holds" in f.message


@pytest.mark.parametrize(
    ("condition", "column", "code", "fragment"),
    [
        ("selection and not 1 of filtr_*", 32, "unknown-selection", "'1 of filtr_*' matches no selection"),
        ("selection and not fliter", 32, "unknown-selection", "did you mean 'filter'?"),
        ("selection and", 27, "bad-condition", "the condition ends after 'and'"),
        ("selection and (filter or", 38, "bad-condition", "the condition ends after 'or'"),
        ("(selection and not filter", 14, "bad-condition", "'(' at column 1 of the condition is not closed"),
        ("selection filter", 24, "bad-condition", "unexpected 'filter'; join conditions with 'and' or 'or'"),
        ("selection && filter", 24, "bad-condition", "unexpected character '&'"),
        ("selection and not selection_*", 32, "bad-condition", "write '1 of selection_*'"),
        ("selection and )", 28, "bad-condition", "found ')'"),
        ("'selection and not filter)'", 39, "bad-condition", "this ')' closes no '('"),
    ],
)
def test_conditions_that_do_not_parse_or_resolve(tmp_path: Path, condition: str, column: int,
                                                 code: str, fragment: str) -> None:
    text = sigma(f"{COUNT}|gte: 1", condition=condition).replace(
        "  condition:", "  filter:\n    tls.client.server_name: x\n  condition:")
    found = errors(findings_for(tmp_path, text))
    assert len(found) == 1, [str(f) for f in found]
    assert (found[0].code, found[0].loc.line, found[0].loc.column) == (code, 13, column)
    assert fragment in found[0].message


def test_a_selection_the_condition_never_names_is_a_warning(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: 1").replace("  condition:", "  spare:\n    destination.port: 1\n  condition:")
    f = the(findings_for(tmp_path, text), "unused-selection")
    assert f.severity == "warning" and f.loc.line == 11 and "'spare'" in f.message


@pytest.mark.parametrize(("detection", "code", "fragment"), [
    ("  selection: [tls, quic]\n  condition: selection\n", "bad-selection", "keyword search"),
    ("  selection:\n  condition: selection\n", "empty-selection", "selection 'selection' is empty"),
    ("  selection: {}\n  condition: selection\n", "empty-selection", "empty mapping"),
    ("  selection:\n    '|contains': x\n  condition: selection\n", "bad-selection", "has no field name"),
    ("  selection: {destination.port: 1}\n", "missing-key", "detection has no 'condition'"),
    ("  condition: selection\n", "missing-key", "detection has no selections"),
    ("  selection: {destination.port: 1}\n  condition: [selection, selection]\n", "bad-condition",
     "write one condition, not a list"),
    ("  selection: {destination.port: 1}\n  timeframe: 1h\n  condition: selection\n", "unsupported",
     "'timeframe'"),
])
def test_bad_detections(tmp_path: Path, detection: str, code: str, fragment: str) -> None:
    text = HEADER.removesuffix("  selection:\n") + detection
    f = the(errors(findings_for(tmp_path, text)), code)
    assert fragment in f.message


def test_duplicate_rule_id_across_files_points_at_both(tmp_path: Path) -> None:
    first = write(tmp_path, sigma(f"{COUNT}|gte: 1"), "a/one.yml")
    second = write(tmp_path, "# another rule\n" + sigma(f"{COUNT}|gte: 2"), "b/two.yaml")
    found = [f for f in lint([tmp_path], default_catalog()) if f.code == "duplicate-id"]
    # the UUID (line 2) and the name (line 3) are each used twice
    assert {(f.loc.file, f.loc.line) for f in found} == {
        (str(first), 2), (str(first), 3), (str(second), 3), (str(second), 4)}
    by_place = {(f.loc.file, f.loc.line): f for f in found}
    assert by_place[(str(first), 3)].related == (Location(str(second), 4, 7),)
    assert f"{second}:4:7" in by_place[(str(first), 3)].message
    assert "ids must be unique" in by_place[(str(second), 2 + 1)].message


def test_duplicate_id_is_found_even_when_the_rule_has_other_errors(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: 1") + "---\n" + sigma("nope: 1")
    found = findings_for(tmp_path, text)
    assert {f.loc.line for f in found if f.code == "duplicate-id"} == {2, 3, 14, 15}


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: 1", f"{COUNT}|gte: 2") + "level: low\n"
    found = [f for f in findings_for(tmp_path, text) if f.code == "duplicate-key"]
    assert [(f.loc.line, f.loc.column) for f in found] == [(11, 5), (13, 1)]
    assert "first at line 10, column 5" in found[0].message
    assert "first at line 6" in found[1].message


def test_missing_required_keys(tmp_path: Path) -> None:
    text = ("# comment\ntitle: t\ndescription: no id, no level, no logsource\n"
            "detection: {selection: {destination.port: 1}, condition: selection}\n")
    found = [f for f in findings_for(tmp_path, text) if f.code == "missing-key"]
    assert [f.loc.line for f in found] == [2, 2, 2]
    assert sorted(f.message.split("'")[1] for f in found) == ["id", "level", "logsource"]
    assert any("one of low, medium, high, critical" in f.message for f in found)


@pytest.mark.parametrize(("logsource", "fragment"), [
    ("{category: flow}", "logsource has no 'product'; add product: burstwatch"),
    ("{product: burstwatch}", "logsource has no 'category'"),
])
def test_logsource_needs_product_and_category(tmp_path: Path, logsource: str, fragment: str) -> None:
    header = HEADER.replace("{product: burstwatch, category: flow}", logsource)
    f = the(findings_for(tmp_path, sigma(f"{COUNT}|gte: 1", header=header)), "missing-key")
    assert f.loc.line == 7 and fragment in f.message


def test_correlation_rules_are_refused_with_the_reason(tmp_path: Path) -> None:
    text = ("title: many bursts\nid: 8f6a4ec3-3d1e-4b4a-8c59-0f0a8e6f6c01\ncorrelation:\n"
            "  type: event_count\n  rules: [bw-001]\n  group-by: [source.ip]\n"
            "  timespan: 1h\n  condition: {gte: 3}\nlevel: high\n")
    f = the(findings_for(tmp_path, text), "unsupported")
    assert f.loc.line == 3 and "correlation rules are not supported" in f.message


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    text = f"""\
        id: {UUID}
        titel: typo
        level: severe
        logsource: {{product: burstwatch, category: flow}}
        detection:
          selection:
            burstwatch.flow.peak_burst_rat|gte: 1
            {COUNT}|gt: abc
            burstwatch.flow.upload_share|gtee: 1
          empty:
          condition: selection and not empty
        """
    found = findings_for(tmp_path, text)
    assert sorted((f.code, f.loc.line) for f in errors(found)) == [
        ("bad-modifier", 9), ("bad-value", 3), ("bad-value", 8), ("empty-selection", 10),
        ("missing-key", 1), ("unknown-field", 7), ("unknown-key", 2),
    ]
    assert "'title'" in the(found, "missing-key").message


def test_malicious_tag_is_an_error_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = sigma(f"{COUNT}: !!python/object/apply:os.system ['touch {marker}']")
    path = write(tmp_path, text)
    f = the(lint([path], default_catalog()), "yaml-tag")
    assert (f.loc.line, f.loc.column) == (10, 34)
    assert "!!python/object/apply:os.system" in f.message
    with pytest.raises(RuleError):
        load_rules([path], default_catalog())
    assert not marker.exists()


def test_tagged_document_is_rejected_whole(tmp_path: Path) -> None:
    text = "!!python/object:os.system\nid: r1\n"
    f = the(findings_for(tmp_path, text), "yaml-tag")
    assert f.loc.line == 1


def test_aliases_are_rejected(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: &b 1", "burstwatch.flow.upload_share|gte: *b")
    f = the(findings_for(tmp_path, text), "yaml-alias")
    assert (f.loc.line, f.loc.column) == (11, 39)


def test_warnings_do_not_stop_loading(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}|gte: 5", f"{COUNT}|lt: 1",
                 header=HEADER.replace("attack.t1041", "Attack.T1041"))
    path = write(tmp_path, text)
    found = lint([path], default_catalog())
    assert {f.code for f in found} == {"tag-style", "never-true"}
    assert not errors(found)
    assert "write 'attack.t1041'" in the(found, "tag-style").message
    assert [r.id for r in load_rules([path], default_catalog())] == ["r1"]


def test_old_tactic_spelling_is_a_warning(tmp_path: Path) -> None:
    header = HEADER.replace("attack.exfiltration", "attack.command_and_control")
    f = the(findings_for(tmp_path, sigma(f"{COUNT}|gte: 1", header=header)), "tag-style")
    assert "write 'attack.command-and-control'" in f.message


def test_load_rules_raises_with_every_finding(tmp_path: Path) -> None:
    path = write(tmp_path, sigma("nope: 1", f"{COUNT}|gt: x"))
    with pytest.raises(RuleError) as info:
        load_rules([path], default_catalog())
    assert {f.code for f in info.value.findings} == {"unknown-field", "bad-value"}
    assert f"{path}:10:5: error: unknown field 'nope'" in str(info.value)


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    text = sigma(f"{COUNT}: 1") + "---\n- just\n- a list\n"
    f = the(findings_for(tmp_path, text), "not-a-rule")
    assert f.loc.line == 13
    assert "separate several rules with a '---' line" in f.message


def test_empty_folder_is_a_warning(tmp_path: Path) -> None:
    f = the(lint([tmp_path], default_catalog()), "no-rules")
    assert f.severity == "warning"


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    f = the(lint([tmp_path / "nope"], default_catalog()), "read-error")
    assert "no such file" in f.message


# -- loading ------------------------------------------------------------------------------


def test_folder_walk_skips_test_case_files(tmp_path: Path) -> None:
    body = sigma(f"{COUNT}: 1")
    write(tmp_path, body.replace("name: r1", "name: a"), "a.yml")
    write(tmp_path, body.replace("name: r1", "name: b").replace(UUID, UUID[:-1] + "b"),
          "deep/er/b.yaml")
    write(tmp_path, "cases: [not a rule]\n", "a.tests.yml")
    write(tmp_path, "cases: [not a rule]\n", "deep/b.tests.yaml")
    write(tmp_path, "cases: [not a rule]\n", "tests/anything.yml")
    write(tmp_path, "not yaml at all: [\n", "notes.txt")
    rules = load_rules([tmp_path], default_catalog())
    assert sorted(r.id for r in rules) == ["a", "b"]


def test_sigma_metadata_reaches_the_rule(tmp_path: Path) -> None:
    header = HEADER.replace("name: r1\n", "name: r1\nstatus: test\ndate: 2025-06-30\n"
                            "references: [https://attack.mitre.org/techniques/T1041/]\n")
    (rule,) = load_rules([write(tmp_path, sigma(f"{COUNT}: 1", header=header))], default_catalog())
    assert (rule.id, rule.uuid, rule.status, rule.date, rule.modified, rule.version) == (
        "r1", UUID, "test", "2025-06-30", "", "2025-06-30")
    (unnamed,) = load_rules([write(tmp_path, sigma(f"{COUNT}: 1", header=HEADER.replace(
        "name: r1\n", "modified: 2025-07-01\n")), "u.yml")], default_catalog())
    assert unnamed.id == UUID and unnamed.version == "2025-07-01"


def test_several_rules_per_file_and_their_locations(tmp_path: Path) -> None:
    second = HEADER.replace("name: r1", "name: r2").replace(UUID, UUID[:-1] + "b")
    text = sigma(f"{COUNT}: 1") + "---\n" + second + (
        "    burstwatch.encryption.verdict: [tls, quic]\n"
        "  selection_share:\n"
        "    burstwatch.flow.upload_share|lt: 0.5\n"
        "  filter_backup:\n"
        "    tls.client.server_name: '*.example.com'\n"
        "  condition: (selection or not selection_share) and not 1 of filter*\n"
    )
    path = write(tmp_path, text)
    one, two = load_rules([path], default_catalog())
    assert one.loc == Location(str(path), 1, 1)
    assert one.match == FieldTest("burst_count", "eq", 1.0)
    assert two.loc.line == 13
    assert two.match == Any((
        FieldTest("encryption", "in", ("tls", "quic"), "string"),
        Not(FieldTest("upload_share", "lt", 0.5)),
    ))
    assert isinstance(two.match, Any)
    assert (two.match.loc.line, two.match.loc.column) == (27, 14)  # the condition
    assert two.match.children[0].loc.line == 22
    assert two.allow == FieldTest("tls.client.server_name", "wildcard", ("*.example.com",), "string")
    assert two.tags == ("attack.exfiltration", "attack.t1041")
    assert two.fields == {"encryption", "upload_share", "tls.client.server_name"}


def test_values_are_read_by_field_kind_not_yaml_guesses(tmp_path: Path) -> None:
    text = sigma(
        "destination.geo.country_iso_code: [NO, SE, 'ON']",
        "burstwatch.flow.peak_burst_rate|gte: 1e6",
        "burstwatch.flow.peak_burst_rate|lt: 1_000_000_000",
        "destination.ip: '2001:0db8::0001'",
        "source.ip: ['::ffff:192.0.2.1', 192.0.2.7]",
        "destination.port: [443, 8443]",
    )
    text = text.replace("'ON'", "'NL'")
    (rule,) = load_rules([write(tmp_path, text)], default_catalog())
    assert isinstance(rule.match, All)
    assert rule.match.children == (
        FieldTest("destination.geo.country_iso_code", "in", ("NO", "SE", "NL"), "string"),
        FieldTest("peak_burst_rate", "gte", 1e6),
        FieldTest("peak_burst_rate", "lt", 1e9),
        FieldTest("destination.ip", "eq", "2001:db8::1", "address"),
        FieldTest("source.ip", "in", ("192.0.2.1", "192.0.2.7"), "address"),
        FieldTest("destination.port", "in", (443.0, 8443.0)),
    )


@pytest.mark.parametrize(("entry", "expected"), [
    ("tls.client.server_name: Evil.COM", FieldTest("tls.client.server_name", "eq", "Evil.COM", "string")),
    ("tls.client.server_name: '*.evil.com'",
     FieldTest("tls.client.server_name", "wildcard", ("*.evil.com",), "string")),
    ("tls.client.server_name|contains: evil",
     FieldTest("tls.client.server_name", "wildcard", ("*evil*",), "string")),
    ("tls.client.server_name|startswith: [a, b]",
     FieldTest("tls.client.server_name", "wildcard", ("a*", "b*"), "string")),
    ("tls.client.server_name|endswith: '.ru'",
     FieldTest("tls.client.server_name", "wildcard", ("*.ru",), "string")),
    ("tls.client.server_name|cased: Evil", FieldTest("tls.client.server_name", "regex", ("(?s)^Evil$",), "string")),
    ("tls.client.server_name: 'a\\*b*'",
     FieldTest("tls.client.server_name", "regex", ("(?is)^a\\*b.*$",), "string")),
    ("tls.client.server_name|re|i: '^x'", FieldTest("tls.client.server_name", "regex", ("(?i)^x",), "string")),
    ("destination.ip|cidr: [10.0.0.0/8, '2001:db8::/32']",
     FieldTest("destination.ip", "cidr", ("10.0.0.0/8", "2001:db8::/32"), "address")),
    ("destination.ip: '10.*'", FieldTest("destination.ip", "wildcard", ("10.*",), "string")),
    ("tls.client.server_name|exists: true", FieldTest("tls.client.server_name", "exists", True, "string")),
    ("tls.client.server_name|exists: false",
     Not(FieldTest("tls.client.server_name", "exists", True, "string"))),
    ("tls.client.server_name: null", Not(FieldTest("tls.client.server_name", "exists", True, "string"))),
    ("destination.port|neq: [80, 443]", Not(FieldTest("destination.port", "in", (80.0, 443.0)))),
    ("tls.client.server_name|contains|all: [a, b]",
     All((FieldTest("tls.client.server_name", "wildcard", ("*a*",), "string"),
          FieldTest("tls.client.server_name", "wildcard", ("*b*",), "string")))),
])
def test_each_modifier_becomes_the_test_sigma_means(tmp_path: Path, entry: str, expected: Condition) -> None:
    (rule,) = load_rules([write(tmp_path, sigma(entry))], default_catalog())
    assert rule.match == expected


def test_catalog_rejects_conflicting_kinds() -> None:
    catalog = FieldCatalog({"x": "number"})
    catalog.register("x", "number")
    with pytest.raises(ValueError, match="already registered as number"):
        catalog.register("x", "string")
    with pytest.raises(ValueError, match="must be one of"):
        catalog.register("y", "bytes")  # type: ignore[arg-type]


# -- evaluation ---------------------------------------------------------------------------

NAN = math.nan
FRAME = {
    "x": np.array([0.0, 1.0, 2.0, NAN, 5.0, -math.inf]),
    "s": np.array(["tls", "TLS", "quic", None, "none", math.nan], dtype=object),
    "u": np.array(["a.example.com", "EXAMPLE.com", "mail.example.org", "", "x", "example.comx"]),
    "ip": np.array(
        ["203.0.113.7", "2001:db8::5", "::ffff:203.0.113.9", None, "garbage", "198.51.100.1"],
        dtype=object,
    ),
}
CATALOG = FieldCatalog({"x": "number", "s": "string", "u": "string", "ip": "address"})


def mask_of(cond: Condition, frame: dict[str, np.ndarray] = FRAME) -> list[bool]:
    rule = Rule("t", "t", "low", cond)
    return evaluate(rule, frame).mask.tolist()


def bools(bits: str) -> list[bool]:
    return [c == "1" for c in bits]


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 1.0, "010000"),
        ("ne", 1.0, "101011"),  # NaN is never 'not equal' either
        ("gt", 1.0, "001010"),
        ("gte", 1.0, "011010"),
        ("lt", 1.0, "100001"),
        ("lte", 1.0, "110001"),
        ("in", (1.0, 5.0), "010010"),
        ("not_in", (1.0, 5.0), "101001"),
        ("gt", -math.inf, "111010"),
    ],
)
def test_numeric_operators_and_nan(op: str, value: object, expected: str) -> None:
    assert mask_of(FieldTest("x", op, value)) == bools(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("s", "eq", "tls", "110000"),  # any case, as Sigma; None and NaN are missing
        ("s", "ne", "tls", "001010"),
        ("s", "in", ("tls", "QUIC"), "111000"),
        ("s", "not_in", ("tls", "quic"), "000010"),
        ("s", "exists", True, "111010"),
        ("s", "regex", ("^t",), "100000"),
        ("s", "regex", ("(?i)^t", "ui"), "111000"),
        ("u", "wildcard", ("*.example.com",), "100000"),
        ("u", "wildcard", ("*example.com",), "110000"),  # case-insensitive, whole name
        ("u", "wildcard", ("example.co?",), "010000"),
        ("u", "eq", "", "000100"),  # an empty string in a '<U' column is a value
        ("u", "regex", (r"example\.com$",), "100000"),
    ],
)
def test_string_operators(field: str, op: str, value: object, expected: str) -> None:
    test = FieldTest(field, op, value, "string")  # type: ignore[arg-type]
    assert mask_of(test) == bools(expected)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("cidr", ("203.0.113.0/24",), "101000"),  # IPv4-mapped IPv6 counts as IPv4
        ("cidr", ("2001:db8::/32",), "010000"),
        ("cidr", ("0.0.0.0/0", "::/0"), "111001"),
        ("cidr", ("203.0.113.0/29",), "100000"),
        ("eq", "2001:db8::5", "010000"),
        ("ne", "203.0.113.7", "011001"),  # missing and unparseable rows never match
        ("in", ("198.51.100.1", "203.0.113.9"), "001001"),
        ("not_in", ("198.51.100.1", "203.0.113.9"), "110000"),
    ],
)
def test_address_operators_ipv4_and_ipv6(op: str, value: object, expected: str) -> None:
    test = FieldTest("ip", op, value, "address")  # type: ignore[arg-type]
    assert mask_of(test) == bools(expected)


def test_integer_thresholds_built_in_code() -> None:
    assert mask_of(FieldTest("x", "gte", 2)) == bools("001010")


def test_nested_all_any_not() -> None:
    cond = All((
        Any((FieldTest("x", "gte", 2.0), FieldTest("s", "eq", "tls", "string"))),
        Not(FieldTest("ip", "cidr", ("2001:db8::/32",), "address")),
    ))
    # x>=2: 001010; s==tls: 100000; any: 101010; not v6 net: 101111 -> 101010
    assert mask_of(cond) == bools("101010")
    assert mask_of(Not(cond)) == bools("010101")


def test_not_flags_rows_with_missing_values() -> None:
    assert mask_of(Not(FieldTest("x", "lt", 1.0))) == bools("011110")


def test_allow_list_suppresses_matches() -> None:
    rule = Rule(
        "r", "r", "high",
        match=FieldTest("x", "gte", 0.0),
        allow=Any((
            FieldTest("u", "wildcard", ("*.example.com",), "string"),
            FieldTest("ip", "cidr", ("2001:db8::/32",), "address"),
        )),
    )
    result = evaluate(rule, FRAME)
    assert result.matched.tolist() == bools("111010")
    assert result.allowed.tolist() == bools("110000")
    assert result.mask.tolist() == bools("001010")
    assert result.rows.tolist() == [2, 4]
    assert len(result) == 2


def test_explanations_report_the_values_that_fired(tmp_path: Path) -> None:
    frame = {
        "encryption": np.array(["tls", "quic", "none"], dtype=object),
        "peak_burst_rate": np.array([2.5e6, 4e6, 9e6]),
        "upload_share": np.array([0.9, 0.2, 0.9]),
        "burst_upload_share": np.array([0.1, 0.95, 0.1]),
    }
    text = sigma("burstwatch.encryption.verdict: [tls, quic]",
                 "burstwatch.flow.peak_burst_rate|gte: 1000000",
                 condition="selection and (share or not burst_share)").replace(
        "  condition:", "  share:\n    burstwatch.flow.upload_share|gte: 0.7\n"
        "  burst_share:\n    burstwatch.flow.burst_upload_share|lt: 0.7\n  condition:")
    (rule,) = load_rules([write(tmp_path, text)], default_catalog())
    result = evaluate(rule, frame)
    assert result.rows.tolist() == [0, 1]
    assert result.held == (True, True, True, False)

    row0 = result.explain(0)
    assert [(e.field, e.test.op, e.value, e.held) for e in row0] == [
        ("encryption", "in", "tls", True),
        ("peak_burst_rate", "gte", 2.5e6, True),
        ("upload_share", "gte", 0.9, True),
    ]
    assert [e.test.loc.line for e in row0] == [10, 11, 13]
    row1 = result.explain(1)
    assert [(e.field, e.value, e.held) for e in row1] == [
        ("encryption", "quic", True),
        ("peak_burst_rate", 4e6, True),
        ("burst_upload_share", 0.95, False),
    ]
    assert str(row1[2]) == "burst_upload_share=0.95 (not lt 0.7)"  # read from its old column
    assert result.explain(2) == ()  # not flagged: no explanation
    assert [row for row, _ in result.explanations()] == [0, 1]


def test_evaluate_all_shares_work_and_gives_one_result_per_rule() -> None:
    rules = [
        Rule("a", "a", "low", FieldTest("x", "gt", 1.0)),
        Rule("b", "b", "low", FieldTest("s", "eq", "quic", "string")),
    ]
    results = evaluate_all(rules, FRAME)
    assert [r.rule.id for r in results] == ["a", "b"]
    assert [r.rows.tolist() for r in results] == [[2, 4], [2]]


def test_frame_problems_are_clear_errors() -> None:
    rule = Rule("a", "a", "low", FieldTest("missing", "gt", 1.0))
    with pytest.raises(FrameError, match="needs column 'missing'"):
        evaluate(rule, FRAME)
    with pytest.raises(FrameError, match="must be numeric"):
        evaluate(Rule("a", "a", "low", FieldTest("s", "gt", 1.0)), FRAME)
    short = dict(FRAME, x=np.array([1.0]))
    with pytest.raises(FrameError, match="rows"):
        evaluate(Rule("a", "a", "low", All((FieldTest("s", "eq", "a", "string"),
                                              FieldTest("x", "gt", 1.0)))), short)


def test_empty_frame() -> None:
    frame = {"x": np.zeros(0), "s": np.array([], dtype=object), "ip": np.array([], dtype=object)}
    cond = All((FieldTest("x", "gt", 1.0), FieldTest("s", "wildcard", ("*",), "string"),
                Not(FieldTest("ip", "cidr", ("10.0.0.0/8",), "address"))))
    result = evaluate(Rule("a", "a", "low", cond), frame)
    assert result.mask.shape == (0,)
    assert result.because.shape == (0, 3)


# -- property: the vectorised evaluator agrees with a naive per-row reference -------------

NUMBERS = [0.0, 0.5, 1.0, 2.0, -1.0, 1e6, math.inf, NAN]
STRINGS = ["tls", "TLS", "quic", "a.example.com", "b.EXAMPLE.com", "example.org", ""]
ADDRESSES = ["10.0.0.1", "10.1.2.3", "192.0.2.9", "2001:db8::1", "2001:db8:1::7",
             "::ffff:10.0.0.9", "fe80::1", "not-an-ip"]
WILDCARDS = ["*.example.com", "t?s", "*", "quic", "*example*", "?"]
REGEXES = ["^t", "example", r"\.com$", "(?i)tls", "q.i"]
NETWORKS = ["10.0.0.0/8", "10.0.0.0/24", "192.0.2.0/24", "2001:db8::/32", "::/0", "0.0.0.0/0"]
PROP_CATALOG = {"n1": "number", "n2": "number", "s1": "string", "s2": "string", "a1": "address"}


@st.composite
def frames(draw: st.DrawFn) -> dict[str, np.ndarray]:
    rows = draw(st.integers(0, 12))
    pick = lambda pool: draw(st.lists(st.sampled_from(pool), min_size=rows, max_size=rows))  # noqa: E731
    return {
        "n1": np.array(pick(NUMBERS), dtype=np.float64),
        "n2": np.array(pick(NUMBERS), dtype=np.float64),
        "s1": np.array(pick([*STRINGS, None]), dtype=object),
        "s2": np.array(pick(STRINGS), dtype=str).astype(str),
        "a1": np.array(pick([*ADDRESSES, None]), dtype=object),
    }


def _tuple(pool: list) -> st.SearchStrategy[tuple]:
    return st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True).map(tuple)


field_tests = st.one_of(
    st.builds(FieldTest, st.sampled_from(["n1", "n2"]),
              st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
              st.sampled_from([n for n in NUMBERS if not math.isnan(n)])),
    st.builds(FieldTest, st.sampled_from(["n1", "n2"]), st.sampled_from(["in", "not_in"]),
              _tuple([n for n in NUMBERS if not math.isnan(n)])),
    st.builds(FieldTest, st.sampled_from(["s1", "s2"]), st.sampled_from(["eq", "ne"]),
              st.sampled_from(STRINGS), st.just("string")),
    st.builds(FieldTest, st.sampled_from(["s1", "s2"]), st.sampled_from(["in", "not_in"]),
              _tuple(STRINGS), st.just("string")),
    st.builds(FieldTest, st.sampled_from(["s1", "s2"]), st.just("wildcard"), _tuple(WILDCARDS),
              st.just("string")),
    st.builds(FieldTest, st.sampled_from(["s1", "s2"]), st.just("regex"), _tuple(REGEXES),
              st.just("string")),
    st.builds(FieldTest, st.just("a1"), st.just("cidr"), _tuple(NETWORKS), st.just("address")),
    st.builds(FieldTest, st.just("a1"), st.sampled_from(["eq", "ne"]),
              st.sampled_from(["10.0.0.1", "2001:db8::1", "10.0.0.9"]), st.just("address")),
    st.builds(FieldTest, st.just("n1"), st.just("exists"), st.just(True)),
    st.builds(FieldTest, st.just("s1"), st.just("exists"), st.just(True), st.just("string")),
    st.builds(FieldTest, st.just("a1"), st.just("exists"), st.just(True), st.just("address")),
    st.builds(FieldTest, st.just("a1"), st.sampled_from(["in", "not_in"]),
              _tuple(["10.0.0.1", "2001:db8::1", "10.0.0.9", "fe80::1"]), st.just("address")),
)

conditions = st.recursive(
    field_tests,
    lambda kids: st.one_of(
        st.builds(All, st.lists(kids, min_size=1, max_size=3).map(tuple)),
        st.builds(Any, st.lists(kids, min_size=1, max_size=3).map(tuple)),
        st.builds(Not, kids),
    ),
    max_leaves=8,
)


def _ip(text: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(text, str):
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def reference_test(test: FieldTest, raw: object) -> bool:
    """One test on one row, written the obvious way."""
    op, v = test.op, test.value
    if test.op == "exists":
        return not (raw is None or (isinstance(raw, float) and math.isnan(raw)))
    if test.kind == "number":
        x = float(raw)  # type: ignore[arg-type]
        if math.isnan(x):
            return False
        return {
            "eq": lambda: x == v, "ne": lambda: x != v, "gt": lambda: x > v,  # type: ignore[operator]
            "gte": lambda: x >= v, "lt": lambda: x < v, "lte": lambda: x <= v,  # type: ignore[operator]
            "in": lambda: x in v, "not_in": lambda: x not in v,  # type: ignore[operator]
        }[op]()
    if test.kind == "string":
        if not isinstance(raw, str):
            return False
        low = raw.lower()
        wanted = {str(x).lower() for x in (v if isinstance(v, tuple) else (v,))}
        return {
            "eq": lambda: low in wanted, "ne": lambda: low not in wanted,
            "in": lambda: low in wanted, "not_in": lambda: low not in wanted,
            "wildcard": lambda: any(fnmatch.fnmatchcase(raw.lower(), str(p).lower()) for p in v),  # type: ignore[union-attr]
            "regex": lambda: any(re.search(str(p), raw) for p in v),  # type: ignore[union-attr]
        }[op]()
    addr = _ip(raw)
    if addr is None:
        return False
    values = [str(a) for a in (v if isinstance(v, tuple) else (v,))]
    if op == "cidr":
        return any(addr in ipaddress.ip_network(n) for n in values)
    hit = addr in {ipaddress.ip_address(a) for a in values}
    return hit if op in ("eq", "in") else not hit


def reference(cond: Condition, frame: dict[str, np.ndarray], row: int) -> bool:
    if isinstance(cond, FieldTest):
        return reference_test(cond, frame[cond.field][row])
    if isinstance(cond, Not):
        return not reference(cond.child, frame, row)
    results = [reference(c, frame, row) for c in cond.children]
    return all(results) if isinstance(cond, All) else any(results)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), match=conditions, allow=st.none() | conditions)
def test_evaluator_agrees_with_per_row_reference(
    frame: dict[str, np.ndarray], match: Condition, allow: Condition | None
) -> None:
    rule = Rule("p", "p", "low", match, allow)
    result = evaluate(rule, frame)
    rows = len(frame["n1"])
    expected = [
        reference(match, frame, i) and not (allow is not None and reference(allow, frame, i))
        for i in range(rows)
    ]
    assert result.mask.tolist() == expected
    # Every flagged row is explained, and each reason is true to the row's value.
    for row, evidence in result.explanations():
        assert evidence
        for e in evidence:
            assert reference_test(e.test, frame[e.field][row]) is e.held


def to_sigma(cond: Condition, selections: dict[str, dict[str, object]]) -> str:
    """Write a condition tree as Sigma selections (added to ``selections``) and the
    condition expression over them, the way an author would."""
    if isinstance(cond, Not):
        return f"not {to_sigma(cond.child, selections)}"
    if isinstance(cond, (All, Any)):
        joiner = " and " if isinstance(cond, All) else " or "
        return "(" + joiner.join(to_sigma(c, selections) for c in cond.children) + ")"
    value = list(cond.value) if isinstance(cond.value, tuple) else cond.value
    key = {"eq": cond.field, "in": cond.field, "wildcard": cond.field,
           "ne": f"{cond.field}|neq", "not_in": f"{cond.field}|neq",
           "regex": f"{cond.field}|re", "cidr": f"{cond.field}|cidr"}.get(
        cond.op, f"{cond.field}|{cond.op}")
    entry: dict[str, object] = {key: value}
    if cond.op in ("ne", "not_in"):  # Sigma's neq also holds where the value is missing
        if cond.kind == "address":  # ... or is no address
            entry[f"{cond.field}|cidr"] = ["0.0.0.0/0", "::/0"]
        else:
            entry[f"{cond.field}|exists"] = True
    name = f"s{len(selections)}"
    selections[name] = entry
    return name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), match=conditions)
def test_sigma_rule_files_mean_what_the_tree_means(frame: dict[str, np.ndarray],
                                                    match: Condition) -> None:
    """Any condition tree, written as a Sigma rule and read back, flags the same rows."""
    selections: dict[str, dict[str, object]] = {}
    condition = to_sigma(match, selections)
    doc = {"title": "p", "id": UUID, "level": "low",
           "logsource": {"product": "burstwatch", "category": "flow"},
           "detection": {**selections, "condition": condition}}
    text = yaml.safe_dump(doc, sort_keys=False)
    rules, findings = parse_text(text, "p.yml", FieldCatalog(PROP_CATALOG))  # type: ignore[arg-type]
    assert [f for f in findings if f.is_error] == []
    expected = [reference(match, frame, i) for i in range(len(frame["n1"]))]
    assert evaluate(rules[0], frame).mask.tolist() == expected


# -- rules at two levels ------------------------------------------------------------------

CONVERSATION = HEADER.replace("category: flow", "category: conversation")


def test_logsource_category_chooses_the_records_a_rule_reads(tmp_path: Path) -> None:
    from burstwatch.alerts.frame import rule_catalog

    path = write(tmp_path, sigma("burstwatch.conversation.burst_count|gte: 4", header=CONVERSATION))
    assert lint([path], rule_catalog()) == []
    assert [r.applies_to for r in load_rules([path], rule_catalog())] == ["conversation"]
    flow = write(tmp_path, sigma("burstwatch.flow.up_burst_count|gte: 1"), "flow.yml")
    assert [r.applies_to for r in load_rules([flow], rule_catalog())] == ["flow"]


def test_a_field_of_the_other_level_is_named_with_its_level(tmp_path: Path) -> None:
    from burstwatch.alerts.frame import rule_catalog

    text = sigma("burstwatch.flow.duration|gte: 60", header=CONVERSATION)
    f = the(lint([write(tmp_path, text)], rule_catalog()), "unknown-field")
    assert (f.loc.line, f.loc.column) == (10, 5)
    assert ("'burstwatch.flow.duration' is a field of flow records, and this rule reads "
            "conversations") in f.message
    flow = sigma("burstwatch.conversation.periodicity|gte: 0.5")
    f = the(lint([write(tmp_path, flow, "f.yml")], rule_catalog()), "unknown-field")
    assert "is a field of conversation records, and this rule reads flows" in f.message


@pytest.mark.parametrize(("logsource", "column", "fragment"), [
    ("{product: burstwatch, category: conversations}", 44,
     "unknown logsource category 'conversations'; did you mean 'conversation'?"),
    ("{product: zeek, category: flow}", 22, "logsource product 'zeek' is not burstwatch"),
    ("{product: burstwatch, categroy: flow, category: flow}", 34,
     "unknown logsource key 'categroy'; did you mean 'category'?"),
    ("{product: burstwatch, category: flow, service: ssl}", 59, "no logsource services"),
    ("conversation", 12, "logsource must be a mapping"),
])
def test_a_bad_logsource_is_reported_where_it_is(tmp_path: Path, logsource: str, column: int,
                                                 fragment: str) -> None:
    from burstwatch.alerts.frame import rule_catalog

    header = HEADER.replace("{product: burstwatch, category: flow}", logsource)
    text = sigma("burstwatch.flow.up_burst_count|gte: 1", header=header)
    findings = errors(lint([write(tmp_path, text)], rule_catalog()))
    assert len(findings) == 1, [str(f) for f in findings]
    assert (findings[0].loc.line, findings[0].loc.column) == (7, column)
    assert fragment in findings[0].message


def test_a_rule_for_another_product_gets_every_problem_at_once(tmp_path: Path) -> None:
    from burstwatch.alerts.frame import rule_catalog

    header = HEADER.replace("{product: burstwatch, category: flow}", "{product: zeek, service: ssl}")
    text = sigma("server_name|endswith: .ru", "ja3: abc", header=header)
    found = errors(lint([write(tmp_path, text)], rule_catalog()))
    assert sorted((f.code, f.loc.line) for f in found) == [
        ("bad-value", 7), ("bad-value", 7), ("missing-key", 7),
        ("unknown-field", 10), ("unknown-field", 11)]
    assert "did you mean 'tls.client.server_name'?" in found[-2].message  # line 10


# ---- libyaml's events, PyYAML's composer ----------------------------------------------------

def _node_dump(node: yaml.Node) -> tuple[object, ...]:
    marks = (node.start_mark.line, node.start_mark.column, node.end_mark.line, node.end_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, node.style, *marks)
    if isinstance(node, yaml.SequenceNode):
        return ("seq", node.tag, node.flow_style, [_node_dump(n) for n in node.value], *marks)
    assert isinstance(node, yaml.MappingNode)
    return ("map", node.tag, node.flow_style,
            [(_node_dump(k), _node_dump(v)) for k, v in node.value], *marks)


YAML_TEXTS = [
    "a: plain\nb: \"dq\"\nc: 'sq'\nd: |\n  lit\ne: >\n  fold\nf: [x, 'y', 1]\ng: {h: i}\n",
    "x: &anchor {k: v}\ny: *anchor\nz: [*anchor, *anchor]\n",
    "--- \na: 1\n---\n# only a comment\n---\nb: [2, 3.5, null, true, ~]\n...\n",
    "tagged: !!python/object/apply:os.system ['echo']\nother: !custom value\n",
    "dup: 1\ndup: 2\n? [complex, key]\n: value\n",
    "name: \"日本語 ümlaut\"\nafter: {k: \"é\", j: x}  # comment\n",
    "condition: selection and not 1 of filtr_*\n" + "deep: " + "[" * 30 + "x" + "]" * 30 + "\n",
    "\ufeffbom: first\n",
    "",
]


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")
@pytest.mark.parametrize("text", YAML_TEXTS + [
    p.read_text(encoding="utf-8")
    for p in sorted((Path(__file__).resolve().parent.parent / "rules").rglob("*.yml"))])
def test_libyaml_events_compose_the_nodes_pyyamls_parser_composes(text: str) -> None:
    from burstwatch.rules import yamlnodes

    fast = yamlnodes._compose_fast(text)
    assert fast is not None  # read by libyaml
    slow: list[yaml.Node] = []
    yamlnodes._read_documents(yamlnodes._MarkedLoader(text), slow)
    assert [_node_dump(n) for n in fast] == [_node_dump(n) for n in slow]


@pytest.mark.parametrize("text", [
    "a: [1, 2\n",                # unclosed
    "a: b: c\n",                 # mapping values not allowed
    "a: \x07bell\n",             # a character the YAML reader refuses
    "a:\n\t- tab\n",             # tab indentation
    "x: " + "[" * 2000 + "]" * 2000 + "\n",  # nested too deeply for the composer
])
def test_what_libyaml_does_not_read_cleanly_is_read_and_reported_by_pyyaml(text: str) -> None:
    from burstwatch.rules import yamlnodes

    assert yamlnodes._compose_fast(text) is None
    docs, findings = yamlnodes.compose_documents(text, "r.yml")
    assert findings and all(f.code == "yaml-syntax" for f in findings)
