"""capinfos-style summary of a capture: what `burstwatch info` reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from burstwatch.decode import batch as b
from burstwatch.decode.batch import ENCAP_NAMES, STATUS_NAMES, PacketBatch
from burstwatch.decode.config import DecodeConfig
from burstwatch.decode.decoder import Decoder
from burstwatch.ingest.records import CaptureWarning
from burstwatch.ingest.source import open_capture
from burstwatch.jit import njit

LINKTYPE_NAMES = {
    0: "NULL",
    1: "Ethernet",
    12: "Raw IP",
    14: "Raw IP",
    101: "Raw IP",
    108: "LOOP",
    113: "Linux SLL",
    228: "Raw IPv4",
    229: "Raw IPv6",
    276: "Linux SLL2",
}


# Outcomes that are not a failure to decode: IP packets, and fragments held for reassembly.
_DECODED = (b.STATUS_OK, b.STATUS_FRAGMENT)
# Share of packets that were not decoded beyond which a run says so.
UNDECODED_WARN_SHARE = 0.5


def undecoded_kinds(packets: PacketBatch) -> dict[str, int]:
    """Packets that were not decoded to IP, per link type, and per ethertype on Ethernet."""
    bad = np.flatnonzero((packets.status != b.STATUS_OK) & (packets.status != b.STATUS_FRAGMENT))
    if not bad.shape[0]:
        return {}
    lt = packets.linktype[bad]
    out: dict[str, int] = {}
    eth = bad[(lt == 1) & (packets.cap_len[bad] >= 14)]
    if eth.shape[0]:
        at = packets.records.offset[eth] + 12
        data = packets.records.data
        et = (data[at].astype(np.int64) << 8) | data[at + 1]
        kinds, counts = np.unique(et, return_counts=True)
        for k, c in zip(kinds.tolist(), counts.tolist(), strict=True):
            label = "802.3 length field (LLC)" if k <= 1500 else f"ethertype 0x{k:04x}"
            out[label] = out.get(label, 0) + c
    rest = lt[(lt != 1) | (packets.cap_len[bad] < 14)]
    kinds, counts = np.unique(rest, return_counts=True)
    for k, c in zip(kinds.tolist(), counts.tolist(), strict=True):
        label = linktype_name(k)
        out[label] = out.get(label, 0) + c
    return out


@njit(cache=True, nogil=True)
def _tally(status: np.ndarray, encap: np.ndarray, wirelen: np.ndarray,
           status_counts: np.ndarray, encap_counts: np.ndarray, ok: np.ndarray,
           ) -> tuple[int, int, int]:
    """Add each packet's ``status`` and encapsulation bits (``encap``) to the counts and list
    the packets decoded (``ok``); return (the records' wire bytes, packets not decoded to
    IP, packets listed in ``ok``)."""
    undecoded = 0
    decoded = 0
    bits = encap_counts.shape[0]
    for i in range(status.shape[0]):
        s = status[i]
        status_counts[s] += 1
        if s == b.STATUS_OK:
            ok[decoded] = i
            decoded += 1
        elif s != b.STATUS_FRAGMENT:
            undecoded += 1
        e = encap[i]
        if e:
            for k in range(bits):
                encap_counts[k] += (e >> k) & 1
    wire = 0
    for i in range(wirelen.shape[0]):
        wire += wirelen[i]
    return wire, undecoded, decoded


@dataclass(frozen=True)
class BatchCounts:
    """What a run counts of each decoded batch (``RunStats.add_decode``)."""

    wire_bytes: int  # of the records read
    status_counts: npt.NDArray[np.int64]  # packets per ``STATUS_NAMES``
    encap_counts: npt.NDArray[np.int64]  # packets per ``ENCAP_NAMES`` that crossed it
    undecoded: dict[str, int]  # ``undecoded_kinds``
    decoded: npt.NDArray[np.intp]  # the packets decoded to IP (status ok), in order


def count_batch(packets: PacketBatch, wirelen: npt.NDArray[np.uint32]) -> BatchCounts:
    """``packets``' counts, the wire bytes of the records they came from (``wirelen``) and
    which packets were decoded, in one compiled pass: the decoding thread counts each
    batch, and each numpy step it took instead was a GIL hand-over with the threads behind
    it."""
    status_counts = np.zeros(len(STATUS_NAMES), np.int64)
    encap_counts = np.zeros(len(ENCAP_NAMES), np.int64)
    ok = np.empty(len(packets), np.intp)
    wire, undecoded, decoded = _tally(packets.status, packets.encap, wirelen, status_counts,
                                      encap_counts, ok)
    return BatchCounts(wire, status_counts, encap_counts,
                       undecoded_kinds(packets) if undecoded else {}, ok[:decoded])


def undecoded_warning(packets: int, decode: dict[str, int], undecoded: dict[str, int]) -> str | None:
    """"97 % of packets were not IP: ethertype 0x8863 (...)" when most packets were not
    decoded, so a capture that gives nothing never looks like a quiet one."""
    done = sum(decode.get(STATUS_NAMES[s], 0) for s in _DECODED)
    if not packets or (packets - done) / packets <= UNDECODED_WARN_SHARE:
        return None
    share = 100 * (packets - done) / packets
    top = sorted(undecoded.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    kinds = ", ".join(f"{k} ({v:,})" for k, v in top) or "-"
    return f"{share:.0f} % of packets were not IP: {kinds}"


def linktype_name(lt: int) -> str:
    name = LINKTYPE_NAMES.get(lt)
    return f"{name} ({lt})" if name else f"link type {lt}"


@dataclass
class CaptureSummary:
    """Totals over one capture file."""

    path: str
    format: str
    compressed: bool
    packets: int = 0
    captured_bytes: int = 0
    wire_bytes: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    linktypes: dict[int, int] = field(default_factory=dict)
    decode: dict[str, int] = field(default_factory=dict)
    encap: dict[str, int] = field(default_factory=dict)
    undecoded: dict[str, int] = field(default_factory=dict)
    reassembly: dict[str, int] = field(default_factory=dict)
    warnings: list[CaptureWarning] = field(default_factory=list)

    @property
    def decode_warning(self) -> str | None:
        return undecoded_warning(self.packets, self.decode, self.undecoded)

    @property
    def duration_s(self) -> float:
        if self.first_ts_ns is None or self.last_ts_ns is None:
            return 0.0
        return (self.last_ts_ns - self.first_ts_ns) / 1e9

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "format": self.format + (".gz" if self.compressed else ""),
            "link_types": {linktype_name(k): v for k, v in sorted(self.linktypes.items())},
            "packets": self.packets,
            "captured_bytes": self.captured_bytes,
            "wire_bytes": self.wire_bytes,
            "first_ts_ns": self.first_ts_ns,
            "last_ts_ns": self.last_ts_ns,
            "duration_s": round(self.duration_s, 9),
            "decode": self.decode,
            "encapsulation": self.encap,
            "not_ip": self.undecoded,
            "reassembly": {k: v for k, v in self.reassembly.items() if v},
            "decode_warning": self.decode_warning,
            "warnings": [{"byte_offset": w.byte_offset, "message": w.message} for w in self.warnings],
        }


def summarize_capture(path: str, config: DecodeConfig | None = None) -> CaptureSummary:
    """Read and decode a whole capture, keeping only running totals (bounded memory)."""
    reader = open_capture(path)
    summary = CaptureSummary(path=reader.name, format=reader.format, compressed=reader.compressed)
    status_totals = np.zeros(len(STATUS_NAMES), np.int64)
    encap_totals = np.zeros(len(ENCAP_NAMES), np.int64)
    decoder = Decoder(config or DecodeConfig(), summary.reassembly)
    lt_totals: dict[int, int] = {}
    first = last = None
    for records in reader.batches():
        packets = decoder(records)
        summary.packets += len(packets)
        summary.captured_bytes += int(records.caplen.sum(dtype=np.int64))
        tally = count_batch(packets, records.wirelen)
        summary.wire_bytes += tally.wire_bytes
        lo, hi = int(packets.ts_ns.min()), int(packets.ts_ns.max())
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
        status_totals += tally.status_counts
        encap_totals += tally.encap_counts
        for k, c in tally.undecoded.items():
            summary.undecoded[k] = summary.undecoded.get(k, 0) + c
        kinds, counts = np.unique(packets.linktype, return_counts=True)
        for k, c in zip(kinds.tolist(), counts.tolist(), strict=True):
            lt_totals[k] = lt_totals.get(k, 0) + c
    summary.first_ts_ns, summary.last_ts_ns = first, last
    summary.linktypes = lt_totals
    summary.decode = {STATUS_NAMES[i]: int(c) for i, c in enumerate(status_totals) if c}
    summary.encap = {ENCAP_NAMES[i]: int(c) for i, c in enumerate(encap_totals) if c}
    summary.warnings = list(reader.warnings)
    return summary
