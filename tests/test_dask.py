"""``scan --dask``: the flow shards as tasks on a Dask cluster (two worker processes on
loopback) give the rows, ledger and cases of one local process; a worker killed mid-task is
replaced and its task run again, with the same result; a failing task is one error."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from burstwatch.config.settings import Settings
from burstwatch.enrich.annotate import AnnotatorFactory, EnrichStats, FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows import FlowOutput
from burstwatch.ledger import Ledger
from burstwatch.parallel import ParallelError
from burstwatch.parallel.cluster import DaskCluster
from burstwatch.pipeline import RunStats, run_flows
from tests.test_parallel import (
    GROUPED,
    assert_same_batch,
    flows_and_ledger,
    ledger_content,
    multi_file_capture,
    scan_jsonl,
)

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def on_cluster(paths: list[str], cluster: DaskCluster, factory: AnnotatorFactory,
               ) -> tuple[list, dict, RunStats]:
    stats = RunStats()
    with Ledger.open(None) as ledger:
        batches = list(run_flows(paths, GROUPED, stats, factory, ledger=ledger, cluster=cluster))
        return batches, ledger_content(ledger), stats


def assert_same_run(one: tuple, other: tuple) -> None:
    (b1, l1, s1), (b2, l2, s2) = one, other
    assert len(b1) == len(b2) and sum(len(b.rows) for b in b1) > 20
    for a, b in zip(b1, b2, strict=True):
        assert_same_batch(a, b)
    assert l1 == l2 and l1["bursts"]
    assert (s1.packets, s1.flow_rows, s1.window_rows, s1.bursts, s1.files) == (
        s2.packets, s2.flow_rows, s2.window_rows, s2.bursts, s2.files)


@pytest.mark.slow
def test_cluster_gives_the_rows_ledger_and_cases_of_one_process(
    tmp_path: Path, scheduler: str, capsys: pytest.CaptureFixture[str],
) -> None:
    paths = multi_file_capture(tmp_path, 4)
    batches, ledger, stats, enrich = flows_and_ledger(paths, 1)
    shared = tmp_path / "shared"
    counts = EnrichStats()
    got = on_cluster(paths, DaskCluster(scheduler, str(shared)),
                     AnnotatorFactory(GeoDatabase.bundled(), Settings(), counts))
    assert_same_run((batches, ledger, stats), got)
    assert counts == enrich
    assert list(shared.iterdir()) == []  # the run's Parquet files are gone with it

    code, cases, summary = scan_jsonl(capsys, paths, 1)
    assert code == 1 and cases
    assert main_dask(capsys, paths, scheduler) == (code, cases, summary)


def main_dask(capsys: pytest.CaptureFixture[str], paths: list[str], scheduler: str) -> tuple:
    import json

    from burstwatch.cli.main import main

    code = main(["scan", "--format", "jsonl", "--dask", scheduler, *paths])
    out = capsys.readouterr()
    summary = [line for line in out.err.splitlines() if line.startswith("summary:")]
    return code, [json.loads(line) for line in out.out.splitlines()], summary[0]


# ---- a worker that dies, a task that fails ----
class _Dying(FlowAnnotator):
    """At its third step: kills its worker process, once over all tasks (the first to get
    there creates ``marker``), or raises."""

    def __init__(self, geo: GeoDatabase, settings: Settings, marker: str, how: str) -> None:
        super().__init__(geo, settings)
        self.marker, self.how, self.calls = marker, how, 0

    def __call__(self, out: FlowOutput) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.calls == 3:
            if self.how == "raise":
                raise ValueError("broken annotator")
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(out)


class _DyingFactory(AnnotatorFactory):
    def __init__(self, marker: str, how: str) -> None:
        super().__init__(GeoDatabase.bundled(), Settings())
        self.marker, self.how = marker, how

    def __reduce__(self) -> tuple[type[_DyingFactory], tuple[str, str]]:  # type: ignore[override]
        return _DyingFactory, (self.marker, self.how)

    def __call__(self) -> FlowAnnotator:
        return _Dying(self.geo, self.settings, self.marker, self.how)


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_the_result_is_the_same(
    tmp_path: Path, scheduler: str,
) -> None:
    paths = multi_file_capture(tmp_path, 5)
    batches, ledger, stats, _ = flows_and_ledger(paths, 1)
    marker = tmp_path / "killed"
    got = on_cluster(paths, DaskCluster(scheduler, str(tmp_path / "shared")),
                     _DyingFactory(str(marker), "kill"))
    assert marker.exists()  # a worker was killed mid-task
    assert_same_run((batches, ledger, stats), got)


@pytest.mark.slow
def test_a_failing_task_ends_the_run_with_one_error(tmp_path: Path, scheduler: str) -> None:
    paths = multi_file_capture(tmp_path, 5)
    with pytest.raises(ParallelError,
                       match="^shard 1 of 2 failed on the cluster: ValueError: broken annotator$"):
        on_cluster(paths, DaskCluster(scheduler, str(tmp_path / "shared")),
                   _DyingFactory(str(tmp_path / "unused"), "raise"))


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_error(tmp_path: Path) -> None:
    paths = multi_file_capture(tmp_path, 5)
    with pytest.raises(ParallelError, match="^cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        on_cluster(paths, DaskCluster("tcp://127.0.0.1:9", None, None), AnnotatorFactory(
            GeoDatabase.bundled(), Settings()))


def test_dask_with_a_ledger_file_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from burstwatch.cli.main import main

    paths = multi_file_capture(tmp_path, 5)
    code = main(["scan", "--dask", "tcp://127.0.0.1:9", "--state", str(tmp_path / "s.duckdb"),
                 *paths])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == ("burstwatch: error: --dask reads capture files as one capture: not standard "
                       "input, --separate or --state")
