"""Questions asked of the ledger, answered in SQL: conversations over a horizon, a summary.

Everything per row happens inside DuckDB (joins, window functions, ordered aggregates);
Python only receives the finished columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from burstwatch.conversations.model import ConversationBursts, Conversations
from burstwatch.ledger.schema import BURSTS, FLOWS, STATE
from burstwatch.ledger.store import Ledger

HOUR_NS = 3_600 * 1_000_000_000
DAY_NS = 24 * HOUR_NS
_FOREVER = np.iinfo(np.int64).max

# What a burst (or an early window) may not know yet and the rest of its flow's rows do.
SHARED = ("verdict", "sni", "sni_domain", "remote_country", "remote_asn", "remote_org")
_CTX = ",\n        ".join(
    f"arg_max({c}, end_ns) FILTER (WHERE {c} IS NOT NULL) AS {c}" for c in SHARED
)
_COALESCED = ", ".join(f"coalesce(r.{c}, x.{c}) AS {c}" for c in SHARED)
_PARTY = """coalesce(r.sni_domain, x.sni_domain, r.remote_net) AS party,
        CASE WHEN coalesce(r.sni_domain, x.sni_domain) IS NULL THEN 'net' ELSE 'domain' END
            AS party_kind"""

# Every burst and flow row that ended by $now, with its flow's context and its party.
_RECORDS = f"""
ctx AS (
    SELECT flow_id,
        {_CTX}
    FROM {FLOWS.name} GROUP BY flow_id
),
rec AS (
    SELECT 'burst' AS src, r.flow_id, r.local_ip, r.remote_ip, r.remote_port, r.transport,
        r.start_ns, r.end_ns,
        r.direction, r.bytes, r.packets, r.rate, NULL::BIGINT AS bytes_up, NULL::BIGINT AS bytes_down,
        NULL::VARCHAR AS kind, NULL::INTEGER AS window_index, {_COALESCED},
        {_PARTY}
    FROM {BURSTS.name} r LEFT JOIN ctx x USING (flow_id) WHERE r.end_ns <= $now
    UNION ALL
    SELECT 'flow', r.flow_id, r.local_ip, r.remote_ip, r.remote_port, r.transport,
        r.start_ns, r.end_ns,
        NULL, NULL, NULL, NULL, r.bytes_up, r.bytes_down, r.kind, r.window_index, {_COALESCED},
        {_PARTY}
    FROM {FLOWS.name} r LEFT JOIN ctx x USING (flow_id) WHERE r.end_ns <= $now
),
hz_all AS (SELECT * FROM rec WHERE end_ns >= $h0),
-- the conversations judged: those with a burst in the horizon, or with a flagged flow
judged AS (
    SELECT DISTINCT local_ip, party FROM hz_all
    WHERE src = 'burst' OR $all OR list_contains($flagged, flow_id)
),
hz AS (SELECT h.* FROM hz_all h SEMI JOIN judged j USING (local_ip, party))"""


def _top(col: str) -> str:
    """The value of ``col`` carrying the most bytes per conversation (ties: the smallest)."""
    return f"""top_{col} AS (
    SELECT local_ip, party, arg_min({col}, (-w, {col})) AS {col} FROM (
        SELECT local_ip, party, {col}, sum(up + down) AS w FROM conn
        WHERE {col} IS NOT NULL GROUP BY ALL
    ) GROUP BY ALL
)"""


# A conversation's answer is built in steps, each a statement of its own whose result is a
# small temporary table: DuckDB holds every hash table and materialised part of a statement
# until it ends, and as one statement the answer held about twenty at once (136 MiB on a
# ledger of 55 k flow rows and 18 k bursts; split, the largest step holds about a third).
# 1. Each flow of the judged conversations, with its context and bytes, in the horizon.
_HORIZON = f"""CREATE OR REPLACE TEMP TABLE judge_hz AS WITH {_RECORDS} SELECT * FROM hz"""
_CONNECTIONS = """CREATE OR REPLACE TEMP TABLE judge_conn AS
WITH hz AS (SELECT * FROM judge_hz),
summ AS (
    -- a flow row once (live snapshots of one window repeat it: keep the latest) ...
    SELECT * FROM hz WHERE src = 'flow'
    QUALIFY row_number() OVER (PARTITION BY flow_id, kind, window_index ORDER BY end_ns DESC) = 1
),
summ_used AS (
    -- ... and a windowed flow by its windows: its whole-flow row would count them twice
    SELECT * FROM summ
    QUALIFY kind = CASE WHEN bool_or(kind = 'window') OVER (PARTITION BY flow_id)
                        THEN 'window' ELSE 'flow' END
),
conn_bytes AS (
    SELECT flow_id, sum(bytes_up) AS up, sum(bytes_down) AS down FROM summ_used GROUP BY flow_id
    UNION ALL
    -- a flow with no summary in the horizon yet (still open) counts by its bursts
    SELECT flow_id, coalesce(sum(bytes) FILTER (WHERE direction = 0), 0),
        coalesce(sum(bytes) FILTER (WHERE direction = 1), 0)
    FROM hz WHERE src = 'burst' AND flow_id NOT IN (SELECT flow_id FROM summ_used)
    GROUP BY flow_id
)
SELECT h.*, b.up, b.down FROM (
    -- one flow has one local host and one party: grouping by the id alone is cheaper
    SELECT flow_id, any_value(local_ip) AS local_ip, any_value(party) AS party,
        any_value(party_kind) AS party_kind, arg_max(remote_ip, end_ns) AS remote_ip,
        any_value(remote_port) AS remote_port, any_value(transport) AS transport,
        """ + _CTX + """,
        min(start_ns) AS first_ns, max(end_ns) AS last_ns
    FROM hz GROUP BY flow_id
) h JOIN conn_bytes b USING (flow_id)"""

# 2. Novelty and the host's peak: over the whole history, of the hosts judged only, in one
# pass over it (grouping sets) rather than one per question: each pass joins every record
# with its flow's context again, which on the 5 M-packet capture's ledger cost 0.03 s a time.
_FIRST_SEEN = f"""CREATE OR REPLACE TEMP TABLE judge_first AS WITH {_RECORDS},
hist AS (SELECT r.* FROM rec r SEMI JOIN (SELECT DISTINCT local_ip FROM judge_conn) c
         USING (local_ip))
