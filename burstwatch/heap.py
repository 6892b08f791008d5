"""The C heap of a long run: few malloc arenas, and what is freed handed back between phases.

glibc gives each thread that allocates its own arena (up to eight per core) and keeps what is
freed in an arena for that arena's later use. The pipeline's threads allocate and free small
numpy arrays by the thousand, so a scan of a few GB held tens of MiB of free heap spread over
arenas when it reached the conversation query, which then grew the heap further (measured in
docs/benchmarks.md). Two arenas leave threads little to contend on (the kernels allocate
nothing per packet) and ``malloc_trim`` returns the free pages after the capture is read.
Elsewhere (another C library, another system) both do nothing.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache
from typing import Any

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
ARENAS = 2


@cache
def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The process's own symbols, the C library's among them (ctypes.util.find_library
        # would run ldconfig, and importing it costs 9 ms of every start).
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc has both; musl has no mallopt)
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(count: int = ARENAS) -> bool:
    """At most ``count`` malloc arenas from now on (call before threads start); whether set."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, count) == 1)


def arrow_buffers_on_this_heap() -> None:
    """pyarrow's buffers from the C library's malloc (the few arenas above, trimmed by
    ``give_back``) instead of its own mimalloc pool, which keeps what the ledger's Arrow
    tables free for its own later use: on the 5 M-packet capture the scan's peak resident
    memory was 4-12 MiB lower this way, in the same time (docs/benchmarks.md)."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def give_back() -> bool:
    """Return the heap's free pages to the system; whether any were."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)
