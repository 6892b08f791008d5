"""A progress bar on a terminal for long inputs; nothing at all when not on one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from burstwatch.records import Progress as ProgressFn

_MIN_BYTES = 32 << 20  # below this a run is over before a bar helps


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[ProgressFn | None]:
    """Yield a ``(done, total)`` callback drawing a bar on stderr, or None."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    # rich, only on a terminal: a scan's reading starts before its consoles are loaded.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    )
    task = bar.add_task("reading", total=None)
    started = False

    def update(done: int, total: int) -> None:
        nonlocal started
        if not started and (total >= _MIN_BYTES or done >= _MIN_BYTES):
            bar.start()
            started = True
        if started:
            bar.update(task, completed=done, total=total or None)

    try:
        yield update
    finally:
        if started:
            bar.stop()
