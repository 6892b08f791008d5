"""The conversation question answered from rows in memory (ledger/columnar.py) against the
same question asked of DuckDB (ledger/queries.py), on random ledgers: every column equal; and
the in-memory ledger that holds its rows until it needs its database (ledger/store.py).

The rows are made so that no answer depends on an order SQL leaves open: a flow's rows end
at distinct times, and a flow keeps one host, remote address, port, transport and server
name, which only a burst may lack when a row of its flow has it (its other context, verdict,
country, AS, varies from row to row, NULLs included). Byte counts are coarse, so the values
of a conversation often carry the same bytes and the tie-breaks are tried.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pyarrow as pa
import pytest

from burstwatch.ledger import Ledger, columnar, queries, store
from burstwatch.ledger.columns import ARROW_TYPES
from burstwatch.ledger.schema import BURSTS, FLOWS
from tests.ledgercraft import CURRENT, HISTORY, A, B

S = 1_000_000_000
T0 = 1_700_000_000 * S
HOSTS = ["10.0.0.5", "10.0.0.17", "2001:db8:aaaa::5", "10.0.0.9"]
REMOTES = [("203.0.113.7", "203.0.113.0/24"), ("203.0.113.80", "203.0.113.0/24"),
           ("198.51.100.4", "198.51.100.0/24"), ("2001:db8:1::9", "2001:db8:1::/48"),
           ("192.0.2.200", "192.0.2.0/24")]
NAMES = [None, ("a.example.com", "example.com"), ("b.example.com", "example.com"),
         ("files.example.co.uk", "example.co.uk"), ("x.test.org", "test.org")]
VERDICTS = [None, "tls", "quic", "entropy", "none"]
COUNTRIES = [None, "DE", "US", "RU"]
ASNS = [None, 64500, 64501, 64502]
ORGS = [None, "Example Net", "Other Org"]


def _random_rows(rng: np.random.Generator, nflows: int) -> tuple[pa.Table, pa.Table]:
    """Random bursts and flow rows (whole flows, windows, repeated window snapshots and
    flows with bursts only), every row's end a distinct time."""
    bursts: dict[str, list] = {c.name: [] for c in BURSTS.columns}
    flows: dict[str, list] = {c.name: [] for c in FLOWS.columns}
    ends = iter(rng.permutation(nflows * 40) * S // 7 + T0)

    def context(row: dict[str, list], name: tuple[str, str] | None, may_hide: bool) -> None:
        hidden = may_hide and rng.random() < 0.3  # a burst before its flow's name was known
        row["sni"].append(None if name is None or hidden else name[0])
        row["sni_domain"].append(None if name is None or hidden else name[1])
        row["verdict"].append(VERDICTS[rng.integers(len(VERDICTS))])
        row["remote_country"].append(COUNTRIES[rng.integers(len(COUNTRIES))])
        row["remote_asn"].append(ASNS[rng.integers(len(ASNS))])
        row["remote_org"].append(ORGS[rng.integers(len(ORGS))])
        row["ja4"].append(None)

    def common(row: dict[str, list], fid: int, host: str, remote: tuple[str, str],
               port: int, transport: str, start: int, end: int) -> None:
        row["flow_id"].append(fid)
        row["local_ip"].append(host)
        row["local_port"].append(40000 + fid % 1000)
        row["remote_ip"].append(remote[0])
        row["remote_net"].append(remote[1])
        row["remote_port"].append(port)
        row["transport"].append(transport)
        row["start_ns"].append(start)
        row["end_ns"].append(end)
        row["source"].append("random.pcap")
        row["provisional"].append(False)

    for fid in range(1, nflows + 1):
        host = HOSTS[rng.integers(len(HOSTS))]
        remote = REMOTES[rng.integers(len(REMOTES))]
        name = NAMES[rng.integers(len(NAMES))]
        port, transport = [(443, "tcp"), (443, "udp"), (22, "tcp"), (53, "udp")][rng.integers(4)]
        start = T0 + int(rng.integers(0, 3 * 86_400)) * S
        shape = rng.integers(4)  # 0: bursts only, 1: whole flow, 2: windows + whole, 3: windows
        for _ in range(rng.integers(0, 5)):
            end = int(next(ends)) + start - T0
            common(bursts, fid, host, remote, port, transport, start + int(rng.integers(0, 9)) * S, end)
            size = int(rng.integers(0, 3)) * 1000  # coarse sizes: ties of bytes are common
            bursts["direction"].append(int(rng.integers(2)))
            bursts["bytes"].append(size)
            bursts["packets"].append(size // 1000 + 1)
            bursts["rate"].append(float(rng.integers(1, 100)) * 1000.0)
            context(bursts, name, may_hide=shape > 0)  # the flow's rows name it
        rows: list[tuple[str, int | None]] = []
        if shape in (1, 2):
            rows.append(("flow", None))
        if shape in (2, 3):
            windows = int(rng.integers(1, 4))
            rows += [("window", w) for w in range(windows)]
            rows += [("window", int(rng.integers(windows)))] * int(rng.integers(0, 2))  # snapshot
        for kind, index in rows:
            end = int(next(ends)) + start - T0
            common(flows, fid, host, remote, port, transport, start, end)
            flows["kind"].append(kind)
            flows["window_index"].append(index)
            flows["reason"].append("idle")
            flows["bytes_up"].append(int(rng.integers(0, 3)) * 1000)
            flows["bytes_down"].append(int(rng.integers(0, 2)) * 1000)
            flows["packets_up"].append(1)
            flows["packets_down"].append(1)
            flows["peak_rate"].append(0.0)
            flows["peak_up_rate"].append(0.0)
            context(flows, name, may_hide=False)
    return _table(BURSTS, bursts), _table(FLOWS, flows)


def _table(schema, cols: dict[str, list]) -> pa.Table:
    return pa.table({c.name: pa.array(cols[c.name], ARROW_TYPES[c.type]) for c in schema.columns})


def _sql(bursts: pa.Table, flows: pa.Table, **kw) -> tuple:
    with Ledger.open(None) as ledger:
        con = ledger.connection
        for name, table in ((BURSTS.name, bursts), (FLOWS.name, flows)):
            con.register("_rows", table)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _rows")
            con.unregister("_rows")
        return queries.conversations(ledger, **kw)


def _same(a: object, b: object) -> None:
    for f in fields(a):  # type: ignore[arg-type]
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x.dtype == y.dtype, f.name
        assert x.tolist() == y.tolist(), f.name


def _as_dictionaries(table: pa.Table) -> pa.Table:
    """Its text as dictionaries (as a ledger's own tables have them), in two chunks."""
    half = table.num_rows // 2
    parts = [table.slice(0, half), table.slice(half)]
    return pa.concat_tables([pa.table({
        name: part.column(name).combine_chunks().dictionary_encode()
        if part.schema.field(name).type == pa.string() else part.column(name)
        for name in part.column_names}) for part in parts])


@pytest.mark.parametrize("seed", range(16))
def test_answers_from_memory_are_the_databases(seed: int) -> None:
    """Odd seeds: text as dictionaries (some with NULL among their values), in chunks."""
    rng = np.random.default_rng(seed)
    bursts, flows = _random_rows(rng, int(rng.integers(1, 60)))
    if seed % 2:
        bursts, flows = _as_dictionaries(bursts), _as_dictionaries(flows)
    latest = max(max(bursts.column("end_ns").to_pylist(), default=0),
                 max(flows.column("end_ns").to_pylist(), default=0))
    for horizon_h, back_h in ((24, 0), (6, 0), (12, 20), (1000, 0)):
        now = latest - back_h * 3600 * S
        flagged = [int(f) for f in rng.choice(np.arange(1, 60), 5)]
        for bursty_only in (True, False):
            kw = {"horizon_ns": horizon_h * 3600 * S, "now_ns": now, "bursty_only": bursty_only,
                  "flagged": flagged}
            conv_sql, bursts_sql = _sql(bursts, flows, **kw)
            conv_mem, bursts_mem = columnar.conversations(bursts, flows, **kw)
            assert len(conv_sql) == len(conv_mem)
            _same(conv_sql, conv_mem)
            _same(bursts_sql, bursts_mem)


def _answers(ledger: Ledger) -> list[list]:
    conv, bursts = queries.conversations(ledger)
    return [getattr(t, f.name).tolist() for t in (conv, bursts) for f in fields(t)]


def test_an_in_memory_ledger_answers_from_its_rows_then_moves_them_into_its_database() -> None:
    """Rows appended (a repeat once, as the database keeps it) are answered from memory
    with no database; asking for SQL sets the database up with every row held, and the
    answers stay the same. A file ledger holding the same rows answers the same."""
    rows = len(HISTORY.bursts) + len(CURRENT.bursts), len(HISTORY.rows) + len(CURRENT.rows)
    with Ledger.open(None) as ledger:
        for appended in (HISTORY, CURRENT, CURRENT):
            ledger.append(appended)
        held = ledger.held_rows()
        assert held is not None and (held[0].num_rows, held[1].num_rows) == rows
        from_memory = _answers(ledger)
        assert ledger._connection is None
        con = ledger.connection
        assert ledger.held_rows() is None
        assert con.execute("SELECT (SELECT count(*) FROM bursts), (SELECT count(*) FROM flows)"
                           ).fetchone() == rows
        assert _answers(ledger) == from_memory
    assert from_memory[0] == [A, A, B]  # three conversations, by host (ledgercraft's)


def test_a_ledger_holding_its_rows_connects_nothing_ahead() -> None:
    """Its writer converts the rows; there is no database to set up ahead."""
    import threading

    with Ledger.open(None) as ledger:
        ledger.write_behind()
        ledger.append(HISTORY)
        ledger.connect_ahead()
        ledger.sync()
        assert ledger._connection is None
        assert not [t for t in threading.enumerate() if t.name == "burstwatch-ledger-open"]
        held = ledger.held_rows()
        assert held is not None and held[0].num_rows == len(HISTORY.bursts)


def test_a_ledger_past_what_it_holds_moves_its_rows_into_its_database(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(store, "HOLD_ROWS", len(HISTORY.bursts) + len(HISTORY.rows))
    with Ledger.open(None) as ledger:
        ledger.append(HISTORY)
        assert ledger._connection is None
        ledger.append(CURRENT)  # one row too many
        assert ledger._connection is not None and ledger.held_rows() is None
        moved = _answers(ledger)
    with Ledger.open(str(tmp_path / "l.duckdb")) as file:
        file.append(HISTORY)
        file.append(CURRENT)
        assert _answers(file) == moved


@pytest.mark.parametrize("days", [5.0, 30.0])
def test_retention_drops_held_rows_as_the_database_does(monkeypatch: pytest.MonkeyPatch,
                                                        days: float) -> None:
    """HISTORY is ten days before CURRENT: five days of retention drop it when CURRENT comes
    (novelty then starts with CURRENT), as they drop it from a ledger's database."""
    answers, pruned = [], []
    for hold in (store.HOLD_ROWS, 0):
        monkeypatch.setattr(store, "HOLD_ROWS", hold)
        with Ledger.open(None, days) as ledger:
            ledger.append(HISTORY)
            ledger.append(CURRENT)
            assert (ledger.held_rows() is not None) == (hold > 0)
            answers.append(_answers(ledger))
            pruned.append(ledger.pruned)
    assert answers[0] == answers[1]
    assert pruned[0] == pruned[1] == (len(HISTORY.bursts) + len(HISTORY.rows) if days < 10 else 0)


def test_provisional_rows_go_to_the_database() -> None:
    """Provisional rows replace rows held: the database's business (a run with a file)."""
    with Ledger.open(None) as ledger:
        ledger.append(HISTORY)
        ledger.append(CURRENT, provisional=True)
        assert ledger.held_rows() is None
        assert ledger.connection.execute("SELECT count(*) FROM bursts WHERE provisional"
                                         ).fetchone() == (len(CURRENT.bursts),)


def test_text_is_coded_by_the_strings_rows_hold() -> None:
    """Codes rank the strings some row holds, in byte order; NULL and "" are -1. Dictionary
    chunks may hold strings no row uses (rows dropped as repeats or aged out keep their
    dictionaries) and NULL among their values; a plain chunk's strings are its rows'."""
    d1 = pa.DictionaryArray.from_arrays(pa.array([0, 2, None, 2, 4], pa.int32()),
                                        pa.array(["b", "unused", "a", "", None]))
    d2 = pa.DictionaryArray.from_arrays(pa.array([1, 1, 0], pa.int32()),
                                        pa.array(["zz", "é", "also unused"]))
    dict_column = pa.chunked_array([d1, d2])
    plain_column = pa.chunked_array([pa.array(["c", None, "a"]), pa.array(["", "b"])])
    codes, values = columnar._coded([dict_column, plain_column])
    rows = [dict_column.to_pylist(), plain_column.to_pylist()]
    held = sorted({v for col in rows for v in col if v}, key=lambda v: v.encode())
    assert values == held == ["a", "b", "c", "zz", "é"]
    for got, want in zip(codes, rows, strict=True):
        assert got.tolist() == [held.index(v) if v else -1 for v in want]
