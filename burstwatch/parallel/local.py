"""``-j N``: one capture's flows spread over worker processes on this machine.

Workers are forked from a fork server that has imported the package and loaded its kernels
once (``parallel.preload``; started by ``parallel.plan.start_fork_server`` as soon as a run
knows it will shard, so its loading overlaps the parent's own start). Every worker reads the
whole timeline (regular files are memory-mapped, so the page cache is shared), decodes every
packet, and keeps the flows whose key hash falls to it (``flows.shard``); its flow table
still sees every packet's time, so it expires flows and rolls windows at the same steps as
one table would. Each worker enriches its own rows; the parent takes one message per
timeline step from each worker, merges them into the batch one process would have made
(``parallel.merge``), and is the only one to write the ledger. So the rows, the ledger and
the cases are those of ``-j 1``, and each worker's memory is bounded as one process's is
(plus two batches queued).

Streams (standard input, a FIFO) and runs with a ledger file (``--state``) stay in one
process (``parallel.plan``): a stream can be read once only, and a checkpoint is one flow
table. Files read ``--separate`` are sharded one after the other (``pipeline.run_flows``).
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from burstwatch.enrich.nets import NetSet
from burstwatch.errors import BurstwatchError
from burstwatch.flows import FlowConfig
from burstwatch.parallel.merge import add_totals, merge_steps
from burstwatch.parallel.plan import worker_context
from burstwatch.records import FlowBatch, Progress, RunStats

_POLL_S = 1.0  # how often a waiting parent checks that its workers are alive
_DEPTH = 2  # steps a worker may have queued for the parent


class ParallelError(BurstwatchError):
    """A worker process failed or was killed; the run's results would be incomplete."""


@dataclass
class ShardJob:
    """What one worker needs (pickled to it): the inputs, the settings and its shard."""

    inputs: list[str]
    shard: int
    shards: int
    config: FlowConfig | None
    enricher_factory: Callable[[], Any] | None
    local: NetSet | None
    whole_samples: bool


