"""capinfos-style summary of a capture: what `burstwatch info` reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from burstwatch.decode.batch import STATUS_NAMES
from burstwatch.decode.decoder import decode
from burstwatch.ingest.records import CaptureWarning
from burstwatch.ingest.source import open_capture

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
    warnings: list[CaptureWarning] = field(default_factory=list)

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
            "warnings": [{"byte_offset": w.byte_offset, "message": w.message} for w in self.warnings],
        }


def summarize_capture(path: str) -> CaptureSummary:
    """Read and decode a whole capture, keeping only running totals (bounded memory)."""
    reader = open_capture(path)
    summary = CaptureSummary(path=reader.name, format=reader.format, compressed=reader.compressed)
    status_totals = np.zeros(len(STATUS_NAMES), np.int64)
    lt_totals: dict[int, int] = {}
    first = last = None
    for records in reader.batches():
        packets = decode(records)
        summary.packets += len(packets)
        summary.captured_bytes += int(packets.cap_len.sum(dtype=np.int64))
        summary.wire_bytes += int(packets.wire_len.sum(dtype=np.int64))
        lo, hi = int(packets.ts_ns.min()), int(packets.ts_ns.max())
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
        status_totals += np.bincount(packets.status, minlength=len(STATUS_NAMES))
        kinds, counts = np.unique(packets.linktype, return_counts=True)
        for k, c in zip(kinds.tolist(), counts.tolist(), strict=True):
            lt_totals[k] = lt_totals.get(k, 0) + c
    summary.first_ts_ns, summary.last_ts_ns = first, last
    summary.linktypes = lt_totals
    summary.decode = {STATUS_NAMES[i]: int(c) for i, c in enumerate(status_totals) if c}
    summary.warnings = list(reader.warnings)
    return summary
