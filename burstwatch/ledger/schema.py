"""The ledger's tables, each column declared once with its meaning; the DDL is generated.

Times are BIGINT nanoseconds since the epoch (UTC), as everywhere in burstwatch; addresses
are text so any tool reading the file or its Parquet export understands them. Columns
shared by both tables are declared once and reused, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1
"""Raised whenever a table or column changes; a file with a higher number is refused."""

DEFAULT_RETENTION_DAYS = 30.0
"""Records older than this (counted back from the newest) are pruned unless told otherwise."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type
    doc: str
    nullable: bool = False

    def ddl(self) -> str:
        return f"{self.name} {self.type}" + ("" if self.nullable else " NOT NULL")


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def ddl(self, documented: bool = True) -> list[str]:
        """CREATE TABLE plus a COMMENT per column, so the docs travel with the file (not for
        a ledger held in memory, which no other program reads: the comments cost a scan's
        start 30 ms)."""
        body = ",\n    ".join(c.ddl() for c in self.columns)
        out = [f"CREATE TABLE {self.name} (\n    {body}\n)"]
        if not documented:
            return out
        out.append(f"COMMENT ON TABLE {self.name} IS {sql_string(self.doc)}")
        out += [f"COMMENT ON COLUMN {self.name}.{c.name} IS {sql_string(c.doc)}" for c in self.columns]
        return out


def sql_string(text: str) -> str:
    """A SQL string literal (for DDL and COPY targets, which take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


TIME = (
    Column("start_ns", "BIGINT", "first packet, ns since the epoch (UTC)"),
    Column("end_ns", "BIGINT", "last packet, ns since the epoch (UTC); retention and horizons go by it"),
)
ENDPOINTS = (
    Column("local_ip", "VARCHAR", "the local host (the flow's local side), as text"),
    Column("local_port", "INTEGER", "the local transport port (0 without ports)"),
    Column("remote_ip", "VARCHAR", "the remote endpoint, as text"),
    Column("remote_port", "INTEGER", "the remote transport port (0 without ports)"),
    Column("remote_net", "VARCHAR",
           "the remote /24 (IPv4) or /48 (IPv6): the party when no server name is known"),
    Column("transport", "VARCHAR", "tcp, udp, ... or the IP protocol number"),
)
FLOW_ID = Column("flow_id", "BIGINT",
                 "hash of the 5-tuple and the flow's first packet time: one value per flow")
CONTEXT = (
    Column("verdict", "VARCHAR",
           "encryption verdict kind (tls, quic, ssh, ..., entropy; none if clear); NULL unknown",
           nullable=True),
    Column("sni", "VARCHAR", "TLS/QUIC server name the client asked for; NULL none", nullable=True),
    Column("sni_domain", "VARCHAR",
           "registrable domain of sni (Public Suffix List): the party; NULL without a name",
           nullable=True),
    Column("ja4", "VARCHAR", "JA4 fingerprint of the client hello; NULL none", nullable=True),
    Column("remote_country", "VARCHAR", "ISO 3166 alpha-2 country of the remote endpoint",
           nullable=True),
    Column("remote_asn", "BIGINT", "autonomous system of the remote endpoint", nullable=True),
    Column("remote_org", "VARCHAR", "organisation of that autonomous system", nullable=True),
)
SOURCE = Column("source", "VARCHAR", "the capture file or interface the record came from")
PROVISIONAL = Column(
    "provisional", "BOOLEAN",
    "true for a flow still open when its run ended (ended at the end of the input); the run "
    "that continues the capture replaces it with the flow's real rows",
)

BURSTS = Table(
    "bursts",
    "one row per burst: a run of payload packets in one direction of one flow",
    (
        *TIME,
        *ENDPOINTS,
        Column("direction", "TINYINT", "0 upload (local -> remote), 1 download"),
        Column("bytes", "BIGINT", "transport payload bytes"),
        Column("packets", "BIGINT", "payload packets"),
        Column("rate", "DOUBLE", "bytes per second; bursts shorter than 1 ms count as 1 ms"),
        FLOW_ID,
        *CONTEXT,
        SOURCE,
        PROVISIONAL,
    ),
)

FLOWS = Table(
    "flows",
    "one row per emitted flow row: a whole flow, or one window of a long flow",
    (
        FLOW_ID,
        Column("kind", "VARCHAR", "flow (its whole life) or window (one window of it)"),
        Column("window_index", "INTEGER", "which window of the flow; NULL for kind flow",
               nullable=True),
        Column("reason", "VARCHAR", "why the row was emitted: interim, idle, fin, rst, ..."),
        *TIME,
        *ENDPOINTS,
        Column("bytes_up", "BIGINT", "payload bytes local -> remote"),
        Column("bytes_down", "BIGINT", "payload bytes remote -> local"),
        Column("packets_up", "BIGINT", "packets local -> remote"),
        Column("packets_down", "BIGINT", "packets remote -> local"),
        Column("peak_rate", "DOUBLE", "highest burst rate in either direction, bytes/s (0 none)"),
        Column("peak_up_rate", "DOUBLE", "highest upload burst rate, bytes/s (0 none)"),
        *CONTEXT,
        SOURCE,
        PROVISIONAL,
    ),
)

# What makes two rows the same record (a capture scanned again, the same traffic from a
# second sensor): the ledger adds a row only when none with these values is held.
SAME_RECORD = {
    BURSTS.name: ("flow_id", "direction", "start_ns"),
    FLOWS.name: ("flow_id", "kind", "end_ns", "window_index"),
}

META = Table(
    "ledger_meta",
    "facts about the file itself: schema version, retention, last prune",
    (
        Column("key", "VARCHAR PRIMARY KEY", "schema_version, retention_days, pruned_before_ns"),
        Column("value", "VARCHAR", "the value, as text"),
    ),
)

STATE = Table(
    "carried_state",
    "named opaque payloads a run leaves for the next one (e.g. the open flows)",
    (
        Column("name", "VARCHAR PRIMARY KEY", "who stored it"),
        Column("payload", "BLOB", "bytes only; their format belongs to the writer"),
        Column("stored_ns", "BIGINT", "wall-clock time of the last put, ns since the epoch"),
    ),
)

TABLES = (META, STATE, BURSTS, FLOWS)
