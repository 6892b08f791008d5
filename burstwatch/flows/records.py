"""What the flow table emits: flow/window rows and burst rows, as columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from burstwatch.flows import state as st

T = TypeVar("T")


def _concat(cls: type[T], parts: list[T], empty: T) -> T:
    """Column-wise concatenation of dataclasses of arrays. Most steps of the flow table
    emit rows in at most one of their parts: that part is returned as it is, uncopied."""
    parts = [p for p in parts if len(p)]  # type: ignore[arg-type]
    if len(parts) < 2:
        return parts[0] if parts else empty
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in fields})


def _take(obj: T, idx: npt.NDArray[np.intp]) -> T:
    """Rows ``idx`` of every column of a dataclass of arrays."""
    fields = obj.__dataclass_fields__  # type: ignore[attr-defined]
    return type(obj)(**{name: getattr(obj, name)[idx] for name in fields})


@dataclass
class FlowRows:
    """Flow rows (a flow's whole life) and window rows (one window of a long flow).

    Endpoints are oriented by role (``flows.roles``): ``orig_*`` is the local side, ``resp_*``
    the remote side, whoever spoke first; ``local_initiated`` says whether the local side also
    opened the connection (outbound) or the remote side did (inbound). ``acc_i``/``acc_f`` hold
    the raw accumulators (layout in ``flows.state``; direction 0 is local -> remote).
    """

    flow_id: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int8]
    reason: npt.NDArray[np.int8]
    window_index: npt.NDArray[np.int32]
    proto: npt.NDArray[np.uint8]
    orig_hi: npt.NDArray[np.uint64]
    orig_lo: npt.NDArray[np.uint64]
    orig_port: npt.NDArray[np.uint16]
    resp_hi: npt.NDArray[np.uint64]
    resp_lo: npt.NDArray[np.uint64]
    resp_port: npt.NDArray[np.uint16]
    local_initiated: npt.NDArray[np.bool_]
    acc_i: npt.NDArray[np.int64]
    acc_f: npt.NDArray[np.float64]
    # The tunnel the flow's first packet came through: (encapsulation bits, outer source
    # hi/lo, outer destination hi/lo) per row, columns ``TUNNEL_*``; all zero without one.
    tunnel: npt.NDArray[np.uint64]

    def __len__(self) -> int:
        return int(self.flow_id.shape[0])

    @property
    def start_ns(self) -> npt.NDArray[np.int64]:
        return self.acc_i[:, st.I_FIRST]

    @property
    def end_ns(self) -> npt.NDArray[np.int64]:
        return self.acc_i[:, st.I_LAST]

    @staticmethod
    def concat(parts: list[FlowRows]) -> FlowRows:
        return _concat(FlowRows, parts, FlowRows.empty())

    def take(self, idx: npt.NDArray[np.intp]) -> FlowRows:
        return _take(self, idx)

    @staticmethod
    def empty() -> FlowRows:
        z = np.zeros
        return FlowRows(
            z(0, np.int64), z(0, np.int8), z(0, np.int8), z(0, np.int32), z(0, np.uint8),
            z(0, np.uint64), z(0, np.uint64), z(0, np.uint16), z(0, np.uint64), z(0, np.uint64),
            z(0, np.uint16), z(0, np.bool_), z((0, st.N_ACC_I), np.int64),
            z((0, st.N_ACC_F), np.float64), no_tunnel(0),
        )


TUNNEL_MASK, TUNNEL_SRC_HI, TUNNEL_SRC_LO, TUNNEL_DST_HI, TUNNEL_DST_LO = range(5)


def no_tunnel(n: int) -> npt.NDArray[np.uint64]:
    """``FlowRows.tunnel`` for ``n`` rows that came through none."""
    return np.zeros((n, 5), np.uint64)


@dataclass
class BurstRows:
    """One row per burst: a maximal run of payload packets in one direction of one flow."""

    flow_id: npt.NDArray[np.int64]
    direction: npt.NDArray[np.int8]  # 0: local -> remote (upload), 1: the reverse
    start_ns: npt.NDArray[np.int64]
    end_ns: npt.NDArray[np.int64]
    packets: npt.NDArray[np.int64]
    bytes: npt.NDArray[np.int64]  # transport payload bytes
    proto: npt.NDArray[np.uint8]
    orig_hi: npt.NDArray[np.uint64]
    orig_lo: npt.NDArray[np.uint64]
    orig_port: npt.NDArray[np.uint16]
    resp_hi: npt.NDArray[np.uint64]
    resp_lo: npt.NDArray[np.uint64]
    resp_port: npt.NDArray[np.uint16]

    def __len__(self) -> int:
        return int(self.flow_id.shape[0])

    @property
    def rate(self) -> npt.NDArray[np.float64]:
        """Bytes per second; bursts shorter than 1 ms count as lasting 1 ms."""
        dur = np.maximum(self.end_ns - self.start_ns, 1_000_000)
        return self.bytes * 1e9 / dur

    @staticmethod
    def concat(parts: list[BurstRows]) -> BurstRows:
        return _concat(BurstRows, parts, BurstRows.empty())

    def take(self, idx: npt.NDArray[np.intp]) -> BurstRows:
        return _take(self, idx)

    @staticmethod
    def empty() -> BurstRows:
        z = np.zeros
        return BurstRows(
            z(0, np.int64), z(0, np.int8), z(0, np.int64), z(0, np.int64), z(0, np.int64),
            z(0, np.int64), z(0, np.uint8), z(0, np.uint64), z(0, np.uint64), z(0, np.uint16),
            z(0, np.uint64), z(0, np.uint64), z(0, np.uint16),
        )


def row_order(r: FlowRows) -> npt.NDArray[np.intp]:
    """Rows by (end, flow id, kind, window): an order that does not depend on the table's
    slots, so the rows of one step are the same sequence from one table or from shards."""
    return np.lexsort((r.window_index, r.kind, r.flow_id, r.end_ns))


def burst_order(b: BurstRows) -> npt.NDArray[np.intp]:
    """Bursts by (end, flow id, direction, start), for the same reason as ``row_order``."""
    return np.lexsort((b.start_ns, b.direction, b.flow_id, b.end_ns))


def emission_order(out: FlowOutput) -> FlowOutput:
    """``out`` with its rows in ``row_order`` and its bursts in ``burst_order``."""
    r, b = out.rows, out.bursts
    return FlowOutput(r.take(row_order(r)) if len(r) > 1 else r,
                      b.take(burst_order(b)) if len(b) > 1 else b, out.samples)


@dataclass
class PayloadSamples:
    """The first few payload packets of each flow direction, for deep parsing (per flow).

    Packed, not one ``bytes`` per sample: sample ``k`` is ``data[offset[k]:offset[k] + length[k]]``,
    so a batch of samples costs a few arrays however many packets it holds. ``data`` is the
    samples' own buffer (the flow table copies them out of the capture).
    """

    flow_id: npt.NDArray[np.int64]
    # 0: sent by the side that opened the connection (the client), 1: by the server. Protocol
    # detectors read a ClientHello from the client, whichever side is local.
    direction: npt.NDArray[np.int8]
    data: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    offset: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    length: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # The flow's transport and ports (client's, server's) per sample, so a flow can be
    # classified as soon as its samples are complete, before any of its rows is emitted.
    proto: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    client_port: npt.NDArray[np.uint16] = field(default_factory=lambda: np.zeros(0, np.uint16))
    server_port: npt.NDArray[np.uint16] = field(default_factory=lambda: np.zeros(0, np.uint16))
    ts_ns: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # True on the sample that gave its flow the last one it will get (all directions full).
    completes: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    # False where the sample was cut short by the table's sample policy (flows.sampling).
    whole: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))

    def __len__(self) -> int:
        return int(self.flow_id.shape[0])

    @property
    def payloads(self) -> list[bytes]:
        """Each sample as ``bytes`` (for tests and tools; the pipeline reads the packed form)."""
        data = self.data
        return [
            data[a : a + n].tobytes()
            for a, n in zip(self.offset.tolist(), self.length.tolist(), strict=True)
        ]

    @staticmethod
    def empty() -> PayloadSamples:
        return PayloadSamples(np.zeros(0, np.int64), np.zeros(0, np.int8))

    def subset(self, keep: npt.NDArray[np.intp]) -> PayloadSamples:
        """Samples ``keep``; they still point into this record's byte buffer. Columns left
        empty (a record built with the bytes only) stay empty."""
        n = len(self)
        return PayloadSamples(**{
            name: value if name == "data" or value.shape[0] != n else value[keep]
            for name, value in ((f, getattr(self, f)) for f in self.__dataclass_fields__)
        })

    @staticmethod
    def concat(parts: list[PayloadSamples]) -> PayloadSamples:
        """One packed record of ``parts``, in order (offsets moved into the joined buffer)."""
        parts = [p for p in parts if len(p)]
        if len(parts) < 2:
            return parts[0] if parts else PayloadSamples.empty()
        out = _concat(PayloadSamples, parts, PayloadSamples.empty())
        shift = np.cumsum([0] + [p.data.shape[0] for p in parts[:-1]])
        out.offset = np.concatenate([p.offset + s for p, s in zip(parts, shift, strict=True)])
        return out


@dataclass
class FlowOutput:
    """Everything one step of the flow table produced."""

    rows: FlowRows
    bursts: BurstRows
    samples: PayloadSamples