SELECT local_ip, party, remote_asn, remote_country,
    GROUPING(party, remote_asn, remote_country) AS grouped_by, min(start_ns) AS t,
    coalesce(max(rate) FILTER (WHERE src = 'burst' AND direction = 0), 0) AS peak_up_rate
FROM hist
GROUP BY GROUPING SETS ((local_ip, party), (local_ip, remote_asn), (local_ip, remote_country),
                        (local_ip))"""
# Which rows of judge_first answer which question (GROUPING's bit set: column not grouped).
_FIRST_OF = {
    "party_first": "SELECT local_ip, party, t FROM judge_first WHERE grouped_by = 3",
    "asn_first": """SELECT local_ip, remote_asn, t FROM judge_first
        WHERE grouped_by = 5 AND remote_asn IS NOT NULL""",
    "country_first": """SELECT local_ip, remote_country, t FROM judge_first
        WHERE grouped_by = 6 AND remote_country IS NOT NULL""",
    "host": "SELECT local_ip, t, peak_up_rate FROM judge_first WHERE grouped_by = 7",
}

_FIRST_PARTS = ",\n".join(f"judge_{name} AS ({select})" for name, select in _FIRST_OF.items())

# 3. The conversations: their flows summed, the values carrying most of their bytes, joined
# with their history.
_CONVERSATIONS = f"""WITH conn AS (SELECT * FROM judge_conn),
{_FIRST_PARTS},
conv AS (
    SELECT local_ip, party, any_value(party_kind) AS party_kind,
        count(DISTINCT remote_ip) AS remote_ips, count(*) AS connections,
        sum(up)::BIGINT AS bytes_up, sum(down)::BIGINT AS bytes_down,
        min(first_ns) AS first_seen_ns, max(last_ns) AS last_seen_ns
    FROM conn GROUP BY local_ip, party
),
{_top("remote_country")},
{_top("verdict")},
{_top("sni")},
{_top("remote_port")},
{_top("remote_ip")},
{_top("transport")},
top_asn AS (
    SELECT local_ip, party, arg_min(remote_asn, (-w, remote_asn)) AS remote_asn,
        arg_min(remote_org, (-w, remote_asn)) AS remote_org FROM (
        SELECT local_ip, party, remote_asn, max(remote_org) AS remote_org, sum(up + down) AS w
        FROM conn WHERE remote_asn IS NOT NULL GROUP BY local_ip, party, remote_asn
    ) GROUP BY ALL
)
SELECT c.local_ip, c.party, c.party_kind, coalesce(ti.remote_ip, '') AS remote_ip, c.remote_ips,
    coalesce(tp.remote_port, 0) AS remote_port, coalesce(tt.transport, '') AS transport,
    coalesce(tc.remote_country, '') AS remote_country,
    coalesce(ta.remote_asn, 0) AS remote_asn, coalesce(ta.remote_org, '') AS remote_org,
    coalesce(tv.verdict, 'none') AS encryption, coalesce(ts.sni, '') AS server_name,
    c.connections, c.bytes_up, c.bytes_down, c.first_seen_ns, c.last_seen_ns,
    pf.t AS party_first_seen_ns, coalesce(af.t, -1) AS asn_first_seen_ns,
    coalesce(cf.t, -1) AS country_first_seen_ns, h.t AS host_first_seen_ns,
    h.peak_up_rate AS host_peak_up_rate
