"""The C heap's free pages go back to the system (burstwatch/heap.py), where glibc is the C
library; checked by the process's own resident memory, not by timing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from burstwatch import heap

ROOT = Path(__file__).resolve().parents[1]

glibc = pytest.mark.skipif(heap._glibc() is None, reason="not glibc: nothing to give back")


def _anonymous_kib() -> int:
    with open("/proc/self/smaps_rollup", encoding="ascii") as f:
        return int(re.search(r"^Anonymous:\s+(\d+) kB", f.read(), re.M).group(1))  # type: ignore[union-attr]


@glibc
def test_freed_heap_below_a_live_block_is_given_back() -> None:
    blocks = [bytearray(3000) for _ in range(20_000)]  # 60 MB of malloc'd blocks
    for b in blocks:
        b[::512] = b"x" * len(b[::512])  # touched: resident
    sentinel = bytearray(3000)  # above them, live: the heap's top cannot shrink
    del blocks
    before = _anonymous_kib()
    assert heap.give_back()
    assert _anonymous_kib() < before - 30_000, "free pages stayed resident"
    del sentinel


@glibc
def test_arenas_can_be_limited() -> None:
    assert heap.limit_arenas()


def test_elsewhere_both_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    heap._glibc.cache_clear()
    monkeypatch.setattr(sys, "platform", "darwin")
    try:
        assert heap.give_back() is False
        assert heap.limit_arenas() is False
    finally:
        heap._glibc.cache_clear()


def test_a_scan_takes_arrow_buffers_from_the_c_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's Arrow tables are allocated by the C library's malloc in a scan, not by
    pyarrow's own pool (mimalloc, which keeps what they free)."""
    import pyarrow as pa

    from burstwatch.cli.main import main

    monkeypatch.chdir(ROOT)
    previous = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        assert main(["scan", "pcaps/demo.pcap", "--format", "jsonl"]) == 1  # cases found
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(previous)
