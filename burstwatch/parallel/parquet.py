"""A shard's batch of one step as two Parquet files (rows, bursts), and back, exactly.

Cluster workers (``parallel.cluster``) leave their results on shared storage this way; the
columns are the batch's own (flow table fields, the accumulator matrices one column each,
features, enrichment columns), so another tool can read them too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from burstwatch.features import FEATURE_NAMES, FeatureMatrix
from burstwatch.flows import BurstRows, FlowRows
from burstwatch.records import FlowBatch

_EXTRA = "extra."
_FEATURE = "feature."


def _fields(obj: FlowRows | BurstRows, extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for name in obj.__dataclass_fields__:
        value = getattr(obj, name)
        if value.ndim == 2:
            cols.update({f"{name}.{j}": value[:, j] for j in range(value.shape[1])})
        else:
            cols[name] = value
    cols.update({_EXTRA + k: v for k, v in extra.items()})
    return cols


def _table(cols: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({k: pa.array(v) for k, v in cols.items()})


def step_paths(folder: Path, step: int) -> tuple[Path, Path]:
    return folder / f"rows-{step:08d}.parquet", folder / f"bursts-{step:08d}.parquet"


def write_step(folder: Path, step: int, batch: FlowBatch | None) -> None:
    """Nothing when the shard emitted nothing in this step."""
    if batch is None:
        return
    rows_path, bursts_path = step_paths(folder, step)
    if len(batch.rows):
        cols = _fields(batch.rows, batch.extra)
        cols.update({_FEATURE + n: batch.features.values[:, i]
                     for i, n in enumerate(batch.features.names)})
        pq.write_table(_table(cols), rows_path)
    if len(batch.bursts):
        pq.write_table(_table(_fields(batch.bursts, batch.burst_extra)), bursts_path)


def _restore(empty: FlowRows | BurstRows, table: pa.Table | None) -> tuple[dict, dict]:
    """(dataclass fields, extra columns) from a table written by ``write_step``."""
    if table is None:
        return {n: getattr(empty, n) for n in empty.__dataclass_fields__}, {}
    cols = {n: table.column(n).to_numpy(zero_copy_only=False) for n in table.column_names}
    fields = {}
    for name in empty.__dataclass_fields__:
        model = getattr(empty, name)
        if model.ndim == 2:
            parts = [cols[f"{name}.{j}"] for j in range(model.shape[1])]
            fields[name] = np.stack(parts, axis=1).astype(model.dtype, copy=False)
        else:
            fields[name] = cols[name].astype(model.dtype, copy=False)
    extra = {k[len(_EXTRA):]: v for k, v in cols.items() if k.startswith(_EXTRA)}
    return fields, extra


def read_step(folder: Path, step: int, source: str) -> FlowBatch | None:
    rows_path, bursts_path = step_paths(folder, step)
    rows_t = pq.read_table(rows_path) if rows_path.exists() else None
    bursts_t = pq.read_table(bursts_path) if bursts_path.exists() else None
    if rows_t is None and bursts_t is None:
        return None
    row_fields, extra = _restore(FlowRows.empty(), rows_t)
    burst_fields, burst_extra = _restore(BurstRows.empty(), bursts_t)
    if rows_t is not None:
        names = tuple(n[len(_FEATURE):] for n in rows_t.column_names if n.startswith(_FEATURE))
        values = np.stack([rows_t.column(_FEATURE + n).to_numpy() for n in names], axis=1)
    else:
        names, values = FEATURE_NAMES, np.zeros((0, len(FEATURE_NAMES)))
    return FlowBatch(source, FlowRows(**row_fields), FeatureMatrix(values, names),
                     BurstRows(**burst_fields), extra, burst_extra)
