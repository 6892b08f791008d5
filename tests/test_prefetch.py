"""The prefetch hint: compiled into the record walks and the decoder as LLVM's prefetch
intrinsic, nothing at all when the kernels run as plain Python."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from burstwatch.prefetch import ask_ahead, prefetch
from burstwatch.sidecompiler import argument_type, manifest


def test_plain_python_call_does_nothing() -> None:
    data = np.arange(10, dtype=np.uint8)
    assert prefetch(data, 3) is None
    assert prefetch(data, 10_000) is None  # out of range is fine: a hint reads nothing
    assert data.tolist() == list(range(10))


def test_the_asking_stops_at_the_look_ahead_or_the_end() -> None:
    data = np.zeros(10_000, np.uint8)
    assert ask_ahead(data, 0, 0) == 2048
    assert ask_ahead(data, 2048, 100) == 2048 + 128  # whole lines: up to 2148, from 2048
    assert ask_ahead(data, 9_984, 9_000) == 10_048  # the last line asked for, then it stops
    assert ask_ahead(data, 5_000, 0) == 5_000  # asked already


@pytest.mark.slow  # compiles three kernels with numba and reads their code back (10 s)
@pytest.mark.parametrize(("module", "kernel"), [
    ("burstwatch.ingest.pcap", "walk_records"),
    ("burstwatch.ingest.pcapng", "walk_blocks"),
    ("burstwatch.decode.kernel", "decode_packets"),
])
def test_the_compiled_kernels_ask_for_the_bytes_ahead(module: str, kernel: str) -> None:
    """Each kernel, compiled for its signature in kernels.json (what the build compiles),
    carries the intrinsic in its LLVM code and a prefetch instruction in its machine code:
    a helper that compiled to nothing would carry neither."""
    import numba  # noqa: PLC0415

    entry = next(e for e in manifest() if (e["module"], e["kernel"]) == (module, kernel))
    fresh = numba.njit(nogil=True)(getattr(importlib.import_module(module), kernel).py_func)
    fresh.compile(tuple(argument_type(a) for a in entry["args"]))
    assert "@llvm.prefetch" in "\n".join(fresh.inspect_llvm().values())
    assert "prefetcht0" in "\n".join(fresh.inspect_asm().values())
