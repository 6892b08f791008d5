"""`burstwatch live -i IFACE`: watch a span port and raise alerts while bursts happen.

Flows and bursts go to the burst ledger (by default a file under the user's state directory,
so a restart continues with the history; each step is committed, so SIGKILL loses at most
the last one). Every ``--interval`` seconds open flows are matched by the flow rules on their
features so far, and every conversation within the horizon is judged: a case is written when
it is new, gains bursts or rises a level (``burstwatch.case.revision``). SIGINT/SIGTERM (and
``--duration``/``--count``) stop cleanly: open flows are flushed and judged, and the alerts
file ends with a complete line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import (
    add_conversation_options,
    add_enrich_options,
    add_flow_options,
    ceiling_note,
    flow_config,
    geo_from_args,
    seconds,
    settings_from_args,
    whole,
)
from burstwatch.cli.scan import CASES_STATE, ScanError, _open_alerts, _rule_paths
from burstwatch.cli.scoring import add_score_options, conversation_scorer_from_args
from burstwatch.errors import LedgerError

if TYPE_CHECKING:  # the rest is imported where it runs: the parser is built without it
    from rich.live import Live

    from burstwatch.alerts.record import Alert
    from burstwatch.cli.console import TextTable
    from burstwatch.config import Settings
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.flows import FlowConfig
    from burstwatch.outputs.capture import RotatingPcapWriter
    from burstwatch.records import FlowBatch
    from burstwatch.rules import Rule

MAX_WORKERS = 64  # each is a whole capture pipeline (a process, its flow table)

def observer(interface: str) -> dict[str, Any]:
    """ECS ``observer`` of live's case records: this host, the interface, a sensor."""
    import socket

    return {"hostname": socket.gethostname(), "ingress": {"interface": {"name": interface}},
            "type": "sensor"}


def register(sub: Any) -> None:
    p = sub.add_parser("live", help="capture from an interface (span port) and alert as bursts happen")
    p.add_argument("-i", "--interface", required=True, metavar="IFACE")
    p.add_argument("-f", "--filter", metavar="BPF", help="capture filter, tcpdump syntax (compiled into the kernel)")
    p.add_argument("--rules", nargs="+", metavar="PATH", help="rule files or folders (default: the shipped rules)")
    p.add_argument("--alerts", metavar="OUT.jsonl", help="append alerts as JSON lines here")
    p.add_argument("--format", choices=("table", "jsonl"), default="table",
                   help="standard output: alert lines for people (default) or JSON lines")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="table: each case in full (connection, id, why), not one line")
    p.add_argument("--interval", type=seconds, default=5.0, metavar="S",
                   help="evaluate open flows this often (default 5 s)")
    p.add_argument("--status-every", type=seconds, default=10.0, metavar="S",
                   help="status line interval when not on a terminal (default 10 s)")
    p.add_argument("--duration", type=seconds, metavar="S", help="stop after this many seconds")
    p.add_argument("--count", type=whole(1), metavar="N", help="stop after this many packets")
    p.add_argument("--workers", type=whole(1, MAX_WORKERS), default=1, metavar="N",
                   help="capture processes sharing the interface by flow hash (PACKET_FANOUT)")
    p.add_argument("--write-pcap", metavar="DIR", help="also keep a rotating capture in DIR")
    add_flow_options(p)
    add_enrich_options(p)
    add_conversation_options(p)
    p.add_argument("--no-state", action="store_true",
                   help="keep the ledger in memory only (default: a file under the user's "
                        "state directory, so a restart continues with the history)")
    add_score_options(p)
    p.set_defaults(handler=run, compiles_kernels=True)


@dataclass
class Status:
    packets: int = 0
    bytes: int = 0
    active_flows: int = 0
    alerts: int = 0
    kernel_packets: int = 0
    kernel_drops: int = 0
    flows_evicted: int = 0
    by_level: dict[str, int] = field(default_factory=dict)

    def add(self, other: Status) -> None:
        self.packets += other.packets
        self.bytes += other.bytes
        self.active_flows += other.active_flows
        self.alerts += other.alerts
        self.kernel_packets += other.kernel_packets
        self.kernel_drops += other.kernel_drops
        self.flows_evicted += other.flows_evicted
        for k, v in other.by_level.items():
            self.by_level[k] = self.by_level.get(k, 0) + v


