"""Record the signatures of burstwatch's numba kernels (``burstwatch/kernels.json``).

Run as ``python -m burstwatch.builders.kernel_manifest`` after changing a kernel's
arguments: it runs the commands of ``runs`` on the demo capture in this process with an empty
numba cache (so every kernel compiles, about a minute): the scan first, then the scan of the
same packets as pcapng and the record exports. It writes every top-level kernel with the
argument types it was called with, in the order they were first reached. The ahead-of-time
build (``burstwatch/aot.py``) compiles them all, so those commands never load numba; the side
compiler of a first run without that build (``burstwatch/sidecompiler.py``) compiles the late
ones from this list, in that order.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo.pcap"


def used_kernels(order: list[str] | None = None) -> list[dict[str, Any]]:
    """Every burstwatch kernel compiled in this process so far, with its signatures; with
    ``order`` (qualified names of the kernels the pipeline calls, first reached first) only
    those, in that order (the helpers they call compile with them)."""
    from numba.core.registry import CPUDispatcher

    from burstwatch.sidecompiler import describe

    found: list[dict[str, Any]] = []
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("burstwatch.") or module is None:
            continue
        for attr, obj in sorted(vars(module).items()):
            if isinstance(obj, CPUDispatcher) and obj.__module__ == name:
                if order is not None and f"{name}.{attr}" not in order:
                    continue
                for sig in obj.signatures:
                    found.append({"module": name, "kernel": attr,
                                  "args": [describe(a) for a in sig]})
    rank = {name: i for i, name in enumerate(order or [])}
    return sorted(found, key=lambda k: (rank.get(f"{k['module']}.{k['kernel']}", len(rank)),
                                        k["module"], k["kernel"], json.dumps(k["args"])))


def runs(folder: Path) -> list[list[str]]:
    """The commands whose kernels are recorded, writing into ``folder``: the demo's scan
    (first: the side compiler's order is the scan's), its packets as pcapng, and every record
    export in the text formats (Parquet is written by pyarrow, without kernels)."""
    pcapng = folder / "demo.pcapng"
    if not pcapng.exists():
        import logging

        from scapy.utils import rdpcap, wrpcapng

        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # its link-type notes
        wrpcapng(str(pcapng), rdpcap(str(DEMO)))
    demo, out = str(DEMO), str(folder)
    return [
        ["scan", demo, "--format", "jsonl"],
        ["scan", str(pcapng), "--format", "jsonl", "--alerts", f"{out}/alerts.jsonl"],
        ["scan", demo, "--format", "jsonl", "--alerts", f"{out}/alerts.csv"],
        ["flows", demo, "-o", f"{out}/flows.jsonl"],
        ["flows", demo, "-o", f"{out}/flows.csv"],
        ["flows", demo, "--bursts", "-o", f"{out}/bursts.jsonl"],
        ["flows", demo, "--bursts", "-o", f"{out}/bursts.csv"],
        ["flows", demo, "--conversations", "-o", f"{out}/conversations.jsonl"],
        ["flows", demo, "--conversations", "-o", f"{out}/conversations.csv"],
    ]


def rare_calls() -> None:
    """Kernels a scan calls only on captures far larger than the demo, and those of live
    capture, called as their one caller calls them."""
    import numpy as np

    from burstwatch.cli.warmup import warm_up_capture_kernels
    from burstwatch.flows.kernel import move_down
    from burstwatch.flows.table import RecentKeys

    warm_up_capture_kernels()  # live's ring walk and pcap writer
    # FlowTable._set_roles once flows have ended and left the table (RecentKeys.find): the
    # demo's flows all end with the capture.
    recent = RecentKeys(1)
    recent.add(np.zeros(1, np.uint64), np.zeros(1, np.int64), np.zeros(1, np.int64), 0)
    recent.find(np.zeros(1, np.uint64))
    # SampleStore._compact_arena: the arena, and its live records' offsets, lengths and new
    # offsets (fancy-indexed int64 columns).
    index = np.zeros(1, np.int64)
    move_down(np.zeros(8, np.uint8), index[[0]], index[[0]], index[[0]])


def run_all(folder: Path, starting: Callable[[int], None] = lambda run: None) -> None:
    """Run ``runs(folder)`` in this process, their output discarded, then ``rare_calls``
    (``starting(k)`` before the k-th, the rare calls last)."""
    from burstwatch.cli.main import main

    commands = runs(folder)
    for k, argv in enumerate(commands):
        starting(k)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main(argv)
    starting(len(commands))
    rare_calls()


def demo_kernels() -> list[dict[str, Any]]:
    """Run the recorded commands here, compiling every kernel, and return them in reach order,
    each signature with the run that first called it (``run``: 0 is the demo's scan)."""
    from numba.core import event

    from burstwatch.sidecompiler import describe

    order: list[str] = []
    depth = [0]  # compilations running: a kernel's helpers compile inside it
    run = [0]
    first_run: dict[tuple[str, str], int] = {}  # (kernel, argument types) -> run

    class FirstReached(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            func = ev.data["dispatcher"].py_func
            name = f"{func.__module__}.{func.__qualname__}"
            if depth[0] == 0 and name.startswith("burstwatch."):
                if name not in order:
                    order.append(name)
                args = json.dumps([describe(a) for a in ev.data["args"]])
                first_run.setdefault((name, args), run[0])
            depth[0] += 1

        def on_end(self, ev: event.Event) -> None:
            depth[0] -= 1

    listener = FirstReached()
    event.register("numba:compile", listener)
    try:
        with tempfile.TemporaryDirectory() as folder:
            run_all(Path(folder), lambda k: run.__setitem__(0, k))
    finally:
        event.unregister("numba:compile", listener)
    kernels = used_kernels(order)
    for k in kernels:
        name = f"{k['module']}.{k['kernel']}"
        # A signature compiled first inside another kernel (gather_bytes in gather_payloads)
        # and called from Python only then, maybe on another thread, shows no compilation
        # of its own: it is recorded with the kernel's first run.
        k["run"] = first_run.get((name, json.dumps(k["args"])),
                                 min(r for (n, _), r in first_run.items() if n == name))
    return kernels


def main() -> int:
    if "numba" in sys.modules:
        raise SystemExit("run this as its own process: numba must start with an empty cache")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NUMBA_CACHE_DIR"] = cache  # every kernel compiles, so its order shows
        os.environ["BURSTWATCH_SIDE_COMPILER"] = "0"  # ... here, in this process
        os.environ["BURSTWATCH_KERNELS"] = "jit"  # as numba's dispatchers
        from burstwatch.sidecompiler import MANIFEST

        kernels = demo_kernels()
        MANIFEST.write_text(json.dumps({"kernels": kernels}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(kernels)} kernel signatures to {MANIFEST}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
