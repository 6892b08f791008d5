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
    lint,
    load_rules,
    parse_text,
)
from burstwatch.rules.model import Location

# Five lines, so a rule's `match:` written right after it starts on line 6.
HEADER = """\
id: r1
title: Test rule
description: Flags what the test needs flagged.
tags: [attack.exfiltration, attack.t1041]
level: high
"""


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
    text = HEADER + "match: {burst_count: {gte: 1}}\n"
    assert findings_for(tmp_path, text) == []


def test_yaml_syntax_error_points_where_pyyaml_stopped(tmp_path: Path) -> None:
    text = HEADER + "match: {burst_count: {gte: 1}\n"  # flow mapping never closed
    f = the(findings_for(tmp_path, text), "yaml-syntax")
    assert f.is_error
    assert f.loc.line == 7  # end of stream, reported by PyYAML
    assert "started at line 6" in f.message
    assert "closing brackets" in f.message


def test_syntax_error_in_later_document_keeps_earlier_rules(tmp_path: Path) -> None:
    text = HEADER + "match: {burst_count: {gte: 1}}\n---\nid: [\n"
    rules, findings = parse_text(text, "x.yml", default_catalog())
    assert [r.id for r in rules] == ["r1"]
    assert [f.code for f in findings] == ["yaml-syntax"]
    assert findings[0].loc.line == 9  # end of stream, as PyYAML reports it


def test_unknown_top_level_key_suggests_closest(tmp_path: Path) -> None:
    text = HEADER + "match: {burst_count: {gte: 1}}\nfalsepositive: [backups]\n"
    f = the(findings_for(tmp_path, text), "unknown-key")
    assert (f.loc.line, f.loc.column) == (7, 1)
    assert "did you mean 'falsepositives'?" in f.message


def test_tests_key_is_pointed_to_the_tests_file(tmp_path: Path) -> None:
    text = HEADER + "match: {burst_count: {gte: 1}}\ntests: []\n"
    f = the(findings_for(tmp_path, text), "unknown-key")
    assert f.loc.line == 7
    assert ".tests.yml" in f.message


def test_unknown_field_suggests_registered_names(tmp_path: Path) -> None:
    text = HEADER + "match:\n  all:\n    - burst_count: {gte: 1}\n    - peak_burst_rat: {gte: 1}\n"
    f = the(findings_for(tmp_path, text), "unknown-field")
    assert (f.loc.line, f.loc.column) == (9, 7)
    assert "did you mean 'peak_burst_rate'?" in f.message


def test_unknown_field_uses_the_callers_catalog(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "match: {burst_duration: {lt: 2}}\n")
    assert the(lint([path], default_catalog()), "unknown-field").loc.line == 6
    catalog = default_catalog().register("burst_duration", "number", "seconds per burst")
    assert lint([path], catalog) == []


def test_misspelt_combinator_is_named(tmp_path: Path) -> None:
    text = HEADER + "match:\n  or:\n    - burst_count: {gte: 1}\n"
    f = the(findings_for(tmp_path, text), "unknown-field")
    assert f.loc.line == 7
    assert "write any" in f.message


@pytest.mark.parametrize(
    ("condition", "line", "fragment"),
    [
        ("burst_count: {gt: abc}", 6, "needs a number, not 'abc'"),
        ("burst_count: {gt: true}", 6, "write 1 or 0"),
        ("burst_count: {gte: .nan}", 6, "NaN never compares true"),
        ("encryption: {in: tls}", 6, "write 'in: [tls]'"),
        ("encryption: {in: []}", 6, "empty list"),
        ("encryption: {eq: [tls, quic]}", 6, "or 'in' for a list"),
        ("destination.ip: {cidr: [10.0.0.300/8]}", 6, "is not a network"),
        ("destination.ip: {cidr: 203.0.113.5/24}", 6, "write 203.0.113.0/24"),
        ("destination.ip: {eq: 10.0.0.0/8}", 6, "for a network use cidr"),
        ("tls.client.server_name: {regex: '(unclosed'}", 6, "bad regular expression"),
    ],
)
def test_wrong_value_type(tmp_path: Path, condition: str, line: int, fragment: str) -> None:
    f = the(findings_for(tmp_path, HEADER + f"match: {{{condition}}}\n"), "bad-value")
    assert f.is_error
    assert f.loc.line == line
    assert fragment in f.message


def test_unknown_level_suggests_closest(tmp_path: Path) -> None:
    text = HEADER.replace("level: high", "level: hgih") + "match: {burst_count: {gte: 1}}\n"
    f = the(findings_for(tmp_path, text), "bad-value")
    assert (f.loc.line, f.loc.column) == (5, 8)
    assert "did you mean 'high'?" in f.message


