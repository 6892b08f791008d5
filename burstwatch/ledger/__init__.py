"""The burst ledger: past bursts and flow rows in an embedded DuckDB file, and its queries.

The store and its queries (DuckDB, pyarrow) are loaded when first used, so the command-line
parser can read the retention default from ``schema`` without loading them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from burstwatch.errors import LedgerError
from burstwatch.lazy import lazy_attributes

if TYPE_CHECKING:
    from burstwatch.ledger.export import export_parquet
    from burstwatch.ledger.queries import DAY_NS, LedgerSummary, conversations, summary
    from burstwatch.ledger.store import Ledger

__all__ = ["DAY_NS", "Ledger", "LedgerError", "LedgerSummary", "conversations", "export_parquet",
           "summary"]

__getattr__ = lazy_attributes(__name__, {
    "export_parquet": "export", "DAY_NS": "queries", "LedgerSummary": "queries",
    "conversations": "queries", "summary": "queries", "Ledger": "store"})

