"""How the ECS fields are derived (direction, TLS version, ALPN, risk score, ATT&CK threat,
Community ID per row), each against hand-computed values, and every synthetic scenario's
records against the strict schemas."""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from burstwatch.alerts.attack import threat_fields
from burstwatch.conversations.cases import risk_score
from burstwatch.outputs.community_id import community_id, community_ids
from burstwatch.outputs.ecs import _alpn, _tls_version, ecs_direction
from burstwatch.schema import ALERT, BURST, CONVERSATION, FLOW
from burstwatch.schema.jsonschema import record_schema
from tests.test_community_id import VECTORS


def obj(*values: Any) -> np.ndarray:
    out = np.empty(len(values), object)
    out[:] = list(values)
    return out


def test_network_direction_uses_the_ecs_values_from_the_scopes() -> None:
    src = obj("internal", "internal", "foreign", "home", None, "internal")
    dst = obj("foreign", "internal", "internal", "unknown", "home", None)
    assert ecs_direction(src, dst).tolist() == [
        "outbound", "internal", "inbound", "external", "unknown", "unknown"]


def test_tls_versions_go_to_ecs_and_the_other_protocols_stay_ours() -> None:
    raw = obj("TLS 1.3", "SSL 3.0", "DTLS 1.2", "QUIC v1", "SSH-2.0-OpenSSH_9.6", None, "TLS 1.2")
    verdict = obj("tls", "tls", "dtls", "quic", "ssh", "none", "quic")
    version, protocol, rest = _tls_version(raw, verdict)
    assert version.tolist() == ["1.3", "3.0", None, None, None, None, None]
    assert protocol.tolist() == ["tls", "ssl", None, None, None, None, None]
    assert rest.tolist() == [None, None, "DTLS 1.2", "QUIC v1", "SSH-2.0-OpenSSH_9.6", None,
                             "TLS 1.2"]


def test_next_protocol_only_when_the_client_offered_one() -> None:
    offered, chosen = _alpn(obj("h2,http/1.1", "H2", "", None))
    assert offered.tolist() == [["h2", "http/1.1"], ["H2"], None, None]
    assert chosen.tolist() == [None, "h2", None, None]


@pytest.mark.parametrize(("level", "score", "want"), [
    ("low", None, 21.0), ("low", 0.0, 21.0), ("low", 1.0, 46.0), ("medium", 0.5, 59.5),
    ("high", 0.7825, 92.6), ("high", 1.0, 98.0), ("critical", 0.0, 99.0),
    ("critical", 1.0, 100.0), ("high", float("nan"), 73.0), ("medium", 1.7, 72.0),
])
def test_risk_score_keeps_the_levels_apart(level: str, score: float | None, want: float) -> None:
    # severity + 25 x score (x 1 at critical): 73 + 25 x 0.7825 = 92.5625 -> 92.6
    assert risk_score(level, score) == want


def test_attack_tags_become_ecs_threat_fields() -> None:
    got = threat_fields(["attack.exfiltration", "attack.command_and_control", "attack.t1048.003",
                         "attack.t1041", "attack.t9999", "cve.2024-1", "attack.ta0040"])
    assert got == {
        "framework": "MITRE ATT&CK",
        "tactic": {"id": ["TA0010", "TA0011", "TA0040"],
                   "name": ["Exfiltration", "Command and Control", "Impact"],
                   "reference": ["https://attack.mitre.org/tactics/TA0010/",
                                 "https://attack.mitre.org/tactics/TA0011/",
                                 "https://attack.mitre.org/tactics/TA0040/"]},
        "technique": {
            "id": ["T1048", "T1041", "T9999"],
            "name": ["Exfiltration Over Alternative Protocol", "Exfiltration Over C2 Channel",
                     "T9999"],
            "reference": ["https://attack.mitre.org/techniques/T1048/",
                          "https://attack.mitre.org/techniques/T1041/",
                          "https://attack.mitre.org/techniques/T9999/"],
            "subtechnique": {
                "id": ["T1048.003"],
                "name": ["Exfiltration Over Unencrypted Non-C2 Protocol"],
                "reference": ["https://attack.mitre.org/techniques/T1048/003/"]}},
    }
    assert threat_fields(["cve.2024-1", "detection.emerging_threats"]) == {}


