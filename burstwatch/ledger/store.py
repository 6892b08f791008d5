"""The burst ledger: bursts and flow rows of past runs in one embedded DuckDB file.

Conversations are judged over hours and novelty over weeks, longer than one capture or
one live session, so every run appends what it emitted here. Each append is one committed
transaction: a process killed mid-run loses at most the batch it was writing, never the
file. DuckDB lets one process write a file at a time; a second writer is told which
process holds it.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from burstwatch import heap, priority
from burstwatch.errors import LedgerError
from burstwatch.ledger.schema import (
    BURSTS,
    DEFAULT_RETENTION_DAYS,
    FLOWS,
    META,
    SAME_RECORD,
    SCHEMA_VERSION,
    STATE,
    TABLES,
    Table,
)
from burstwatch.records import FlowBatch

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from burstwatch.ledger.party import TextCache

NS_PER_DAY = 86_400 * 1_000_000_000
DEFAULT_MEMORY_MB = 512.0
"""DuckDB's memory limit for a ledger: its working set for the conversation queries of a busy
site, far below the 80 % of the machine DuckDB would take by default."""
PRUNE_EVERY_NS = 10 * 60 * 1_000_000_000
"""During appends, retention is applied again once data time has moved on this much."""

_LOCK_PID = re.compile(r"\(PID (\d+)\)")


class Ledger:
    """One open ledger. Use ``Ledger.open``; close it (or use ``with``) to release the file.

    Age is measured from the newest record in the ledger (data time), not the wall clock,
    so a capture from years ago is kept for its retention like a live one; a record dated
    in the future cannot push the clock past the wall clock.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection | Callable[[], duckdb.DuckDBPyConnection],
                 path: str | None, read_only: bool,
                 retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        """``con``: an open connection, or (a new, empty in-memory ledger with
        ``retention_days``) what opens one, called when the ledger is first used."""
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._connect: Callable[[], duckdb.DuckDBPyConnection] | None = None
        self._connect_lock = threading.Lock()
        self.path = path
        self.read_only = read_only
        self._held: _Held | None = None
        if not callable(con):
            self._connection = con
            recorded = self.meta("retention_days")
            self.retention_days = DEFAULT_RETENTION_DAYS if recorded is None else float(recorded)
            self._latest_ns = self._scalar(
                "SELECT max(t) FROM (SELECT max(end_ns) t FROM bursts UNION ALL "
                "SELECT max(end_ns) FROM flows)"
            )
        else:
            self._connect = con
            self.retention_days = retention_days
            self._latest_ns = None
            # A new in-memory ledger holds its rows as Arrow tables, and answers the
            # conversation question from them (``columnar``), until it outgrows
            # ``HOLD_ROWS`` or is asked for anything else: then it sets up its database
            # and moves them in. A one-shot scan never pays for the database.
            self._held = _Held()
        self._spill: list[str] = []  # an in-memory ledger's folder for what exceeds its limit
        self._next_prune_ns: int | None = None
        # Rows deleted for age since this ledger was opened (at open, while appending and by
        # ``prune``), so a run can say what retention took.
        self.pruned = 0
        self._text: TextCache | None = None  # made with the first rows
        self._writer: _Writer | None = None

    @classmethod
    def open(cls, path: str | None, retention_days: float | None = DEFAULT_RETENTION_DAYS, *,
             read_only: bool = False, memory_mb: float | None = None) -> Ledger:
        """Open (or create) the ledger at ``path``; ``None`` keeps it in memory for this run.

        A writer's ``retention_days`` is recorded in the file and applied at once. ``None``
        keeps the recorded retention and prunes nothing at open: for maintenance that prunes
        on its own terms. ``read_only`` (inspecting, exporting) needs an existing ledger and
        changes nothing; it may share the file with other readers, not with a writer.
        ``memory_mb``: DuckDB's memory limit (default ``DEFAULT_MEMORY_MB``); past it DuckDB
        evicts pages of a file ledger and spills an in-memory one to its temporary folder,
        instead of growing with the ledger.
        """
        config: dict[str, Any] = {"memory_limit": f"{max(memory_mb or DEFAULT_MEMORY_MB, 1.0):.0f}MiB"}
        if retention_days is not None and not retention_days > 0:
            raise LedgerError(f"retention must be a positive number of days, not {retention_days}")
        if path is None:
            # Created at its first use: a scan's rows wait in the write-behind until the end,
            # and a DuckDB instance, once set up, keeps about 25 MiB of its library resident,
            # which the scan's reading, its peak, then does without.
            days = None if retention_days is None else float(retention_days)
            spill: list[str] = []
            ledger = cls(lambda: _new_in_memory(config, days, spill), None, False,
                         DEFAULT_RETENTION_DAYS if days is None else days)
            ledger._spill = spill
            if ledger._held is not None:  # its memory limit bounds what it holds, too
                ledger._held.max_bytes = int(max(memory_mb or DEFAULT_MEMORY_MB, 1.0) * 2**20)
            return ledger
        if not read_only:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(f"{path}: cannot create the ledger's folder "
                                  f"({exc.strerror or exc})") from None
        elif not Path(path).is_file():
            raise LedgerError(f"{path}: no such ledger file")
        con = _connect(path, read_only, config)
        try:
            _check_or_create(con, path, read_only)
            ledger = cls(con, path, read_only)
            if retention_days is not None and not read_only:
                ledger.retention_days = float(retention_days)
                ledger._set_meta("retention_days", repr(float(retention_days)))
                ledger.prune()
        except BaseException:
            con.close()
            raise
        return ledger

    # ---- writing ----
    def append(self, batch: FlowBatch, provisional: bool = False) -> None:
        """Add the batch's bursts and flow rows, in one transaction (committed when this
        returns, so a killed process loses at most the batch in hand), or, after
        ``write_behind``, in large transactions by a thread of their own. ``provisional``: rows
        of flows still open when the run ended, replaced by a run that continues the capture."""
        self._writable()
        if self._writer is not None:
            self._writer.put(batch, provisional)
            return
        self._insert(self._tables(batch, provisional))

    def connect_ahead(self) -> None:
        """Set up an in-memory ledger created at its first use now, in a thread of its own
        (DuckDB lets go of the GIL while it sets up; about 60 ms), so it is ready when the
        rows that wait for it arrive; with write-behind, that thread is the writer's, which
        then also inserts the rows it holds (the rest of a large input's rows then wait for
        less at the end). A failure is raised where the ledger is next used. Nothing to set
        up for a ledger that holds its rows in memory (its writer still converts them)."""
        if self._writer is not None:
            self._writer.write_now()
        elif self._held is None and self._connection is None and self._connect is not None:
            threading.Thread(target=self._connect_quietly, name="burstwatch-ledger-open",
                             daemon=True).start()

    def _connect_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self._con  # noqa: B018 (the property connects)

    def write_behind(self, max_rows: int = 200_000) -> None:
        """Coalesce appends into transactions of about ``max_rows`` rows, written by a thread
        of their own while the caller goes on (a file scan, where each commit would cost more
        than the rows, and where nothing is lost that the next run would not redo). Every other
        call waits for the rows in hand first, so reads always see every append."""
        if self._writer is None:
            self._writer = _Writer(self, max_rows)

    def sync(self) -> None:
        """Wait until every append so far is in the database (a no-op without write-behind)."""
        if self._writer is not None:
            self._writer.sync()

    def _tables(self, batch: FlowBatch, provisional: bool) -> list[tuple[str, pa.Table]]:
        # pyarrow and the Public Suffix List are loaded here, with the first rows (in the
        # write-behind thread, while a scan reads its input), not when the ledger is opened.
        from burstwatch.ledger.columns import burst_table, flow_table

        if self._text is None:
            from burstwatch.ledger.party import TextCache

            heap.arrow_buffers_on_this_heap()  # before the first table
            self._text = TextCache()
        tables = [(BURSTS.name, burst_table(batch, self._text, provisional)),
                  (FLOWS.name, flow_table(batch, self._text, provisional))]
        return [(name, t) for name, t in tables if t.num_rows]

    def _insert(self, tables: list[tuple[str, pa.Table]]) -> None:
        if not tables:
            return
        latest = max(_max_end(t) for _, t in tables)
        if self._latest_ns is not None:
            latest = max(latest, self._latest_ns)
        due = self._next_prune_ns is None or latest >= self._next_prune_ns
        held = self._held
        if held is not None and held.takes(tables):
            held.add(tables)
            deleted = held.prune(_cutoff(latest, self.retention_days)) if due else 0
        else:
            with self._transaction():
                self._add(tables)
                deleted = self._prune(_cutoff(latest, self.retention_days)) if due else 0
        self.pruned += deleted
        self._latest_ns = latest
        if due:
            self._next_prune_ns = latest + PRUNE_EVERY_NS

    def _add(self, tables: list[tuple[str, pa.Table]]) -> None:
        """The inserts, inside the caller's transaction."""
        for name, table in tables:
            self._con.register("_batch", table)
            # A record already held (the same capture scanned again, or the same traffic
            # from a second sensor: flow ids are a hash of the 5-tuple and start time) is
            # not added twice; only rows that end after the batch's first start can match.
            # Provisional rows (flows a run leaves open) replace the same rows held, so the
            # run that continues those flows finds them provisional and drops them.
            since = int(table.column("start_ns").to_numpy().min())
            if table.column("provisional").to_numpy(zero_copy_only=False).any():
                self._con.execute(
                    f"DELETE FROM {name} t WHERE t.end_ns >= ? AND EXISTS ("
                    f"SELECT 1 FROM _batch b WHERE {_SAME[name]})", [since])
            self._con.execute(
                f"INSERT INTO {name} BY NAME SELECT b.* FROM _batch b WHERE NOT EXISTS ("
                f"SELECT 1 FROM {name} t WHERE t.end_ns >= ? AND {_SAME[name]})", [since])
            self._con.unregister("_batch")

    def prune(self, before_ns: int | None = None) -> int:
        """Delete bursts and flow rows that ended before ``before_ns``.

        Without it, before the retention period counted back from the ledger's clock. Returns
        the number of rows deleted (both tables).
        """
        self.sync()
        self._writable()
        cutoff = self.cutoff_for(self.retention_days) if before_ns is None else before_ns
        if cutoff is None:
            return 0
        with self._transaction():
            deleted = self._prune(cutoff)
        self.pruned += deleted
        if self._latest_ns is not None:
            self._next_prune_ns = self._latest_ns + PRUNE_EVERY_NS
        return deleted

    def pruned_note(self) -> str:
        """What retention deleted during this run, for a command's summary ('' if nothing)."""
        if not self.pruned or self.path is None:
            return ""
        return (f"ledger: retention ({self.retention_days:g} days) deleted {self.pruned:,} bursts "
                f"and flow rows older than that")

    def cutoff_for(self, days: float) -> int | None:
        """The time ``days`` before the ledger's clock (None while the ledger is empty)."""
        return None if self._latest_ns is None else _cutoff(self._latest_ns, days)

    def settle_provisional(self, keep: bool) -> int:
        """The rows a previous run wrote for flows it left open: dropped when this run
        continues those flows (``keep`` False), else kept as final. Returns how many."""
        self.sync()
        self._writable()
        count = 0
        with self._transaction():
            for name in (BURSTS.name, FLOWS.name):
                sql = (f"UPDATE {name} SET provisional = false WHERE provisional" if keep
                       else f"DELETE FROM {name} WHERE provisional")
                row = self._con.execute(sql).fetchone()
                count += int(row[0]) if row else 0
        if not keep:
            self._latest_ns = self._scalar(
                "SELECT max(t) FROM (SELECT max(end_ns) t FROM bursts UNION ALL "
                "SELECT max(end_ns) FROM flows)"
            )
        return count

    def put_state(self, name: str, payload: bytes) -> None:
        """Keep ``payload`` under ``name`` for the next run, replacing what was there."""
        self.sync()
        self._writable()
        with self._transaction():
            self._con.execute(f"INSERT OR REPLACE INTO {STATE.name} VALUES (?, ?, ?)",
                              [name, payload, time.time_ns()])

    def get_state(self, name: str) -> bytes | None:
        self.sync()
        row = self._con.execute(f"SELECT payload FROM {STATE.name} WHERE name = ?", [name]).fetchone()
        return None if row is None else bytes(row[0])

    # ---- reading ----
    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, for the queries in ``burstwatch.ledger.queries``."""
        self.sync()
        return self._con

    @property
    def latest_ns(self) -> int | None:
        """End of the newest record (None while empty): the ledger's clock."""
        self.sync()
        return self._latest_ns

    def meta(self, key: str) -> str | None:
        row = self._con.execute(f"SELECT value FROM {META.name} WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.stop()
        finally:
            self._writer = None
            self._held = None
            with self._connect_lock:  # after a connection being set up ahead, if one is
                self._connect = None
                con, self._connection = self._connection, None
            if con is not None:
                con.close()
            for folder in self._spill:
                shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- helpers ----
    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        con = self._connection
        if con is None:
            with self._connect_lock:
                if self._connection is None and self._connect is not None:
                    self._connection = self._connect()
                    self._move_held()
                con = self._connection
            if con is None:
                raise LedgerError("the ledger is closed")
        return con

    def _move_held(self) -> None:
        """The rows held in memory into the database just set up (as they were added: the
        same rows as if they had gone in at once), and no more holding."""
        held, self._held = self._held, None
        if held is None or not held.tables:
            return
        with self._transaction():
            for tables in held.tables:
                self._add(tables)
            if held.cutoff is not None:
                self._set_meta("pruned_before_ns", str(held.cutoff))

    def held_rows(self) -> tuple[pa.Table, pa.Table] | None:
        """The ``bursts`` and ``flows`` rows of a ledger holding them in memory (as the
        database would hold them: a row added again is there once), else None."""
        self.sync()
        if self._held is None:
            return None
        return self._held.rows()

    def _writable(self) -> None:
        if self.read_only:
            raise LedgerError(f"{self.path}: opened read-only")

    def _scalar(self, sql: str) -> int | None:
        row = self._con.execute(sql).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; a database error (a full disk, a damaged file) is a LedgerError."""
        try:
            self._con.begin()
            try:
                yield
            except BaseException:
                self._con.rollback()
                raise
            self._con.commit()
        except _duckdb().OutOfMemoryException:
            raise  # the configured memory limit: said with its remedy by the command
        except _duckdb().Error as exc:
            raise LedgerError(f"{self.path or 'ledger'}: cannot write: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None

    def _prune(self, cutoff: int) -> int:
        """The deletes, inside the caller's transaction."""
        deleted = 0
        for name in (BURSTS.name, FLOWS.name):
            row = self._con.execute(f"DELETE FROM {name} WHERE end_ns < ?", [cutoff]).fetchone()
            deleted += int(row[0]) if row else 0
        self._set_meta("pruned_before_ns", str(cutoff))
        return deleted

    def _set_meta(self, key: str, value: str) -> None:
        self._con.execute(f"INSERT OR REPLACE INTO {META.name} VALUES (?, ?)", [key, value])


def _same_sql(table: Table) -> str:
    """``SAME_RECORD`` as a join condition (``t`` held, ``b`` new); NULLs compare equal."""
    nullable = {c.name for c in table.columns if c.nullable}
    return " AND ".join(f"t.{c} IS NOT DISTINCT FROM b.{c}" if c in nullable else f"t.{c} = b.{c}"
                        for c in SAME_RECORD[table.name])


_SAME = {t.name: _same_sql(t) for t in (BURSTS, FLOWS)}


def _cutoff(latest_ns: int, days: float) -> int:
    """``days`` before the newest record, or before now if that record is in the future."""
    return min(latest_ns, time.time_ns()) - int(days * NS_PER_DAY)


def _max_end(table: pa.Table) -> int:
    return int(table.column("end_ns").to_numpy().max())


def _arrow() -> ModuleType:
    """pyarrow, loaded by the first rows (``Ledger._tables``) rather than with this module."""
    import pyarrow

    return pyarrow


def _duckdb() -> ModuleType:
    """DuckDB, imported when a ledger is first connected, not with this module: a scan's
    in-memory ledger holds its rows without a database and never pays its 70-110 ms."""
    import duckdb

    return duckdb


def _connect(path: str, read_only: bool, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """Connect, turning DuckDB's errors into messages about the ledger."""
    duckdb = _duckdb()
    try:
        return duckdb.connect(path, read_only=read_only, config=config)
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            m = _LOCK_PID.search(text)
            who = f" (pid {m.group(1)})" if m else ""
            raise LedgerError(f"{path} is in use by another burstwatch process{who}") from None
        if "not a valid DuckDB database" in text:
            raise LedgerError(f"{path} is not a burstwatch ledger (not a DuckDB database)") from None
        first = text.splitlines()[0] if text else type(exc).__name__
        raise LedgerError(f"{path}: cannot open the ledger: {first}") from None


def _new_in_memory(config: dict[str, Any], retention_days: float | None,
                   spill: list[str]) -> duckdb.DuckDBPyConnection:
    """A new in-memory ledger's connection, its tables created and its retention recorded
    (where one was given). What exceeds its memory limit goes to a folder of its own in the
    system's temporary folder (appended to ``spill``, removed at close), not to DuckDB's
    default, ``.tmp`` in the working folder."""
    try:
        folder = tempfile.mkdtemp(prefix="burstwatch-ledger-")
        spill.append(folder)
    except OSError:
        folder = ""  # no temporary folder to write: past its limit the ledger says so instead
    con = _duckdb().connect(":memory:", config={**config, "temp_directory": folder})
    # Its tables in an in-memory database that compresses them as a file does, at the
    # checkpoints DuckDB makes once enough is written: the 5 M-packet capture's rows take
    # 9 MiB instead of 34, and the scan's peak of memory, often the conversation query, is
    # 9-13 MiB lower (docs/benchmarks.md).
    con.execute("ATTACH ':memory:' AS ledger (COMPRESS)")
    con.execute("USE ledger")
    _check_or_create(con, ":memory:", False)
    if retention_days is not None:
        con.execute(f"INSERT OR REPLACE INTO {META.name} VALUES (?, ?)",
                    ["retention_days", repr(retention_days)])
    return con


def _check_or_create(con: duckdb.DuckDBPyConnection, where: str, read_only: bool) -> None:
    """Create the tables in a new file; refuse a foreign database or a newer schema."""
    tables = {str(r[0]) for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()}
    if not tables:
        if read_only:
            raise LedgerError(f"{where} is an empty database, not a burstwatch ledger")
        con.begin()
        for table in TABLES:
            for stmt in table.ddl(documented=where != ":memory:"):
                con.execute(stmt)
        con.execute(f"INSERT INTO {META.name} VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        con.commit()
        return
    if META.name not in tables:
        raise LedgerError(f"{where} is a DuckDB database but not a burstwatch ledger")
    row = con.execute(f"SELECT value FROM {META.name} WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row and str(row[0]).isdigit() else 0
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{where} was written by a newer burstwatch (ledger schema {version}; "
            f"this version reads up to {SCHEMA_VERSION})"
        )
    missing = {t.name for t in TABLES} - tables
    if version < 1 or missing:
        raise LedgerError(f"{where} is a damaged burstwatch ledger (missing {sorted(missing)})")


# An in-memory ledger holds up to this many rows as Arrow tables (about 180 bytes a row,
# their text as dictionaries: 13 MiB for the 5 M-packet capture's 73 k rows, 70 MiB at the
# limit); past it, its database takes them, which compresses them and spills past its
# memory limit.
HOLD_ROWS = 400_000


class _Held:
    """The rows of an in-memory ledger that has no database yet: each append's tables, in
    order; retention applied to them as the database would (``prune``)."""

    def __init__(self) -> None:
        self.tables: list[list[tuple[str, pa.Table]]] = []
        self.count = 0
        self.bytes = 0
        self.max_bytes = int(DEFAULT_MEMORY_MB * 2**20)
        self.cutoff: int | None = None  # the last prune's

    def takes(self, tables: list[tuple[str, pa.Table]]) -> bool:
        """Whether these can be held: not past ``HOLD_ROWS`` nor the ledger's memory limit,
        and no provisional rows (which replace rows held, a run with a ledger file's
        business)."""
        return (self.count + sum(t.num_rows for _, t in tables) <= HOLD_ROWS
                and self.bytes + sum(t.nbytes for _, t in tables) <= self.max_bytes
                and not any(t.column("provisional").to_numpy(zero_copy_only=False).any()
                            for _, t in tables))

    def add(self, tables: list[tuple[str, pa.Table]]) -> None:
        self.tables.append(tables)
        self.count += sum(t.num_rows for _, t in tables)
        self.bytes += sum(t.nbytes for _, t in tables)

    def prune(self, cutoff: int) -> int:
        """Drop the rows that ended before ``cutoff``; how many."""
        self.cutoff = cutoff
        if not any((t.column("end_ns").to_numpy() < cutoff).any()
                   for tables in self.tables for _, t in tables):
            return 0
        # A repeat of a row pruned now was never added (the database checks on insert).
        self.tables = [[(s.name, t) for s, t in zip((BURSTS, FLOWS), self.rows(), strict=True)]]
        self.count = sum(t.num_rows for _, t in self.tables[0])
        deleted = 0
        for tables in self.tables:
            for i, (name, table) in enumerate(tables):
                end = table.column("end_ns").to_numpy()
                if (end < cutoff).any():
                    deleted += int((end < cutoff).sum())
                    tables[i] = (name, table.filter(_arrow().array(end >= cutoff)))
        self.count -= deleted
        return deleted

    def rows(self) -> tuple[pa.Table, pa.Table]:
        from burstwatch.ledger.columnar import without_repeats

        out = []
        for schema in (BURSTS, FLOWS):
            parts = [t for tables in self.tables for name, t in tables if name == schema.name]
            out.append(without_repeats(parts, schema))
        return out[0], out[1]


class _WriteNow:
    """The writer's cue: connect if need be, and insert what is held now."""


_WRITE_NOW = _WriteNow()


class _Writer:
    """The write-behind thread: batches in, converted and inserted in large transactions."""

    def __init__(self, ledger: Ledger, max_rows: int) -> None:
        self._ledger = ledger
        self._max_rows = max_rows
        self._queue: queue.Queue[tuple[FlowBatch, bool] | threading.Event | _WriteNow | None] = (
            queue.Queue(maxsize=64))
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="burstwatch-ledger", daemon=True)
        self._thread.start()

    def put(self, batch: FlowBatch, provisional: bool) -> None:
        self._raise()
        self._queue.put((batch, provisional))

    def write_now(self) -> None:
        """Insert the rows held so far without waiting for them (connecting if need be)."""
        self._raise()
        self._queue.put(_WRITE_NOW)

    def sync(self) -> None:
        done = threading.Event()
        self._queue.put(done)
        done.wait()
        self._raise()

    def stop(self) -> None:
        self.sync()
        self._queue.put(None)
        self._thread.join()

    def _raise(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            if isinstance(failure, LedgerError | _duckdb().OutOfMemoryException):
                raise failure
            raise LedgerError(f"{self._ledger.path or 'ledger'}: cannot write: {failure}") from failure

    def _run(self) -> None:
        priority.behind()
        pending: dict[str, list[pa.Table]] = {}
        rows = 0
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if isinstance(item, _WriteNow) and self._ledger._held is None:
                    self._ledger._con  # noqa: B018 (the property connects)
                if isinstance(item, threading.Event | _WriteNow):
                    self._write(pending)
                    pending, rows = {}, 0
                    if isinstance(item, threading.Event):
                        item.set()
                    continue
                for name, table in self._ledger._tables(*item):
                    pending.setdefault(name, []).append(table)
                    rows += table.num_rows
                if rows >= self._max_rows:
                    self._write(pending)
                    pending, rows = {}, 0
            except BaseException as exc:  # handed to the caller at its next call
                self._failure = exc
                pending, rows = {}, 0
                if isinstance(item, threading.Event):
                    item.set()

    def _write(self, pending: dict[str, list[pa.Table]]) -> None:
        if pending:
            self._ledger._insert([(name, _arrow().concat_tables(parts, promote_options="default"))
                                  for name, parts in pending.items()])
