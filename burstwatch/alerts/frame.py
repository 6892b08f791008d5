"""The columns flow rules are evaluated over: a flow batch's records, by their record paths.

A rule's field name is the record path (``burstwatch.flow.up_burst_count``,
``burstwatch.encryption.verdict``, ``destination.geo.country_iso_code``), so the frame is a
read of the same columns the writers write (``outputs/ecs.py``), numbers as float64 (NaN
missing) and text as objects (None missing). Each column is built the first time a rule
reads it: formatting every address as text for rules that never test one would cost more
than the rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.outputs.columns import Columns
from burstwatch.outputs.ecs import flow_columns
from burstwatch.records import FlowBatch
from burstwatch.rules.catalog import FieldCatalog, record_catalog


def rule_catalog() -> FieldCatalog:
    """Every field a rule may use (``rules.catalog.record_catalog``)."""
    return record_catalog()


_FLOW_FIELDS = tuple(s.name for s in record_catalog().at_level("flow"))
_NUMBER_FIELDS = frozenset(s.name for s in record_catalog() if s.kind == "number")


class RecordFrame(Mapping[str, npt.NDArray[np.generic]]):
    """Rule columns over a batch of records (``Columns``): numbers as float64."""

    def __init__(self, columns: Columns, names: tuple[str, ...],
                 override: Mapping[str, npt.NDArray[Any]] | None = None) -> None:
        self.columns = columns
        self._names = names
        self._known = frozenset(names)
        self._built: dict[str, npt.NDArray[np.generic]] = dict(override or {})

    def __getitem__(self, name: str) -> npt.NDArray[np.generic]:
        col = self._built.get(name)
        if col is None:
            if name not in self._known:
                raise KeyError(name)
            col = self._built[name] = self._build(name)
        return col

    def _build(self, name: str) -> npt.NDArray[np.generic]:
        n = self.columns.n
        col = self.columns.get(name)
        if name in _NUMBER_FIELDS:
            return np.full(n, np.nan) if col is None else np.asarray(col, np.float64)
        return np.full(n, None, object) if col is None else np.asarray(col, object)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._known


def build_frame(batch: FlowBatch) -> RecordFrame:
    """Columns for rule evaluation, one row per flow/window row of ``batch``."""
    return RecordFrame(flow_columns(batch), _FLOW_FIELDS)
