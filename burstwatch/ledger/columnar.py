"""The conversation question answered from ledger rows held in memory, with numpy.

An in-memory ledger (a one-shot scan's) keeps its rows as the Arrow tables it would insert
into DuckDB until something asks it for SQL (``store.Ledger``). Its conversations are then
answered here, from those tables, with the meaning ``queries.conversations`` gives them in SQL:
on the 5 M-packet capture's rows in about 0.2 s instead of the database's 0.5-0.9 s, and
without DuckDB's import, set-up and memory. tests/test_ledger_columnar.py holds
both answers to be the same on random ledgers.

Text columns become integer codes in one vocabulary ranked in sorted (byte) order, so
grouping, joining and DuckDB's ORDER BY on text are integer operations; a code of -1 is NULL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from burstwatch.conversations.model import ConversationBursts, Conversations
from burstwatch.ledger.columns import empty_table
from burstwatch.ledger.queries import SHARED
from burstwatch.ledger.schema import SAME_RECORD, Table
from burstwatch.ordering import stable_argsort

I64 = npt.NDArray[np.int64]
_T = TypeVar("_T", bound=np.generic)
Bool = npt.NDArray[np.bool_]

# Context a row may not know yet and the rest of its flow's rows do: the text columns.
_SHARED_TEXT = tuple(c for c in SHARED if c != "remote_asn")


class _Vocabulary:
    """Text columns coded as integers ranked in the strings' sorted (byte) order, so codes
    compare as the strings do; -1 is NULL (and the empty string, which the ledger stores
    as NULL)."""

    def __init__(self, columns: dict[str, list[pa.ChunkedArray]]) -> None:
        self.codes, values = _coded([c for parts in columns.values() for c in parts])
        self.values: npt.NDArray[np.object_] = np.empty(len(values), object)
        self.values[:] = values
        at = iter(self.codes)
        self.columns = {name: np.concatenate([next(at) for _ in parts] + [np.zeros(0, np.int64)])
                        for name, parts in columns.items()}

    def code_of(self, value: str) -> int:
        """A value's code (-2: in no column)."""
        at = int(np.searchsorted(self.values, value)) if len(self.values) else 0
        return at if at < len(self.values) and self.values[at] == value else -2

    def text(self, codes: I64, default: str) -> npt.NDArray[np.object_]:
        """The strings of codes (``default`` for NULL)."""
        out = np.full(codes.shape[0], default, object)
        known = codes >= 0
        out[known] = self.values[codes[known]]
        return out


