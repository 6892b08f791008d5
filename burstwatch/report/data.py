"""What the analyst's report shows, gathered from case records and, when there is one, the
burst ledger.

The case records (as ``scan --alerts`` writes them, docs/alert.schema.json) are the judgement:
level, findings, party, the newest upload bursts. The ledger adds what a record does not
carry: both directions of every burst of the case's connections (the rate over time), the
connections' addresses and ports (their Community IDs), and the overview's totals (packets,
flows, upload abroad by country, ASN and host). Without a ledger the report says what it
cannot show instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.alerts.record import SEVERITY
from burstwatch.conversations.judge import flow_number
from burstwatch.errors import BurstwatchError
from burstwatch.inputfiles import read_bounded
from burstwatch.ledger.schema import BURSTS, FLOWS
from burstwatch.ledger.store import Ledger
from burstwatch.outputs.community_id import community_id

MAX_ALERTS_BYTES = 1 << 28  # 256 MiB: case records of months of live; /dev/zero stops here
TOP = 15  # rows of each overview ranking (countries, ASNs, hosts)
_PROTO = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "ipv6-icmp": 58, "esp": 50, "gre": 47}


class ReportError(BurstwatchError):
    """The report has nothing to read (no usable case record, no ledger)."""


def parse_time(text: str) -> int:
    """An RFC 3339 UTC time as records print it (``...T14:01:00.000054000Z``) -> ns."""
    head, _, frac = text.rstrip("Z").partition(".")
    sec = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def flow_hex(number: int) -> str:
    return f"{int(number) & ((1 << 64) - 1):016x}"


@dataclass
class Bursts:
    """Bursts as columns: times in ns, bytes, bytes/s, 0 upload / 1 download, flow id."""

    start_ns: npt.NDArray[np.int64]
    end_ns: npt.NDArray[np.int64]
    bytes: npt.NDArray[np.int64]
    rate: npt.NDArray[np.float64]
    direction: npt.NDArray[np.int8]
    flow_id: list[str]

    def __len__(self) -> int:
        return int(self.start_ns.shape[0])

    def part(self, a: int, b: int) -> Bursts:
        return Bursts(self.start_ns[a:b], self.end_ns[a:b], self.bytes[a:b], self.rate[a:b],
                      self.direction[a:b], self.flow_id[a:b])

    def take(self, mask: npt.NDArray[np.bool_]) -> Bursts:
        idx = np.flatnonzero(mask)
        return Bursts(self.start_ns[idx], self.end_ns[idx], self.bytes[idx], self.rate[idx],
                      self.direction[idx], [self.flow_id[i] for i in idx.tolist()])

    @staticmethod
    def from_record(case: dict[str, Any]) -> Bursts:
        """The upload bursts a case record lists (its newest ones, at most 200)."""
        listed = case.get("bursts") or []
        return Bursts(
            np.array([parse_time(b["start"]) for b in listed], np.int64),
            np.array([parse_time(b["end"]) for b in listed], np.int64),
            np.array([int(b["bytes"]) for b in listed], np.int64),
            np.array([float(b["rate"]) for b in listed], np.float64),
            np.zeros(len(listed), np.int8),
            [str(b.get("flow_id", "")) for b in listed],
        )


@dataclass
class Connection:
    """One connection (flow) of a case, as the ledger knows it."""

    flow_id: str
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    transport: str
    first_ns: int
    last_ns: int
    bytes_up: int
    bytes_down: int
    sni: str
    ja4: str
    verdict: str

    @property
    def community_id(self) -> str:
        proto = _PROTO.get(self.transport)
        if proto is None or proto in (1, 58):  # ICMP type and code are not kept
            return ""
        return community_id(proto, self.local_ip, self.remote_ip, self.local_port, self.remote_port)


@dataclass
class CaseView:
    """One case: its record, and what the ledger adds (empty without one)."""

    record: dict[str, Any]
    uploads: Bursts  # every upload burst shown (ledger: all in the horizon; else the record's)
    bursts: Bursts | None = None  # both directions, from the ledger
    connections: list[Connection] = field(default_factory=list)

    @property
    def case(self) -> dict[str, Any]:
        """The record's ``burstwatch.case`` with the conversation's party beside it."""
        conv = self.record["burstwatch"].get("conversation", {})
        return {**{k: conv[k] for k in ("party", "party_kind", "remote_ips") if k in conv},
                **self.record["burstwatch"]["case"]}

    @property
    def level(self) -> str:
        return str(self.record["burstwatch"]["case"]["level"])

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return severity_order(self.record)


@dataclass
class Ranked:
    """One row of an overview ranking: a label and the upload bytes it stands for."""

    label: str
    bytes: int


@dataclass
class ReportData:
    """Everything the report renders."""

    cases: list[CaseView]
    captures: list[str]
    first_ns: int | None
    last_ns: int | None
    packets: int | None  # None: not known from the input
    flows: int | None
    by_country: list[Ranked]
    by_asn: list[Ranked]
    by_host: list[Ranked]
    abroad_from: str  # what the rankings count, in words
    home: list[str]
    notes: list[str] = field(default_factory=list)  # what the input could not show

    def by_level(self) -> dict[str, int]:
        out = {level: 0 for level in SEVERITY}
        for c in self.cases:
            out[c.level] = out.get(c.level, 0) + 1
        return out

    def merge(self, other: ReportData) -> ReportData:
        """Two unrelated captures (``scan --separate``) in one report."""
        def add(a: list[Ranked], b: list[Ranked]) -> list[Ranked]:
            total: dict[str, int] = {}
            for r in (*a, *b):
                total[r.label] = total.get(r.label, 0) + r.bytes
            return _ranked(total)

        def opt_sum(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else a + b

        firsts = [t for t in (self.first_ns, other.first_ns) if t is not None]
        lasts = [t for t in (self.last_ns, other.last_ns) if t is not None]
        return ReportData(
            sorted([*self.cases, *other.cases], key=lambda c: c.sort_key),
            [*self.captures, *(c for c in other.captures if c not in self.captures)],
            min(firsts) if firsts else None, max(lasts) if lasts else None,
            opt_sum(self.packets, other.packets), opt_sum(self.flows, other.flows),
            add(self.by_country, other.by_country), add(self.by_asn, other.by_asn),
            add(self.by_host, other.by_host), self.abroad_from, self.home,
            [*self.notes, *(n for n in other.notes if n not in self.notes)],
        )


def severity_order(rec: dict[str, Any]) -> tuple[int, int, str]:
    """Most severe first, then the earliest (as scan prints cases)."""
    bw = rec["burstwatch"]
    return (-SEVERITY.get(str(bw["case"]["level"]), 0), parse_time(rec["event"]["start"]),
            str(bw["case"]["id"]))


def _ranked(total: dict[str, int]) -> list[Ranked]:
    rows = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Ranked(k, int(v)) for k, v in rows[:TOP] if v > 0]


# ---- case records ----
def read_alerts(path: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The newest revision of each case in an alerts file, and a warning per unusable line."""
    data = read_bounded(path, MAX_ALERTS_BYTES, "an alerts file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a text file of JSON lines") from None
    latest: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            cid = str(rec["burstwatch"]["case"]["id"])
            revision = int(rec["burstwatch"]["case"].get("revision", 1))
            _check_case(rec)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the decoder's recursion limit
            warnings.append(f"{path}:{number}: not a case record ({_why(exc)}); skipped")
            continue
        held = latest.get(cid)
        if held is None or revision >= int(held["burstwatch"]["case"].get("revision", 1)):
            latest[cid] = rec
    if not latest and text.strip():
        raise ReportError(f"{path}: no case records (see docs/alert.schema.json)")
    return list(latest.values()), warnings


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no field {exc.args[0]}"
    return str(exc).split("\n")[0][:80]


