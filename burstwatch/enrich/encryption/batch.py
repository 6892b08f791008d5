"""Encryption verdicts for many flows at once: what enrichment runs.

Three steps per chunk of flows, each in its own module: the payload samples are packed into one
buffer (:mod:`packing`); one compiled pass says which protocol detectors could match each flow
(:mod:`prefilter`), and only those flows reach the Python detectors, which make every protocol
verdict; every other flow gets the entropy test (:mod:`entropy_detector`), computed for all of
them in one compiled pass. The result equals :func:`classify.classify_flow` row by row, which
the tests check on crafted, fuzzed, generated and real flows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from burstwatch.enrich.encryption import prefilter
from burstwatch.enrich.encryption.dtls import detect_dtls
from burstwatch.enrich.encryption.entropy_detector import ALSO, NOT_RANDOM, RANDOM, judge_slots
from burstwatch.enrich.encryption.ipsec import detect_ipsec
from burstwatch.enrich.encryption.openvpn import detect_openvpn
from burstwatch.enrich.encryption.packing import PackedPayloads, pack, pack_columns
from burstwatch.enrich.encryption.quic import detect_quic
from burstwatch.enrich.encryption.ssh import detect_ssh
from burstwatch.enrich.encryption.tls import detect_tls
from burstwatch.enrich.encryption.verdict import EncryptionVerdict, FlowSample
from burstwatch.enrich.encryption.wireguard import detect_wireguard
from burstwatch.ordering import stable_argsort

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

# The protocol detectors in precedence order (classify.DETECTORS), each with its prefilter bit.
PROTOCOL_DETECTORS: tuple[tuple[int, Callable[[FlowSample], EncryptionVerdict | None]], ...] = (
    (prefilter.TLS, detect_tls),
    (prefilter.QUIC, detect_quic),
    (prefilter.DTLS, detect_dtls),
    (prefilter.SSH, detect_ssh),
    (prefilter.WIREGUARD, detect_wireguard),
    (prefilter.OPENVPN, detect_openvpn),
    (prefilter.IPSEC, detect_ipsec),
)

# Flows per compiled pass: bounds the joined payload buffer (a few MB) without per-pass cost.
CHUNK_FLOWS = 4096


@dataclasses.dataclass
class VerdictColumns:
    """Verdicts of many flows as columns: what enrichment emits, without an object per flow.

    Rows with a protocol verdict (the few flows a detector recognised) keep their verdict
    object in ``protocol``; every other row is an entropy or "none" verdict, whole in
    ``kind``, ``entropy`` (NaN where the verdict has none) and ``detail``.
    """

    kind: npt.NDArray[np.object_]
    entropy: npt.NDArray[np.float64]
    detail: npt.NDArray[np.object_]
    protocol: dict[int, EncryptionVerdict]

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def verdicts(self) -> list[EncryptionVerdict]:
        """One verdict object per row (for tests and tools; the pipeline reads the columns)."""
        out = []
        for i, (kind, ent, detail) in enumerate(
            zip(self.kind.tolist(), self.entropy.tolist(), self.detail.tolist(), strict=True)
        ):
            v = self.protocol.get(i)
            if v is None:
                v = EncryptionVerdict(kind=kind, entropy=None if math.isnan(ent) else ent, detail=detail)
            out.append(v)
        return out

    @staticmethod
    def concat(parts: list[VerdictColumns]) -> VerdictColumns:
        """The rows of ``parts`` one after the other."""
        protocol: dict[int, EncryptionVerdict] = {}
        base = 0
        for part in parts:
            protocol.update((base + i, v) for i, v in part.protocol.items())
            base += len(part)
        if not parts:
            return VerdictColumns(np.zeros(0, object), np.zeros(0), np.zeros(0, object), {})
        return VerdictColumns(
            np.concatenate([p.kind for p in parts]), np.concatenate([p.entropy for p in parts]),
            np.concatenate([p.detail for p in parts]), protocol,
        )


def _classify_chunk(
    proto: I64, client_port: I64, server_port: I64, packed: PackedPayloads,
    probe: npt.NDArray[np.bool_] | None = None,
) -> VerdictColumns:
    n = proto.shape[0]
    cand = prefilter.candidates(packed, proto, client_port, server_port)
    if probe is not None:
        cand[~probe] = 0  # samples that open no protocol were cut short: entropy test only
    client = judge_slots(packed, np.arange(n, dtype=np.int64), proto, client_port, server_port)
    kind = np.where(client.passed, "entropy", "none").astype(object)
    entropy_col = client.entropy.copy()
    detail = np.empty(n, object)
    protocol: dict[int, EncryptionVerdict] = {}
    matched = np.zeros(n, np.bool_)
    for i in np.flatnonzero(cand).tolist():
        sample = FlowSample(
            int(proto[i]), int(client_port[i]), int(server_port[i]),
            packed.payloads(i), packed.payloads(n + i),
        )
        bits = int(cand[i])
        for bit, detector in PROTOCOL_DETECTORS:
            if bits & bit:
                v = detector(sample)
                if v is not None:
                    if v.entropy is None and sample.client:
                        v = dataclasses.replace(v, entropy=float(client.entropy[i]))
                    protocol[i] = v
                    kind[i], detail[i] = v.kind, v.detail
                    entropy_col[i] = np.nan if v.entropy is None else v.entropy
                    matched[i] = True
                    break
    rest = np.flatnonzero(~matched)
    random_rows = rest[client.passed[rest]]
    server = judge_slots(
        packed, random_rows + n, proto[random_rows], client_port[random_rows],
        server_port[random_rows], want_reason=False,
    )
    reason = client.reason
    texts = np.empty(rest.shape[0], object)
    texts[:] = [f"{NOT_RANDOM}{reason[i]}" for i in rest.tolist()]
    detail[rest] = texts
    for i, also in zip(random_rows.tolist(), server.passed.tolist(), strict=True):
        detail[i] = f"{RANDOM}{reason[i]}{ALSO if also else ''}"
    return VerdictColumns(kind, entropy_col, detail, protocol)


def classify_flows(
    proto: npt.ArrayLike,
    client_port: npt.ArrayLike,
    server_port: npt.ArrayLike,
    client_payloads: Sequence[Sequence[bytes]],
    server_payloads: Sequence[Sequence[bytes]],
) -> list[EncryptionVerdict]:
    """``classify_flow`` for every row at once: same verdicts, a small fraction of the time.

    Row ``i`` is one flow: its IP protocol, ports, and the first payloads of each direction.
    """
    protos = np.asarray(proto, dtype=np.int64).ravel()
    cports = np.asarray(client_port, dtype=np.int64).ravel()
    sports = np.asarray(server_port, dtype=np.int64).ravel()
    n = protos.shape[0]
    if not (cports.shape[0] == sports.shape[0] == len(client_payloads) == len(server_payloads) == n):
        raise ValueError("classify_flows: every argument needs one entry per flow")
    out: list[EncryptionVerdict] = []
    for lo in range(0, n, CHUNK_FLOWS):
        hi = min(lo + CHUNK_FLOWS, n)
        out.extend(
            _classify_chunk(
                protos[lo:hi], cports[lo:hi], sports[lo:hi],
                pack(client_payloads[lo:hi], server_payloads[lo:hi]),
            ).verdicts()
        )
    return out


def classify_packed_columns(
    proto: npt.ArrayLike,
    client_port: npt.ArrayLike,
    server_port: npt.ArrayLike,
    data: U8 | Sequence[U8],
    offset: npt.ArrayLike,
    length: npt.ArrayLike,
    flow: npt.ArrayLike,
    direction: npt.ArrayLike,
    source: npt.ArrayLike | None = None,
    probe: npt.ArrayLike | None = None,
) -> VerdictColumns:
    """:func:`classify_flows` on samples that already sit in byte buffers, without a ``bytes``
    object per sample: sample ``k`` is ``data[offset[k]:offset[k] + length[k]]`` (with several
    buffers, ``data[source[k]][...]``), sent by flow ``flow[k]``'s client (``direction[k] == 0``)
    or server (1). A flow direction's samples are taken in the order they appear here.
    Flows whose ``probe`` is False (samples kept only as far as the entropy test reads, see
    :mod:`burstwatch.enrich.encryption.opening`) skip the protocol detectors.
    """
    protos = np.asarray(proto, dtype=np.int64).ravel()
    cports = np.asarray(client_port, dtype=np.int64).ravel()
    sports = np.asarray(server_port, dtype=np.int64).ravel()
    offs = np.asarray(offset, dtype=np.int64).ravel()
    lens = np.asarray(length, dtype=np.int64).ravel()
    flows = np.asarray(flow, dtype=np.int64).ravel()
    dirs = np.asarray(direction, dtype=np.int64).ravel()
    buffers = [data] if isinstance(data, np.ndarray) else list(data)
    srcs = np.zeros(offs.shape[0], np.int64) if source is None else np.asarray(source, np.int64).ravel()
    n = protos.shape[0]
    if not (cports.shape[0] == sports.shape[0] == n):
        raise ValueError("classify_packed: proto and ports need one entry per flow")
    if not (offs.shape[0] == lens.shape[0] == flows.shape[0] == dirs.shape[0] == srcs.shape[0]):
        raise ValueError("classify_packed: every sample needs an offset, length, flow and direction")
    if flows.size and (flows.min() < 0 or flows.max() >= n or dirs.min() < 0 or dirs.max() > 1):
        raise ValueError("classify_packed: a sample names a flow or direction that does not exist")
    if srcs.size and (srcs.min() < 0 or srcs.max() >= len(buffers)):
        raise ValueError("classify_packed: a sample names a buffer that does not exist")
    if lens.size:
        sizes = np.array([b.shape[0] for b in buffers], np.int64)[srcs]
        if lens.min() < 0 or offs.min() < 0 or ((offs + lens > sizes) & (lens > 0)).any():
            raise ValueError("classify_packed: a sample lies outside its buffer")
    probes = None if probe is None else np.asarray(probe, np.bool_).ravel()
    if probes is not None and probes.shape[0] != n:
        raise ValueError("classify_packed: probe needs one entry per flow")
    order = stable_argsort(flows)
    by_flow = flows[order]
    out: list[VerdictColumns] = []
    for lo in range(0, n, CHUNK_FLOWS):
        hi = min(lo + CHUNK_FLOWS, n)
        sel = order[np.searchsorted(by_flow, lo) : np.searchsorted(by_flow, hi)]
        packed = pack_columns(
            buffers, srcs[sel], offs[sel], lens[sel], flows[sel] - lo, dirs[sel], hi - lo
        )
        out.append(_classify_chunk(protos[lo:hi], cports[lo:hi], sports[lo:hi], packed,
                                   None if probes is None else probes[lo:hi]))
    return VerdictColumns.concat(out)


def classify_packed(*args: object, **kwargs: object) -> list[EncryptionVerdict]:
    """:func:`classify_packed_columns` as one verdict object per flow."""
    return classify_packed_columns(*args, **kwargs).verdicts()  # type: ignore[arg-type]