def run_shard(job: ShardJob, emit: Callable[[tuple[Any, ...]], None],
              stop_at: Callable[[], int] | None = None) -> str:
    """One shard over the whole timeline: ``("step", batch, bytes read, total)`` for every
    group of steps as ``pipeline.coalesced`` groups them (batch None when the shard emitted
    nothing), then ``("done", stats, enrich stats)``; returns the timeline's name.
    ``stop_at()``: the group (>= 0) at which every shard ends its input as if the capture
    ended there, flushing its open flows."""
    from burstwatch.aot import ready
    from burstwatch.flows import FlowOutput
    from burstwatch.ingest.timeline import Timeline
    from burstwatch.pipeline import Pipeline, Steps, coalesced

    ready(build_later=False)  # a Dask worker's first task, or a worker started cold
    stats = RunStats()
    enricher = job.enricher_factory() if job.enricher_factory is not None else None
    timeline = Timeline(job.inputs)
    try:
        pipe = Pipeline(timeline.name, job.config, enricher, None, stats, job.local,
                        job.whole_samples, shard=(job.shard, job.shards))
        total = timeline.size_hint

        def table_steps() -> Steps:
            for step, records in enumerate(timeline.batches()):
                # Only where a group of steps begins (``coalesced``): every shard then ends
                # its input at the same step.
                if (stop_at is not None and step % pipe.steps_per_batch == 0
                        and 0 <= stop_at() <= step // pipe.steps_per_batch):
                    break
                yield pipe, pipe.table_step(records)
            yield pipe, pipe.table.flush()

        # Steps grouped as one process groups them, so a group's batch is its share of what
        # one process would give for that group.
        for _, out in coalesced(table_steps()):
            assert isinstance(out, FlowOutput)  # no markers: shards do not carry open flows
            emit(("step", pipe.finish(out), timeline.bytes_consumed, total))
    finally:
        timeline.close()
        stats.files += timeline.log.files_read
        stats.warnings.extend(timeline.log.warnings)
    emit(("done", stats, getattr(enricher, "stats", None)))
    return timeline.name


def _worker(job: ShardJob, out: Any, stop_at: Any) -> None:
    """A worker process's body: results and failures go to the parent through ``out``."""
    for sig in (signal.SIGINT, signal.SIGHUP):  # the parent decides what a signal ends
        signal.signal(sig, signal.SIG_IGN)
    try:
        run_shard(job, out.put, lambda: int(stop_at.value))
    except BaseException as exc:  # handed to the parent, which raises it
        out.put(("error", exc if isinstance(exc, BurstwatchError) else None,
                 f"{type(exc).__name__}: {exc}"))


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _died(k: int, proc: Any) -> ParallelError:
    return ParallelError(f"worker {k + 1} (pid {proc.pid}) ended unexpectedly "
                         f"({_describe_exit(proc.exitcode)}); the results would be incomplete")


def _receive(k: int, q: Any, proc: Any) -> tuple[Any, ...]:
    """The next message of worker ``k``; ParallelError when it died without sending one."""
    while True:
        try:
            msg: tuple[Any, ...] = q.get(timeout=_POLL_S)
        except (EOFError, OSError):  # it died in the middle of a message
            proc.join()
            raise _died(k, proc) from None
        except queue.Empty:
            if proc.is_alive():
                continue
            try:  # it may have sent its last words just before it ended
                msg = q.get(timeout=_POLL_S)
            except (queue.Empty, EOFError, OSError):
                raise _died(k, proc) from None
        if msg[0] == "error":
            if msg[1] is not None:
                raise msg[1]
            raise ParallelError(f"worker {k + 1} failed: {msg[2]}")
        return msg


def run_sharded(
    inputs: list[str], jobs: int, config: FlowConfig | None, stats: RunStats,
    enricher_factory: Callable[[], Any] | None, progress: Progress | None,
    local: NetSet | None, whole_samples: bool, stop: threading.Event | None = None,
) -> Iterator[FlowBatch]:
    """The merged batches of ``jobs`` workers over the timeline of ``inputs``, step by step
    as one process yields them. The caller keeps them (ledger, rules); ``stats`` gets the
    run's totals and the enricher factory's ``absorb`` (if any) each worker's counts. Once
    ``stop`` is set, every worker ends its input at the same step and flushes."""
    ctx = worker_context()
    queues = [ctx.Queue(maxsize=_DEPTH) for _ in range(jobs)]
    stop_at = ctx.Value("q", -1, lock=False)
    procs = [
        ctx.Process(target=_worker, name=f"burstwatch-shard-{k}", daemon=True, args=(
            ShardJob(inputs, k, jobs, config, enricher_factory, local, whole_samples), q,
            stop_at))
        for k, q in enumerate(queues)
    ]
    for p in procs:
        p.start()
    for q in queues:
        # The worker holds the only write end now: one killed while its queue's thread was
        # writing a message leaves the rest unwritten, and the read then ends (EOFError)
        # instead of waiting for bytes that never come. (``_writer`` is the queue's pipe end;
        # where a Python names it otherwise, a killed worker is still found between messages.)
        writer = getattr(q, "_writer", None)
        if writer is not None:
            writer.close()

    def steps() -> Iterator[list[FlowBatch | None]]:
        received = 0
        while True:
            msgs = [_receive(k, q, p) for k, (q, p) in enumerate(zip(queues, procs, strict=True))]
            if len({m[0] for m in msgs}) > 1:
                raise ParallelError("the workers ended their input at different steps")
            if msgs[0][0] == "done":
                done.extend(msgs)
                return
            received += 1
            if stop is not None and stop.is_set() and stop_at.value < 0:
                # A worker is at most _DEPTH steps queued and one in hand ahead of what was
                # received, so each one can still stop at this step: all at the same one.
                stop_at.value = received + _DEPTH + 1
            if progress:
                progress(msgs[0][2], msgs[0][3])
            yield [m[1] for m in msgs]

    done: list[tuple[Any, ...]] = []
    try:
        yield from merge_steps(steps(), stats)
        add_totals(stats, [m[1] for m in done], [m[2] for m in done], enricher_factory)
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join()
        for q in queues:
            q.close()
            q.cancel_join_thread()
