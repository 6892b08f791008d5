"""The burst ledger: appends, the conversation query, retention, locking, state, export."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.dataset as ds
import pytest

from burstwatch.conversations.model import ConversationBursts, Conversations
from burstwatch.errors import LedgerError
from burstwatch.ledger import Ledger, conversations, export_parquet, summary
from burstwatch.ledger.party import TextCache, registrable_domain
from burstwatch.netaddr import parse_addresses
from tests.ledgercraft import (
    CURRENT,
    DAY,
    HISTORY,
    NL,
    A,
    B,
    Burst,
    Row,
    S,
    T,
    batch,
    context,
)

REPO = Path(__file__).resolve().parent.parent

CONVERSATIONS = {
    "local_ip": [A, A, B],
    "party": ["198.51.100.0/24", "example.co.uk", "2001:db8:1::/48"],
    "party_kind": ["net", "domain", "net"],
    # the address of most bytes: flow 3 (1,003,000) over flow 4 (50,000 by its burst), flow 1
    # (3,020,000) over flow 2 (510,000), flow 5 (200,100) over flow 6 (3,000)
    "remote_ip": ["198.51.100.7", "203.0.113.10", "2001:db8:1:2::1"],
    "remote_ips": [2, 2, 2],
    # flow 3 (udp 8443, 1,003,000 bytes) outweighs flow 4 (tcp 443, 50,000)
    "remote_port": [8443, 443, 443],
    "transport": ["udp", "tcp", "tcp"],
    "remote_country": ["RU", "NL", ""],
    "remote_asn": [64501, 64500, 0],
    "remote_org": ["Example RU", "Example NL", ""],
    # flow 3 (entropy, 1,003,000 bytes) outweighs flow 4 (tls, 50,000)
    "encryption": ["entropy", "tls", "tls"],
    "server_name": ["", "upload.files.example.co.uk", "2001:db8:1:2::1"],
    "connections": [2, 2, 2],
    # flow 3 by its two windows (not again by its whole-flow row), flow 4 by its burst
    "bytes_up": [1_000_000 + 50_000, 3_000_000 + 500_000, 200_000 + 1_000],
    "bytes_down": [3_000, 20_000 + 10_000, 100 + 2_000],
    "first_seen_ns": [T + 1000 * S, T + 10 * S, T + 3000 * S],
    "last_seen_ns": [T + 2501 * S, T + 300 * S, T + 3300 * S],
    "party_first_seen_ns": [T + 1000 * S, T - 10 * DAY, T + 3000 * S],
    "asn_first_seen_ns": [T + 1000 * S, T - 10 * DAY, -1],
    "country_first_seen_ns": [T + 1000 * S, T - 10 * DAY, -1],
    "host_first_seen_ns": [T - 10 * DAY, T - 10 * DAY, T + 3000 * S],
    # A: the HISTORY upload, 1 MB in 0.1 s; B: 150 kB in 0.5 s
    "host_peak_up_rate": [10_000_000.0, 10_000_000.0, 300_000.0],
    "horizon_start_ns": [T + 3300 * S - DAY] * 3,
    "horizon_end_ns": [T + 3300 * S] * 3,
}

BURSTS = {
    "conversation": [0, 0, 1, 1, 1, 2],
    "direction": [0, 0, 0, 0, 1, 0],
    "start_ns": [T + 1700 * S, T + 2500 * S, T + 20 * S, T + 60 * S, T + 210 * S, T + 3010 * S],
    "end_ns": [T + 1701 * S, T + 2501 * S, T + 21 * S, T + 60 * S + S // 2, T + 211 * S,
               T + 3010 * S + S // 2],
    "bytes": [500_000, 50_000, 1_000_000, 2_000_000, 8_000, 150_000],
    "packets": [350, 40, 700, 1400, 6, 100],
    "flow_id": [3, 4, 1, 1, 2, 5],
    "remote_ip": ["198.51.100.7", "198.51.100.99", "203.0.113.10", "203.0.113.10",
                  "203.0.113.20", "2001:db8:1:2::1"],
}


def as_lists(obj: Conversations | ConversationBursts) -> dict[str, list[object]]:
    return {name: getattr(obj, name).tolist() for name in obj.__dataclass_fields__}


def filled(path: Path | None = None, retention_days: float = 30.0) -> Ledger:
    ledger = Ledger.open(None if path is None else str(path), retention_days)
    ledger.append(HISTORY)
    ledger.append(CURRENT)
    return ledger


def test_conversations_exact() -> None:
    with filled() as ledger:
        conv, bursts = conversations(ledger)
    assert as_lists(conv) == CONVERSATIONS
    assert as_lists(bursts) == BURSTS
    assert conv.remote_ips.dtype == np.int64 and conv.host_peak_up_rate.dtype == np.float64
    assert bursts.direction.dtype == np.int8 and bursts.remote_ip.dtype == object


def test_the_conversation_query_runs_on_one_thread_and_puts_the_setting_back(
        tmp_path: Path) -> None:
    with filled() as ledger:
        con = ledger.connection
        con.execute("SET threads = 3")
        seen: list[str] = []
        real = con.execute

        class Watch:  # every statement the query runs, with the thread setting it ran under
            def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
                seen.append(str(real("SELECT current_setting('threads')").fetchone()[0]))
                return real(sql, *args)

        class Held:  # a ledger with a database (none holding rows in memory)
            connection = Watch()
            latest_ns = ledger.latest_ns

            @staticmethod
            def held_rows() -> None:
                return None

        conv, _ = conversations(Held())  # type: ignore[arg-type]
        assert as_lists(conv) == CONVERSATIONS
        assert seen[0] == "3" and set(seen[2:]) == {"1"}
        assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 3
        path = tmp_path / "ledger.duckdb"
        with Ledger.open(str(path)) as written:
            written.append(HISTORY)
            written.append(CURRENT)
    with Ledger.open(str(path), read_only=True) as reader:  # a setting, not a write
        assert as_lists(conversations(reader)[0]) == CONVERSATIONS


@pytest.mark.parametrize("large", [False, True])
def test_on_a_large_ledger_the_query_hands_memory_back_and_puts_the_settings_back(
        monkeypatch: pytest.MonkeyPatch, large: bool) -> None:
    """From ``HAND_BACK_FROM_ROWS`` rows on, DuckDB's allocator returns what each task frees
    while the query runs; below, the query runs under the settings as they were. Either way
    the answer is the same and the settings are restored."""
    from burstwatch.ledger import queries

    with filled() as ledger:
        held = ledger.connection.execute(
            "SELECT (SELECT count(*) FROM bursts) + (SELECT count(*) FROM flows)").fetchone()[0]
        monkeypatch.setattr(queries, "HAND_BACK_FROM_ROWS", held if large else held + 1)
        con = ledger.connection
        seen: list[str] = []
        real = con.execute

        class Watch:  # the flush threshold each CREATE/SELECT of the query ran under
            def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
                if sql.lstrip().startswith(("CREATE", "WITH")):
                    seen.append(str(real(
                        "SELECT current_setting('allocator_flush_threshold')").fetchone()[0]))
                return real(sql, *args)

        class Held:  # a ledger with a database (none holding rows in memory)
            connection = Watch()
            latest_ns = ledger.latest_ns

            @staticmethod
            def held_rows() -> None:
                return None

        before = con.execute("SELECT current_setting('allocator_flush_threshold'), "
                             "current_setting('allocator_bulk_deallocation_flush_threshold')").fetchone()
        conv, _ = conversations(Held())  # type: ignore[arg-type]
        assert as_lists(conv) == CONVERSATIONS
        assert len(seen) == 5
        assert set(seen) == ({"1MiB"} if large else {before[0]})
        assert con.execute("SELECT current_setting('allocator_flush_threshold'), "
                           "current_setting('allocator_bulk_deallocation_flush_threshold')"
                           ).fetchone() == before


def test_a_conversation_without_bursts_is_addressed_by_its_flows_bytes() -> None:
    """Its record's destination.ip is the remote address carrying the most bytes of its flows
    (ties: the smallest); one with bursts keeps the address of its most upload bytes."""
    from burstwatch.conversations.records import main_remote_ip

    quiet = batch([Row(7, A, "192.0.2.9", T, T + 10 * S, up=100, down=900),
                   Row(8, A, "192.0.2.77", T, T + 20 * S, up=2_000, down=0),
                   Row(9, A, "192.0.2.200", T, T + 30 * S, up=1_000, down=1_000),
                   Row(10, B, "2001:db8:5::9", T, T + 10 * S, up=5, down=5),
                   Row(11, B, "2001:db8:5::10", T, T + 10 * S, up=5, down=5)], [])
    with Ledger.open(None) as ledger:
        ledger.append(CURRENT)
        ledger.append(quiet)
        conv, bursts = conversations(ledger)
    by_party = dict(zip(conv.party.tolist(), main_remote_ip(conv, bursts), strict=True))
    # 2,000 bytes each to .77 and .200 (and 1,000 to .9): the smaller text of the two
    assert by_party["192.0.2.0/24"] == "192.0.2.200"
    assert by_party["2001:db8:5::/48"] == "2001:db8:5::10"  # a tie of 10 bytes each
    # with bursts, the address of the most upload bytes
    assert by_party["198.51.100.0/24"] == "198.51.100.7"
    assert by_party["example.co.uk"] == "203.0.113.10"


def test_conversations_of_a_past_horizon() -> None:
    # Ending in [T+800 s, T+1800 s]: flow 3's first window and its burst, nothing else.
    with filled() as ledger:
        conv, bursts = conversations(ledger, horizon_ns=1000 * S, now_ns=T + 1800 * S)
    assert conv.party.tolist() == ["198.51.100.0/24"]
    assert (conv.connections.tolist(), conv.bytes_up.tolist(), conv.bytes_down.tolist()) == (
        [1], [400_000], [1_000])
    assert (conv.first_seen_ns.tolist(), conv.last_seen_ns.tolist()) == (
        [T + 1000 * S], [T + 1701 * S])
    assert conv.host_peak_up_rate.tolist() == [10_000_000.0]
    assert bursts.flow_id.tolist() == [3] and bursts.conversation.tolist() == [0]


def test_bursts_keep_their_own_columns_and_borrow_from_the_flow() -> None:
    with filled() as ledger:
        rows = ledger.connection.execute(
            "SELECT flow_id, sni, verdict, remote_net, rate FROM bursts "
            "WHERE flow_id = 1 ORDER BY start_ns"
        ).fetchall()
    # stored as they came (unknown), the query takes the flow row's server name and verdict
    assert rows == [(1, None, None, "203.0.113.0/24", 1_000_000.0),
                    (1, None, None, "203.0.113.0/24", 4_000_000.0)]


def test_live_snapshots_of_a_window_count_once() -> None:
    snap = [Row(9, A, "192.0.2.1", T, T + 10 * S, up=100, kind=1, window=0),
            Row(9, A, "192.0.2.1", T, T + 20 * S, up=250, kind=1, window=0)]
    with Ledger.open(None) as ledger:
        ledger.append(batch(snap, []))
        conv, _ = conversations(ledger)
    assert (conv.bytes_up.tolist(), conv.connections.tolist()) == ([250], [1])


def test_empty_ledger() -> None:
    with Ledger.open(None) as ledger:
        conv, bursts = conversations(ledger)
        ledger.append(batch([], []))
        assert ledger.latest_ns is None
    assert len(conv) == 0 and len(bursts) == 0
    assert as_lists(conv) == {name: [] for name in CONVERSATIONS}


def test_party_rules() -> None:
    assert registrable_domain("upload.files.example.co.uk") == "example.co.uk"
    assert registrable_domain("WWW.Example.COM.") == "example.com"
    assert registrable_domain("bucket.s3.amazonaws.com") == "bucket.s3.amazonaws.com"
    assert registrable_domain("localhost") == "localhost"
    assert registrable_domain("192.0.2.7") is None
    assert registrable_domain("2001:db8::1") is None
    assert registrable_domain("") is None
    hi, lo = parse_addresses(["192.0.2.77", "192.0.2.1", "2001:db8:1:abcd::9", "2001:db8:2::1"])
    assert TextCache().networks(hi, lo).to_pylist() == [
        "192.0.2.0/24", "192.0.2.0/24", "2001:db8:1::/48", "2001:db8:2::/48"]


def test_retention_prunes_old_rows_only(tmp_path: Path) -> None:
    # 5 days: HISTORY (10 days before CURRENT) goes when CURRENT arrives; CURRENT stays whole
    with filled(tmp_path / "l.duckdb", retention_days=5) as ledger:
        s = summary(ledger)
        conv, _ = conversations(ledger)
    assert (s.bursts, s.flow_rows) == (6, 7)
    assert s.first_ns == T + 10 * S
    assert conv.party_first_seen_ns.tolist()[1] == T + 10 * S  # history is gone


def test_prune_boundary_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "l.duckdb"
    with filled(path) as ledger:
        # HISTORY's flow row and burst go; flow 1's first burst ends at T+21 s exactly: kept
        assert ledger.prune(T + 21 * S) == 2
        assert summary(ledger).bursts == 6
    with Ledger.open(str(path)) as ledger:  # reopened: history kept, pruned rows stay gone
        s = summary(ledger)
        assert (s.bursts, s.flow_rows, s.hosts, s.conversations) == (6, 7, 2, 3)
        assert s.first_ns == T + 10 * S and s.retention_days == 30.0


def test_reopen_keeps_history_for_novelty(tmp_path: Path) -> None:
    path = str(tmp_path / "l.duckdb")
    with Ledger.open(path) as ledger:
        ledger.append(HISTORY)
    with Ledger.open(path) as ledger:
        ledger.append(CURRENT)
    with Ledger.open(path, read_only=True) as ledger:
        conv, bursts = conversations(ledger)
    assert as_lists(conv) == CONVERSATIONS
    assert as_lists(bursts) == BURSTS


def test_retention_at_open_counts_back_from_the_newest_record(tmp_path: Path) -> None:
    path = str(tmp_path / "l.duckdb")
    filled(path).close()
    with Ledger.open(path, retention_days=1) as ledger:  # years old, but recent to the data
        s = summary(ledger)
    assert (s.bursts, s.flow_rows, s.pruned_before_ns) == (6, 7, T + 3300 * S - DAY)


def _open_elsewhere(path: str, *extra: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        "from burstwatch.ledger import Ledger, LedgerError\n"
        "try:\n"
        "    Ledger.open(sys.argv[1], read_only=sys.argv[2] == 'ro').close()\n"
        "except LedgerError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(2)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code, path, *extra], capture_output=True,
                          text=True, env=env, timeout=120)


def test_second_writer_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "l.duckdb")
    with filled(path):
        for mode in ("rw", "ro"):
            done = _open_elsewhere(path, mode)
            assert done.returncode == 2, done.stderr
            assert done.stdout.strip() == (
                f"{path} is in use by another burstwatch process (pid {os.getpid()})")
    with Ledger.open(path, read_only=True) as ledger:  # the file is intact
        assert summary(ledger).bursts == 7


def test_killed_writer_loses_only_the_open_transaction(tmp_path: Path) -> None:
    path = str(tmp_path / "l.duckdb")
    code = (
        "import os, signal, sys\n"
        "from burstwatch.ledger import Ledger\n"
        "from burstwatch.ledger.columns import burst_table\n"
        "from burstwatch.ledger.party import TextCache\n"
        "from tests.ledgercraft import CURRENT, HISTORY\n"
        "ledger = Ledger.open(sys.argv[1])\n"
        "ledger.append(HISTORY)\n"
        "con = ledger.connection\n"
        "con.begin()\n"
        "con.register('b', burst_table(CURRENT, TextCache()))\n"
        "con.execute('INSERT INTO bursts BY NAME SELECT * FROM b')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == -9, done.stderr
    with Ledger.open(path) as ledger:
        s = summary(ledger)
    assert (s.bursts, s.flow_rows) == (1, 1)


def test_not_a_ledger(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 500)
    with pytest.raises(LedgerError, match="is not a burstwatch ledger"):
        Ledger.open(str(text))
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(LedgerError, match="a DuckDB database but not a burstwatch ledger"):
        Ledger.open(str(other))
    with pytest.raises(LedgerError, match="no such ledger file"):
        Ledger.open(str(tmp_path / "missing.duckdb"), read_only=True)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "l.duckdb")
    filled(path).close()
    con = duckdb.connect(path)
    con.execute("UPDATE ledger_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(LedgerError, match=r"newer burstwatch \(ledger schema 99; this version reads up to 1\)"):
        Ledger.open(path)


def test_read_only_refuses_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "l.duckdb")
    filled(path).close()
    with Ledger.open(path, read_only=True) as ledger, pytest.raises(LedgerError, match="read-only"):
        ledger.append(CURRENT)


def test_carried_state_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "l.duckdb")
    blob = bytes(range(256)) * 3
    with Ledger.open(path) as ledger:
        assert ledger.get_state("flows") is None
        ledger.put_state("flows", b"first")
        ledger.put_state("flows", blob)
        ledger.put_state("empty", b"")
    with Ledger.open(path) as ledger:
        assert ledger.get_state("flows") == blob
        assert ledger.get_state("empty") == b""
        assert summary(ledger).state == {"empty": 0, "flows": 768}


def test_export_by_day(tmp_path: Path) -> None:
    with filled() as ledger:
        counts = export_parquet(ledger, str(tmp_path / "out"))
        with pytest.raises(LedgerError, match="already exists and is not empty"):
            export_parquet(ledger, str(tmp_path / "out"))
    assert counts == {"bursts": 7, "flows": 8}
    for name, by_day in (("bursts", {"2023-11-04": 1, "2023-11-14": 6}),
                         ("flows", {"2023-11-04": 1, "2023-11-14": 7})):
        root = tmp_path / "out" / name
        assert sorted(p.name for p in root.iterdir()) == [f"day={d}" for d in sorted(by_day)]
        table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
        days = [str(d) for d in table.column("day").to_pylist()]
        assert {d: days.count(d) for d in set(days)} == by_day
    bursts = ds.dataset(tmp_path / "out" / "bursts", partitioning="hive").to_table()
    assert sorted(bursts.column("remote_ip").to_pylist())[:2] == ["198.51.100.7", "198.51.100.99"]


def test_bursts_table_columns() -> None:
    b = batch([], [Burst(7, B, "2001:db8:9::1", 0, T, T + S, 4_000, 3, lport=1234, rport=8443)],
              burst_extra=context(("quic", "x.example.org", "q13d", *NL)), source="eth0")
    with Ledger.open(None) as ledger:
        ledger.append(b)
        row = ledger.connection.execute("SELECT * FROM bursts").fetchall()
    assert row == [(T, T + S, B, 1234, "2001:db8:9::1", 8443, "2001:db8:9::/48", "tcp", 0, 4_000,
                    3, 4_000.0, 7, "quic", "x.example.org", "example.org", "q13d", "NL", 64500,
                    "Example NL", "eth0", False)]


def test_a_ledger_file_carries_its_columns_docs_and_one_in_memory_does_not(tmp_path: Path) -> None:
    from burstwatch.ledger.schema import BURSTS, TABLES

    def comments(ledger: Ledger) -> dict[tuple[str, str], str | None]:
        return {(str(t), str(c)): doc for t, c, doc in ledger.connection.execute(
            "SELECT table_name, column_name, comment FROM duckdb_columns() "
            "WHERE database_name = current_database()").fetchall()}

    with Ledger.open(str(tmp_path / "l.duckdb")) as ledger:
        on_file = comments(ledger)
        table_doc = ledger.connection.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = ?", [BURSTS.name]).fetchone()
    assert on_file == {(t.name, c.name): c.doc for t in TABLES for c in t.columns}
    assert table_doc == (BURSTS.doc,)
    with Ledger.open(None) as ledger:
        in_memory = comments(ledger)
    assert set(in_memory) == set(on_file) and set(in_memory.values()) == {None}


def test_provisional_rows_are_dropped_or_kept_when_settled() -> None:
    """Rows written for flows a run left open: a run that continues those flows drops them
    (its own rows replace them); a run over an older capture keeps them as final."""
    done = batch([], [Burst(1, A, "198.51.100.7", 0, T, T + S, 40_000)])
    still_open = batch([], [Burst(2, A, "198.51.100.8", 0, T + 5 * S, T + 6 * S, 50_000)])
    with Ledger.open(None) as ledger:
        ledger.append(done)
        ledger.append(still_open, provisional=True)
        assert ledger.latest_ns == T + 6 * S
        assert ledger.settle_provisional(keep=False) == 1
        assert ledger.connection.execute("SELECT flow_id FROM bursts").fetchall() == [(1,)]
        assert ledger.latest_ns == T + S  # the clock goes back with the dropped rows
        ledger.append(still_open, provisional=True)
        assert ledger.settle_provisional(keep=True) == 1
        rows = ledger.connection.execute(
            "SELECT flow_id, provisional FROM bursts ORDER BY flow_id").fetchall()
    assert rows == [(1, False), (2, False)]


def test_an_in_memory_ledger_keeps_its_rows_compressed() -> None:
    """A scan's in-memory ledger is a compressed in-memory database: at a checkpoint (which
    DuckDB makes by itself once enough has been written, as on the 5 M-packet capture) its
    rows are stored compressed, as in a file, and every row reads back."""
    rows = [Row(k, A, f"198.51.{k % 200}.7", T + k * S, T + k * S + S, up=k, down=2 * k)
            for k in range(1, 130_001)]
    with Ledger.open(None) as ledger:
        con = ledger.connection
        assert con.execute("SELECT options['compress'] FROM duckdb_databases() "
                           "WHERE database_name = current_database()").fetchone() == ("true",)
        ledger.append(batch(rows, []))
        con.execute("CHECKPOINT")
        kinds = {r[0] for r in con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('flows')").fetchall()}
        assert kinds - {"Uncompressed", "Constant", "Empty Validity"}  # some real compression
        assert con.execute("SELECT count(*), sum(bytes_up) FROM flows").fetchone() == (
            130_000, sum(range(1, 130_001)))


def test_write_behind_gives_the_same_ledger_and_reports_failures(tmp_path: Path) -> None:
    """Coalesced appends by a thread of their own: every read sees every append, the content
    equals direct appends, and a failure in the thread is the caller's LedgerError."""
    batches = [batch([], [Burst(k, A, "198.51.100.7", 0, T + k * S, T + k * S + S, 20_000 + k)])
               for k in range(1, 40)]
    with Ledger.open(None) as direct, Ledger.open(None) as behind:
        behind.write_behind(max_rows=7)
        for b in batches:
            direct.append(b)
            behind.append(b)
        query = "SELECT flow_id, bytes FROM bursts ORDER BY flow_id"
        assert behind.connection.execute(query).fetchall() == direct.connection.execute(query).fetchall()
        assert behind.latest_ns == direct.latest_ns == T + 40 * S
    path = tmp_path / "l.duckdb"
    ledger = Ledger.open(str(path))
    ledger.write_behind()
    ledger.connection.execute("DROP TABLE bursts")  # the next insert fails in the thread
    ledger.append(batches[0])
    with pytest.raises(LedgerError, match="cannot write"):
        ledger.sync()
    ledger.close()


