"""A FlowBatch as two Arrow tables shaped like the ledger's ``bursts`` and ``flows``.

Built from the numpy columns without a Python loop over rows: text columns are Arrow
dictionaries whose values (addresses, networks, domains, names) are formatted once per
distinct value, so DuckDB ingests them in bulk. Only pyarrow's array builders are used, not
its compute functions, whose module costs every scan's start 35 ms to import.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from burstwatch.flows import state as fs
from burstwatch.ledger.party import TextCache, from_distinct
from burstwatch.ledger.schema import BURSTS, FLOWS, Table
from burstwatch.outputs.ecs import transport_name
from burstwatch.records import FlowBatch

# The enrichment columns of FlowBatch.extra / burst_extra the ledger keeps, by ledger name.
TEXT_CONTEXT = {
    "verdict": "burstwatch.encryption.verdict",
    "sni": "tls.client.server_name",
    "ja4": "burstwatch.tls.client.ja4",
    "remote_country": "destination.geo.country_iso_code",
    "remote_org": "destination.as.organization.name",
}
ASN = "destination.as.number"

_TRANSPORTS = pa.array([transport_name(p) for p in range(256)], pa.string())
_KINDS = pa.array(["flow", "window"], pa.string())  # indexed by fs.ROW_FLOW / fs.ROW_WINDOW
_REASONS = pa.array(list(fs.END_NAMES), pa.string())


_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def _text(col: npt.NDArray[np.generic] | None, n: int, distinct: bool = False) -> pa.Array:
    """An enrichment string column; missing, None and "" all become NULL. ``distinct``: as a
    dictionary array (each distinct value once)."""
    kind = _DICTIONARY if distinct else pa.string()
    if col is None:
        return pa.nulls(n, kind)
    values = np.asarray(col, dtype=object)
    return pa.array(values, kind, from_pandas=True, mask=values == "")


def _asn(col: npt.NDArray[np.generic] | None, n: int) -> pa.Array:
    """AS numbers arrive as floats with NaN (or 0) for unknown; stored as nullable BIGINT."""
    if col is None:
        return pa.nulls(n, pa.int64())
    a = np.asarray(col, np.float64)
    unknown = ~(a > 0)
    return pa.array(np.where(unknown, 0, a).astype(np.int64), mask=unknown)


def _context(
    extra: dict[str, npt.NDArray[np.generic]], n: int, text: TextCache
) -> dict[str, pa.Array]:
    # Server names as distinct values: the registrable domain is looked up once per name.
    cols = {name: _text(extra.get(key), n, distinct=name == "sni")
            for name, key in TEXT_CONTEXT.items()}
    cols["sni_domain"] = text.domains(cols["sni"])
    cols["remote_asn"] = _asn(extra.get(ASN), n)
    return cols


def _endpoints(
    text: TextCache, proto: npt.NDArray[np.uint8],
    local_hi: npt.NDArray[np.uint64], local_lo: npt.NDArray[np.uint64],
    local_port: npt.NDArray[np.uint16], remote_hi: npt.NDArray[np.uint64],
    remote_lo: npt.NDArray[np.uint64], remote_port: npt.NDArray[np.uint16],
) -> dict[str, pa.Array]:
    return {
        "local_ip": text.addresses(local_hi, local_lo),
        "local_port": pa.array(local_port.astype(np.int32)),
        "remote_ip": text.addresses(remote_hi, remote_lo),
        "remote_port": pa.array(remote_port.astype(np.int32)),
        "remote_net": text.networks(remote_hi, remote_lo),
        "transport": pa.DictionaryArray.from_arrays(pa.array(proto.astype(np.int16)), _TRANSPORTS),
    }


def _source(name: str, n: int) -> pa.Array:
    return from_distinct([name], np.zeros(n, np.int32))


# Each ledger column type as Arrow's (the tables' plain types; built columns may be
# dictionaries of these).
ARROW_TYPES = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "TINYINT": pa.int8(),
               "DOUBLE": pa.float64(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_()}


def empty_table(schema: Table) -> pa.Table:
    """A table of ``schema`` with no rows."""
    return pa.table({c.name: pa.array([], ARROW_TYPES[c.type]) for c in schema.columns})


def _table(schema: Table, cols: dict[str, pa.Array]) -> pa.Table:
    return pa.table({name: cols[name] for name in schema.names})


def burst_table(batch: FlowBatch, text: TextCache, provisional: bool = False) -> pa.Table:
    """The batch's bursts as rows of ``bursts``."""
    b = batch.bursts
    n = len(b)
    cols = _endpoints(text, b.proto, b.orig_hi, b.orig_lo, b.orig_port,
                      b.resp_hi, b.resp_lo, b.resp_port)
    cols |= _context(batch.burst_extra, n, text)
    cols |= {
        "start_ns": pa.array(b.start_ns),
        "end_ns": pa.array(b.end_ns),
        "direction": pa.array(b.direction.astype(np.int8)),
        "bytes": pa.array(b.bytes),
        "packets": pa.array(b.packets),
        "rate": pa.array(b.rate),
        "flow_id": pa.array(b.flow_id),
        "source": _source(batch.source, n),
        "provisional": pa.repeat(pa.scalar(provisional, pa.bool_()), n),
    }
    return _table(BURSTS, cols)


def flow_table(batch: FlowBatch, text: TextCache, provisional: bool = False) -> pa.Table:
    """The batch's flow and window rows as rows of ``flows``."""
    r = batch.rows
    n = len(r)
    acc = r.acc_i
    cols = _endpoints(text, r.proto, r.orig_hi, r.orig_lo, r.orig_port,
                      r.resp_hi, r.resp_lo, r.resp_port)
    cols |= _context(batch.extra, n, text)
    cols |= {
        "flow_id": pa.array(r.flow_id),
        "kind": pa.DictionaryArray.from_arrays(pa.array(r.kind.astype(np.int8)), _KINDS),
        "window_index": pa.array(r.window_index.astype(np.int32), mask=r.kind != fs.ROW_WINDOW),
        "reason": pa.DictionaryArray.from_arrays(pa.array(r.reason.astype(np.int8)), _REASONS),
        "start_ns": pa.array(acc[:, fs.I_FIRST]),
        "end_ns": pa.array(acc[:, fs.I_LAST]),
        "bytes_up": pa.array(acc[:, fs.I_PAY0]),
        "bytes_down": pa.array(acc[:, fs.I_PAY1]),
        "packets_up": pa.array(acc[:, fs.I_PKTS0]),
        "packets_down": pa.array(acc[:, fs.I_PKTS1]),
        "peak_rate": pa.array(r.acc_f[:, fs.F_PEAK_RATE]),
        "peak_up_rate": pa.array(r.acc_f[:, fs.F_PEAK_RATE0]),
        "source": _source(batch.source, n),
        "provisional": pa.repeat(pa.scalar(provisional, pa.bool_()), n),
    }
    return _table(FLOWS, cols)
