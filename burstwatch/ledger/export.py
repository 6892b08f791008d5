"""Parquet export of the ledger, one directory per table, hive-partitioned by day.

Other tools (pandas, Spark, DuckDB itself, a SIEM's loader) read ``bursts/day=2024-05-01/``
without knowing anything about burstwatch; a day is the UTC day a record ended in, the same
time retention and horizons go by.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from burstwatch.errors import LedgerError
from burstwatch.ledger.schema import BURSTS, FLOWS, sql_string
from burstwatch.ledger.store import Ledger


def export_parquet(ledger: Ledger, out_dir: str) -> dict[str, int]:
    """Write ``out_dir/bursts`` and ``out_dir/flows``; rows written per table.

    Refuses to write into a table directory that already has files, so an export never
    mixes with (or silently replaces) an earlier one.
    """
    root = Path(out_dir)
    for name in (BURSTS.name, FLOWS.name):
        target = root / name
        if target.exists() and any(target.iterdir()):
            raise LedgerError(f"{target} already exists and is not empty; choose a new directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(f"{out_dir}: cannot create the export directory: {exc.strerror}") from None
    counts: dict[str, int] = {}
    con = ledger.connection
    for name in (BURSTS.name, FLOWS.name):
        where = str(root / name)
        query = (
            f"COPY (SELECT *, CAST(make_timestamp(end_ns // 1000) AS DATE) AS day FROM {name}) "
            f"TO {sql_string(where)} (FORMAT PARQUET, PARTITION_BY (day), OVERWRITE_OR_IGNORE)"
        )
        try:
            row = con.execute(query).fetchone()
        except duckdb.Error as exc:
            raise LedgerError(f"{where}: export failed: {str(exc).splitlines()[0]}") from None
        counts[name] = int(row[0]) if row else 0
    return counts