def _check_case(rec: dict[str, Any]) -> None:
    """The fields the report reads, with a KeyError/ValueError naming what is wrong."""
    bw = rec["burstwatch"]
    if bw["case"]["level"] not in SEVERITY:
        raise ValueError(f"unknown level {bw['case']['level']!r}")
    parse_time(rec["event"]["start"])
    parse_time(rec["event"]["end"])
    for text in (rec["source"]["ip"], rec["destination"].get("ip", ""),
                 bw["conversation"]["party"], rec["network"].get("transport", "")):
        if not isinstance(text, str):
            raise ValueError(f"{text!r} where text belongs")
    for b in bw["case"].get("bursts") or []:
        parse_time(b["start"])
        parse_time(b["end"])
        int(b["bytes"])
        float(b["rate"])


def from_records(records: Sequence[dict[str, Any]], home: Sequence[str]) -> ReportData:
    """A report from case records alone: the overview counts what the cases carry."""
    views = sorted((CaseView(r, Bursts.from_record(r["burstwatch"]["case"])) for r in records),
                   key=lambda c: c.sort_key)
    country: dict[str, int] = {}
    asn: dict[str, int] = {}
    host: dict[str, int] = {}
    for v in views:
        rec = v.record
        if rec["burstwatch"].get("destination", {}).get("scope") != "foreign":
            continue
        up = int(v.case.get("upload_bytes", 0))
        dst = rec["destination"]
        cc = dst.get("geo", {}).get("country_iso_code", "")
        country[cc or "--"] = country.get(cc or "--", 0) + up
        a = dst.get("as", {})
        if a.get("number"):
            label = f"AS{a['number']} {a.get('organization', {}).get('name', '')}".rstrip()
            asn[label] = asn.get(label, 0) + up
        ip = rec["source"]["ip"]
        host[ip] = host.get(ip, 0) + up
    starts = [parse_time(v.record["event"]["start"]) for v in views]
    ends = [parse_time(v.record["event"]["end"]) for v in views]
    captures = sorted({str(v.record["burstwatch"].get("capture", "")) for v in views} - {""})
    notes = [
        "Made from case records alone (no ledger): packets and flows are not in the records; "
        "the rankings count the cases' upload bytes only; rate plots show the listed upload "
        "bursts (at most the newest 200 of a case), without downloads; connections and "
        "Community IDs need the ledger (burstwatch report --state PATH ALERTS.jsonl)."
    ]
    return ReportData(views, captures, min(starts) if starts else None,
                      max(ends) if ends else None, None, None, _ranked(country), _ranked(asn),
                      _ranked(host), "upload bytes of the cases to foreign parties", list(home),
                      notes)


