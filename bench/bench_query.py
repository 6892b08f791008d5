"""The conversation query's time on a real ledger, whole and statement by statement.

    burstwatch scan CAPTURE --state /tmp/ledger.duckdb     # once, to get a ledger
    python bench/bench_query.py /tmp/ledger.duckdb [--rounds 4]

The ledger file's tables are copied into an in-memory database (as a one-shot `scan` holds
them), then `ledger.queries.conversations` runs ``--rounds`` times as `scan` calls it (bursty
conversations only, at the ledger's newest record); each round prints the whole query's time and each statement's. The last
line is a digest of every column returned, so two trees can be checked to give the same
answers as well as compared for speed (`PYTHONPATH=OTHER_TREE python bench/bench_query.py`).
Then the same question is answered ``--rounds`` times in numpy from the same rows as Arrow
tables (`ledger.columnar`, as a scan's in-memory ledger answers it), with its digest, which
must be the same. (Those tables' text is plain, as DuckDB hands it out; a scan's held tables
have most of theirs as dictionaries.)
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from typing import Any

import duckdb
import numpy as np

from burstwatch.ledger import Ledger, columnar, queries
from burstwatch.ledger.schema import BURSTS, FLOWS


class _TimedConnection:
    """A DuckDB connection that times each statement it executes (its result fetched)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.times: list[float] = []

    def execute(self, sql: str, *args: Any) -> Any:
        start = time.perf_counter()
        result = self._con.execute(sql, *args)
        if sql.lstrip().startswith(("WITH", "CREATE")):
            self.times.append(time.perf_counter() - start)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def digest(columns: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(columns):
        h.update(name.encode())
        h.update(repr(np.asarray(columns[name]).tolist()).encode())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ledger", help="a ledger file written by `burstwatch scan --state`")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()

    ledger = Ledger.open(None)
    con = ledger.connection
    con.execute(f"ATTACH '{args.ledger}' AS source (READ_ONLY)")
    for table in (FLOWS.name, BURSTS.name):
        con.execute(f"INSERT INTO {table} SELECT * FROM source.{table}")
    con.execute("DETACH source")
    flows = con.execute(f"SELECT count(*) FROM {FLOWS.name}").fetchone()
    bursts = con.execute(f"SELECT count(*) FROM {BURSTS.name}").fetchone()
    newest = con.execute(f"SELECT max(end_ns) FROM (SELECT end_ns FROM {FLOWS.name} "
                         f"UNION ALL SELECT end_ns FROM {BURSTS.name})").fetchone()
    now = int(newest[0]) if newest and newest[0] is not None else 0  # scan's clock: the newest
    print(f"{args.ledger}: {flows[0] if flows else 0:,} flow rows, "
          f"{bursts[0] if bursts else 0:,} bursts")

    timed = _TimedConnection(con)
    ledger._connection = timed  # type: ignore[assignment]  # the query runs through the timer
    whole: list[float] = []
    answer = ""
    for _ in range(args.rounds):
        timed.times = []
        start = time.perf_counter()
        conv, burst_rows = queries.conversations(ledger, now_ns=now, bursty_only=True)
        whole.append(time.perf_counter() - start)
        steps = " ".join(f"{t * 1000:.0f}" for t in timed.times)
        print(f"query {whole[-1] * 1000:.0f} ms; statements {steps} ms; "
              f"{len(conv):,} conversations")
        columns = {f"conv.{k}": v for k, v in vars(conv).items() if isinstance(v, np.ndarray)}
        columns.update({f"bursts.{k}": v for k, v in vars(burst_rows).items()
                        if isinstance(v, np.ndarray)})
        answer = digest(columns)
    print(f"median {statistics.median(whole) * 1000:.0f} ms; answers {answer}")

    held = [con.sql(f"SELECT * FROM {t}").to_arrow_table() for t in (BURSTS.name, FLOWS.name)]
    in_memory: list[float] = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        conv, burst_rows = columnar.conversations(*held, queries.DAY_NS, now, bursty_only=True)
        in_memory.append(time.perf_counter() - start)
        columns = {f"conv.{k}": v for k, v in vars(conv).items() if isinstance(v, np.ndarray)}
        columns.update({f"bursts.{k}": v for k, v in vars(burst_rows).items()
                        if isinstance(v, np.ndarray)})
    same = "the same" if digest(columns) == answer else "DIFFERENT"
    print(f"in memory (ledger/columnar.py): median {statistics.median(in_memory) * 1000:.0f} ms "
          f"({', '.join(f'{t * 1000:.0f}' for t in in_memory)}); answers {digest(columns)} "
          f"({same})")


if __name__ == "__main__":
    main()
