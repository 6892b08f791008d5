"""Rule test cases: a capture plus the alerts a rule must (and must not) raise on it.

A rule file ``rules/NAME.yml`` has its cases in ``rules/tests/NAME.tests.yml``::

    rule: bw-001                                        # the rule's name, or its Sigma id
    cases:
      - name: TLS upload bursts to Russia
        capture: ../../pcaps/tests/exfil-tls-ru.pcap   # relative to this file
        home: [US]                                      # optional, default US
        expect:                                         # every flow the rule must flag
          - {source.ip: 192.168.1.10, destination.ip: 77.88.8.8}
      - name: domestic backup upload
        generate: {scenario: backup_upload, seed: 3}    # or: a generated capture
        expect: []                                      # nothing may be flagged

``generate`` names a scenario of the capture generator (``burstwatch generate scenario --help``)
with its ``seed``, optional ``link``, ``nanosecond``, ``params`` and ``day`` (days after the
scenarios' default start); the capture is written to a temporary file when the case runs, so
large scenarios cost no repository space and stay deterministic. ``generate`` may also be a
list of scenarios: they are written to separate files and read together as one capture (a
host's history, then what a conversation rule should see). Conversation rules expect
``{source.ip: ..., burstwatch.conversation.party: ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burstwatch.inputfiles import InputFileError, read_text
from burstwatch.rules.findings import Finding, RuleError
from burstwatch.rules.model import Location
from burstwatch.rules.yamlnodes import plain_data

_CASE_KEYS = {"name", "capture", "generate", "home", "expect"}
_GENERATE_KEYS = {"scenario", "seed", "link", "nanosecond", "params", "day"}
PARTY = "burstwatch.conversation.party"
_EXPECT_KEYS = {"source.ip", "destination.ip", "destination.port", "source.port", PARTY}


@dataclass(frozen=True)
class RuleCase:
    rule_id: str
    name: str
    capture: Path | None
    generate: tuple[dict[str, Any], ...] | None
    home: tuple[str, ...]
    expect: tuple[dict[str, Any], ...]
    file: Path


def case_file_for(rule_file: Path) -> Path:
    return rule_file.parent / "tests" / f"{rule_file.stem}.tests.yml"


def _error(file: Path, msg: str, line: int = 1) -> RuleError:
    return RuleError([Finding(Location(str(file), line, 1), "error", "bad-test-case", msg)])


def load_cases(file: Path) -> list[RuleCase]:
    """Parse one ``*.tests.yml`` file (safe YAML); problems raise RuleError with file:line."""
    try:
        data = plain_data(read_text(file, "a rule test file"), str(file))
    except InputFileError as exc:
        raise _error(file, exc.problem, max(exc.line, 1)) from None
    if not isinstance(data, dict) or "rule" not in data or not isinstance(data.get("cases"), list):
        raise _error(file, "expected keys 'rule' (a rule id) and 'cases' (a list)")
    out = []
    for i, case in enumerate(data["cases"]):
        if (not isinstance(case, dict) or set(case) - _CASE_KEYS or "expect" not in case
                or ("capture" in case) == ("generate" in case)):
            raise _error(file, f"case {i + 1}: expected keys among {sorted(_CASE_KEYS)}: "
                         "'expect' and exactly one of 'capture' or 'generate'")
        gen = case.get("generate")
        specs = gen if isinstance(gen, list) else [gen] if gen is not None else []
        if gen is not None and (not specs or any(
            not isinstance(g, dict) or "scenario" not in g or set(g) - _GENERATE_KEYS
            or not isinstance(g.get("params", {}), dict) for g in specs
        )):
            raise _error(file, f"case {i + 1}: 'generate' (or each item of its list) needs "
                         "'scenario' and may have 'seed', 'link', 'nanosecond', 'day' and "
                         "'params' (a mapping)")
        expect = case["expect"] or []
        if not isinstance(expect, list) or any(not isinstance(e, dict) or set(e) - _EXPECT_KEYS for e in expect):
            raise _error(file, f"case {i + 1}: 'expect' must be a list of mappings with keys among {sorted(_EXPECT_KEYS)}")
        home = case.get("home", ["US"])
        out.append(RuleCase(
            rule_id=str(data["rule"]),
            name=str(case.get("name", f"case {i + 1}")),
            capture=(file.parent / str(case["capture"])).resolve() if "capture" in case else None,
            generate=tuple(dict(g) for g in specs) if gen is not None else None,
            home=tuple(str(h).upper() for h in (home if isinstance(home, list) else [home])),
            expect=tuple({k: str(v) for k, v in e.items()} for e in expect),
            file=file,
        ))
    return out
