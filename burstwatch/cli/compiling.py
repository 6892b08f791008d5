"""Kernels ready before a command runs them, and saying so while they compile.

A command loads the kernels built ahead of time (``burstwatch/aot.py``) where they exist.
Otherwise numba compiles them as they are first called (tens of seconds after an install; its
cache keeps them), and silence that long looks like a hang: on a terminal a spinner turns
while kernels compile, otherwise one line; ``burstwatch warmup`` shows the same while it
builds. numba's first compilation also starts the side compiler
(``burstwatch/sidecompiler.py``), which compiles the kernels the pipeline reaches late in a
second process meanwhile. The C heap gets its arena limit here too (``burstwatch/heap.py``),
before the pipeline's threads start."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from burstwatch import aot, heap
from burstwatch.jit import forget_jit_hook, when_jit_loads
from burstwatch.sidecompiler import start_side_compiler, stop_side_compiler

MESSAGE = "compiling kernels (first run only)"
_FRAMES = "|/-\\"


class CompileNotice:
    """Told when compiling starts and ends: by the ahead-of-time build, and as a numba event
    listener (``numba:compile`` fires only on a cache miss, never on a load)."""

    def __init__(self, stream: TextIO, spin: bool,
                 side: Callable[[], subprocess.Popen[bytes] | None] | None = None) -> None:
        self.stream, self.spin = stream, spin
        self.kept = "numba's cache"  # where what is compiled is kept for later runs
        self.building = False  # the ahead-of-time build is running
        self.side = side  # starts the side compiler, at the first compilation
        self.side_process: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.depth = 0  # compilations running (nested, and from the read-ahead thread)
        self.started: float | None = None
        self.wake = threading.Event()
        self.drawn = threading.Event()  # the spinner has shown the message
        self.closed = False
        self.thread: threading.Thread | None = None

    def on_build(self, starting: bool) -> None:
        """The ahead-of-time build starts (True) or ends (False)."""
        if starting:
            self.kept = str(aot.cache_root())
            self.building = True  # in processes of its own: no side compiler
            self.on_start(None)
        else:
            self.on_end(None)
            self.building = False

    def on_start(self, ev: Any) -> None:
        with self.lock:
            self.depth += 1
            if self.started is None:
                self.started = time.monotonic()
                if self.side is not None and not self.building:
                    self.side_process = self.side()
                if self.spin:
                    self.thread = threading.Thread(target=self._spinner, daemon=True)
                    self.thread.start()
                else:
                    self.stream.write(f"burstwatch: {MESSAGE}\n")
                    self.stream.flush()
        self.wake.set()

    def on_end(self, ev: Any) -> None:
        with self.lock:
            self.depth -= 1

    def _spinner(self) -> None:
        k = 0
        shown = False
        while not self.closed:
            with self.lock:
                busy = self.depth > 0
            if busy:
                self.stream.write(f"\r{_FRAMES[k % len(_FRAMES)]} {MESSAGE}")
                self.stream.flush()
                shown, k = True, k + 1
                self.drawn.set()
                time.sleep(0.1)
            else:
                if shown:
                    self.stream.write("\r\033[K")
                    self.stream.flush()
                    shown = False
                self.wake.clear()
                self.wake.wait(0.5)
        if shown:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def close(self) -> None:
        self.closed = True
        if self.side_process is not None:
            stop_side_compiler(self.side_process)
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.started is not None:
            self.stream.write(f"burstwatch: compiled kernels in {time.monotonic() - self.started:.0f} s "
                              f"(kept in {self.kept} for later runs)\n")
            self.stream.flush()


@contextmanager
def compile_notice(stream: TextIO | None = None, side_compiler: bool = True) -> Iterator[None]:
    """Kernels ready (the ahead-of-time build loaded where it exists, else scheduled for the
    exit), and while inside, any numba compilation announced on ``stream`` (stderr by
    default); with
    ``side_compiler`` (and unless BURSTWATCH_SIDE_COMPILER=0) the first one also starts the
    side compiler, ended on the way out."""
    out = stream if stream is not None else sys.stderr
    side = side_compiler and os.environ.get("BURSTWATCH_SIDE_COMPILER", "1") != "0"
    notice = CompileNotice(out, spin=out.isatty(), side=start_side_compiler if side else None)
    listening = []

    def listen() -> None:  # once numba is loaded, if it ever is
        from numba.core import event

        class Relay(event.Listener):
            def on_start(self, ev: Any) -> None:
                notice.on_start(ev)

            def on_end(self, ev: Any) -> None:
                notice.on_end(ev)

        relay = Relay()
        event.register("numba:compile", relay)
        listening.append((event, relay))

    try:
        heap.limit_arenas()  # before the pipeline's threads start
        aot.ready()
        when_jit_loads(listen)
        yield
    finally:
        forget_jit_hook(listen)
        for event, relay in listening:
            event.unregister("numba:compile", relay)
        notice.close()
