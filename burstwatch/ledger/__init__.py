"""The burst ledger: past bursts and flow rows in an embedded DuckDB file, and its queries."""

from burstwatch.errors import LedgerError
from burstwatch.ledger.export import export_parquet
from burstwatch.ledger.queries import DAY_NS, LedgerSummary, conversations, summary
from burstwatch.ledger.store import Ledger

__all__ = ["DAY_NS", "Ledger", "LedgerError", "LedgerSummary", "conversations", "export_parquet",
           "summary"]
