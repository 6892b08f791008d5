"""Run a producer iterator one step ahead in a thread of its own.

Reading, decoding and the flow table spend their time in compiled kernels that release the
GIL; enrichment, rules and output are mostly Python. With the producer in a second thread the
two halves overlap on a machine with more than one core, and on one core nothing is lost
but a thread switch per batch. Items come out in the order produced; an exception in the
producer is raised in the consumer; a consumer that stops early stops the producer too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from typing import Generic, TypeVar

from burstwatch import priority

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(items: Iterable[T], depth: int = 2,
               name: str = "burstwatch-read-ahead") -> Generator[T, None, None]:
    """Yield ``items`` while a thread computes up to ``depth`` of them ahead.

    Memory is bounded by ``depth`` items in flight plus the one being consumed.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    source = iter(items)

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Failure(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator's own clean-up (closing its file) runs here

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            priority.behind()  # whichever thread consumes waits on the producer
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        # A producer blocked on a read (standard input) is left behind: it is a daemon thread
        # and notices the stop at its next item.
        worker.join(timeout=1.0)


class StartedAhead(Generic[T]):
    """``items``, whose first item is computed now, in a thread of its own, while the caller
    does other work (a scan loads its rules and model while its input's reading starts).
    Iterating yields that item (or raises what computing it raised), then the rest, in the
    caller's thread. ``close`` waits for the first item (ask the producer to stop first, as
    a scan's stop event does) and closes ``items``."""

    def __init__(self, items: Iterator[T], name: str = "burstwatch-start") -> None:
        self._items = items
        self._first: list[tuple[str, object]] = []  # ("item" | "end" | "error", value)
        self._thread = threading.Thread(target=self._start, name=name, daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            self._first.append(("item", next(self._items)))
        except StopIteration:
            self._first.append(("end", None))
        except BaseException as exc:  # raised in the caller's thread
            self._first.append(("error", exc))

    def __iter__(self) -> Iterator[T]:
        self._thread.join()
        outcome, value = self._first[0]
        if outcome == "error":
            assert isinstance(value, BaseException)
            raise value
        if outcome == "item":
            yield value  # type: ignore[misc]
            yield from self._items

    def close(self) -> None:
        self._thread.join()
        close = getattr(self._items, "close", None)
        if close is not None:
            close()
