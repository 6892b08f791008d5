"""The record types passed between stages: the bottom of the import graph.

Outputs, rules, the scorer and the ledger import these, never the module that wires the
stages together (``pipeline.py``), so each stage can be used and tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from burstwatch.decode.batch import ENCAP_NAMES, STATUS_NAMES
from burstwatch.features import FeatureMatrix
from burstwatch.flows import BurstRows, FlowRows
from burstwatch.ingest import CaptureWarning

Progress = Callable[[int, int], None]  # (bytes consumed so far, total bytes or 0 if unknown)


@dataclass
class RunStats:
    """Totals over a run, for headers, summaries and `info`-like reporting."""

    files: int = 0
    packets: int = 0
    wire_bytes: int = 0
    decode: dict[str, int] = field(default_factory=dict)
    encap: dict[str, int] = field(default_factory=dict)  # packets per encapsulation crossed
    undecoded: dict[str, int] = field(default_factory=dict)  # not IP, per link type/ethertype
    reassembly: dict[str, int] = field(default_factory=dict)  # decode.reassembly's counters
    flow_rows: int = 0
    window_rows: int = 0
    bursts: int = 0
    flows_evicted: int = 0  # ended early at the flow table's ceiling (flows.table)
    warnings: list[CaptureWarning] = field(default_factory=list)

    def add_rows(self, rows: FlowRows, bursts: BurstRows) -> None:
        """Count the flow rows, window rows and bursts of one finished step."""
        self.bursts += len(bursts)
        self.flow_rows += int((rows.kind == 0).sum())
        self.window_rows += int((rows.kind == 1).sum())

    def decode_warning(self) -> str | None:
        """Said when most packets were not decoded (``decode.summary.undecoded_warning``)."""
        from burstwatch.decode.summary import undecoded_warning  # loads the decoder's kernels

        return undecoded_warning(self.packets, self.decode, self.undecoded)

    def add_decode(self, counts: np.ndarray, encap: np.ndarray | None = None,
                   undecoded: dict[str, int] | None = None) -> None:
        """Add a batch's packets per decode status, per encapsulation (``ENCAP_NAMES``
        order) and per kind of packet that was not IP (``decode.summary.undecoded_kinds``)."""
        _add(self.decode, STATUS_NAMES, counts)
        if encap is not None:
            _add(self.encap, ENCAP_NAMES, encap)
        for k, c in (undecoded or {}).items():
            self.undecoded[k] = self.undecoded.get(k, 0) + c


def _add(totals: dict[str, int], names: tuple[str, ...], counts: np.ndarray) -> None:
    for i, c in enumerate(counts.tolist()):
        if c:
            totals[names[i]] = totals.get(names[i], 0) + c


@dataclass
class FlowBatch:
    """Finished flow/window rows with their features and, once enriched, their context.

    Endpoints are oriented by role: ``orig`` is the local side, ``resp`` the remote one, and
    burst direction 0 is an upload (local -> remote). ``extra`` holds enrichment columns
    aligned with ``rows``; ``burst_extra`` the same kind of columns aligned with ``bursts``
    (verdict and geography of each burst's flow, where known when the burst ended).
    """

    source: str
    rows: FlowRows
    features: FeatureMatrix
    bursts: BurstRows
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    burst_extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def concat(parts: list[FlowBatch]) -> FlowBatch:
        """``parts`` (of one capture, with the same enrichment columns) as one batch, rows
        and bursts in the order given."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]

        def joined(cols: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
            return {k: np.concatenate([c[k] for c in cols]) for k in cols[0]} if cols else {}

        # Enrichment columns come from the parts that have rows (or bursts): a part without
        # any may have none of them.
        with_rows = [p for p in parts if len(p.rows)]
        with_bursts = [p for p in parts if len(p.bursts)]
        values = (np.concatenate([p.features.values for p in with_rows]) if with_rows
                  else first.features.values)
        return FlowBatch(
            first.source,
            FlowRows.concat([p.rows for p in with_rows]),
            FeatureMatrix(values, first.features.names),
            BurstRows.concat([p.bursts for p in with_bursts]),
            joined([p.extra for p in with_rows]),
            joined([p.burst_extra for p in with_bursts]),
        )

    def columns_like(self, other: FlowBatch) -> bool:
        """Whether ``concat`` can join the two: the same capture and, on each side that has
        records in both, the same enrichment columns."""
        return (self.source == other.source
                and (not len(self.rows) or not len(other.rows)
                     or self.extra.keys() == other.extra.keys())
                and (not len(self.bursts) or not len(other.bursts)
                     or self.burst_extra.keys() == other.burst_extra.keys()))

    def take(self, idx: np.ndarray) -> FlowBatch:
        """The rows ``idx`` (bursts are kept whole: they are not per row)."""
        return FlowBatch(
            self.source,
            self.rows.take(idx),
            FeatureMatrix(self.features.values[idx], self.features.names),
            self.bursts,
            {k: v[idx] for k, v in self.extra.items()},
            self.burst_extra,
        )