# ---- the ledger ----
_USED = f"""WITH f AS (
    SELECT * FROM {FLOWS.name} WHERE end_ns >= $h0 AND end_ns <= $now
    QUALIFY row_number() OVER (PARTITION BY flow_id, kind, window_index ORDER BY end_ns DESC) = 1
), used AS (
    -- a windowed flow by its windows (its whole-flow row would count them twice)
    SELECT * FROM f QUALIFY kind = CASE WHEN bool_or(kind = 'window') OVER (PARTITION BY flow_id)
                                        THEN 'window' ELSE 'flow' END
), per_flow AS (
    SELECT flow_id, any_value(local_ip) AS local_ip, any_value(local_port) AS local_port,
        arg_max(remote_ip, end_ns) AS remote_ip, any_value(remote_port) AS remote_port,
        any_value(transport) AS transport, min(start_ns) AS first_ns, max(end_ns) AS last_ns,
        sum(bytes_up)::BIGINT AS up, sum(bytes_down)::BIGINT AS down,
        sum(packets_up + packets_down)::BIGINT AS packets,
        arg_max(remote_country, end_ns) FILTER (WHERE remote_country IS NOT NULL) AS cc,
        arg_max(remote_asn, end_ns) FILTER (WHERE remote_asn IS NOT NULL) AS asn,
        arg_max(remote_org, end_ns) FILTER (WHERE remote_org IS NOT NULL) AS org,
        arg_max(sni, end_ns) FILTER (WHERE sni IS NOT NULL) AS sni,
        arg_max(ja4, end_ns) FILTER (WHERE ja4 IS NOT NULL) AS ja4,
        arg_max(verdict, end_ns) FILTER (WHERE verdict IS NOT NULL) AS verdict
    FROM used GROUP BY flow_id
)"""

_TOTALS = f"""{_USED}
SELECT count(*), coalesce(sum(packets), 0)::BIGINT, min(first_ns), max(last_ns) FROM per_flow"""

_ABROAD = f"""{_USED}
SELECT {{key}}, any_value({{name}}), sum(up)::BIGINT AS up FROM per_flow
WHERE cc IS NOT NULL AND NOT list_contains($home, cc) AND {{key}} IS NOT NULL
GROUP BY {{key}} ORDER BY up DESC, {{key}} LIMIT {TOP}"""

_CONNECTIONS = f"""{_USED}
SELECT k.case_index, p.flow_id, p.local_ip, p.local_port, p.remote_ip, p.remote_port,
    p.transport, p.first_ns, p.last_ns, p.up, p.down, coalesce(p.sni, ''), coalesce(p.ja4, ''),
    coalesce(p.verdict, '')
FROM per_flow p JOIN _case_flows k USING (flow_id) ORDER BY k.case_index, p.first_ns"""

