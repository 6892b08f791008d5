"""bench_compare's --check: the side-by-side targets of issue 16 are judged from medians and
peaks, and a miss of each is said (so the benchmark can fail; its timings are never tested)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_compare import missed_targets  # noqa: E402

MIB = 2**20
MET = {"burstwatch scan": 2.6, "argus": 7.0, "suricata": 8.0, "burstwatch flows -o x.jsonl": 2.9}


def test_targets_met() -> None:
    assert missed_targets(MET, {"burstwatch scan": 270 * MIB}) == []


def test_each_miss_is_said() -> None:
    wall = {**MET, "argus": 5.0, "suricata": 7.0, "burstwatch flows -o x.jsonl": 3.1}
    assert missed_targets(wall, {"burstwatch scan": 310 * MIB}) == [
        "scan 1.92x argus, not 2x", "scan 2.69x suricata, not 3x",
        "scan peak 310 MiB, over 300", "flows -o 19% over scan, not within 15 %"]


def test_peers_not_run_are_not_judged_but_scan_must_run() -> None:
    assert missed_targets({"burstwatch scan": 2.6}, {"burstwatch scan": 270 * MIB}) == []
    assert missed_targets({"argus": 7.0}, {}) == ["burstwatch scan did not run"]