def _pair(addr: str) -> tuple[int, int]:
    import ipaddress

    a = ipaddress.ip_address(addr)
    v = int(ipaddress.IPv6Address(f"::ffff:{a}")) if a.version == 4 else int(a)
    return v >> 64, v & ((1 << 64) - 1)


def _random_address(rng: random.Random, v6: bool) -> str:
    if v6:
        return ":".join(f"{rng.randrange(65536):x}" for _ in range(8))
    return ".".join(str(rng.randrange(256)) for _ in range(4))


def test_community_ids_of_columns_are_the_reference_functions() -> None:
    """The column-wise ids equal the per-connection function (itself checked on the spec's
    published vectors in test_community_id.py) on those vectors and on random rows."""
    rng = random.Random(5)
    rows = [(p, s, d, sp or 0, dp or 0) for p, s, d, sp, dp, _, _ in VECTORS]
    for _ in range(500):
        v6 = rng.random() < 0.3
        s = _random_address(rng, v6)
        d = s if rng.random() < 0.05 else _random_address(rng, v6)
        proto = rng.choice([6, 17, 132, 1 if not v6 else 58, 47, 50])
        rows.append((proto, s, d, rng.randrange(65536) if proto not in (1, 58) else rng.randrange(20),
                     rng.randrange(65536) if proto not in (1, 58) else rng.randrange(4)))
    proto = np.array([r[0] for r in rows])
    src = np.array([_pair(r[1]) for r in rows], np.uint64)
    dst = np.array([_pair(r[2]) for r in rows], np.uint64)
    got = community_ids(proto, src[:, 0], src[:, 1], dst[:, 0], dst[:, 1],
                        np.array([r[3] for r in rows]), np.array([r[4] for r in rows]))
    want = [community_id(p, s, d, sp, dp) for p, s, d, sp, dp in rows]
    assert got == want
    assert got[:len(VECTORS)] == [v[5] for v in VECTORS]


# ---- every synthetic scenario's records against the strict schemas ----

def _records(argv: list[str], out: Path) -> list[dict[str, Any]]:
    from burstwatch.cli.main import main

    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, str(out)]) in (0, 1)
    return [json.loads(line) for line in out.read_text().splitlines()]


def _validate_records_of(captures: list[tuple[str, Path]], tmp_path: Path) -> dict[str, int]:
    """Flow, burst, conversation and alert records of each capture against the strict
    schemas; returns how many records of each kind were checked."""
    validators = {k: jsonschema.Draft202012Validator(record_schema(k),
                                                     format_checker=jsonschema.FormatChecker())
                  for k in (FLOW, BURST, CONVERSATION, ALERT)}
    seen: dict[str, int] = dict.fromkeys(validators, 0)
    for name, cap in captures:
        runs = {FLOW: ["flows", str(cap), "-o"], BURST: ["flows", str(cap), "--bursts", "-o"],
                CONVERSATION: ["flows", str(cap), "--conversations", "-o"],
                ALERT: ["scan", str(cap), "--format", "jsonl", "--alerts"]}
        for kind, argv in runs.items():
            for rec in _records(argv, tmp_path / f"{name}.{kind}.jsonl"):
                errors = [f"{e.json_path}: {e.message}" for e in validators[kind].iter_errors(rec)]
                assert not errors, (name, kind, errors[:3])
                seen[kind] += 1
    return seen