class _Stop:
    """Set by SIGINT/SIGTERM; the capture loop checks it between batches."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True


BACKLOG_BATCHES = 256  # batches held while the ledger cannot be written (a few seconds each)


class CaseDesk:
    """The ledger, the judge and the case book, in one process: batches and flow-rule hits
    come in (from this process or from fan-out workers); ``evaluate`` judges the horizon and
    writes each new or changed case."""

    def __init__(self, args: argparse.Namespace, rules: list[Rule], settings: Settings,
                 emit: Any) -> None:
        from burstwatch.conversations.cases import CaseBook
        from burstwatch.conversations.judge import Judge
        from burstwatch.heap import arrow_buffers_on_this_heap
        from burstwatch.ledger import Ledger

        arrow_buffers_on_this_heap()  # a long run: what the ledger's tables free goes back
        self.ledger = Ledger.open(state_path(args), args.retention,
                                  memory_mb=settings.limits.ledger_memory_mb)
        self.judge = Judge(rules, settings, conversation_scorer_from_args(args)[0])
        self.horizon_h = float(args.horizon)
        self.keep = self.ledger.path is not None
        self.book = CaseBook.from_json(self.ledger.get_state(CASES_STATE)) if self.keep else CaseBook()
        # The latest hit of each flow-window: an open flow is matched again every interval.
        self.flow_alerts: dict[tuple[str, object, object], Alert] = {}
        self.emit = emit
        self.cases = 0
        self.by_level: dict[str, int] = {}
        self.dirty = False
        # A ledger that cannot be written (a full disk) does not stop the capture: the error
        # is said (``failed``, once per kind) and the batches wait here, bounded, for the next
        # append that succeeds; past the bound the oldest are dropped and counted.
        self.failed: Any = lambda message: None
        self.unwritten: deque[FlowBatch] = deque(maxlen=BACKLOG_BATCHES)
        self.lost_batches = 0

    def take(self, batch: FlowBatch | None, alerts: list[Alert]) -> None:
        if batch is not None:
            if len(self.unwritten) == self.unwritten.maxlen:
                self.lost_batches += 1
            self.unwritten.append(batch)
            self._write_unwritten()
            self.dirty = True
        for alert in alerts:
            flow = alert.flow["burstwatch"]["flow"]
            self.flow_alerts[(flow["id"], flow.get("record"), flow.get("window_index"))] = alert
            self.dirty = True

    def _write_unwritten(self) -> None:
        try:
            while self.unwritten:
                self.ledger.append(self.unwritten[0])
                self.unwritten.popleft()
        except LedgerError as exc:
            self.failed(f"{exc}; batches kept in memory until it can be written")

    def evaluate(self, interface: str) -> None:
        if not self.dirty:
            return
        try:
            self._evaluate(interface)
        except LedgerError as exc:
            self.dirty = True
            self.failed(f"{exc}; cases are judged again when it can be written")

    def _evaluate(self, interface: str) -> None:
        from burstwatch.conversations.judge import judge_ledger

        self.dirty = False
        horizon_ns = int(self.horizon_h * 3600e9)
        judgement = judge_ledger(self.judge, self.ledger, list(self.flow_alerts.values()),
                                 horizon_ns, interface)
        # Flow-rule hits older than the horizon no longer belong to any case.
        latest = self.ledger.latest_ns
        if latest is not None:
            self.flow_alerts = {k: a for k, a in self.flow_alerts.items()
                                if _end_ns(a) >= latest - horizon_ns}
        for case in judgement.cases:
            if self.book.update(case):
                self.cases += 1
                self.by_level[case.level] = self.by_level.get(case.level, 0) + 1
                self.emit(case.to_record(observer(interface)), case.level)
        if self.keep:
            self.ledger.put_state(CASES_STATE, self.book.to_json())

    def close(self) -> None:
        """Close the ledger; a last try at what could not be written is made first."""
        try:
            self._write_unwritten()
            if self.unwritten or self.lost_batches:
                self.failed(f"{self.ledger.path or 'ledger'}: {len(self.unwritten) + self.lost_batches:,} "
                            "batch(es) of flows and bursts could not be written")
        finally:
            with contextlib.suppress(LedgerError):
                self.ledger.close()


def _end_ns(alert: Alert) -> int:
    from datetime import datetime

    end = alert.flow["event"]["end"]
    sec = datetime.strptime(end[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return int(sec) * 1_000_000_000 + int(end[20:29])


def default_state_path() -> Path:
    """Where live keeps its ledger unless told: the XDG state directory."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "burstwatch" / "live.duckdb"


def state_path(args: argparse.Namespace) -> str | None:
    if args.no_state:
        return None
    return str(args.state) if args.state else str(default_state_path())