def test_operator_that_does_not_fit_the_field_kind(tmp_path: Path) -> None:
    f = the(findings_for(tmp_path, HEADER + "match: {encryption: {gt: 5}}\n"), "operator-kind")
    assert f.loc.line == 6
    assert "use one of eq, ne, in, not_in, wildcard, regex" in f.message


@pytest.mark.parametrize(
    ("op", "fragment"),
    [("gtee", "did you mean 'gte'"), (">=", "write gte instead"), ("contains", "wildcard")],
)
def test_unknown_operator_suggests_closest(tmp_path: Path, op: str, fragment: str) -> None:
    text = HEADER + f"match:\n  upload_share: {{'{op}': 0.5}}\n"
    f = the(findings_for(tmp_path, text), "unknown-operator")
    assert (f.loc.line, f.loc.column) == (7, 18)
    assert fragment in f.message


def test_duplicate_rule_id_across_files_points_at_both(tmp_path: Path) -> None:
    first = write(tmp_path, HEADER + "match: {burst_count: {gte: 1}}\n", "a/one.yml")
    second = write(tmp_path, "# another rule\n" + HEADER + "match: {burst_count: {gte: 2}}\n",
                   "b/two.yaml")
    found = [f for f in lint([tmp_path], default_catalog()) if f.code == "duplicate-id"]
    assert {(f.loc.file, f.loc.line) for f in found} == {(str(first), 1), (str(second), 2)}
    by_file = {f.loc.file: f for f in found}
    assert by_file[str(first)].related == (Location(str(second), 2, 5),)
    assert f"{second}:2:5" in by_file[str(first)].message
    assert "ids must be unique" in by_file[str(second)].message


def test_duplicate_id_is_found_even_when_the_rule_has_other_errors(tmp_path: Path) -> None:
    text = HEADER + "match: {burst_count: {gte: 1}}\n---\n" + HEADER + "match: {nope: 1}\n"
    found = findings_for(tmp_path, text)
    assert {f.loc.line for f in found if f.code == "duplicate-id"} == {1, 8}


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    text = HEADER + "match: {burst_count: {gte: 1, gte: 2}}\nlevel: low\n"
    found = [f for f in findings_for(tmp_path, text) if f.code == "duplicate-key"]
    assert [(f.loc.line, f.loc.column) for f in found] == [(6, 31), (7, 1)]
    assert "first at line 6, column 23" in found[0].message
    assert "first at line 5" in found[1].message


def test_missing_required_keys(tmp_path: Path) -> None:
    text = "# comment\nid: r1\ndescription: no title, no level\nmatch: {burst_count: 1}\n"
    found = [f for f in findings_for(tmp_path, text) if f.code == "missing-key"]
    assert [f.loc.line for f in found] == [2, 2]
    assert sorted(f.message.split("'")[1] for f in found) == ["level", "title"]
    assert any("one of low, medium, high, critical" in f.message for f in found)


@pytest.mark.parametrize(
    ("match", "line", "fragment"),
    [
        ("match:\n  all: []\n", 7, "'all' has no conditions"),
        ("match:\n  any:\n", 7, "'any' has no conditions"),
        ("match:\n  not: {}\n", 7, "'not' has no condition"),
        ("match:\n  upload_share: {}\n", 7, "'upload_share' has no operator"),
        ("match: {}\n", 6, "match is empty"),
    ],
)
def test_empty_combinators(tmp_path: Path, match: str, line: int, fragment: str) -> None:
    f = the(findings_for(tmp_path, HEADER + match), "empty-combinator")
    assert f.loc.line == line
    assert fragment in f.message


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    text = """\
        id: r1
        titel: typo
        level: severe
        match:
          all:
            - peak_burst_rat: {gte: 1}
            - burst_count: {gt: abc}
            - upload_share: {gtee: 1}
            - any: []
        """
    found = findings_for(tmp_path, text)
    assert sorted((f.code, f.loc.line) for f in errors(found)) == [
        ("bad-value", 3), ("bad-value", 7), ("empty-combinator", 9), ("missing-key", 1),
        ("unknown-field", 6), ("unknown-key", 2), ("unknown-operator", 8),
    ]
    assert "'title'" in the(found, "missing-key").message


def test_malicious_tag_is_an_error_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = HEADER + f"match:\n  burst_count: !!python/object/apply:os.system ['touch {marker}']\n"
    path = write(tmp_path, text)
    f = the(lint([path], default_catalog()), "yaml-tag")
    assert (f.loc.line, f.loc.column) == (7, 16)
    assert "!!python/object/apply:os.system" in f.message
    with pytest.raises(RuleError):
        load_rules([path], default_catalog())
    assert not marker.exists()


def test_tagged_document_is_rejected_whole(tmp_path: Path) -> None:
    text = "!!python/object:os.system\nid: r1\n"
    f = the(findings_for(tmp_path, text), "yaml-tag")
    assert f.loc.line == 1