def _coded(columns: list[pa.ChunkedArray]) -> tuple[list[I64], list[str]]:
    """Each column's codes among the sorted distinct strings of all, and those strings: by
    Arrow's hash and sort kernels (a Python dictionary took 0.45 s for the 5 M-packet
    capture's rows). A dictionary chunk's dictionary is hashed, not its rows: the ledger's
    text is mostly dictionaries made per batch, two fifths as many strings as rows on that
    capture (26 ms against 51 to code them). Only strings some row holds are ranked. Called
    through ``pyarrow._compute``, the kernels' own module: importing ``pyarrow.compute``,
    which wraps each of them with its documentation, takes 70-80 ms."""
    from pyarrow._compute import CastOptions, call_function

    def text(array: pa.Array) -> pa.Array:
        return array if array.type == pa.string() else call_function(
            "cast", [array], CastOptions(pa.string()))

    strings: list[pa.Array] = []  # hashed together: plain chunks, and dictionaries
    # Per column and chunk: where its strings start among ``strings``, and each row's index
    # into them for a dictionary chunk (-1: NULL); None for a plain chunk (row k, string k).
    places: list[list[tuple[int, int, I64 | None]]] = []
    at = 0
    for column in columns:
        place: list[tuple[int, int, I64 | None]] = []
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                strings.append(text(chunk.dictionary))
                place.append((at, len(chunk), _integers(chunk.indices, -1)))
            else:
                strings.append(text(chunk))
                place.append((at, len(chunk), None))
            at += len(strings[-1])
        places.append(place)
    encoded = call_function("dictionary_encode", [pa.chunked_array(strings, pa.string())])
    distinct = (encoded.chunks[0].dictionary if encoded.num_chunks
                else pa.array([], pa.string()))  # the chunks share one dictionary
    # Each string's index among the distinct ones; the last slot stands for NULL.
    nothing = len(distinct)
    of_string = np.concatenate([_integers(c.indices, nothing) for c in encoded.chunks]
                               + [np.zeros(0, np.int64)])
    rows = []
    for place in places:
        parts = [np.zeros(0, np.int64)]
        for start, length, index in place:
            if index is None:
                parts.append(of_string[start:start + length])
            else:
                parts.append(np.where(index >= 0, of_string[start + np.maximum(index, 0)],
                                      nothing))
        rows.append(np.concatenate(parts))
    held = np.zeros(nothing + 1, np.bool_)
    for row in rows:
        held[row] = True
    held[nothing] = False  # NULL, and the empty string (stored as NULL): no text, -1
    if nothing:
        held[:nothing] &= ~call_function("equal", [distinct, pa.scalar("")]).to_numpy(
            zero_copy_only=False).astype(np.bool_)
    ranked = call_function("sort_indices", [distinct]).to_numpy().astype(np.int64)
    ranked = ranked[held[ranked]]
    rank = np.full(nothing + 1, -1, np.int64)
    rank[ranked] = np.arange(ranked.shape[0])
    values = call_function("take", [distinct, pa.array(ranked, pa.int64())])
    return [rank[row] for row in rows], values.to_pylist()