def capture_loop(
    args: argparse.Namespace, rules: list[Rule], geo: GeoDatabase, settings: Settings,
    config: FlowConfig, deliver: Any, stop: _Stop, report: Any, fanout_group: int | None,
    evaluate: Any = None,
) -> Status:
    """One capture process: interface -> flows -> ledger; flow rules on open flows every
    interval. ``deliver(batch, flow_alerts)`` takes what each step produced; ``evaluate()``
    (in the process that holds the ledger) judges the conversations."""
    import numpy as np

    from burstwatch.alerts.detect import Detector
    from burstwatch.cli.warmup import warm_up
    from burstwatch.enrich.annotate import EnrichStats, FlowAnnotator
    from burstwatch.flows.roles import local_nets
    from burstwatch.ingest.live import LiveSource
    from burstwatch.outputs.capture import RotatingPcapWriter
    from burstwatch.pipeline import Pipeline

    status = Status()
    pipe = Pipeline(args.interface, config, FlowAnnotator(geo, settings, EnrichStats()),
                    local=local_nets(settings.internal_nets))
    detector = Detector(rules)
    writer = None
    warm_up(config, geo, settings, Detector(rules))
    src = LiveSource(args.interface, bpf=args.filter, fanout_group=fanout_group)
    if src.notice:
        report(notice=src.notice)
    if args.write_pcap:
        writer = RotatingPcapWriter(args.write_pcap, linktype=src.linktype)
    started = time.monotonic()
    last_eval = last_status = started

    def handle(batch: FlowBatch | None, keep: bool = True) -> None:
        if batch is None:
            return
        alerts = list(detector(batch)) if len(batch) else []
        deliver(batch if keep else None, alerts)

    try:
        for records in src.batches(timeout_ms=200):
            if len(records):
                status.packets += len(records)
                status.bytes += int(records.wirelen.sum(dtype=np.int64))
                handle(pipe.step(records))
                if writer is not None:
                    writer = _keep(writer, records, args.write_pcap, report)
            else:
                handle(pipe.advance(time.time_ns()))
            now = time.monotonic()
            if now - last_eval >= args.interval:
                last_eval = now
                handle(pipe.advance(time.time_ns()))
                handle(pipe.snapshot(), keep=False)  # judged, not kept: the rows are partial
                if evaluate is not None:
                    evaluate()
            if now - last_status >= min(1.0, args.status_every):
                last_status = now
                status.active_flows = pipe.table.active_flows
                status.flows_evicted = pipe.table.evicted
                status.kernel_packets, status.kernel_drops = src.stats()
                report(status=status)
            if stop.requested:
                break
            if args.duration is not None and now - started >= args.duration:
                break
            if args.count is not None and status.packets >= args.count:
                break
    finally:
        handle(pipe.flush())
        if evaluate is not None:
            evaluate()
        status.active_flows = 0
        status.flows_evicted = pipe.table.evicted
        src.close()
        status.kernel_packets, status.kernel_drops = src.stats()
        if writer is not None:
            _keep(writer, None, args.write_pcap, report)
    return status


def _keep(writer: RotatingPcapWriter, records: Any, where: str, report: Any) -> RotatingPcapWriter | None:
    """Write ``records`` to the rotating capture (None: close it). A full disk or an I/O error
    ends the capture file, not the capture: said once, and the writer is dropped."""
    try:
        if records is None:
            writer.close()
        else:
            writer.write(records)
        return writer
    except OSError as exc:
        report(notice=f"--write-pcap {where}: cannot write ({exc.strerror or exc}); "
                      "no longer keeping a capture, detection goes on")
        with contextlib.suppress(OSError):
            writer.close()
        return None