def test_aliases_are_rejected(tmp_path: Path) -> None:
    text = HEADER + "match: {burst_count: &b {gte: 1}, upload_share: *b}\n"
    f = the(findings_for(tmp_path, text), "yaml-alias")
    assert (f.loc.line, f.loc.column) == (6, 49)


def test_warnings_do_not_stop_loading(tmp_path: Path) -> None:
    text = HEADER.replace("attack.t1041", "Attack.T1041") + "match: {burst_count: {gte: 5, lt: 1}}\n"
    path = write(tmp_path, text)
    found = lint([path], default_catalog())
    assert {f.code for f in found} == {"tag-style", "never-true"}
    assert not errors(found)
    assert "write 'attack.t1041'" in the(found, "tag-style").message
    assert [r.id for r in load_rules([path], default_catalog())] == ["r1"]


def test_load_rules_raises_with_every_finding(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "match: {nope: 1, burst_count: {gt: x}}\n")
    with pytest.raises(RuleError) as info:
        load_rules([path], default_catalog())
    assert {f.code for f in info.value.findings} == {"unknown-field", "bad-value"}
    assert f"{path}:6:9: error: unknown field 'nope'" in str(info.value)


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    text = HEADER + "match: {burst_count: 1}\n---\n- just\n- a list\n"
    f = the(findings_for(tmp_path, text), "not-a-rule")
    assert f.loc.line == 8
    assert "separate several rules with a '---' line" in f.message


def test_empty_folder_is_a_warning(tmp_path: Path) -> None:
    f = the(lint([tmp_path], default_catalog()), "no-rules")
    assert f.severity == "warning"


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    f = the(lint([tmp_path / "nope"], default_catalog()), "read-error")
    assert "no such file" in f.message


# -- loading ------------------------------------------------------------------------------


def test_folder_walk_skips_test_case_files(tmp_path: Path) -> None:
    body = "title: t\nlevel: low\nmatch: {burst_count: 1}\n"
    write(tmp_path, "id: a\n" + body, "a.yml")
    write(tmp_path, "id: b\n" + body, "deep/er/b.yaml")
    write(tmp_path, "cases: [not a rule]\n", "a.tests.yml")
    write(tmp_path, "cases: [not a rule]\n", "deep/b.tests.yaml")
    write(tmp_path, "cases: [not a rule]\n", "tests/anything.yml")
    write(tmp_path, "not yaml at all: [\n", "notes.txt")
    rules = load_rules([tmp_path], default_catalog())
    assert sorted(r.id for r in rules) == ["a", "b"]


def test_several_rules_per_file_and_their_locations(tmp_path: Path) -> None:
    text = HEADER + "match: {burst_count: 1}\n---\n" + HEADER.replace("r1", "r2") + (
        "match:\n  any:\n    - encryption: [tls, quic]\n    - not: {upload_share: {lt: 0.5}}\n"
        "allow: {tls.client.server_name: {wildcard: '*.example.com'}}\n---\n"
    )
    path = write(tmp_path, text)
    one, two = load_rules([path], default_catalog())
    assert one.loc == Location(str(path), 1, 1)
    assert one.match == FieldTest("burst_count", "eq", 1.0)
    assert two.loc.line == 8
    assert two.match == Any((
        FieldTest("encryption", "in", ("tls", "quic"), "string"),
        Not(FieldTest("upload_share", "lt", 0.5)),
    ))
    assert isinstance(two.match, Any)
    assert (two.match.loc.line, two.match.loc.column) == (14, 3)
    assert two.match.children[1].loc.line == 16
    assert two.allow == FieldTest("tls.client.server_name", "wildcard", ("*.example.com",), "string")
    assert two.tags == ("attack.exfiltration", "attack.t1041")
    assert two.fields == {"encryption", "upload_share", "tls.client.server_name"}