def test_connecting_ahead_with_write_behind_connects_and_inserts_what_is_held(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the input is read (``connect_ahead``), the writer connects a ledger created at
    its first use and inserts the rows it holds, without waiting for a reader's sync; rows
    appended later still reach the database by the next read. (An in-memory ledger holding
    no rows in memory: one past ``HOLD_ROWS``.)"""
    from burstwatch.ledger import store

    monkeypatch.setattr(store, "HOLD_ROWS", 0)
    inserted = threading.Event()
    write = store._Writer._write

    def noting_write(self: store._Writer, pending: dict[str, list[object]]) -> None:
        write(self, pending)  # type: ignore[arg-type]
        if pending:
            inserted.set()

    monkeypatch.setattr(store._Writer, "_write", noting_write)
    early = batch([], [Burst(1, A, "198.51.100.7", 0, T, T + S, 20_000)])
    late = batch([], [Burst(2, A, "198.51.100.7", 0, T + 2 * S, T + 3 * S, 30_000)])
    with Ledger.open(None) as ledger:
        ledger.write_behind()  # holds up to 200,000 rows before it writes on its own
        ledger.append(early)
        assert ledger._connection is None
        ledger.connect_ahead()
        assert inserted.wait(timeout=120)  # no read has asked for the rows
        assert ledger._connection is not None
        ledger.append(late)
        rows = ledger.connection.execute("SELECT flow_id FROM bursts ORDER BY 1").fetchall()
    assert rows == [(1,), (2,)]


def test_a_judge_may_ask_only_for_conversations_that_can_make_a_case() -> None:
    """bursty_only: conversations with a burst in the horizon, plus those holding a flagged
    flow; a conversation of flow rows alone is left out unless one of its flows is flagged."""
    quiet = batch([Row(9, A, "203.0.113.9", T, T + S, up=500, down=900)], [])
    bursty = batch([Row(10, A, "198.51.100.7", T, T + 2 * S, up=60_000, down=100)],
                   [Burst(10, A, "198.51.100.7", 0, T, T + S, 60_000)])
    with Ledger.open(None) as ledger:
        ledger.append(quiet)
        ledger.append(bursty)
        every, _ = conversations(ledger)
        judged, _ = conversations(ledger, bursty_only=True)
        flagged, _ = conversations(ledger, bursty_only=True, flagged=[9])
    assert every.party.tolist() == ["198.51.100.0/24", "203.0.113.0/24"]
    assert judged.party.tolist() == ["198.51.100.0/24"]
    assert flagged.party.tolist() == ["198.51.100.0/24", "203.0.113.0/24"]


def test_the_same_records_appended_twice_are_held_once() -> None:
    """Scanning a capture again (a cron that re-runs, a second sensor on the same link) adds
    nothing: bursts and flow rows are recognised by flow id, direction or kind, and time."""
    first = batch([Row(1, A, "198.51.100.7", T, T + 2 * S, up=60_000, down=100)],
                  [Burst(1, A, "198.51.100.7", 0, T, T + S, 60_000)])
    more = batch([Row(2, A, "198.51.100.8", T + 5 * S, T + 6 * S, up=70_000, down=100)],
                 [Burst(2, A, "198.51.100.8", 0, T + 5 * S, T + 6 * S, 70_000),
                  Burst(1, A, "198.51.100.7", 1, T, T + S, 20_000)])  # same flow, other direction
    with Ledger.open(None) as ledger:
        ledger.append(first)
        ledger.append(first)
        ledger.append(more)
        ledger.append(more)
        bursts = ledger.connection.execute(
            "SELECT flow_id, direction FROM bursts ORDER BY flow_id, direction").fetchall()
        flows = ledger.connection.execute("SELECT flow_id FROM flows ORDER BY flow_id").fetchall()
    assert bursts == [(1, 0), (1, 1), (2, 0)]
    assert flows == [(1,), (2,)]


def test_the_public_suffix_list_holds_the_librarys_own_rules() -> None:
    """``party._psl`` encodes only the non-ASCII rules itself; the rules it ends up with are
    those publicsuffixlist makes when it encodes every one (the library is the oracle)."""
    from publicsuffixlist import PublicSuffixList

    from burstwatch.ledger import party

    ours, theirs = party._psl(), PublicSuffixList()
    assert ours._publicsuffix == theirs._publicsuffix and ours._maxlabel == theirs._maxlabel
    assert any(not rule.isascii() for rule in ours._publicsuffix)  # IDN rules are there
    assert "xn--55qx5d.cn" in ours._publicsuffix  # and their punycode forms (公司.cn)
    for name in ("upload.files.example.co.uk", "a.b.公司.cn", "x.xn--55qx5d.cn", "localhost"):
        assert ours.privatesuffix(name) == theirs.privatesuffix(name)


def test_names_without_punycode_get_the_librarys_answers_from_the_list_as_written() -> None:
    """A name without an "xn--" label is looked up in the list without punycode forms; for
    a name under every rule (as written and encoded, exceptions and wildcards included) the
    answer is the library's own, with its every rule encoded."""
    from publicsuffixlist import PublicSuffixList

    from burstwatch.ledger import party

    theirs = PublicSuffixList()
    rules = [r.lstrip("!").replace("*", "w") for r in theirs._publicsuffix]
    names = [f"{prefix}{rule}" for rule in rules for prefix in ("", "a.", "b.a.")]
    names += ["a.b.公司.cn", "x.xn--55qx5d.cn", "XN--55QX5D.cn", "a.b.c.example.invalid", "cn"]
    assert len(names) > 20_000
    assert [party.registrable_domain(n) for n in names] == [
        theirs.privatesuffix(n.lower()) or n.lower() for n in names]
    assert party._psl(punycode=False)._publicsuffix < party._psl()._publicsuffix


def test_an_in_memory_ledger_spills_to_a_folder_of_its_own_removed_at_close() -> None:
    """DuckDB's default for an in-memory database is ``.tmp`` in the working folder (a scan
    left one in the project); a ledger's goes to the system's temporary folder and is gone
    when the ledger is closed."""
    import tempfile

    with Ledger.open(None) as ledger:
        folder = Path(str(ledger.connection.execute(
            "SELECT current_setting('temp_directory')").fetchone()[0]))
        assert folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith(
            "burstwatch-ledger-")
        assert folder.is_dir()
    assert not folder.exists()


def test_without_a_writable_temporary_folder_an_in_memory_ledger_spills_nowhere(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def refused(**_: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    with Ledger.open(None) as ledger:
        con = ledger.connection
        assert con.execute("SELECT current_setting('temp_directory')").fetchone()[0] == ""
        ledger.append(HISTORY)
        assert con.execute("SELECT count(*) FROM flows").fetchone()[0] > 0
