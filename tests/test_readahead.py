"""readahead.StartedAhead: the first item made in a thread while the caller works."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from burstwatch.readahead import StartedAhead


def test_the_first_item_is_made_in_a_thread_before_the_caller_iterates() -> None:
    made_in: list[threading.Thread] = []
    first_made = threading.Event()

    def items() -> Iterator[int]:
        made_in.append(threading.current_thread())
        first_made.set()
        yield 1
        made_in.append(threading.current_thread())
        yield 2

    started = StartedAhead(items())
    assert first_made.wait(timeout=120)  # without anyone iterating
    assert list(started) == [1, 2]
    assert made_in[0] is not threading.main_thread() and made_in[1] is threading.main_thread()


def test_what_making_the_first_item_raised_is_raised_to_the_caller() -> None:
    def failing() -> Iterator[int]:
        raise ValueError("no such capture")
        yield 0

    with pytest.raises(ValueError, match="no such capture"):
        list(StartedAhead(failing()))
    assert list(StartedAhead(iter([]))) == []


def test_close_waits_for_the_first_item_then_closes_the_items() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.set()

    started = StartedAhead(items())
    started.close()
    assert closed.is_set()