_CASE_BURSTS = f"""SELECT k.case_index, b.start_ns, b.end_ns, b.bytes, b.rate, b.direction, b.flow_id
FROM {BURSTS.name} b JOIN _case_flows k USING (flow_id)
WHERE b.end_ns >= $h0 AND b.end_ns <= $now
ORDER BY k.case_index, b.start_ns, b.flow_id, b.direction"""


def from_ledger(ledger: Ledger, records: Sequence[dict[str, Any]], home: Sequence[str],
                horizon_ns: int) -> ReportData:
    """A report of the cases with the ledger's detail, over the horizon that judged them."""
    now = ledger.latest_ns
    if now is None:
        data = from_records(records, home)
        data.notes = ["The ledger is empty: nothing but the case records to show."]
        return data
    con = ledger.connection
    params: dict[str, Any] = {"h0": now - horizon_ns, "now": now}
    flows, packets, first, last = con.execute(_TOTALS, params).fetchone() or (0, 0, None, None)

    def abroad(key: str, name: str, label: str) -> list[Ranked]:
        """Upload bytes to foreign parties by ``key`` (the largest first)."""
        sql = _ABROAD.format(key=key, name=name)
        rows = con.execute(sql, {**params, "home": [c.upper() for c in home]}).fetchall()
        return [Ranked(label.format(k=k, name=n or "").rstrip(), int(v)) for k, n, v in rows if v]

    by_country = abroad("cc", "cc", "{k}")
    by_asn = abroad("asn", "org", "AS{k} {name}")
    by_host = abroad("local_ip", "local_ip", "{k}")
    captures = [str(r[0]) for r in con.execute(
        f"SELECT DISTINCT source FROM {FLOWS.name} WHERE end_ns >= $h0 AND end_ns <= $now "
        "ORDER BY source", params).fetchall()]
    # A case judged over an older horizon than this one keeps all its bursts in the plots.
    h0 = params["h0"]
    if any(parse_time(r["event"]["end"]) < h0 for r in records):
        h0 = min(h0, *(parse_time(r["event"]["start"]) for r in records))
    views = _with_detail(con, sorted(records, key=severity_order), {**params, "h0": h0})
    return ReportData(views, captures, first, last, int(packets), int(flows), by_country,
                      by_asn, by_host, f"all upload bytes to foreign parties in the ledger's "
                      f"last {horizon_ns / 3.6e12:g} h", list(home))


def _with_detail(con: Any, records: Sequence[dict[str, Any]],
                 params: dict[str, Any]) -> list[CaseView]:
    """Each case with every burst and connection of its flows, in two queries for all."""
    keys = [(i, flow_number(f)) for i, r in enumerate(records)
            for f in r["burstwatch"]["case"].get("flows", [])]
    import pyarrow as pa

    con.register("_case_flows", pa.table({
        "case_index": pa.array([k[0] for k in keys], pa.int64()),
        "flow_id": pa.array([k[1] for k in keys], pa.int64())}))
    try:
        conns = con.execute(_CONNECTIONS, params).fetchall()
        cols = con.execute(_CASE_BURSTS, params).fetchnumpy()
    finally:
        con.unregister("_case_flows")
    by_case: dict[int, list[Connection]] = {}
    for row in conns:
        by_case.setdefault(int(row[0]), []).append(Connection(
            flow_hex(row[1]), str(row[2]), int(row[3]), str(row[4]), int(row[5]), str(row[6]),
            int(row[7]), int(row[8]), int(row[9] or 0), int(row[10] or 0), str(row[11]),
            str(row[12]), str(row[13])))
    index = np.asarray(cols["case_index"], np.int64)
    every = Bursts(np.asarray(cols["start_ns"], np.int64), np.asarray(cols["end_ns"], np.int64),
                   np.asarray(cols["bytes"], np.int64), np.asarray(cols["rate"], np.float64),
                   np.asarray(cols["direction"], np.int8),
                   [flow_hex(x) for x in np.asarray(cols["flow_id"], np.int64).tolist()])
    bounds = np.searchsorted(index, np.arange(len(records) + 1))
    views = []
    for i, rec in enumerate(records):
        mine = every.part(int(bounds[i]), int(bounds[i + 1]))
        views.append(CaseView(rec, mine.take(mine.direction == 0), mine, by_case.get(i, [])))
    return views


def merge_all(parts: Iterable[ReportData]) -> ReportData:
    out: ReportData | None = None
    for p in parts:
        out = p if out is None else out.merge(p)
    if out is None:
        raise ReportError("nothing to report")
    return out
