"""Say so while numba compiles kernels: the first run after an install compiles every kernel
(tens of seconds; later runs load them from numba's cache), and silence that long looks like
a hang. On a terminal a spinner turns while a compilation is running; otherwise one line.
The first compilation also starts the side compiler (``burstwatch/sidecompiler.py``), which compiles
the kernels the pipeline reaches late in a second process meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from numba.core import event

from burstwatch.sidecompiler import start_side_compiler, stop_side_compiler

MESSAGE = "compiling kernels (first run only)"
_FRAMES = "|/-\\"


class CompileNotice(event.Listener):
    """A numba event listener: ``numba:compile`` fires only on a cache miss, never on a load."""

    def __init__(self, stream: TextIO, spin: bool,
                 side: Callable[[], subprocess.Popen[bytes] | None] | None = None) -> None:
        self.stream, self.spin = stream, spin
        self.side = side  # starts the side compiler, at the first compilation
        self.side_process: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.depth = 0  # compilations running (nested, and from the read-ahead thread)
        self.started: float | None = None
        self.wake = threading.Event()
        self.drawn = threading.Event()  # the spinner has shown the message
        self.closed = False
        self.thread: threading.Thread | None = None

    def on_start(self, ev: Any) -> None:
        with self.lock:
            self.depth += 1
            if self.started is None:
                self.started = time.monotonic()
                if self.side is not None:
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
                              "(kept in numba's cache for later runs)\n")
            self.stream.flush()


@contextmanager
def compile_notice(stream: TextIO | None = None, side_compiler: bool = True) -> Iterator[None]:
    """While inside, any numba compilation is announced on ``stream`` (stderr by default);
    with ``side_compiler`` (and unless BURSTWATCH_SIDE_COMPILER=0) the first one also starts
    the side compiler, ended on the way out."""
    out = stream if stream is not None else sys.stderr
    side = side_compiler and os.environ.get("BURSTWATCH_SIDE_COMPILER", "1") != "0"
    notice = CompileNotice(out, spin=out.isatty(), side=start_side_compiler if side else None)
    event.register("numba:compile", notice)
    try:
        yield
    finally:
        event.unregister("numba:compile", notice)
        notice.close()
