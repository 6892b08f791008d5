"""``scan --dask ADDRESS``: the same shards as ``-j``, as tasks on a Dask cluster.

Each task runs one shard over the whole timeline (``parallel.local.run_shard``) and writes
what it emits, step by step, as Parquet files to a directory every worker and this process
can reach (``parallel.parquet``). When every task is done, this process reads the steps back
in order, merges the shards of each step into the batch one process would have made, and
keeps them in its ledger, where the rules and the conversation judgement read them: so the
cases are those of ``-j 1``. A worker that dies is replaced by Dask and its task run again
from the start (it rewrites its own files), up to the scheduler's ``allowed-failures``; after
that the run fails with one error line.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burstwatch.enrich.nets import NetSet
from burstwatch.errors import BurstwatchError
from burstwatch.flows import FlowConfig
from burstwatch.parallel.local import ParallelError, ShardJob, run_shard
from burstwatch.parallel.merge import add_totals, merge_steps
from burstwatch.records import FlowBatch, Progress, RunStats


@dataclass
class DaskCluster:
    """Where to run: the scheduler's address and the shared directory for the shards' rows
    (None: a temporary one here, which only workers on this host can reach)."""

    address: str
    directory: str | None = None
    shards: int | None = None  # default: one per worker thread of the cluster


def shard_to_parquet(job: ShardJob, enricher_factory: Callable[[], Any] | None,
                     folder: str) -> tuple[int, str, RunStats, Any]:
    """A cluster task: one shard written to ``folder``; (steps, timeline name, run counts,
    enrichment counts). The enricher factory (with a ``--geoip`` database it holds tens of
    MB) comes apart, scattered to the workers once. A retried task starts over in an
    emptied folder."""
    from burstwatch.parallel.parquet import write_step  # pyarrow.parquet: cluster runs only

    job = dataclasses.replace(job, enricher_factory=enricher_factory)
    out = Path(folder)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    steps = 0
    done: list[Any] = []

    def emit(msg: tuple[Any, ...]) -> None:
        nonlocal steps
        if msg[0] == "step":
            write_step(out, steps, msg[1])
            steps += 1
        else:
            done.extend(msg[1:])

    name = run_shard(job, emit)
    return steps, name, done[0], done[1]


def run_on_dask(
    cluster: DaskCluster, inputs: list[str], config: FlowConfig | None, stats: RunStats,
    enricher_factory: Callable[[], Any] | None, progress: Progress | None,
    local: NetSet | None, whole_samples: bool,
) -> Iterator[FlowBatch]:
    """The merged batches of the cluster's shards, step by step as one process yields them
    (after every task is done: a stop request is not passed to the cluster)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ParallelError("--dask needs Dask: pip install 'burstwatch[dask]'") from None
    try:
        client = Client(cluster.address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ParallelError(f"cannot reach the Dask scheduler at {cluster.address} ({exc})") from None
    own_root = cluster.directory is None
    root = Path(cluster.directory or tempfile.mkdtemp(prefix="burstwatch-dask-"))
    run = root / f"run-{uuid.uuid4().hex[:12]}"
    paths = [os.path.abspath(p) for p in inputs]  # workers do not share this process's cwd
    try:
        with client:
            n = cluster.shards or max(1, sum(client.nthreads().values()))
            factory = (client.scatter(enricher_factory, broadcast=True)
                       if enricher_factory is not None else None)
            futures = [
                client.submit(shard_to_parquet, ShardJob(paths, k, n, config, None, local,
                                                         whole_samples),
                              factory, str(run / f"shard-{k:04d}"), pure=False)
                for k in range(n)
            ]
            for finished, _ in enumerate(as_completed(futures), 1):
                if progress:
                    progress(finished, n)
            results = [_result(k, n, f) for k, f in enumerate(futures)]
        steps, name = results[0][0], results[0][1]
        from burstwatch.parallel.parquet import read_step  # pyarrow.parquet: cluster runs only

        yield from merge_steps(
            ([read_step(run / f"shard-{k:04d}", s, name) for k in range(n)] for s in range(steps)),
            stats)
        add_totals(stats, [r[2] for r in results], [r[3] for r in results], enricher_factory)
    finally:
        shutil.rmtree(root if own_root else run, ignore_errors=True)


def _result(k: int, n: int, future: Any) -> tuple[int, str, RunStats, Any]:
    try:
        result: tuple[int, str, RunStats, Any] = future.result()
    except BurstwatchError:
        raise
    except Exception as exc:
        raise ParallelError(f"shard {k + 1} of {n} failed on the cluster: "
                            f"{type(exc).__name__}: {exc}") from None
    return result
