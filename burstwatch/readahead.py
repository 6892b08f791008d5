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
from collections.abc import Generator, Iterable
from typing import TypeVar

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