# ---- the parent: output, status, workers ----
class Output:
    """Writes alert records (file and/or stdout) and status, from one process.

    On a terminal the status is a live panel redrawn every second, with alert lines printed
    above it; otherwise plain status lines every ``--status-every`` seconds on stderr.
    """

    def __init__(self, args: argparse.Namespace, alerts_file: IO[str] | None) -> None:
        from rich.live import Live

        from burstwatch.cli.console import stderr_console, stdout_console

        self.args = args
        self.alerts_file = alerts_file
        self.err = stderr_console()
        self.out = stdout_console()
        self.tty = sys.stderr.isatty()
        self.last_line = 0.0
        self.started = time.monotonic()
        self.status = Status()
        self.sink_errors: list[str] = []
        self.live: Live | None = None
        if self.tty and sys.stdout.isatty() and args.format == "table":
            self.live = Live(self._panel(Status(), 0.0, 0.0), console=self.err,
                             refresh_per_second=2, transient=True)
            self.live.start()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _panel(self, s: Status, rate: float, brate: float) -> TextTable:
        from burstwatch.alerts.record import LEVEL_ORDER
        from burstwatch.cli.console import TextTable

        t = TextTable(title=f"burstwatch live on {self.args.interface}", title_justify="left",
                  show_header=False, box=None)
        t.add_column(style="bold")
        t.add_column(justify="right")
        elapsed = time.monotonic() - self.started
        levels = ", ".join(f"{lvl} {s.by_level.get(lvl, 0)}" for lvl in reversed(LEVEL_ORDER))
        for name, value in (
            ("running", f"{elapsed:,.0f} s"),
            ("packets", f"{s.packets:,}"),
            ("packets/s", f"{rate:,.0f}"),
            ("MB/s", f"{brate / 1e6:,.2f}"),
            ("active flows", f"{s.active_flows:,}"),
            ("flows evicted", f"{s.flows_evicted:,}"),
            ("alerts", f"{s.alerts} ({levels})"),
            ("kernel drops", f"{s.kernel_drops:,} of {s.kernel_packets:,}"),
        ):
            t.add_row(name, value)
        return t

    def sink_failed(self, message: str) -> None:
        """A write to an output failed: said once per distinct error; capturing goes on (the
        ledger still has every case) and the exit status will be 2."""
        if message not in self.sink_errors:
            self.sink_errors.append(message)
            self.err.print(f"burstwatch: error: {message}; capturing goes on")

    def alert(self, record: dict[str, Any], level: str) -> None:
        from burstwatch.outputs.jsonline import json_line
        from burstwatch.outputs.writers import OutputError

        line = json_line(record)
        if self.alerts_file is not None:
            try:
                self.alerts_file.write(line + "\n")  # one write per complete line
                self.alerts_file.flush()
            except OSError as exc:
                self.sink_failed(f"{self.args.alerts}: cannot write alerts ({exc.strerror or exc})")
        try:
            self._show(record, level, line)
        except OutputError as exc:
            self.sink_failed(str(exc))

    def _show(self, record: dict[str, Any], level: str, line: str) -> None:
        from burstwatch.cli.caseline import case_details, case_lines

        if self.args.format == "jsonl":
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            return
        console = self.live.console if self.live is not None else self.out
        lines = case_lines([record], console.width, header=False)
        if self.args.verbose:
            lines += case_details(record)
        for line in lines:
            console.print(line, markup=False, highlight=False)

    def show_status(self, s: Status, force: bool = False) -> None:
        now = time.monotonic()
        every = 1.0 if self.tty else self.args.status_every
        if not force and now - self.last_line < every:
            return
        rate = brate = 0.0
        if self.last_line:
            dt = now - self.last_line
            rate = (s.packets - self.status.packets) / dt if dt > 0 else 0.0
            brate = (s.bytes - self.status.bytes) / dt if dt > 0 else 0.0
        self.last_line = now
        self.status = Status(**{**s.__dict__, "by_level": dict(s.by_level)})
        if self.live is not None and not force:
            self.live.update(self._panel(s, rate, brate))
            return
        self.err.print(
            f"burstwatch live: {s.packets:,} packets ({rate:,.0f}/s, {brate / 1e6:,.2f} MB/s), "
            f"{s.active_flows:,} active flows, {s.alerts} alerts, kernel drops {s.kernel_drops:,}"
            + (f", flows evicted {s.flows_evicted:,}" if s.flows_evicted else ""),
            markup=False, highlight=False,
        )


def _worker_main(args: argparse.Namespace, rules: list[Rule], group: int, q: Any) -> None:
    stop = _Stop()
    stop.install()
    settings = settings_from_args(args)
    geo = geo_from_args(args)

    def deliver(batch: FlowBatch | None, alerts: list[Alert]) -> None:
        if batch is not None or alerts:
            q.put(("batch", batch, alerts))

    def report(status: Status | None = None, notice: str | None = None) -> None:
        if status is not None:
            q.put(("status", os.getpid(), Status(**{**status.__dict__, "by_level": dict(status.by_level)})))
        if notice is not None:
            q.put(("notice", notice))

    try:
        final = capture_loop(args, rules, geo, settings, flow_config(args, settings), deliver, stop, report, group)
        q.put(("done", os.getpid(), final))
    except Exception as exc:  # reported by the parent as one line
        q.put(("error", os.getpid(), str(exc)))