FROM conv c
LEFT JOIN top_remote_country tc USING (local_ip, party)
LEFT JOIN top_asn ta USING (local_ip, party)
LEFT JOIN top_verdict tv USING (local_ip, party)
LEFT JOIN top_sni ts USING (local_ip, party)
LEFT JOIN top_remote_port tp USING (local_ip, party)
LEFT JOIN top_remote_ip ti USING (local_ip, party)
LEFT JOIN top_transport tt USING (local_ip, party)
JOIN judge_party_first pf USING (local_ip, party)
LEFT JOIN judge_asn_first af ON af.local_ip = c.local_ip AND af.remote_asn = ta.remote_asn
LEFT JOIN judge_country_first cf
    ON cf.local_ip = c.local_ip AND cf.remote_country = tc.remote_country
JOIN judge_host h ON h.local_ip = c.local_ip
ORDER BY c.local_ip, c.party"""

# 4. The bursts of the conversations, from step 1's records.
_BURSTS = """WITH hz AS (SELECT * FROM judge_hz),
keys AS (
    SELECT local_ip, party, row_number() OVER (ORDER BY local_ip, party) - 1 AS conversation
    FROM (SELECT DISTINCT local_ip, party FROM hz)
)
SELECT k.conversation, h.direction, h.start_ns, h.end_ns, h.bytes, h.packets, h.flow_id,
    h.remote_ip
FROM hz h JOIN keys k USING (local_ip, party)
WHERE h.src = 'burst'
ORDER BY k.conversation, h.start_ns, h.end_ns, h.flow_id, h.direction"""


def conversations(
    ledger: Ledger, horizon_ns: int = DAY_NS, now_ns: int | None = None, *,
    bursty_only: bool = False, flagged: Sequence[int] = (),
) -> tuple[Conversations, ConversationBursts]:
    """Conversations with a burst or flow row ending within ``horizon_ns`` before ``now_ns``
    (with ``bursty_only``: only those with a burst in the horizon, or holding one of the
    ``flagged`` flow ids; the others cannot make a case, and a judge need not pay for them).

    ``now_ns`` defaults to the newest record in the ledger, so an old capture is judged at
    its own time. A record belongs to the horizon its end falls in (each record to exactly
    one of consecutive horizons); novelty is over every record that ended by ``now_ns``.
    Bytes come from flow summaries (windows of windowed flows, else the whole-flow row), or
    from the flow's bursts while it has no summary in the horizon. A ledger holding its rows
    in memory answers in numpy (``columnar``), with the same answers.
    """
    now = ledger.latest_ns if now_ns is None else now_ns
    if now is None:
        return _conversations({}, 0, 0), _bursts({})
    held = ledger.held_rows()
    if held is not None:  # an in-memory ledger without a database: the same, in numpy
        from burstwatch.ledger import columnar

        return columnar.conversations(*held, horizon_ns, now, bursty_only=bursty_only,
                                      flagged=flagged)
    params = {"now": now, "h0": now - horizon_ns, "all": not bursty_only,
              "flagged": [int(f) for f in flagged]}
    con = ledger.connection
    temporary = ["judge_hz", "judge_conn", "judge_first"]
    # One DuckDB thread: each thread builds its own hash tables, which DuckDB keeps after the
    # statement; on the 5 M-packet capture two threads cost 35 MiB more at the scan's peak
    # and made the query no faster (docs/benchmarks.md).
    threads = con.execute("SELECT current_setting('threads')").fetchone()
    con.execute("SET threads = 1")
    returned = _hand_memory_back(con)
    try:
        con.execute(_HORIZON, params)
        con.execute(_CONNECTIONS)
        con.execute(_FIRST_SEEN, params)
        conv = con.execute(_CONVERSATIONS).fetchnumpy()
        bursts = con.execute(_BURSTS).fetchnumpy()
    finally:
        for name in temporary:
            con.execute(f"DROP TABLE IF EXISTS temp.{name}")
        con.execute(f"SET threads = {int(threads[0]) if threads else 1}")
        for name, value in returned.items():
            con.execute(f"SET {name} = '{value}'")
    return _conversations(conv, now - horizon_ns, now), _bursts(bursts)


# DuckDB's allocator keeps what a task frees (up to 128 MiB) for later tasks, so each of the
# query's statements stood on what the ones before had kept: on the 5 M-packet capture's
# ledger (55 k flow rows) the query's peak was 20 MiB higher, and it was the scan's peak. Handing
# memory back after every task costs a few milliseconds per statement, which on a small ledger
# is all the query takes (the demo's: 75 -> 117 ms), so it is done from this many rows on.
HAND_BACK_FROM_ROWS = 20_000
_ALLOCATOR_FLUSHES = ("allocator_flush_threshold", "allocator_bulk_deallocation_flush_threshold")


def _hand_memory_back(con: Any) -> dict[str, str]:
    """On a large ledger, set DuckDB's allocator to hand freed memory back after each task;
    returns the settings to restore (none on a small ledger)."""
    rows = con.execute(f"SELECT (SELECT count(*) FROM {BURSTS.name}) + "
                       f"(SELECT count(*) FROM {FLOWS.name})").fetchone()
    if rows is None or int(rows[0]) < HAND_BACK_FROM_ROWS:
        return {}
    before = {name: str(con.execute(f"SELECT current_setting('{name}')").fetchone()[0])
              for name in _ALLOCATOR_FLUSHES}
    for name in _ALLOCATOR_FLUSHES:
        con.execute(f"SET {name} = '1MiB'")
    return before


def _col(cols: dict[str, Any], name: str, dtype: Any) -> np.ndarray:
    if name not in cols:
        return np.zeros(0, dtype)
    return np.asarray(cols[name]).astype(dtype, copy=False)


def _conversations(cols: dict[str, Any], h0: int, h1: int) -> Conversations:
    n = len(cols.get("local_ip", ()))
    obj = ("local_ip", "party", "party_kind", "remote_ip", "remote_country", "remote_org",
           "encryption", "server_name", "transport")
    f64 = ("host_peak_up_rate",)
    fields = {
        name: _col(cols, name, object if name in obj else np.float64 if name in f64 else np.int64)
        for name in Conversations.__dataclass_fields__
        if not name.startswith("horizon_")
    }
    return Conversations(
        **fields,
        horizon_start_ns=np.full(n, h0, np.int64),
        horizon_end_ns=np.full(n, h1, np.int64),
    )


def _bursts(cols: dict[str, Any]) -> ConversationBursts:
    return ConversationBursts(
        conversation=_col(cols, "conversation", np.int64),
        direction=_col(cols, "direction", np.int8),
        start_ns=_col(cols, "start_ns", np.int64),
        end_ns=_col(cols, "end_ns", np.int64),
        bytes=_col(cols, "bytes", np.int64),
        packets=_col(cols, "packets", np.int64),
        flow_id=_col(cols, "flow_id", np.int64),
        remote_ip=_col(cols, "remote_ip", object),
    )


@dataclass
class LedgerSummary:
    """What a ledger holds, for ``burstwatch state info``."""

    path: str
    file_bytes: int
    schema_version: int
    retention_days: float | None
    bursts: int
    flow_rows: int
    hosts: int
    conversations: int
    first_ns: int | None
    last_ns: int | None
    pruned_before_ns: int | None
    state: dict[str, int]  # carried state: name -> payload bytes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_SUMMARY = f"""WITH {_RECORDS}
