"""Rule patterns run in time linear in the text, whatever the pattern and the value."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.rules import FieldTest, default_catalog, evaluate
from burstwatch.rules.lint import lint
from burstwatch.rules.model import Rule

HOSTILE_SNI = "a" * 50_000 + "!"  # 50 k characters an attacker can put in a ClientHello
GENEROUS_S = 120.0  # a backtracking engine needs far longer than this; a linear one, milliseconds


def _finishes(work: object) -> bool:
    """Run ``work`` in a thread; True when it is done within the generous bound."""
    done = threading.Event()

    def run() -> None:
        work()  # type: ignore[operator]
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(GENEROUS_S)


def _match(op: str, pattern: str, value: str) -> bool:
    rule = Rule("r", "r", "high", FieldTest("tls.client.server_name", op, (pattern,), "string"))  # type: ignore[arg-type]
    frame = {"tls.client.server_name": np.array([value], dtype=object)}
    return bool(evaluate(rule, frame).mask[0])


@pytest.mark.parametrize(
    ("op", "pattern"),
    [("regex", "(a+)+b$"), ("regex", "^(a|aa)*b$"), ("wildcard", "*a*a*a*a*a*a*a*a*a*a*b")],
)
def test_hostile_pattern_against_a_long_server_name_finishes(op: str, pattern: str) -> None:
    result: list[bool] = []
    assert _finishes(lambda: result.append(_match(op, pattern, HOSTILE_SNI)))
    assert result == [False]  # the '!' at the end spoils every one of them
    assert _finishes(lambda: result.append(_match(op, pattern, HOSTILE_SNI[:-1] + "b")))
    assert result == [False, True]


def test_wildcards_are_literal_apart_from_star_and_question_mark() -> None:
    assert _match("wildcard", "*.example.com", "Relay.EXAMPLE.com")
    assert not _match("wildcard", "*.example.com", "relayXexample.com")  # '.' is a dot
    assert _match("wildcard", "a?c[1]+", "abc[1]+")  # brackets and '+' are plain text
    assert not _match("wildcard", "a?c", "ac")
    assert _match("wildcard", "*", "multi\nline")


def test_lint_names_a_regex_the_linear_engine_does_not_support(tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"
    path.write_text(
        "id: 0b5b2a8e-3c1d-4b8f-9a57-1f2e3d4c5b6a\ntitle: T\ndescription: D\n"
        "tags: [attack.exfiltration]\nlevel: high\nlogsource: {product: burstwatch, category: flow}\n"
        "detection:\n  selection:\n    tls.client.server_name|re: '(a)\\1'\n  condition: selection\n",
        encoding="utf-8")
    findings = [f for f in lint([path], default_catalog()) if f.is_error]
    assert len(findings) == 1 and "backreference" in findings[0].message
    assert (findings[0].loc.line, findings[0].loc.column) == (9, 32)  # the quoted pattern


@settings(max_examples=500, deadline=None)
@given(st.text("ab*?", max_size=8), st.text("abAB", max_size=10))
def test_the_linear_wildcard_matcher_agrees_with_a_regex_translation(pattern: str, text: str) -> None:
    """On short values a backtracking regex is a fine oracle: same answers, any case."""
    oracle = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    expected = re.fullmatch(oracle, text, re.IGNORECASE | re.DOTALL) is not None
    assert _match("wildcard", pattern, text) == expected
