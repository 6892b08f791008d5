"""Memory under a flood: against a small flow-table ceiling the established burst session is
still a case and the evictions are counted; what one evaluation allocates is freed at once."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import dpkt
import numpy as np
import pytest

from burstwatch.cli.main import main
from burstwatch.rules import All, FieldTest, Not, Rule, evaluate_all
from burstwatch.synth.scenarios import write_scenario
from tests.craft import pcap_bytes
from tests.flowcraft import SYN, frame

SERVER = "77.88.8.8"


def flood(start_ns: int, end_ns: int, n: int, seed: int = 3) -> list[tuple[int, bytes]]:
    """``n`` SYNs from distinct spoofed sources to one internal host, spread evenly in time."""
    rng = np.random.default_rng(seed)
    ts = np.linspace(start_ns, end_ns, n).astype(np.int64)
    srcs = rng.integers(0x0B000000, 0x7E000000, n)
    ports = rng.integers(1024, 65535, n)
    return [(int(t), frame(f"{s >> 24}.{(s >> 16) & 255}.{(s >> 8) & 255}.{s & 255}",
                           "192.168.1.9", int(p), 80, flags=SYN))
            for t, s, p in zip(ts, srcs, ports, strict=True)]


def test_burst_session_is_a_case_through_a_flood_at_the_ceiling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = tmp_path / "session.pcap"
    write_scenario(str(session), "exfil_tls", 21, nanosecond=True)
    with session.open("rb") as f:
        packets = [(int(ts * 1_000_000_000), bytes(buf)) for ts, buf in dpkt.pcap.Reader(f)]
    t0, t1 = packets[0][0], packets[-1][0]
    mixed = sorted(packets + flood(t0, t1, 30_000), key=lambda p: p[0])
    capture = pcap_bytes(mixed, nanosecond=True).write(tmp_path / "flood.pcap")
    # 2,048 flows: the flood's 30,000 half-open keys pass through it many times over.
    code = main(["scan", "--format", "jsonl", "--flow-memory", "8", str(capture)])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert code == 1
    assert any(r["destination"]["ip"] == SERVER
               and r["burstwatch"]["case"]["level"] in ("medium", "high", "critical") for r in records)
    summary = next(line for line in (out + err).splitlines() if line.startswith("summary:"))
    evicted = int(summary.split("; ")[-1].split(" flows evicted")[0].replace(",", ""))
    assert 27_000 <= evicted <= 30_000  # all but the 2,048 the table holds at the end


def test_rule_evaluation_leaves_no_reference_cycle() -> None:
    """Live evaluates every open flow each interval: a cycle holding a batch's columns kept
    them until a full collection, hundreds of MiB under a flood."""
    x = np.array([0.0, 2.0, 5.0])
    ref = weakref.ref(x)
    rule = Rule("a", "a", "low", All((FieldTest("x", "gt", 1.0), Not(FieldTest("x", "gt", 4.0)))))
    gc.collect()
    gc.disable()
    try:
        results = evaluate_all([rule], {"x": x})
        assert results[0].mask.tolist() == [False, True, False]
        del results, x
        assert ref() is None
    finally:
        gc.enable()