def test_values_are_read_by_field_kind_not_yaml_guesses(tmp_path: Path) -> None:
    text = HEADER + (
        "match:\n"
        "  destination.geo.country_iso_code: {in: [NO, SE, 'ON']}\n"
        "  peak_burst_rate: {gte: 1e6, lt: 1_000_000_000}\n"
        "  destination.ip: {ne: '2001:0db8::0001', not_in: ['::ffff:192.0.2.1']}\n"
    )
    (rule,) = load_rules([write(tmp_path, text)], default_catalog())
    assert isinstance(rule.match, All)
    assert rule.match.children == (
        FieldTest("destination.geo.country_iso_code", "in", ("NO", "SE", "ON"), "string"),
        FieldTest("peak_burst_rate", "gte", 1e6),
        FieldTest("peak_burst_rate", "lt", 1e9),
        FieldTest("destination.ip", "ne", "2001:db8::1", "address"),
        FieldTest("destination.ip", "not_in", ("192.0.2.1",), "address"),
    )


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
        ("s", "eq", "tls", "100000"),  # case-sensitive; None and NaN are missing
        ("s", "ne", "tls", "011010"),
        ("s", "in", ("tls", "quic"), "101000"),
        ("s", "not_in", ("tls", "quic"), "010010"),
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
    text = HEADER + textwrap.dedent("""\
        match:
          all:
            - encryption: {in: [tls, quic]}
            - peak_burst_rate: {gte: 1000000}
            - any:
                - upload_share: {gte: 0.7}
                - not: {burst_upload_share: {lt: 0.7}}
        """)
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
    assert [e.test.loc.line for e in row0] == [8, 9, 11]
    row1 = result.explain(1)
    assert [(e.field, e.value, e.held) for e in row1] == [
        ("encryption", "quic", True),
        ("peak_burst_rate", 4e6, True),
        ("burst_upload_share", 0.95, False),
    ]
    assert str(row1[2]) == "burst_upload_share=0.95 (not lt 0.7)"
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
        return {
            "eq": lambda: raw == v, "ne": lambda: raw != v,
            "in": lambda: raw in v, "not_in": lambda: raw not in v,  # type: ignore[operator]
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


def to_yaml(cond: Condition) -> object:
    """The plain-data form an author would write for a condition tree."""
    if isinstance(cond, FieldTest):
        value = list(cond.value) if isinstance(cond.value, tuple) else cond.value
        return {cond.field: {cond.op: value}}
    if isinstance(cond, Not):
        return {"not": to_yaml(cond.child)}
    return {"all" if isinstance(cond, All) else "any": [to_yaml(c) for c in cond.children]}


@settings(max_examples=150, deadline=None)
@given(match=conditions)
def test_rule_files_round_trip_random_conditions(match: Condition) -> None:
    doc = {"id": "p", "title": "p", "level": "low", "match": to_yaml(match)}
    text = yaml.safe_dump(doc, sort_keys=False)
    rules, findings = parse_text(text, "p.yml", FieldCatalog(PROP_CATALOG))  # type: ignore[arg-type]
    assert [f for f in findings if f.is_error] == []
    assert rules[0].match == match


# -- rules at two levels ------------------------------------------------------------------


def test_logsource_category_chooses_the_records_a_rule_reads(tmp_path: Path) -> None:
    from burstwatch.alerts.frame import rule_catalog

    conversation = HEADER + ("logsource: {product: burstwatch, category: conversation}\n"
                             "match: {burstwatch.conversation.burst_count: {gte: 4}}\n")
    path = write(tmp_path, conversation)
    assert lint([path], rule_catalog()) == []
    assert [r.applies_to for r in load_rules([path], rule_catalog())] == ["conversation"]
    flow = write(tmp_path, HEADER + "match: {burstwatch.flow.up_burst_count: {gte: 1}}\n", "flow.yml")
    assert [r.applies_to for r in load_rules([flow], rule_catalog())] == ["flow"]


def test_a_field_of_the_other_level_is_named_with_its_level(tmp_path: Path) -> None:
    from burstwatch.alerts.frame import rule_catalog

    text = HEADER + ("logsource: {category: conversation}\n"
                     "match:\n  all:\n    - burstwatch.flow.duration: {gte: 60}\n")
    f = the(lint([write(tmp_path, text)], rule_catalog()), "unknown-field")
    assert (f.loc.line, f.loc.column) == (9, 7)  # the field, under "all:"
    assert "'burstwatch.flow.duration' is a field of flow records, and this rule reads conversations" in f.message
    flow = HEADER + "match: {burstwatch.conversation.periodicity: {gte: 0.5}}\n"
    f = the(lint([write(tmp_path, flow, "f.yml")], rule_catalog()), "unknown-field")
    assert "is a field of conversation records, and this rule reads flows" in f.message


@pytest.mark.parametrize(("logsource", "fragment"), [
    ("{category: conversations}", "unknown logsource category 'conversations'; did you mean 'conversation'?"),
    ("{product: zeek}", "logsource product 'zeek' is not burstwatch"),
    ("{categroy: flow}", "unknown logsource key 'categroy'; did you mean 'category'?"),
    ("conversation", "logsource must be a mapping"),
])
def test_a_bad_logsource_is_reported_where_it_is(tmp_path: Path, logsource: str, fragment: str) -> None:
    from burstwatch.alerts.frame import rule_catalog

    text = HEADER + f"logsource: {logsource}\nmatch: {{burstwatch.flow.up_burst_count: {{gte: 1}}}}\n"
    findings = errors(lint([write(tmp_path, text)], rule_catalog()))
    assert len(findings) == 1 and findings[0].loc.line == 6, [str(f) for f in findings]
    assert fragment in findings[0].message