@pytest.mark.slow
def test_every_scenarios_records_validate_against_the_strict_schemas(tmp_path: Path) -> None:
    from burstwatch.synth.scenarios import ALL_SCENARIOS, write_scenario

    captures = []
    for k, name in enumerate(sorted(ALL_SCENARIOS)):
        cap = tmp_path / f"{name}.pcap"
        write_scenario(str(cap), name, k + 1)
        captures.append((name, cap))
    seen = _validate_records_of(captures, tmp_path)
    assert all(seen.values()), seen  # every kind was met (alerts: the exfil scenarios)


@pytest.mark.slow
def test_every_real_captures_records_validate_against_the_strict_schemas(
        tmp_path: Path, shared_pcaps: Path) -> None:
    """Real traffic brings what no scenario has: tunnels, fragments, IPv6 extension chains,
    VPN verdicts with versions, links that are not Ethernet."""
    found = [*shared_pcaps.glob("*.pcap*"), *shared_pcaps.glob("encap/*.pcap*")]
    captures = [(f"real{k}", p) for k, p in enumerate(sorted(found)) if p.is_file()]
    assert captures
    seen = _validate_records_of(captures, tmp_path)
    assert seen[FLOW] and seen[BURST] and seen[CONVERSATION], seen


def test_live_case_records_name_the_observer_in_ecs() -> None:
    from burstwatch.cli.live import observer

    rec = json.loads((Path(__file__).parent / "golden" / "alerts.jsonl").read_text()
                     .splitlines()[0])
    rec["observer"] = observer("eth1")
    assert rec["observer"]["ingress"] == {"interface": {"name": "eth1"}}
    assert rec["observer"]["type"] == "sensor" and rec["observer"]["hostname"]
    v = jsonschema.Draft202012Validator(record_schema(ALERT))
    assert v.is_valid(rec), [e.message for e in v.iter_errors(rec)]


def test_the_case_record_names_the_deciding_rule_in_ecs() -> None:
    """rule.uuid, rule.version (modified, else date), rule.reference (the first) and
    threat.* come from the rule whose finding set the level."""
    from burstwatch.conversations.cases import Case, Finding
    from burstwatch.conversations.registry import CONVERSATION_FEATURE_NAMES

    low = Finding("flow rule", "bw-9", "Low one", "low", tags=["attack.collection"],
                  uuid="0a1b2c3d-0000-4000-8000-000000000001", version="2025-01-01")
    top = Finding("conversation rule", "bw-1", "Top one", "high",
                  tags=["attack.exfiltration", "attack.t1030"],
                  uuid="5f0c8a2e-9d1b-4c3a-8e7f-6a5b4c3d2e1f", version="2026-11-30",
                  reference="https://attack.mitre.org/techniques/T1030/")
    case = Case("c1", "high", "10.0.0.5", "example.org", "domain", "203.0.113.9", 1, 443,
                "tcp", "NL", 64500, "Example", "foreign", "tls", "", 0, 10**9, [], [],
                dict.fromkeys(CONVERSATION_FEATURE_NAMES),
                [low, top], 0.5, [], "rule bw-1 says high", "x.pcap")
    rec = case.to_record()
    assert rec["rule"] == {"id": "bw-1", "name": "Top one",
                           "uuid": "5f0c8a2e-9d1b-4c3a-8e7f-6a5b4c3d2e1f",
                           "version": "2026-11-30",
                           "reference": "https://attack.mitre.org/techniques/T1030/",
                           "ruleset": "burstwatch"}
    assert rec["threat"]["tactic"]["id"] == ["TA0010"]
    assert rec["threat"]["technique"]["id"] == ["T1030"]
    assert rec["event"]["risk_score"] == 85.5  # 73 + 25 x 0.5
    assert rec["related"]["ip"] == ["10.0.0.5", "203.0.113.9"]
    v = jsonschema.Draft202012Validator(record_schema(ALERT))
    assert v.is_valid(rec), [e.message for e in v.iter_errors(rec)]
