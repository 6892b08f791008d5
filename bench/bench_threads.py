"""Where one `burstwatch scan` spends its time, thread by thread, in one process.

    python bench/bench_threads.py CAPTURE [scan options...]

Wraps the reading stage (`pipeline._timeline_steps`, which runs in the flow table's thread),
the record source (`Timeline.batches`, in the decode thread), the ledger's writer thread and
`judge_and_revise`, and prints when reading starts and ends, when judging starts and ends,
and each thread's CPU seconds. Timers only, no sampling: the run is the command's own.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

T0 = time.perf_counter()
cpu: dict[str, float] = {}


def note(what: str) -> None:
    print(f"[{time.perf_counter() - T0:6.2f} s] {what}", file=sys.stderr)


def main() -> int:
    import burstwatch.cli.scan as scan
    import burstwatch.ingest.timeline as timeline
    import burstwatch.ledger.store as store
    import burstwatch.pipeline as pipeline
    from burstwatch.cli.main import main as burstwatch_main

    steps = pipeline._timeline_steps

    def timed_steps(*a: Any, **k: Any) -> Iterator[Any]:
        note("reading starts")
        yield from steps(*a, **k)
        cpu["flow table thread"] = time.thread_time()
        note("reading ends")

    batches = timeline.Timeline.batches

    def timed_batches(self: Any) -> Iterator[Any]:
        yield from batches(self)
        cpu["decode thread"] = time.thread_time()

    writer = store._Writer._run

    def timed_writer(self: Any) -> None:
        try:
            writer(self)
        finally:
            cpu["ledger writer thread"] = time.thread_time()

    judge = scan.judge_and_revise

    def timed_judge(*a: Any, **k: Any) -> Any:
        cpu["main thread before judging"] = time.thread_time()
        note("judging starts")
        try:
            return judge(*a, **k)
        finally:
            note("judging ends")

    pipeline._timeline_steps = timed_steps  # type: ignore[assignment]
    timeline.Timeline.batches = timed_batches  # type: ignore[method-assign]
    store._Writer._run = timed_writer  # type: ignore[method-assign]
    scan.judge_and_revise = timed_judge
    try:
        return burstwatch_main(["scan", *sys.argv[1:]])
    finally:
        note(f"end; process CPU {time.process_time():.2f} s")
        for name, secs in cpu.items():
            print(f"  {name:28} {secs:6.2f} s CPU", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
