"""How many worker processes a run uses, and where they come from; loads nothing heavy.

Workers are forked from multiprocessing's fork server, which imports the package and loads
its kernels once (``parallel.preload``). ``scan`` and ``flows`` start it before they load
anything else, so it loads while they do: this module imports only the standard library.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
from typing import Any

_PRELOAD = ["burstwatch.parallel.preload"]


def default_jobs() -> int:
    """All the cores this process may use."""
    count = getattr(os, "process_cpu_count", None)
    return max(1, (count() if count is not None else None) or os.cpu_count() or 1)


def is_stream(path: str) -> bool:
    """Standard input, a FIFO, a character device: an input that can be read once only, so
    not by several workers. (Files, directories and patterns not matched yet are not.)"""
    if path == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def plan_jobs(requested: int | None, inputs: list[str], carry: bool) -> int:
    """How many processes a run uses: one for streams and carried runs; otherwise
    ``requested`` (0: every core; None: one, see docs/benchmarks.md for why). Files read
    ``--separate`` are sharded each in turn, so they use as many."""
    if requested is None or carry or any(is_stream(p) for p in inputs):
        return 1
    return default_jobs() if requested == 0 else requested


def worker_context() -> Any:
    """Workers come from a fork server with the package loaded (never a fork of this
    process, which has threads and open files); where there is none, or it cannot be
    started (it listens on a Unix socket in the temporary directory), a cold spawn."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    from multiprocessing import forkserver

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    try:
        forkserver.ensure_running()  # started once; later calls only check it is alive
    except OSError:
        return mp.get_context("spawn")
    return ctx


def start_fork_server(requested: int | None, inputs: list[str], carry: bool) -> None:
    """Start the workers' fork server now when the run will shard, so that it loads the
    package while this process loads the rest (rules, geography, the ledger)."""
    if plan_jobs(requested, inputs, carry) > 1:
        worker_context()
