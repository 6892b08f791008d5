"""Judging conversations end to end: generated exfiltration shapes give one case each at
medium or above; benign shapes raise nothing at medium; real benign captures neither."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from burstwatch.builders.conversation_measure import catalog, must_stay_low
from burstwatch.cli.main import main
from burstwatch.synth.scenarios import write_scenario

EXFIL_HOST = "192.168.1.50"
MEDIUM = 47  # event.severity of a medium case


def scan(capsys: pytest.CaptureFixture[str], *paths: str) -> list[dict[str, Any]]:
    code = main(["scan", "--format", "jsonl", *paths])
    out = capsys.readouterr().out
    cases = [json.loads(x) for x in out.splitlines() if x.strip()]
    assert code == (1 if cases else 0)
    return cases


POSITIVE = [
    # (scenario, seed, params, party)
    ("exfil_jittered_session", 11, {"burst_bytes": (400_000, 900_000)}, "example.net"),
    ("exfil_conn_per_burst", 12, {"burst_bytes": (400_000, 900_000)}, "example.com"),
    ("exfil_pull_after_idle", 13, {"burst_bytes": (500_000, 1_500_000)}, "example.net"),
    ("exfil_slow_uplink", 14, {"slots": 8, "burst_bytes": (1_000_000, 2_000_000)}, "example.org"),
    ("exfil_many_small", 15, {"slots": 25}, "example.org"),
]


@pytest.mark.parametrize(("scenario", "seed", "params", "party"), POSITIVE)
def test_each_exfiltration_shape_is_one_case_at_medium_or_above(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scenario: str, seed: int,
    params: dict[str, Any], party: str,
) -> None:
    path = tmp_path / "x.pcap"
    session = write_scenario(str(path), scenario, seed, **params)
    cases = scan(capsys, str(path))
    mine = [c for c in cases if c["source"]["ip"] == EXFIL_HOST]
    assert len(mine) == 1, [c["burstwatch"]["case"]["reason"] for c in cases]
    case = mine[0]
    assert case["burstwatch"]["conversation"]["party"] == party
    assert case["event"]["severity"] >= MEDIUM, case["burstwatch"]["case"]["reason"]
    # every ground-truth burst is in the case (a slow uplink's chunk may split in two)
    assert case["burstwatch"]["case"]["upload_bursts"] >= len(session.bursts)
    assert case["burstwatch"]["case"]["upload_bytes"] >= 0.95 * sum(b.payload_bytes for b in session.bursts)
    assert case["destination"]["geo"]["country_iso_code"] in ("RU", "NL", "CN")
    # the sentence speaks to an analyst: internal feature names stay in the JSON
    from burstwatch.conversations.registry import CONVERSATION_FEATURE_NAMES
    from burstwatch.features import FEATURE_NAMES

    internal = {n for n in (*CONVERSATION_FEATURE_NAMES, *FEATURE_NAMES) if "_" in n}
    why = case["burstwatch"]["case"]["reason"]
    assert not internal & set(re.findall(r"[a-z0-9_]+", why)), why
    assert "Level " in why and case["burstwatch"]["case"]["decided_by"] in why


def test_a_rotated_capture_of_one_conversation_is_still_one_case(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The conversation spread over several files is one case, as in one file."""
    from burstwatch.synth.writer import split_capture

    path = tmp_path / "x.pcap"
    write_scenario(str(path), "exfil_conn_per_burst", 21, burst_bytes=(400_000, 900_000))
    whole = scan(capsys, str(path))
    parts = split_capture(path, tmp_path / "parts", [2000, 5000, 9000])
    split = scan(capsys, *[str(p) for p in parts])
    for c in (*whole, *split):
        c["burstwatch"].pop("capture")
    assert split == whole and len(whole) == 1


NEGATIVE = [
    ("photo_backup_home", {"photos": 8}),
    ("encrypted_call", {}),
    ("browsing_abroad", {}),
    ("ssh_interactive_abroad", {}),
    ("os_update_abroad", {}),
    ("video_stream_abroad", {}),
]


@pytest.mark.parametrize(("scenario", "params"), NEGATIVE)
def test_benign_shapes_raise_nothing_at_medium(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scenario: str, params: dict[str, Any]
) -> None:
    path = tmp_path / "b.pcap"
    write_scenario(str(path), scenario, 31, **params)
    cases = scan(capsys, str(path))
    assert [c["burstwatch"]["case"]["reason"] for c in cases if c["event"]["severity"] >= MEDIUM] == []


@pytest.mark.slow
def test_one_continuous_200_mb_upload_abroad_is_at_most_low(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "big.pcap"
    write_scenario(str(path), "continuous_upload_abroad", 32, total_bytes=200_000_000)
    cases = scan(capsys, str(path))
    assert [c["burstwatch"]["case"]["level"] for c in cases] in ([], ["low"])
    if cases:
        assert "single transfer" in cases[0]["burstwatch"]["case"]["decided_by"]


def test_real_benign_captures_raise_nothing_at_medium(
    capsys: pytest.CaptureFixture[str], shared_pcaps: Path
) -> None:
    """Every real capture labelled NEG or POS* (a benign app with the target shape)."""
    chosen = [path for path, label in catalog(shared_pcaps) if must_stay_low(label)]
    assert chosen, "the catalogs list no NEG or POS* capture"
    loud = {}
    for path in chosen:
        name = path.name
        cases = scan(capsys, str(path))
        high = [c["burstwatch"]["case"]["reason"] for c in cases if c["event"]["severity"] >= MEDIUM]
        if high:
            loud[name] = high
    assert loud == {}
