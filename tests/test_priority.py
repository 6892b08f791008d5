"""The thread that reads goes first: a thread that waits on another thread's work runs
``priority.STEP`` nice levels below the process, but only in the command line's own process
(``priority.enable``). Nice values are read back from the kernel; nothing is timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from burstwatch import priority
from burstwatch.readahead import read_ahead

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="per-thread priorities are Linux's")


def nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def in_a_thread(enabled: bool) -> dict[str, object]:
    """Consume a read-ahead in a fresh thread (lowering is for good: never the test's own)."""
    seen: dict[str, object] = {}

    def items() -> Iterator[int]:
        for i in range(3):
            seen.setdefault("producer", nice())
            yield i

    def consume() -> None:
        seen["out"] = list(read_ahead(items()))
        seen["consumer"] = nice()
        priority.behind()  # again: a thread is lowered once
        seen["consumer again"] = nice()

    if enabled:
        priority.enable()
    try:
        thread = threading.Thread(target=consume)
        thread.start()
        thread.join(timeout=120)
    finally:
        priority.disable()
    return seen


def expected(base: int, lowered: bool) -> int:
    return min(base + priority.STEP, 19) if lowered else base


def test_a_consumer_runs_behind_its_producer() -> None:
    base = nice()
    seen = in_a_thread(enabled=True)
    assert seen == {"out": [0, 1, 2], "producer": base, "consumer": expected(base, True),
                    "consumer again": expected(base, True)}


def test_nothing_changes_unless_enabled() -> None:
    base = nice()
    seen = in_a_thread(enabled=False)
    assert seen == {"out": [0, 1, 2], "producer": base, "consumer": base,
                    "consumer again": base}


PROBE = """
import atexit, json, os, sys, threading
seen = {}
run = threading.Thread.run
def recorded(self):
    try:
        run(self)
    finally:
        seen[self.name] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
threading.Thread.run = recorded
def report():
    seen["main"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    sys.stderr.write("NICE " + json.dumps(seen) + "\\n")
atexit.register(report)
from burstwatch.cli.main import run as command
sys.argv = ["burstwatch", *sys.argv[1:]]
command()
"""


def test_a_scan_reads_first_and_judges_after() -> None:
    """The command's own process: the decoding thread keeps the process's priority; the
    flow table, enrichment (the main thread) and the ledger's writer run below it."""
    proc = subprocess.run([sys.executable, "-c", PROBE, "scan", "pcaps/demo.pcap"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    line = [x for x in proc.stderr.splitlines() if x.startswith("NICE ")]
    assert line, proc.stderr
    seen = json.loads(line[-1][len("NICE "):])
    base = nice()
    assert seen["burstwatch-decode"] == base
    for name in ("burstwatch-read-ahead", "main", "burstwatch-ledger"):
        assert seen[name] == expected(base, True), (name, seen)
