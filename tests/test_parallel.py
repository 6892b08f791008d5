"""``-j N``: flows sharded over worker processes give what one process gives, step by step:
the same rows in the same order, the same ledger, the same cases; a failed or killed worker
ends the run with one clear error."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from burstwatch.cli.main import main
from burstwatch.config.settings import Settings
from burstwatch.enrich.annotate import AnnotatorFactory, EnrichStats, FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows import FlowConfig, FlowOutput
from burstwatch.ledger import Ledger
from burstwatch.parallel import ParallelError
from burstwatch.parallel.local import ShardJob, run_shard, run_sharded
from burstwatch.parallel.merge import merge_batches
from burstwatch.parallel.plan import default_jobs, plan_jobs
from burstwatch.pipeline import RunStats, run_flows
from burstwatch.records import FlowBatch
from burstwatch.synth import Endpoint, run_scenario, split_capture, write_capture

# Scenarios of several hosts at once: TLS and QUIC exfiltration, many small uploads over two
# hours (window rows), video abroad, browsing, DNS.
SCENARIOS = ["exfil_tls", "exfil_quic", "exfil_many_small", "video_stream_abroad", "browsing",
             "dns_lookups", "exfil_tls"]


def multi_file_capture(folder: Path, seed: int) -> list[str]:
    """The scenarios' sessions, each from its own host, started at seeded offsets, merged
    into one capture and cut into three rotated files at seeded packet indices."""
    rng = np.random.default_rng(seed)
    packets = []
    for k, name in enumerate(SCENARIOS):
        start = 1_710_252_000 + float(rng.uniform(0, 300))
        session = run_scenario(name, seed * 10 + k, start_ts=start,
                               client=Endpoint(f"10.0.{seed}.{k + 10}"))
        packets += list(session.packets())
    packets.sort(key=lambda p: p.ts_ns)
    whole = folder / "whole.pcap"
    write_capture(str(whole), packets)
    cuts = sorted(int(c) for c in rng.integers(1, len(packets), 2))
    return [str(p) for p in split_capture(whole, folder / "parts", cuts)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind in "fc":
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    return a.shape == b.shape and a.tolist() == b.tolist()


def assert_same_batch(a: FlowBatch, b: FlowBatch) -> None:
    for part in ("rows", "bursts"):
        for name in getattr(a, part).__dataclass_fields__:
            assert _same(getattr(getattr(a, part), name), getattr(getattr(b, part), name)), name
    assert a.features.names == b.features.names
    assert _same(a.features.values, b.features.values)
    for cols in ("extra", "burst_extra"):
        ca, cb = getattr(a, cols), getattr(b, cols)
        assert sorted(ca) == sorted(cb)
        for name in ca:
            assert _same(ca[name], cb[name]), name


def ledger_content(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    con = ledger.connection
    tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
    return {t: con.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables}


# Two capture batches per enriched batch: the test captures have only a few batches, and
# the groups must line up across workers as they do in one process.
GROUPED = FlowConfig(steps_per_batch=2)


def flows_and_ledger(paths: list[str], jobs: int) -> tuple[list[FlowBatch], dict, RunStats,
                                                             EnrichStats]:
    stats, enrich = RunStats(), EnrichStats()
    factory = AnnotatorFactory(GeoDatabase.bundled(), Settings(), enrich)
    with Ledger.open(None) as ledger:
        batches = list(run_flows(paths, GROUPED, stats, factory, ledger=ledger, jobs=jobs))
        content = ledger_content(ledger)
    return batches, content, stats, enrich


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_workers_give_the_rows_and_ledger_of_one_process(tmp_path: Path, seed: int) -> None:
    paths = multi_file_capture(tmp_path, seed)
    assert len(paths) == 3
    one, ledger_one, stats_one, enrich_one = flows_and_ledger(paths, 1)
    assert sum(len(b.rows) for b in one) > 20 and any((b.rows.kind == 1).any() for b in one)
    assert ledger_one["bursts"] and ledger_one["flows"]
    for jobs in (2, 3, 4):
        many, ledger_many, stats_many, enrich_many = flows_and_ledger(paths, jobs)
        assert len(many) == len(one), jobs
        for a, b in zip(one, many, strict=True):
            assert_same_batch(a, b)
        assert ledger_many == ledger_one
        assert (stats_many.packets, stats_many.flow_rows, stats_many.window_rows,
                stats_many.bursts, stats_many.files, stats_many.decode, stats_many.encap,
                stats_many.reassembly, stats_many.flows_evicted) == (
            stats_one.packets, stats_one.flow_rows, stats_one.window_rows, stats_one.bursts,
            stats_one.files, stats_one.decode, stats_one.encap, stats_one.reassembly,
            stats_one.flows_evicted)
        assert enrich_many == enrich_one


def scan_jsonl(capsys: pytest.CaptureFixture[str], paths: list[str], jobs: int) -> tuple[int, list, str]:
    code = main(["scan", "--format", "jsonl", "-j", str(jobs), *paths])
    out = capsys.readouterr()
    summary = [line for line in out.err.splitlines() if line.startswith("summary:")]
    return code, [json.loads(line) for line in out.out.splitlines()], summary[0]


@pytest.mark.slow
def test_scan_cases_with_workers_are_those_of_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    paths = multi_file_capture(tmp_path, 3)
    code, cases, summary = scan_jsonl(capsys, paths, 1)
    assert code == 1 and cases  # the exfiltration makes a case
    assert scan_jsonl(capsys, paths, 2) == (code, cases, summary)
    assert scan_jsonl(capsys, paths, 4) == (code, cases, summary)


def test_jobs_plan() -> None:
    assert plan_jobs(4, ["-"], carry=False) == 1  # a stream is read once
    assert plan_jobs(4, ["a.pcap"], carry=True) == 1
    assert plan_jobs(3, ["a.pcap", "b.pcap"], carry=False) == 3
    assert plan_jobs(None, ["a.pcap"], carry=False) == 1
    assert plan_jobs(0, ["a.pcap"], carry=False) == default_jobs() >= 1


def test_a_fifo_is_read_by_one_process(tmp_path: Path) -> None:
    """A FIFO can be read once: several workers opening it would each get part of it."""
    fifo = tmp_path / "capture.pcap"
    os.mkfifo(fifo)
    regular = tmp_path / "regular.pcap"
    regular.write_bytes(b"")
    assert plan_jobs(2, [str(regular), str(tmp_path)], carry=False) == 2
    assert plan_jobs(2, [str(regular), str(fifo)], carry=False) == 1
    assert plan_jobs(2, [str(tmp_path / "*.pcap")], carry=False) == 2


# ---- failing workers: an annotator that goes wrong in the second worker ----
class _Breaking(FlowAnnotator):
    """Raises, or kills its own process, at its second step in the second worker only (the
    capture's three files make three reading steps and the flush, two groups of two)."""

    def __init__(self, geo: GeoDatabase, settings: Settings, how: str) -> None:
        super().__init__(geo, settings)
        self.how, self.calls = how, 0

    def __call__(self, out: FlowOutput) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.calls == 2 and multiprocessing.current_process().name == "burstwatch-shard-1":
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ValueError("broken annotator")
        return super().__call__(out)


class _Failing(AnnotatorFactory):
    def __init__(self, how: str) -> None:
        super().__init__(GeoDatabase.bundled(), Settings())
        self.how = how

    def __reduce__(self) -> tuple[type[_Failing], tuple[str]]:  # type: ignore[override]
        return _Failing, (self.how,)

    def __call__(self) -> FlowAnnotator:
        return _Breaking(self.geo, self.settings, self.how)


@pytest.mark.slow
@pytest.mark.parametrize(("how", "message"), [
    ("kill", r"^worker 2 \(pid \d+\) ended unexpectedly \(killed by SIGKILL\)"),
    ("raise", "^worker 2 failed: ValueError: broken annotator$"),
])
def test_a_failed_worker_ends_the_run_with_one_error(tmp_path: Path, how: str, message: str) -> None:
    paths = multi_file_capture(tmp_path, 1)
    with pytest.raises(ParallelError, match=message):
        list(run_flows(paths, GROUPED, RunStats(), _Failing(how), jobs=2))


def test_a_stop_request_ends_every_shard_at_the_same_step(tmp_path: Path) -> None:
    """Shards told to stop at group 1 each flush there (after the group of steps 0 and 1),
    and together they give what one table gives when its input ends at the same step."""
    paths = multi_file_capture(tmp_path, 1)
    factory = AnnotatorFactory(GeoDatabase.bundled(), Settings())

    def shard(k: int, n: int) -> tuple[list[FlowBatch | None], RunStats]:
        sent: list[tuple] = []
        run_shard(ShardJob(paths, k, n, GROUPED, factory, None, False), sent.append, lambda: 1)
        assert [m[0] for m in sent] == ["step", "step", "done"]  # group 0, then the flush
        return [m[1] for m in sent[:2]], sent[2][1]

    whole, whole_stats = shard(0, 1)
    parts = [shard(k, 3) for k in range(3)]
    all_packets = sum(1 for _ in pcap_packets(paths))
    assert whole_stats.packets < all_packets  # the input ended early
    assert all(stats.packets == whole_stats.packets for _, stats in parts)
    for step in range(2):
        merged = merge_batches([batches[step] for batches, _ in parts])
        assert (merged is None) == (whole[step] is None)
        if merged is not None:
            assert_same_batch(whole[step], merged)  # type: ignore[arg-type]
    assert any(b is not None and len(b.rows) for b in whole)


def pcap_packets(paths: list[str]) -> Iterator[int]:
    for p in paths:
        data = Path(p).read_bytes()
        pos = 24
        while pos < len(data):
            yield pos
            pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")


def test_files_read_separately_are_sharded_in_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``separate`` with workers: each file is sharded on its own, and the batches, counts
    and warnings (an unreadable file among them, skipped) are those of one process."""
    paths = multi_file_capture(tmp_path, 2)
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(b"not a capture at all")
    inputs = [paths[0], str(broken), *paths[1:]]
    sharded: list[list[str]] = []

    def counting(files: list[str], jobs: int, *args: Any, **kw: Any) -> Iterator[FlowBatch]:
        sharded.append(files)
        return run_sharded(files, jobs, *args, **kw)

    monkeypatch.setattr("burstwatch.pipeline.run_sharded", counting)

    def run(jobs: int) -> tuple[list[FlowBatch], RunStats]:
        stats = RunStats()
        factory = AnnotatorFactory(GeoDatabase.bundled(), Settings())
        return list(run_flows(inputs, GROUPED, stats, factory, separate=True, jobs=jobs)), stats

    one, stats_one = run(1)
    many, stats_many = run(3)
    assert {b.source for b in one} == set(paths)  # each file its own capture
    assert len(many) == len(one) > 3
    for a, b in zip(one, many, strict=True):
        assert a.source == b.source
        assert_same_batch(a, b)
    assert (stats_many.packets, stats_many.files, stats_many.flow_rows, stats_many.bursts) == (
        stats_one.packets, stats_one.files, stats_one.flow_rows, stats_one.bursts)
    assert stats_one.files == 3
    assert sharded == [[p] for p in paths]  # -j 1 read in this process, -j 3 file by file
    assert [str(w) for w in stats_many.warnings] == [str(w) for w in stats_one.warnings]
    assert any("broken.pcap" in str(w) for w in stats_one.warnings)


def test_flows_command_writes_the_same_records_with_workers(tmp_path: Path) -> None:
    paths = multi_file_capture(tmp_path, 2)
    outputs = []
    for jobs in ("1", "3"):
        out = tmp_path / f"flows-{jobs}.jsonl"
        assert main(["flows", "-j", jobs, "-o", str(out), *paths]) == 0
        outputs.append(out.read_text())
    assert outputs[0].count("\n") > 20 and outputs[0] == outputs[1]


@pytest.mark.slow
def test_separate_files_are_each_sharded_as_one_process_scans_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``scan --separate`` judges each file on its own; with ``-j`` each file's flows are
    sharded, and the cases and counts are those of one process."""
    paths = multi_file_capture(tmp_path, 3)
    sharded: list[list[str]] = []

    def counting(inputs: list[str], jobs: int, *args: Any, **kw: Any) -> Iterator[FlowBatch]:
        sharded.append(inputs)
        return run_sharded(inputs, jobs, *args, **kw)

    monkeypatch.setattr("burstwatch.pipeline.run_sharded", counting)
    code, cases, summary = scan_jsonl(capsys, ["--separate", *paths], 1)
    assert code == 1 and cases and not sharded
    assert scan_jsonl(capsys, ["--separate", *paths], 2) == (code, cases, summary)
    assert sharded == [[p] for p in paths]


class _Probe(AnnotatorFactory):
    """Fails in the worker, saying whether the worker found the package already loaded."""

    def __init__(self) -> None:
        super().__init__(GeoDatabase.bundled(), Settings())

    def __reduce__(self) -> tuple[type[_Probe], tuple[()]]:  # type: ignore[override]
        return _Probe, ()

    def __call__(self) -> FlowAnnotator:
        import sys

        raise ValueError(f"preloaded={'burstwatch.parallel.preload' in sys.modules}")


def test_workers_are_forked_from_the_preloaded_server(tmp_path: Path) -> None:
    from multiprocessing import forkserver

    from burstwatch.parallel.plan import start_fork_server

    start_fork_server(2, ["a.pcap"], carry=False)
    assert forkserver._forkserver._forkserver_pid is not None  # type: ignore[attr-defined]
    paths = multi_file_capture(tmp_path, 1)
    with pytest.raises(ParallelError, match=r"^worker 1 failed: ValueError: preloaded=True$"):
        list(run_flows(paths, None, RunStats(), _Probe(), jobs=2))


def test_workers_are_spawned_when_the_fork_server_cannot_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from multiprocessing import forkserver

    from burstwatch.parallel.plan import worker_context

    assert worker_context().get_start_method() == "forkserver"

    def refuse() -> None:
        raise PermissionError("no room for its socket")

    monkeypatch.setattr(forkserver, "ensure_running", refuse)
    assert worker_context().get_start_method() == "spawn"


def test_grouping_capture_batches_changes_no_flow_row(tmp_path: Path) -> None:
    """Enriching the flow table's output of several capture batches together (``FlowConfig.
    steps_per_batch``) gives the same flow and window rows, features, verdicts and bursts as
    one capture batch at a time; only the batches they come in differ."""
    paths = multi_file_capture(tmp_path, 4)

    def rows(steps: int) -> tuple[list[tuple], list[tuple], int]:
        factory = AnnotatorFactory(GeoDatabase.bundled(), Settings())
        batches = list(run_flows(paths, FlowConfig(steps_per_batch=steps), RunStats(), factory))
        flows = sorted(
            (int(b.rows.flow_id[i]), int(b.rows.kind[i]), int(b.rows.window_index[i]),
             b.rows.acc_i[i].tolist(), np.nan_to_num(b.features.values[i]).tolist(),
             str(b.extra["burstwatch.encryption.verdict"][i]))
            for b in batches for i in range(len(b.rows)))
        bursts = sorted((int(b.bursts.flow_id[i]), int(b.bursts.start_ns[i]),
                         int(b.bursts.bytes[i]), int(b.bursts.direction[i]))
                        for b in batches for i in range(len(b.bursts)))
        return flows, bursts, len(batches)

    one_flows, one_bursts, one_batches = rows(1)
    all_flows, all_bursts, all_batches = rows(100)
    assert len(one_flows) > 20 and one_bursts
    assert (all_flows, all_bursts) == (one_flows, one_bursts)
    assert all_batches == 1 < one_batches


def test_coalesced_groups_steps_of_one_pipeline_and_keeps_markers_in_place() -> None:
    from burstwatch.flows import BurstRows, FlowRows, PayloadSamples
    from burstwatch.pipeline import _LeaveOpen, coalesced

    class Pipe:
        def __init__(self, steps: int) -> None:
            self.steps_per_batch = steps

    def out(flow_id: int) -> FlowOutput:
        rows = FlowRows.empty()
        rows.flow_id = np.array([flow_id], np.int64)  # columns are joined one by one
        return FlowOutput(rows, BurstRows.empty(), PayloadSamples.empty())

    a, b = Pipe(2), Pipe(3)
    marker = _LeaveOpen({})
    steps = [(a, out(1)), (a, out(2)), (a, out(3)), (a, marker), (a, out(4)),
             (b, out(5)), (b, out(6)), (b, out(7)), (b, out(8))]
    got = [(p, o if isinstance(o, _LeaveOpen) else o.rows.flow_id.tolist())
           for p, o in coalesced(iter(steps))]  # type: ignore[arg-type]
    assert got == [(a, [1, 2]), (a, [3]), (a, marker), (a, [4]), (b, [5, 6, 7]), (b, [8])]


def test_a_stopped_run_counts_the_packets_its_records_hold(tmp_path: Path) -> None:
    """Reading and decoding run ahead of the flow table; a run stopped after its first
    batch counts only the packets the table took (each one is in a flow record), not the
    batches decoded ahead of it."""
    import threading

    from burstwatch.flows import state as st

    paths = multi_file_capture(tmp_path, 5)

    def run(stop_after: int | None) -> tuple[int, int]:
        stop, stats = threading.Event(), RunStats()

        def seen(batch: FlowBatch) -> None:
            if stop_after is not None:
                stop.set()

        batches = list(run_flows(paths, FlowConfig(steps_per_batch=1), stats,
                                 AnnotatorFactory(GeoDatabase.bundled(), Settings()),
                                 on_features=seen, stop=stop))
        in_records = sum(int(b.rows.acc_i[b.rows.kind == st.ROW_FLOW][:, [st.I_PKTS0, st.I_PKTS1]]
                             .sum()) for b in batches)
        return stats.packets, in_records

    whole, whole_in_records = run(None)
    stopped, stopped_in_records = run(1)
    assert whole == whole_in_records > stopped == stopped_in_records > 0


@pytest.mark.parametrize("kind", [[], ["--bursts"]])
def test_exported_records_do_not_depend_on_how_batches_are_joined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: list[str],
) -> None:
    """``flows -o`` joins batches into chunks before formatting them; chunks of one record
    and chunks of everything give the same file, byte for byte."""
    import burstwatch.cli.flows as flows_cli

    paths = multi_file_capture(tmp_path, 3)
    texts = []
    for chunk in (1, 10**9):
        monkeypatch.setattr(flows_cli, "EXPORT_CHUNK", chunk)
        out = tmp_path / f"chunk-{chunk}.jsonl"
        assert main(["flows", *kind, "-o", str(out), *paths]) == 0
        texts.append(out.read_text())
    assert texts[0].count("\n") > 10 and texts[0] == texts[1]
