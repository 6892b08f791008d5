"""The one module that knows every stage: decode -> flow table -> enrich -> features -> ledger.

``Pipeline`` is that chain for one timeline of packets (several capture files are one timeline unless
told otherwise: ``ingest.timeline``); ``scan``, ``flows``, ``train``,
``live`` and the warm-up all drive one. It has two halves: ``table_step`` (decode and the
flow table: compiled kernels that release the GIL) and ``finish`` (features, enrichment, the
ledger: mostly Python), so ``run_flows`` can run the first half one batch ahead in a thread of
its own. Everything streams: batches in, finished flow/window rows out, so memory follows
the number of active flows.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from burstwatch.decode import Decoder, PacketBatch
from burstwatch.decode.summary import BatchCounts, count_batch
from burstwatch.enrich.nets import NetSet
from burstwatch.errors import BurstwatchError, InputError
from burstwatch.features import compute_features
from burstwatch.flows import BurstRows, FlowConfig, FlowOutput, FlowRows, FlowTable, PayloadSamples
from burstwatch.flows.key import GroupedPackets
from burstwatch.flows.records import emission_order
from burstwatch.flows.sampling import SamplePolicy
from burstwatch.flows.shard import keep_shard
from burstwatch.ingest import RecordBatch
from burstwatch.ingest.timeline import InputLog, Timeline, expand_inputs, iter_files
from burstwatch.parallel.cluster import DaskCluster, run_on_dask
from burstwatch.parallel.local import ParallelError, run_sharded
from burstwatch.parallel.plan import plan_jobs
from burstwatch.readahead import read_ahead
from burstwatch.records import FlowBatch, Progress, RunStats
from burstwatch.sidecompiler import await_side_compiler

Columns = dict[str, np.ndarray]
CHECKPOINT_FORMAT = 2  # bump when the flow table's or the annotator's state layout changes
# (the decoder's pending fragments, ``decode.*``, were added without a bump: absent = none)
Enricher = Callable[[FlowOutput], Columns]


class BatchSink(Protocol):
    """Where finished batches are kept (the ledger), and what a run leaves the next one."""

    def append(self, batch: FlowBatch, provisional: bool = False) -> None: ...

    def put_state(self, name: str, payload: bytes) -> None: ...

    def get_state(self, name: str) -> bytes | None: ...

    def settle_provisional(self, keep: bool) -> int: ...

    def connect_ahead(self) -> None:
        """The input is read: what the rows still to come and the questions after them need
        may be set up now, while the last steps are enriched (the ledger's database)."""


OPEN_FLOWS_STATE = "open_flows"  # the ledger's name for the checkpoint a run leaves behind


def sample_policy(enriched: bool, whole_samples: bool) -> SamplePolicy | None:
    """The payload sample policy for a run: the classifier's, unless samples are kept whole."""
    if not enriched or whole_samples:
        return None
    # Imported here: a flows-only run does not load the classifier (nor its libraries).
    from burstwatch.enrich.encryption.opening import SAMPLE_POLICY

    return SAMPLE_POLICY


@dataclass(frozen=True)
class Decoded:
    """A decoded batch and its counts (``RunStats.add_decode``), computed where it was
    decoded."""

    packets: PacketBatch
    counts: BatchCounts
    grouped: GroupedPackets | None  # the flow table's first steps (FlowTable.prepare)


class Pipeline:
    """decode -> flow table -> enrich -> features -> ledger, for one timeline of packets."""

    def __init__(
        self, source: str, config: FlowConfig | None = None, enricher: Enricher | None = None,
        ledger: BatchSink | None = None, stats: RunStats | None = None,
        local: NetSet | None = None, whole_samples: bool = False,
        on_features: Callable[[FlowBatch], None] | None = None,
        shard: tuple[int, int] | None = None,
    ) -> None:
        """``local``: the networks whose hosts are the local side (``flows.roles``).
        ``on_features`` sees each batch as soon as its features exist, before enrichment (a
        scorer can start there, in another thread). ``shard`` (k, n): keep only the flows
        whose key hash is k modulo n (one of n workers, ``burstwatch.parallel``)."""
        self.shard = shard
        self.source = source
        self.enricher = enricher
        self.ledger = ledger
        self.stats = stats if stats is not None else RunStats()
        self.on_features = on_features
        config = config or FlowConfig()
        self.steps_per_batch = max(1, config.steps_per_batch)
        self.decoder = Decoder(config.decode, self.stats.reassembly)
        self.table = FlowTable(
            config, sample_payloads=enricher is not None,
            sample_policy=sample_policy(enricher is not None, whole_samples), local=local,
        )

    # ---- the first half: decode and the flow table ----
    def table_step(self, records: RecordBatch) -> FlowOutput:
        return self.table_part(self.decode_part(records))

    def decode_part(self, records: RecordBatch) -> Decoded:
        """``table_step``'s decoding: the packets and what is counted of them, for
        ``table_part``, which adds the counts (so a run stopped between the two counts only
        what the table saw). The counting is done here, in the decoding thread: the table's
        thread is the busier one."""
        packets = self.decoder(records)
        counts = count_batch(packets, records.wirelen)
        # the flow table's stateless first steps, for the whole batch (a shard keeps a part)
        grouped = self.table.prepare(packets, counts.decoded) if self.shard is None else None
        return Decoded(packets, counts, grouped)

    def table_part(self, decoded: Decoded) -> FlowOutput:
        """``table_step``'s flow table, on what ``decode_part`` gave."""
        packets = decoded.packets
        stats = self.stats
        stats.packets += len(packets)
        counts = decoded.counts
        stats.wire_bytes += counts.wire_bytes
        stats.add_decode(counts.status_counts, counts.encap_counts, counts.undecoded)
        table = self.table
        evicted = table.evicted
        if self.shard is None:
            out = table.update(packets, grouped=decoded.grouped)
        else:
            kept, clock = keep_shard(packets, *self.shard)
            out = table.update(kept, clock)
        # The table was the last to read the batch's bytes (its payload samples are copies):
        # a mapped capture's pages go back now, not when the reading is far enough ahead.
        packets.records.release_pages()
        stats.flows_evicted += table.evicted - evicted
        return out

    # ---- the second half: features, enrichment, ledger ----
    def finish(self, out: FlowOutput, provisional: bool = False) -> FlowBatch | None:
        """Features and context for what the table emitted; kept in the ledger (as
        ``provisional`` rows for flows a run leaves open). None when the step emitted nothing."""
        out = emission_order(out)
        self.stats.add_rows(out.rows, out.bursts)
        enrich = self.enricher
        if enrich is not None:
            await_side_compiler()  # its kernels are the enricher's: do not compile them twice
        if not len(out.rows) and not len(out.bursts):
            if enrich is not None:
                enrich(out)  # it files the samples of flows that have no row yet
            return None
        batch = FlowBatch(self.source, out.rows, compute_features(out.rows), out.bursts)
        if self.on_features is not None and len(out.rows):
            self.on_features(batch)
        if enrich is not None:
            batch.extra.update(enrich(out))
            burst_columns = getattr(enrich, "burst_columns", None)
            if burst_columns is not None and len(out.bursts):
                batch.burst_extra.update(burst_columns(out.bursts))
        if self.ledger is not None:
            self.ledger.append(batch, provisional)
        return batch

    # ---- both halves, for callers that do not overlap them ----
    def step(self, records: RecordBatch) -> FlowBatch | None:
        return self.finish(self.table_step(records))

    def advance(self, now_ns: int) -> FlowBatch | None:
        """Move the clock without packets (a quiet link): flows may expire, bursts end."""
        return self.finish(self.table.advance(now_ns))

    def flush(self) -> FlowBatch | None:
        """End every open flow (end of input)."""
        return self.finish(self.table.flush())

    # ---- carrying open flows from one run to the next ----
    def open_state(self) -> dict[str, np.ndarray]:
        """The first half's part of a checkpoint: the flow table's open flows and the
        decoder's fragments of unfinished datagrams (a datagram whose fragments straddle two
        capture files is reassembled by the run over the second)."""
        state = {f"table.{k}": v for k, v in self.table.export_state().items()}
        state.update({f"decode.{k}": v for k, v in self.decoder.export_state().items()})
        return state

    def checkpoint(self, open_state: dict[str, np.ndarray] | None = None) -> bytes:
        """The open flows (flow table, pending fragments and enrichment state) as a compressed
        ``.npz`` image: a run over one capture file hands them to the run over the next
        (``resume``), so a capture scanned in parts gives what it gives whole. Plain arrays
        only, never pickle. ``open_state``: ``open_state()`` taken earlier (by the read-ahead
        thread, which has moved on), to go with the enrichment state as it is now."""
        state = dict(open_state if open_state is not None else self.open_state())
        export = getattr(self.enricher, "export_state", None)
        if export is not None:
            state.update({f"enrich.{k}": v for k, v in export().items()})
        state["format"] = np.array([CHECKPOINT_FORMAT], np.int64)
        buf = io.BytesIO()
        np.savez_compressed(buf, **state)  # type: ignore[arg-type]
        return buf.getvalue()

    def resume(self, image: bytes) -> None:
        """Continue from ``checkpoint`` (on a fresh pipeline with the same settings); ValueError
        when the image was made by other settings or another version."""
        try:
            with np.load(io.BytesIO(image), allow_pickle=False) as z:
                state = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a flow checkpoint ({exc})") from None
        if state.get("format", np.zeros(1))[0] != CHECKPOINT_FORMAT:
            raise ValueError("the saved flows were written by another version")
        try:
            self.table.load_state({k[6:]: v for k, v in state.items() if k.startswith("table.")})
            self.decoder.load_state({k[7:]: v for k, v in state.items() if k.startswith("decode.")})
            load = getattr(self.enricher, "load_state", None)
            if load is not None:
                load({k[7:]: v for k, v in state.items() if k.startswith("enrich.")})
        except (KeyError, IndexError) as exc:
            raise ValueError(f"the saved flows do not fit this version ({exc})") from None
        # ``_last_tick`` and the clock come back with the table: the next step expires what
        # went idle across the gap between the two captures.

    def snapshot(self) -> FlowBatch | None:
        """The current window of every open flow, enriched, without closing anything and
        without keeping it in the ledger (live capture judges these between windows)."""
        rows = self.table.snapshot()
        if not len(rows):
            return None
        out = FlowOutput(rows, BurstRows.empty(), PayloadSamples.empty())
        batch = FlowBatch(self.source, rows, compute_features(rows), out.bursts)
        if self.enricher is not None:
            batch.extra.update(self.enricher(out))
        return batch


def run_flows(
    paths: list[str],
    config: FlowConfig | None = None,
    stats: RunStats | None = None,
    enricher_factory: Callable[[], Enricher] | None = None,
    progress: Progress | None = None,
    whole_samples: bool = False,
    on_features: Callable[[FlowBatch], None] | None = None,
    local: NetSet | None = None,
    ledger: BatchSink | None = None,
    separate: bool = False,
    carry: bool = False,
    jobs: int | None = 1,
    cluster: DaskCluster | None = None,
    stop: threading.Event | None = None,
) -> Iterator[FlowBatch]:
    """Stream finished flow/window rows of the captures ``paths`` (files, directories, glob
    patterns, ``-``). Together they are one capture, read as one timeline
    (``ingest.timeline``): a flow open at the end of one file continues in the next. With
    ``separate`` each file gets a pipeline of its own, as unrelated captures should.

    With ``carry`` (and a ledger) the run continues the flows the previous run left open in
    that ledger, when this capture starts after them, and leaves its own open flows there:
    the rows of flows still open at the end are kept as provisional, and replaced by the run
    that continues them. So an hourly scan of rotated files builds the same ledger as one scan.

    An input that cannot be read is a warning in ``stats.warnings``; only when none can be
    read is it an error. With an enricher, reading, decoding and the flow table run one step
    ahead in a thread of their own, while this generator's caller enriches, matches and
    writes the rows before. Once ``stop`` is set the input ends at the next batch, as if the
    capture ended there: open flows are flushed and come out as usual.

    ``jobs``: worker processes, each with a share of the flows (``burstwatch.parallel``;
    0: every core); the rows, the ledger and so the cases are the same as with one. With
    ``separate`` each file is sharded in turn. Streams and ``carry`` runs use one process.
    ``cluster``: the same shards as tasks on a Dask cluster (not for those runs, nor
    ``separate`` ones).
    """
    stats = stats if stats is not None else RunStats()
    carried = ledger if carry and not separate else None
    inputs = expand_inputs(paths)
    one_ledger = carry and ledger is not None  # --state: one process, --separate or not
    workers = plan_jobs(jobs, inputs, one_ledger)
    if cluster is not None and (separate or plan_jobs(2, inputs, one_ledger) == 1):
        raise ParallelError("--dask reads capture files as one capture: not standard input, "
                            "--separate or --state")
    if cluster is not None or workers > 1:
        if cluster is not None:
            shards = run_on_dask(cluster, inputs, config, stats, enricher_factory, progress,
                                 local, whole_samples)
        else:
            shards = (_each_file_sharded if separate else run_sharded)(
                inputs, workers, config, stats, enricher_factory, progress, local,
                whole_samples, stop)
        for merged in shards:
            if on_features is not None and len(merged.rows):
                on_features(merged)
            if ledger is not None:
                ledger.append(merged)
            yield merged
        return

    def make(name: str) -> Pipeline:
        enrich = enricher_factory() if enricher_factory is not None else None
        return Pipeline(name, config, enrich, ledger, stats, local, whole_samples, on_features)

    stop = stop if stop is not None else threading.Event()
    read = ledger.connect_ahead if ledger is not None else None
    steps = (_separate_steps(inputs, make, stats, progress, stop, read) if separate
             else _timeline_steps(inputs, make, stats, progress, carried, stop, read))
    # Enrichment and what follows run behind the flow table; without them there is nothing
    # to overlap, and a second thread would only add its own malloc arena to the peak RSS.
    if enricher_factory is not None:
        steps = read_ahead(coalesced(steps))
    for pipe, out in steps:
        if isinstance(out, _LeaveOpen):
            assert carried is not None
            carried.put_state(OPEN_FLOWS_STATE, pipe.checkpoint(out.open_state))
            continue
        batch = pipe.finish(out, provisional=isinstance(out, _FinalOutput))
        if batch is not None:
            yield batch


def _each_file_sharded(
    inputs: list[str], workers: int, config: FlowConfig | None, stats: RunStats,
    enricher_factory: Callable[[], Enricher] | None, progress: Progress | None,
    local: NetSet | None, whole_samples: bool, stop: threading.Event | None,
) -> Iterator[FlowBatch]:
    """Files read separately, each a timeline of its own sharded over ``workers`` in turn.
    A file that cannot be read is skipped with a warning, as ``iter_files`` does for one
    process; when none can be read, the first error is raised."""
    first_error: BurstwatchError | None = None
    read = 0
    for path in inputs:
        try:
            Timeline([path]).close()  # opened and its first packets read, as iter_files does
        except BurstwatchError as exc:
            first_error = first_error or exc
            log = InputLog()
            log.skip(path, exc)  # never "-": standard input is read by one process
            stats.warnings.extend(log.warnings)
            continue
        read += 1
        yield from run_sharded([path], workers, config, stats, enricher_factory, progress,
                               local, whole_samples, stop)
        if stop is not None and stop.is_set():
            break
    if not read:
        raise first_error or InputError("no input files")


def coalesced(steps: Steps) -> Steps:
    """``steps`` with every ``steps_per_batch`` (``FlowConfig``) consecutive plain outputs
    of one pipeline merged into one (the end-of-input flush counts as a step). Markers
    (``_LeaveOpen``) and final outputs stay apart and in place, so nothing moves across
    them."""
    held: list[FlowOutput] = []
    held_pipe: Pipeline | None = None

    def merged() -> FlowOutput:
        if len(held) == 1:
            return held[0]
        return FlowOutput(FlowRows.concat([o.rows for o in held]),
                          BurstRows.concat([o.bursts for o in held]),
                          PayloadSamples.concat([o.samples for o in held]))

    for pipe, out in steps:
        if held and (type(out) is not FlowOutput or pipe is not held_pipe):
            assert held_pipe is not None
            yield held_pipe, merged()
            held = []
        if type(out) is not FlowOutput:
            yield pipe, out
            continue
        held.append(out)
        held_pipe = pipe
        if len(held) == pipe.steps_per_batch:
            yield pipe, merged()
            held = []
    if held:
        assert held_pipe is not None
        yield held_pipe, merged()


class _LeaveOpen:
    """A marker in the step stream: the flow table's and decoder's state before the final
    flush (``Pipeline.open_state``), to be checkpointed with the enrichment state once
    everything before it is finished."""

    def __init__(self, open_state: dict[str, np.ndarray]) -> None:
        self.open_state = open_state


class _FinalOutput(FlowOutput):
    """The flush at the end of a run whose open flows are carried: provisional rows."""


Steps = Iterator[tuple[Pipeline, "FlowOutput | _LeaveOpen"]]


def _timeline_steps(
    inputs: list[str], make: Callable[[str], Pipeline], stats: RunStats,
    progress: Progress | None, carried: BatchSink | None, stop: threading.Event,
    read: Callable[[], None] | None = None,
) -> Steps:
    """(pipeline, flow table output) for every batch of the one timeline of all inputs;
    ``read`` is called once they are read, before the open flows are flushed."""
    timeline = Timeline(inputs)
    pipe = make(timeline.name)
    total = timeline.size_hint
    first = True

    def continued() -> Iterator[FlowOutput]:
        """Decode and table in this thread: the first batch decides whether the previous
        run's open flows are continued, and so which pipeline decodes it."""
        nonlocal pipe, first
        assert carried is not None
        for records in timeline.batches():
            if first and len(records):
                pipe = _continue(pipe, make, carried, int(records.ts_ns.min()), timeline.name)
                first = False
            yield pipe.table_step(records)

    # Otherwise reading and decoding run one batch ahead of the flow table, in a thread of
    # their own: both are compiled loops that release the GIL, so on two cores the table
    # no longer waits for them.
    decoded = (None if carried is not None else
               read_ahead((pipe.decode_part(records) for records in timeline.batches()),
                          name="burstwatch-decode"))
    try:
        outputs = (continued() if decoded is None
                   else (pipe.table_part(part) for part in decoded))
        for out in outputs:
            yield pipe, out
            if progress:
                progress(timeline.bytes_consumed, total)
            if stop.is_set():
                break
        if read is not None:
            read()
        if carried is not None and first:
            return  # no packet: the previous run's open flows stay as they were, for the next
        if carried is not None:
            yield pipe, _LeaveOpen(pipe.open_state())
            out = pipe.table.flush()
            yield pipe, _FinalOutput(out.rows, out.bursts, out.samples)
        else:
            yield pipe, pipe.table.flush()
    finally:
        if decoded is not None:
            decoded.close()  # the decode thread ends before the file it reads is closed
        timeline.close()
        stats.files += timeline.log.files_read
        stats.warnings.extend(timeline.log.warnings)


def _continue(pipe: Pipeline, make: Callable[[str], Pipeline], carried: BatchSink,
              first_ns: int, name: str) -> Pipeline:
    """Resume the flows the previous run left open when this capture starts after them;
    otherwise (an older capture, or none left) keep that run's provisional rows as final."""
    image = carried.get_state(OPEN_FLOWS_STATE)
    if image is None:
        return pipe
    try:
        pipe.resume(image)
    except ValueError:
        carried.settle_provisional(keep=True)
        return make(name)
    if first_ns < pipe.table.now:
        carried.settle_provisional(keep=True)
        return make(name)
    carried.settle_provisional(keep=False)
    return pipe


def _separate_steps(
    inputs: list[str], make: Callable[[str], Pipeline], stats: RunStats, progress: Progress | None,
    stop: threading.Event, read: Callable[[], None] | None = None,
) -> Steps:
    """(pipeline, flow table output) for every batch of every input, each input alone;
    ``read`` is called once the last one's flush is handed on."""
    log = InputLog()
    try:
        for reader, batches in iter_files(inputs, log):
            stats.files += 1
            pipe = make(reader.name)
            total = reader.size_hint
            for records in batches:
                yield pipe, pipe.table_step(records)
                if progress:
                    progress(reader.bytes_consumed, total)
                if stop.is_set():
                    break
            yield pipe, pipe.table.flush()
            if stop.is_set():
                break
        if read is not None:
            read()
    finally:
        stats.warnings.extend(log.warnings)