def _integers(column: pa.Array | pa.ChunkedArray, null: int) -> I64:
    """An integer column as int64, ``null`` for NULL (without pyarrow.compute's import)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [np.zeros(0, np.int64)]
    for chunk in chunks:
        if chunk.null_count:
            values = chunk.to_numpy(zero_copy_only=False)  # float64, NaN for NULL
            parts.append(np.where(np.isnan(values), null, values).astype(np.int64))
        else:
            parts.append(chunk.to_numpy().astype(np.int64, copy=False))
    return np.concatenate(parts)


def _floats(column: pa.ChunkedArray) -> npt.NDArray[np.float64]:
    return np.concatenate([np.zeros(0)] + [c.to_numpy(zero_copy_only=False).astype(np.float64)
                                           for c in column.chunks])


class _Groups:
    """Rows grouped by an integer key (one stable sort): sums, extremes and rows per group."""

    def __init__(self, key: I64) -> None:
        self.order = stable_argsort(key)
        ordered = key[self.order]
        head = np.r_[True, ordered[1:] != ordered[:-1]] if ordered.size else np.zeros(0, np.bool_)
        self.starts = np.flatnonzero(head)
        self.keys = ordered[self.starts]
        self.of_row = np.empty(key.shape[0], np.int64)
        self.of_row[self.order] = np.cumsum(head) - 1
        self._by_time: I64 | None = None  # rows by (group, time), for ``latest``

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def reduce(self, ufunc: np.ufunc, values: npt.NDArray[_T]) -> npt.NDArray[_T]:
        if not len(self):
            return values[:0]
        return ufunc.reduceat(values[self.order], self.starts)

    def first(self) -> I64:
        """Each group's first row (in row order)."""
        return self.order[self.starts]

    def latest(self, time: I64, valid: Bool) -> I64:
        """Each group's valid row with the latest ``time`` (-1: none): DuckDB's
        ``arg_max(x, time) FILTER (WHERE x IS NOT NULL)`` for an x valid where ``valid``.
        Every call of one grouping must pass the same ``time``."""
        if self._by_time is None:
            self._by_time = np.lexsort((time, self.of_row))
        order = self._by_time[valid[self._by_time]]
        g = self.of_row[order]
        last = np.r_[g[1:] != g[:-1], True] if order.size else np.zeros(0, np.bool_)
        out = np.full(len(self), -1, np.int64)
        out[g[last]] = order[last]
        return out

    def count_distinct(self, values: I64) -> I64:
        """Distinct non-negative ``values`` per group."""
        key, width = _combined(self.of_row, values)
        return np.bincount(np.unique(key) // width, minlength=len(self)).astype(np.int64)


def _pick(choice: I64, values: I64) -> I64:
    """``values[choice]``, -1 where ``choice`` is -1."""
    return np.where(choice >= 0, values[np.maximum(choice, 0)] if values.size else -1, -1)


@dataclass
class _Records:
    """Burst rows then flow rows, with their flow's context and party (queries' ``rec``)."""

    burst: Bool
    flow: I64  # index into ``flow_ids``
    flow_ids: I64
    local_ip: I64
    remote_ip: I64
    remote_port: I64
    transport: I64
    start_ns: I64
    end_ns: I64
    direction: I64  # -1 on flow rows
    bytes: I64
    packets: I64
    rate: npt.NDArray[np.float64]
    bytes_up: I64
    bytes_down: I64
    window: Bool  # a window row (flow rows only)
    window_index: I64  # -1 none
    shared: dict[str, I64]  # the context columns, coalesced with the flow's (remote_asn: -1 NULL)
    party: I64
    domain_party: Bool

    def take(self, rows: npt.NDArray[np.generic]) -> _Records:
        taken: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            taken[name] = (value if name == "flow_ids" else  # indexed by ``flow``: all kept
                           {k: v[rows] for k, v in value.items()} if isinstance(value, dict)
                           else value[rows])
        return _Records(**taken)

    def __len__(self) -> int:
        return int(self.burst.shape[0])


def _records(bursts: pa.Table, flows: pa.Table) -> tuple[_Vocabulary, _Records]:
    nb, nf = bursts.num_rows, flows.num_rows

    def both(name: str, null: int = -1) -> I64:
        return np.concatenate([_integers(bursts.column(name), null),
                               _integers(flows.column(name), null)])

    vocab = _Vocabulary({name: [bursts.column(name), flows.column(name)] for name in (
        "local_ip", "remote_ip", "remote_net", "transport", *_SHARED_TEXT)}
        | {"kind": [flows.column("kind")]})
    texts = dict(vocab.columns)
    window = np.r_[np.zeros(nb, np.bool_), texts.pop("kind") == vocab.code_of("window")]
    texts["remote_asn"] = both("remote_asn")
    flows_of = _Groups(both("flow_id"))
    flow_ids, flow = flows_of.keys, flows_of.of_row
    end = both("end_ns")
    # Each flow's context: per column, the value of its latest flow row that has one.
    from_flows = np.r_[np.zeros(nb, np.bool_), np.ones(nf, np.bool_)]
    shared = {}
    for name in SHARED:
        own = texts[name]
        latest = flows_of.latest(end, from_flows & (own >= 0))
        shared[name] = np.where(own >= 0, own, _pick(latest[flow], own))
    domain = shared["sni_domain"]
    return vocab, _Records(
        burst=~from_flows, flow=flow, flow_ids=flow_ids, local_ip=texts["local_ip"],
        remote_ip=texts["remote_ip"], remote_port=both("remote_port"),
        transport=texts["transport"], start_ns=both("start_ns"), end_ns=end,
        direction=np.r_[_integers(bursts.column("direction"), -1), np.full(nf, -1, np.int64)],
        bytes=np.r_[_integers(bursts.column("bytes"), 0), np.zeros(nf, np.int64)],
        packets=np.r_[_integers(bursts.column("packets"), 0), np.zeros(nf, np.int64)],
        rate=np.r_[_floats(bursts.column("rate")), np.zeros(nf)],
        bytes_up=np.r_[np.zeros(nb, np.int64), _integers(flows.column("bytes_up"), 0)],
        bytes_down=np.r_[np.zeros(nb, np.int64), _integers(flows.column("bytes_down"), 0)],
        window=window,
        window_index=np.r_[np.full(nb, -1, np.int64), _integers(flows.column("window_index"), -1)],
        shared=shared, party=np.where(domain >= 0, domain, texts["remote_net"]),
        domain_party=domain >= 0,
    )


@dataclass
class _Connections:
    """One row per flow of the judged conversations in the horizon (queries' ``judge_conn``)."""

    pair: I64
    local_ip: I64
    domain_party: Bool
    remote_ip: I64
    remote_port: I64
    transport: I64
    shared: dict[str, I64]
    first_ns: I64
    last_ns: I64
    up: I64
    down: I64


def _connections(hz: _Records, pair: I64) -> _Connections:
    flows = _Groups(hz.flow)
    n, g = len(flows), flows.of_row
    # A flow row once (a window repeated by live snapshots: the latest) ...
    summary = np.flatnonzero(~hz.burst)
    order = summary[np.lexsort((-hz.end_ns[summary], hz.window_index[summary],
                                hz.window[summary], g[summary]))]
    same = ((g[order][1:] == g[order][:-1]) & (hz.window[order][1:] == hz.window[order][:-1])
            & (hz.window_index[order][1:] == hz.window_index[order][:-1]))
    once = order[np.r_[True, ~same]] if order.size else order
    # ... and a windowed flow by its windows, whose whole-flow row would count them twice.
    windowed = np.zeros(n, np.bool_)
    windowed[g[once[hz.window[once]]]] = True
    used = once[hz.window[once] == windowed[g[once]]]
    summarised = np.zeros(n, np.bool_)
    summarised[g[used]] = True
    up, down = np.zeros(n, np.int64), np.zeros(n, np.int64)
    np.add.at(up, g[used], hz.bytes_up[used])
    np.add.at(down, g[used], hz.bytes_down[used])
    # A flow with no summary in the horizon yet (still open) counts by its bursts.
    open_bursts = np.flatnonzero(hz.burst & ~summarised[g])
    for direction, total in ((0, up), (1, down)):
        rows = open_bursts[hz.direction[open_bursts] == direction]
        np.add.at(total, g[rows], hz.bytes[rows])
    first = flows.first()
    return _Connections(
        pair=pair[first], local_ip=hz.local_ip[first], domain_party=hz.domain_party[first],
        remote_ip=hz.remote_ip[flows.latest(hz.end_ns, np.ones(len(hz), np.bool_))],
        remote_port=hz.remote_port[first], transport=hz.transport[first],
        shared={name: _pick(flows.latest(hz.end_ns, values >= 0), values)
                for name, values in hz.shared.items()},
        first_ns=flows.reduce(np.minimum, hz.start_ns), last_ns=flows.reduce(np.maximum, hz.end_ns),
        up=up, down=down,
    )


def _combined(a: I64, b: I64) -> tuple[I64, int]:
    """One int64 key for the pair (a, b) of non-negative codes, and b's width."""
    width = int(b.max(initial=0)) + 1
    return a * width + b, width


def _earliest(keys: I64, start: I64, wanted: I64) -> I64:
    """The earliest ``start`` of the rows with each ``wanted`` key (-1: no such row)."""
    groups = _Groups(keys)
    if not len(groups):
        return np.full(wanted.shape[0], -1, np.int64)
    firsts = groups.reduce(np.minimum, start)
    at = np.minimum(np.searchsorted(groups.keys, wanted), len(groups) - 1)
    return np.where(groups.keys[at] == wanted, firsts[at], -1)


def _top(conv: I64, nconv: int, values: I64, weight: I64, label: I64 | None = None) -> I64:
    """Per conversation (``conv``: each row's, 0..nconv-1), the non-NULL value carrying the
    most bytes (ties: the smallest); -1 when none: queries' ``top_*``. With ``label``: the
    greatest label of that value instead, chosen among the values that have one (DuckDB's
    arg_min passes over a NULL argument): the top AS's organisation."""
    out = np.full(nconv, -1, np.int64)
    rows = np.flatnonzero(values >= 0)
    key, width = _combined(conv[rows], values[rows])
    pairs, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    w = np.zeros(pairs.shape[0], np.int64)
    np.add.at(w, inverse, weight[rows])
    c, answer = pairs // width, pairs % width
    if label is not None:
        answer = np.full(pairs.shape[0], -1, np.int64)
        np.maximum.at(answer, inverse, label[rows])
    order = np.lexsort((pairs % width, -w, c))
    order = order[answer[order] >= 0]
    head = order[np.r_[True, c[order][1:] != c[order][:-1]]] if order.size else order
    out[c[head]] = answer[head]
    return out


def conversations(
    bursts: pa.Table, flows: pa.Table, horizon_ns: int, now_ns: int, *,
    bursty_only: bool = False, flagged: Sequence[int] = (),
) -> tuple[Conversations, ConversationBursts]:
    """``queries.conversations`` over the ledger rows ``bursts`` and ``flows`` (Arrow tables
    shaped like the ledger's tables, duplicates and aged rows already dropped)."""
    vocab, rec = _records(bursts, flows)
    rec = rec.take(np.flatnonzero(rec.end_ns <= now_ns))
    pair, width = _combined(rec.local_ip, rec.party)
    h0 = now_ns - horizon_ns
    in_horizon = np.flatnonzero(rec.end_ns >= h0)
    # The conversations judged: those with a burst in the horizon, or with a flagged flow.
    judging = rec.burst[in_horizon] | (not bursty_only) | np.isin(
        rec.flow_ids[rec.flow[in_horizon]], np.asarray(list(flagged), np.int64))
    hz_rows = in_horizon[np.isin(pair[in_horizon], np.unique(pair[in_horizon][judging]))]
    hz = rec.take(hz_rows)
    conn = _connections(hz, pair[hz_rows])
    convs = _Groups(conn.pair)
    n, of_conn = len(convs), convs.of_row
    local = convs.keys // width
    weight = conn.up + conn.down
    tops = {name: _top(of_conn, n, values, weight) for name, values in (
        ("remote_country", conn.shared["remote_country"]), ("verdict", conn.shared["verdict"]),
        ("sni", conn.shared["sni"]), ("remote_port", conn.remote_port),
        ("remote_ip", conn.remote_ip), ("transport", conn.transport),
        ("remote_asn", conn.shared["remote_asn"]))}
    org = _top(of_conn, n, conn.shared["remote_asn"], weight, conn.shared["remote_org"])
    # Novelty, over every record of the hosts judged (not just the horizon).
    hist = np.flatnonzero(np.isin(rec.local_ip, np.unique(conn.local_ip)))

    def first_with(column: str) -> I64:
        values, top = rec.shared[column][hist], tops[column]
        known = values >= 0
        span = max(int(values.max(initial=0)), int(top.max(initial=0))) + 1
        seen = _earliest(rec.local_ip[hist][known] * span + values[known],
                         rec.start_ns[hist][known], local * span + top)
        return np.where(top >= 0, seen, -1)

    hosts = _Groups(rec.local_ip[hist])
    host_of = np.searchsorted(hosts.keys, local)
    upload = rec.burst[hist] & (rec.direction[hist] == 0)
    conv = Conversations(
        local_ip=vocab.text(local, ""), party=vocab.text(convs.keys % width, ""),
        party_kind=np.where(convs.reduce(np.maximum, conn.domain_party.astype(np.int64)) > 0,
                            "domain", "net").astype(object),
        remote_ip=vocab.text(tops["remote_ip"], ""),
        remote_ips=convs.count_distinct(conn.remote_ip),
        remote_port=np.maximum(tops["remote_port"], 0),
        transport=vocab.text(tops["transport"], ""),
        remote_country=vocab.text(tops["remote_country"], ""),
        remote_asn=np.maximum(tops["remote_asn"], 0), remote_org=vocab.text(org, ""),
        encryption=vocab.text(tops["verdict"], "none"), server_name=vocab.text(tops["sni"], ""),
        connections=np.bincount(of_conn, minlength=n).astype(np.int64),
        bytes_up=convs.reduce(np.add, conn.up), bytes_down=convs.reduce(np.add, conn.down),
        first_seen_ns=convs.reduce(np.minimum, conn.first_ns),
        last_seen_ns=convs.reduce(np.maximum, conn.last_ns),
        party_first_seen_ns=_earliest(pair[hist], rec.start_ns[hist], convs.keys),
        asn_first_seen_ns=first_with("remote_asn"),
        country_first_seen_ns=first_with("remote_country"),
        host_first_seen_ns=hosts.reduce(np.minimum, rec.start_ns[hist])[host_of],
        host_peak_up_rate=hosts.reduce(np.maximum, np.where(upload, rec.rate[hist], 0.0))[host_of],
        horizon_start_ns=np.full(n, h0, np.int64), horizon_end_ns=np.full(n, now_ns, np.int64),
    )
    return conv, _bursts(hz, pair[hz_rows], vocab)


def _bursts(hz: _Records, pair: I64, vocab: _Vocabulary) -> ConversationBursts:
    """The horizon's bursts of the judged conversations, numbered as the conversations are
    ordered (by host, then party)."""
    conversation = np.unique(pair, return_inverse=True)[1].reshape(-1)
    rows = np.flatnonzero(hz.burst)
    flow_id = hz.flow_ids[hz.flow[rows]]
    order = rows[np.lexsort((hz.direction[rows], flow_id, hz.end_ns[rows], hz.start_ns[rows],
                             conversation[rows]))]
    return ConversationBursts(
        conversation=conversation[order], direction=hz.direction[order].astype(np.int8),
        start_ns=hz.start_ns[order], end_ns=hz.end_ns[order], bytes=hz.bytes[order],
        packets=hz.packets[order], flow_id=hz.flow_ids[hz.flow[order]],
        remote_ip=vocab.text(hz.remote_ip[order], ""),
    )


def without_repeats(tables: Sequence[pa.Table], schema: Table) -> pa.Table:
    """``tables`` (rows of ``schema``, in the order they were added) as one, without a row
    whose record an earlier table holds: what the ledger's ``INSERT ... WHERE NOT EXISTS``
    keeps (rows repeated within one table all stay, as they do there)."""
    if not tables:
        return empty_table(schema)
    whole = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    if len(tables) == 1:
        return whole
    keys = [_coded([whole.column(name)])[0][0] if name == "kind"
            else _integers(whole.column(name), -1) for name in SAME_RECORD[schema.name]]
    added = np.repeat(np.arange(len(tables)), [t.num_rows for t in tables])
    order = np.lexsort((added, *reversed(keys)))
    same = np.ones(max(order.shape[0] - 1, 0), np.bool_)
    for key in keys:
        same &= key[order][1:] == key[order][:-1]
    first = np.r_[True, ~same] if order.size else np.zeros(0, np.bool_)
    earliest = np.empty(order.shape[0], np.int64)
    earliest[order] = added[order][np.maximum.accumulate(np.where(first, np.arange(order.size), 0))]
    keep = added == earliest
    if keep.all():
        return whole
    # Table by table: taking from the whole would unify dictionaries, which Arrow cannot do
    # for those holding a null (the domains of names with none).
    kept = np.split(keep, np.cumsum([t.num_rows for t in tables])[:-1])
    return pa.concat_tables([t if k.all() else t.take(pa.array(np.flatnonzero(k)))
                             for t, k in zip(tables, kept, strict=True)])
