"""SIGINT, SIGTERM and SIGHUP stop ``scan`` and ``flows`` the way the end of the input does.

The first signal asks the run to stop at the next batch boundary: the open flows are
flushed, conversations judged and every output written, so what was found so far is kept
(the read-ahead thread checks the request between batches). A second signal stops at once
(KeyboardInterrupt), for a read that never returns.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequest:
    """Set by the first of SIGNALS; ``exit_code`` is 128 + its number, as shells report it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum = 0

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signum = signum
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "interrupt"

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Install the handlers for the run, restore the previous ones after it (only the main
    thread can have signal handlers; elsewhere the request is never set)."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, stop._handle) for sig in SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