SELECT
    (SELECT count(*) FROM {BURSTS.name}) AS bursts,
    (SELECT count(*) FROM {FLOWS.name}) AS flow_rows,
    count(DISTINCT local_ip) AS hosts,
    count(DISTINCT (local_ip, party)) AS conversations,
    min(start_ns) AS first_ns, max(end_ns) AS last_ns
FROM rec"""


def summary(ledger: Ledger) -> LedgerSummary:
    """Counts, time span and size of the ledger."""
    con = ledger.connection
    row = con.execute(_SUMMARY, {"now": _FOREVER, "h0": 0, "all": True, "flagged": []}).fetchone()
    assert row is not None  # an aggregate without GROUP BY returns one row
    bursts, flow_rows, hosts, convs, first, last = row
    state = dict(con.execute(f"SELECT name, octet_length(payload) FROM {STATE.name} ORDER BY name").fetchall())
    size = 0
    if ledger.path is not None:
        size = sum(p.stat().st_size for p in (Path(ledger.path), Path(ledger.path + ".wal")) if p.exists())
    retention = ledger.meta("retention_days")
    pruned = ledger.meta("pruned_before_ns")
    return LedgerSummary(
        path=ledger.path or ":memory:",
        file_bytes=size,
        schema_version=int(ledger.meta("schema_version") or 0),
        retention_days=float(retention) if retention is not None else None,
        bursts=int(bursts), flow_rows=int(flow_rows), hosts=int(hosts), conversations=int(convs),
        first_ns=None if first is None else int(first),
        last_ns=None if last is None else int(last),
        pruned_before_ns=None if pruned is None else int(pruned),
        state={str(k): int(v) for k, v in state.items()},
    )