def run(args: argparse.Namespace) -> int:
    from burstwatch.alerts.frame import rule_catalog
    from burstwatch.alerts.record import LEVEL_ORDER
    from burstwatch.rules import load_rules

    settings = settings_from_args(args)
    geo = geo_from_args(args)
    rules = load_rules(_rule_paths(args), rule_catalog())
    _, model_line = conversation_scorer_from_args(args)  # also checks the model loads
    alerts_file = _open_alerts(args.alerts) if args.alerts else None
    # The ledger is opened first: a second live on the same state file stops here, with one
    # line, before anything is captured.
    desk = CaseDesk(args, rules, settings, None)
    out = Output(args, alerts_file)
    desk.emit = out.alert
    desk.failed = out.sink_failed
    err = out.err
    err.print(f"burstwatch live: interface {args.interface}"
              + (f", filter '{args.filter}'" if args.filter else "")
              + f", {args.workers} worker(s)", markup=False)
    err.print(f"home countries: {', '.join(settings.home_countries)} ({settings.source})", markup=False)
    err.print(f"rules: {len(rules)} loaded; {geo.header()}", markup=False)
    err.print(model_line, markup=False)
    err.print(f"ledger: {desk.ledger.path or 'in memory (--no-state)'}; horizon {args.horizon:g} h",
              markup=False)
    stop = _Stop()
    stop.install()
    try:
        if args.workers == 1:
            final = capture_loop(
                args, rules, geo, settings, flow_config(args, settings), desk.take, stop,
                lambda status=None, notice=None: (
                    out.show_status(_with_cases(status, desk)) if status is not None else err.print(
                        f"burstwatch: notice: {notice}", markup=False)),
                None, evaluate=lambda: desk.evaluate(args.interface),
            )
        else:
            final = _run_workers(args, rules, out, stop, desk)
    finally:
        out.close()
        desk.close()
        if alerts_file is not None:
            alerts_file.close()
    final = _with_cases(final, desk)
    out.show_status(final, force=True)
    levels = ", ".join(f"{lvl} {final.by_level.get(lvl, 0)}" for lvl in reversed(LEVEL_ORDER))
    err.print(f"summary: {final.packets:,} packets, kernel saw {final.kernel_packets:,} and dropped "
              f"{final.kernel_drops:,}; cases: {final.alerts} ({levels})"
              + ceiling_note(final.flows_evicted), markup=False)
    if desk.ledger.pruned_note():
        err.print(desk.ledger.pruned_note(), markup=False)
    if out.sink_errors:
        return ExitCode.ERROR
    return ExitCode.FLAGGED if final.alerts else ExitCode.OK


def _with_cases(status: Status, desk: CaseDesk) -> Status:
    """The capture's counters with the cases written so far."""
    return Status(**{**status.__dict__, "alerts": desk.cases, "by_level": dict(desk.by_level)})


def _run_workers(args: argparse.Namespace, rules: list[Rule], out: Output, stop: _Stop,
                 desk: CaseDesk) -> Status:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q: Any = ctx.Queue()
    group = os.getpid() & 0xFFFF
    procs = [ctx.Process(target=_worker_main, args=(args, rules, group, q), daemon=True)
             for _ in range(args.workers)]
    for p in procs:
        p.start()
    live: dict[int, Status] = {}
    finals: dict[int, Status] = {}
    errors: list[str] = []
    signalled = False
    last_eval = time.monotonic()
    while len(finals) + len(errors) < len(procs):
        if stop.requested and not signalled:
            signalled = True
            for p in procs:
                if p.pid is not None and p.is_alive():
                    os.kill(p.pid, signal.SIGTERM)
        if time.monotonic() - last_eval >= args.interval:
            last_eval = time.monotonic()
            desk.evaluate(args.interface)
        try:
            msg = q.get(timeout=0.2)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                break
            continue
        kind = msg[0]
        if kind == "batch":
            desk.take(msg[1], msg[2])
        elif kind == "status":
            live[msg[1]] = msg[2]
            total = Status()
            for s in live.values():
                total.add(s)
            out.show_status(_with_cases(total, desk))
        elif kind == "notice":
            out.err.print(f"burstwatch: notice: {msg[1]}", markup=False)
        elif kind == "done":
            finals[msg[1]] = msg[2]
        elif kind == "error":
            errors.append(msg[2])
    for p in procs:
        p.join(timeout=5)
    desk.evaluate(args.interface)
    if errors and not finals:
        raise ScanError(errors[0])
    total = Status()
    for s in finals.values():
        total.add(s)
    return total
