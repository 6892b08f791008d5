"""Scheduling: the thread that reads the input goes first.

A run is a chain of threads: reading and decoding, the flow table, enrichment and judging,
the ledger's and the exports' writers. Each stage after the first works on what the one
before hands it, so the first sets the pace: on the 5 M-packet capture the reader never
waited, while the table waited 0.5 s for it and enrichment 0.9 s. With fewer free cores than
busy stages the kernel shares the cores out evenly, which gave the reader two thirds of a
core on two. So a thread that waits on another's work runs ``STEP`` nice levels below the
process (only ever lower: raising a thread's priority again needs privileges), and the
reader runs whenever it can while the stages after it take what is left: scans 4-8 %
quicker (docs/benchmarks.md). For ``live`` it is the capture that goes first, as it should.

Only the command line's own process turns this on (``enable``, from ``cli.main.run``): a
program that uses burstwatch as a library, or a test runner, keeps its threads as they are.
Linux only: elsewhere a process's priority is not its threads'.
"""

from __future__ import annotations

import os
import sys
import threading

STEP = 5  # nice levels: a weight of 335 against 1024, about a quarter of a contended core
_NICEST = 19

_state = threading.local()
_base: int | None = None  # the nice value of the thread that enabled this, when it did


def enable() -> bool:
    """From now on, ``behind`` lowers the threads that call it; whether it can here."""
    global _base
    if not sys.platform.startswith("linux"):
        return False
    try:
        _base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except OSError:
        return False
    return True


def disable() -> None:
    global _base
    _base = None


def behind() -> None:
    """The calling thread waits on another thread's work: let that thread run first. Cheap
    to call again (once per batch): a thread is lowered once."""
    if _base is None or getattr(_state, "behind", False):
        return
    _state.behind = True
    tid = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, max(now, min(_base + STEP, _NICEST)))
    except OSError:  # not allowed here (a sandbox): the run is the same, only paced evenly
        pass
