"""Compile the late kernels in a second process while the first run compiles the early ones.

The first run after an install compiles every numba kernel, one after another, in the order
the pipeline reaches them: reading, decoding and the flow table's packet loop first (about
12 s of CPU here), then the flow table's clock, the payload samples, the encryption verdicts
and the conversation score (about 9 s). Where a second core is idle (no task of another
process running or ready to run on it), the first compilation (a cache miss) starts a second
Python (``start_side_compiler``) that compiles the late kernels by their recorded signatures,
in the order the pipeline reaches them, into numba's cache. The pipeline waits for it once,
before it first enriches flows (``await_side_compiler``), compiling the same list from its
end meanwhile until the two meet, and then loads the side's kernels from the cache instead
of compiling them a second time. On a busy machine the second process would only
take turns with the first and add its own start-up (measured in docs/benchmarks.md), so it
is not started there. Numba writes its cache files by rename, so neither process reads a
half-written one.

The signatures are recorded in ``kernels.json`` beside this module by
``python -m burstwatch.builders.kernel_manifest`` (a test fails when it is stale). Each
argument is described by its parts (dtype, dimensions, layout, read-only), never evaluated.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).with_name("kernels.json")
# Compiled by the command itself, which needs them first: the record walks, the decoder,
# the flow keys and the flow table's packet loop.
EARLY_PACKAGES = ("burstwatch.ingest.", "burstwatch.decode.")
EARLY_KERNELS = {("burstwatch.flows.key", "_keys"), ("burstwatch.flows.kernel", "process_packets")}


def manifest() -> list[dict[str, Any]]:
    """The recorded kernels: module, kernel name and argument types of each signature."""
    data: list[dict[str, Any]] = json.loads(MANIFEST.read_text(encoding="utf-8"))["kernels"]
    return data


def late_kernels() -> list[dict[str, Any]]:
    """The kernels the side process compiles, in the order the pipeline reaches them (the
    manifest's order): the scan's (``run`` 0), not the exports' or another format's, which
    the pipeline would wait for without needing them."""
    return [k for k in manifest() if not k["module"].startswith(EARLY_PACKAGES)
            and (k["module"], k["kernel"]) not in EARLY_KERNELS and k.get("run", 0) == 0]


def describe(arg: Any) -> dict[str, Any]:
    """A numba argument type as plain parts (the inverse of ``argument_type``)."""
    from numba.core import types

    if isinstance(arg, types.Array):
        return {"dtype": str(arg.dtype), "ndim": arg.ndim, "layout": arg.layout,
                "readonly": not arg.mutable}
    if isinstance(arg, (types.Integer, types.Float, types.Boolean)):
        return {"scalar": str(arg)}
    raise ValueError(f"kernel argument of type {arg} cannot be recorded")


def argument_type(part: dict[str, Any]) -> Any:
    """The numba type an argument description stands for."""
    from numba.core import types

    if "scalar" in part:
        return _scalar(part["scalar"])
    return types.Array(_scalar(part["dtype"]), int(part["ndim"]), part["layout"],
                       readonly=bool(part["readonly"]))


def _scalar(name: str) -> Any:
    from numba.core import types

    found = getattr(types, "boolean" if name == "bool" else name, None)
    if not isinstance(found, (types.Integer, types.Float, types.Boolean)):
        raise ValueError(f"unknown scalar type {name!r} in {MANIFEST.name}")
    return found


def compile_kernels(kernels: list[dict[str, Any]]) -> int:
    """Compile (or load from the cache) each kernel signature; returns how many."""
    import importlib

    done = 0
    for entry in kernels:
        module = importlib.import_module(entry["module"])
        dispatcher = getattr(module, entry["kernel"])
        dispatcher.compile(tuple(argument_type(a) for a in entry["args"]))
        done += 1
    return done


_running: subprocess.Popen[bytes] | None = None  # this process's side compiler, if any
AWAIT_SECONDS = 300.0  # a side compiler stuck longer than this is not waited for


def core_is_free(others: int | None = None, cores: int | None = None) -> bool:
    """Whether a second process would get a core of its own now: compiling keeps one core
    busy here, so no other task may be running or ready to run on the rest but one
    (``others``: from ``/proc``, this process's own threads not counted). The load averages
    would not do: they still count the install that just finished, and this very command."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    if others is None:
        others = other_runnable_tasks()
        if others is None:
            return False
    return cores >= 2 and others <= cores - 2


def other_runnable_tasks() -> int | None:
    """Tasks of other processes running or ready to run now; None where /proc is missing."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = 0
        for task in os.listdir("/proc/self/task"):
            # (a thread may end while it is read)
            with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/stat",
                                                    encoding="ascii") as f:
                own += f.read().rsplit(")", 1)[1].split()[0] == "R"
    except (OSError, ValueError, IndexError):
        return None
    return max(running - own, 0)


def start_side_compiler() -> subprocess.Popen[bytes] | None:
    """Start the late-kernel compiler where a core is free; None where it does not start
    (the run goes on alone)."""
    global _running
    if not core_is_free():
        return None
    try:
        _running = subprocess.Popen([sys.executable, "-c", side_program()],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
    except OSError:
        _running = None
    return _running


def side_program() -> str:
    """The side process's code: it imports this very package (the one whose kernel cache the
    command uses), not whatever ``burstwatch`` the working directory holds, as ``-m`` would."""
    root = str(Path(__file__).resolve().parent.parent)
    return (f"import sys; sys.path.insert(0, {root!r}); "
            "from burstwatch.sidecompiler import main; main()")


def await_side_compiler(timeout: float = AWAIT_SECONDS) -> None:
    """Wait for this process's side compiler to finish, if one is running (else at once),
    compiling its kernels meanwhile from the other end of its list, so that the two
    processes meet in the middle instead of this one idling (``compile_from_the_end``).
    It is waited for once: one that outlasts ``timeout`` is not waited for again (the
    command ends it when it finishes)."""
    global _running
    proc, _running = _running, None
    if proc is None or proc.poll() is not None:
        return
    deadline = time.monotonic() + timeout
    if proc.stdout is not None:
        compile_from_the_end(proc, late_kernels(), lambda entry: compile_kernels([entry]),
                             deadline)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))


def compile_from_the_end(
    proc: subprocess.Popen[bytes], kernels: list[dict[str, Any]],
    compile_one: Callable[[dict[str, Any]], object], deadline: float,
) -> int:
    """Compile ``kernels`` from the last one backwards while the side process, which writes
    one byte to its standard output per kernel it has finished, works through them from the
    first: stop where it has got to (it finishes the one it is on). Returns how many were
    compiled here. At most the kernel both reach at once is compiled twice; numba writes its
    cache files by rename, so either copy is whole."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    side_done = here = 0
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(BlockingIOError):
            side_done += len(os.read(fd, 4096))
        following = len(kernels) - 1 - here
        if following <= side_done:
            break
        compile_one(kernels[following])
        here += 1
    return here


def stop_side_compiler(proc: subprocess.Popen[bytes]) -> None:
    """End the side process with the command (what it compiled so far stays cached)."""
    global _running
    if proc is _running:
        _running = None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()  # its progress pipe (compile_from_the_end)


def main() -> None:
    """The side process: compile the late kernels into numba's cache, saying "." after each
    (the command compiles from the other end up to where it has got to)."""
    for entry in late_kernels():
        compile_kernels([entry])
        try:
            sys.stdout.write(".")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):  # the command has ended: its cache is enough
            return


if __name__ == "__main__":
    main()
