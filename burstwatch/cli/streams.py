"""Standard output as a sink that fails with one line: a full disk, a closed pipe (EPIPE) or a
closed descriptor is an ``OutputError`` naming standard output, never a traceback, and the
interpreter's own flush at exit is kept from printing another one."""

from __future__ import annotations

import errno
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the writers (numpy, via the ECS records) are loaded only on a write error
    from burstwatch.outputs.writers import OutputError


class _Closed:
    """What a program started with standard output closed writes to."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


class GuardedStdout:
    """Wraps ``sys.stdout``: write and flush errors become ``OutputError``."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as exc:
            raise _failed(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise _failed(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class QuietStderr:
    """Wraps ``sys.stderr``: messages that cannot be written (a full disk, a closed pipe) are
    dropped, as GNU tools do, so the run and its exit status stay what they would have been;
    descriptor 2 is pointed at /dev/null, so nothing fails again at exit."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        if not self.failed:
            try:
                self._stream.write(text)
                self._stream.flush()  # the failure shows here, not at some later write
            except OSError:
                self._give_up()
        return len(text)

    def flush(self) -> None:
        if not self.failed:
            try:
                self._stream.flush()
            except OSError:
                self._give_up()

    def _give_up(self) -> None:
        self.failed = True
        _to_devnull(2)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _failed(exc: OSError) -> OutputError:
    from burstwatch.outputs.writers import OutputError

    _discard_pending()
    return OutputError(f"cannot write to standard output ({exc.strerror or exc})")


def _discard_pending() -> None:
    """Point descriptor 1 at /dev/null, so what is still buffered for it goes nowhere at exit
    instead of failing again there."""
    _to_devnull(1)


def _to_devnull(target: int) -> None:
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, target)
        os.close(fd)
    except OSError:
        pass


def guard_stdout() -> None:
    """Install the guard (idempotent); standard input and error closed at start are made
    harmless too: reading ``-`` then says so, and messages go nowhere. Standard error that
    cannot be written (``2>/dev/full``) loses its messages, not the run."""
    if sys.stdout is None:
        sys.stdout = _Closed()
    if not isinstance(sys.stdout, GuardedStdout):
        sys.stdout = GuardedStdout(sys.stdout)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the process
    if not isinstance(sys.stderr, QuietStderr):
        sys.stderr = QuietStderr(sys.stderr)


def finish_stdout() -> None:
    """Flush standard output before the exit status is decided (raises OutputError)."""
    sys.stdout.flush()
