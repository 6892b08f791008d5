"""IP fragment reassembly (IPv4 and IPv6), bounded in memory and time.

Fragments are rare, so the fast path only asks whether a batch holds any (one pass over a
boolean column); those few are handled here in plain Python, one fragment at a time.
Every fragment gets the status ``fragment`` (held) or ``bad_fragment`` (dropped), except the
one completing its datagram: that packet is replaced by the whole datagram, rebuilt behind
the same link and tunnel headers, and decoded again, so it gets the datagram's ports,
payload sample and (for outer fragments of a tunnel) the tunnel's inner packet. Its wire
length becomes that of the unfragmented packet.

Dropped, and counted: a fragment overlapping one already held (the whole datagram goes:
overlaps are how fragments evade inspection), one reaching past 65,535 bytes, a non-final
fragment whose length is not a multiple of 8, one cut short by the snap length, an empty one,
one that would take the held bytes past the total limit or start a datagram beyond 65,536
partial ones; a datagram not completed within the timeout. An exact copy of a fragment held
(a retransmission) is taken as nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from burstwatch.decode import batch as b
from burstwatch.decode.config import DecodeConfig
from burstwatch.ingest.records import RecordBatch

NS = 1_000_000_000
_V6_EXT = (0, 43, 60, 51)  # headers that may stand before the fragment header
REASSEMBLY_COUNTERS = ("reassembled", "overlapping", "too_long", "misaligned", "cut_short",
                       "empty", "over_memory", "timed_out")
_MAX_PENDING = 65536  # partial datagrams at once, whatever their size
_MAX_ROUNDS = 4  # a datagram rebuilt from fragments may itself be a fragment of a tunnel


@dataclass
class _Datagram:
    first_ns: int
    header: bytes = b""  # the IP header (and IPv6 unfragmentable part) of the first fragment
    pieces: dict[int, bytes] = field(default_factory=dict)  # offset -> data
    total: int = -1  # payload length, once the last fragment is seen
    held: int = 0


@dataclass
class _Fragment:
    key: tuple[object, ...]
    offset: int
    more: bool
    data: bytes
    header: bytes  # what the rebuilt datagram starts with, when this is the first fragment
    problem: str = ""


def _parse(raw: bytes) -> _Fragment | None:
    """The fragment fields of the IP packet ``raw`` (captured bytes from its IP header)."""
    if len(raw) < 20:
        return None
    if raw[0] >> 4 == 4:
        ihl = (raw[0] & 0x0F) * 4
        total = int.from_bytes(raw[2:4], "big")
        frag = int.from_bytes(raw[6:8], "big")
        key: tuple[object, ...] = (4, raw[12:20], raw[4:6], raw[9])
        if ihl < 20 or total < ihl or len(raw) < ihl:
            return None
        header = bytearray(raw[:ihl])
        header[6:8] = b"\0\0"
        header[10:12] = b"\0\0"  # the checksum no longer holds; nothing downstream checks it
        data = raw[ihl:total]
        problem = "cut_short" if len(raw) < total else ""
        return _Fragment(key, (frag & 0x1FFF) * 8, bool(frag & 0x2000), data, bytes(header), problem)
    if len(raw) < 40:
        return None
    plen = int.from_bytes(raw[4:6], "big")
    nxt, at, link = raw[6], 40, 6  # ``link``: where the byte naming the next header sits
    while nxt in _V6_EXT:
        if len(raw) < at + 8:
            return None
        ext = (raw[at + 1] + 2) * 4 if nxt == 51 else (raw[at + 1] + 1) * 8
        nxt, link, at = raw[at], at, at + ext
    if nxt != 44 or len(raw) < at + 8:
        return None
    frag = int.from_bytes(raw[at + 2 : at + 4], "big")
    key = (6, raw[8:40], raw[at + 4 : at + 8])
    header = bytearray(raw[:at])
    header[link] = raw[at]  # the fragment header's next header takes its place
    end = 40 + plen
    data = raw[at + 8 : end]
    problem = "cut_short" if len(raw) < end else ""
    return _Fragment(key, frag & 0xFFF8, bool(frag & 1), data, bytes(header), problem)


def _rebuilt(header: bytes, payload: bytes) -> bytes:
    """The unfragmented datagram: ``header`` with its length fields set, then ``payload``."""
    out = bytearray(header)
    if out[0] >> 4 == 4:
        out[2:4] = (len(header) + len(payload)).to_bytes(2, "big")
    else:
        out[4:6] = (len(header) - 40 + len(payload)).to_bytes(2, "big")
    return bytes(out) + payload


class Reassembler:
    """Partial datagrams across batches, with their limits; ``counts`` says what happened."""

    def __init__(self, config: DecodeConfig, counts: dict[str, int] | None = None) -> None:
        """``counts``: where the counters go (a run's totals), else a dict of its own."""
        self.config = config
        self._pending: dict[tuple[object, ...], _Datagram] = {}
        self._held = 0
        self.counts = counts if counts is not None else {}
        for name in REASSEMBLY_COUNTERS:
            self.counts.setdefault(name, 0)

    @property
    def held_bytes(self) -> int:
        return self._held

    def process(self, pb: b.PacketBatch, redecode: Callable[[RecordBatch], b.PacketBatch]) -> b.PacketBatch:
        """``pb`` with its fragments held or dropped and completed datagrams in their place;
        ``redecode`` decodes rebuilt records. ``pb`` itself is returned when it has none."""
        if not pb.fragment.any():
            self._expire(pb)
            return pb
        rows = self._candidates({"status": pb.status, "fragment": pb.fragment},
                                np.arange(len(pb), dtype=np.int64))
        if not rows.shape[0]:
            self._expire(pb)
            return pb
        rec = pb.records
        data = rec.data
        offset, caplen, wirelen = rec.offset.copy(), rec.caplen.copy(), rec.wirelen.copy()
        cols = {name: getattr(pb, name).copy() for name in _DECODED}
        for _ in range(_MAX_ROUNDS):
            done_rows, blobs = self._take(data, rows, offset, caplen, cols, pb.ts_ns)
            if not done_rows:
                break
            idx = np.array(done_rows, np.int64)
            size = data.shape[0]
            for r, blob in zip(done_rows, blobs, strict=True):
                offset[r] = size
                caplen[r] = wirelen[r] = len(blob)
                size += len(blob)
            data = np.concatenate([data, np.frombuffer(b"".join(blobs), np.uint8)])
            sub = RecordBatch(
                data=data, offset=offset[idx], caplen=caplen[idx], wirelen=wirelen[idx],
                ts_ns=rec.ts_ns[idx], linktype=rec.linktype[idx], iface=rec.iface[idx],
                file_offset=rec.file_offset[idx],
            )
            again = redecode(sub)
            for name in _DECODED:
                cols[name][idx] = getattr(again, name)
            rows = self._candidates(cols, idx)
            if not rows.shape[0]:
                break
        records = RecordBatch(
            data=data, offset=offset, caplen=caplen, wirelen=wirelen, ts_ns=rec.ts_ns,
            linktype=rec.linktype, iface=rec.iface, file_offset=rec.file_offset,
        )
        out = b.PacketBatch(ts_ns=pb.ts_ns, wire_len=wirelen, cap_len=caplen,
                            linktype=pb.linktype, iface=pb.iface, records=records, **cols)
        self._expire(pb)
        return out

    # ---- helpers ----
    @staticmethod
    def _candidates(cols: dict[str, npt.NDArray], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The fragments among ``rows`` whose IP header decoded (a first fragment may be too
        short to hold its transport header)."""
        status = cols["status"][rows]
        ok = (status == b.STATUS_OK) | (status == b.STATUS_TRUNCATED_TRANSPORT)
        return rows[cols["fragment"][rows] & ok]

    def _take(
        self, data: npt.NDArray[np.uint8], rows: npt.NDArray[np.int64],
        offset: npt.NDArray[np.int64], caplen: npt.NDArray[np.uint32],
        cols: dict[str, npt.NDArray], ts_ns: npt.NDArray[np.int64],
    ) -> tuple[list[int], list[bytes]]:
        """Hold or drop the fragments ``rows``; the rows that complete a datagram, and the
        records (link and tunnel headers + datagram) that replace them."""
        done_rows: list[int] = []
        blobs: list[bytes] = []
        timeout = int(self.config.frag_timeout * NS)
        status = cols["status"]
        for r in rows.tolist():
            start = int(offset[r])
            ip = int(cols["ip_off"][r])
            raw = data[start + ip : start + int(caplen[r])].tobytes()
            frag = _parse(raw)
            status[r] = b.STATUS_BAD_FRAGMENT
            if frag is None:
                continue
            now = int(ts_ns[r])
            dg = self._pending.get(frag.key)
            if dg is not None and now - dg.first_ns > timeout:
                self._drop(frag.key, "timed_out")
                dg = None
            if dg is None:
                dg = _Datagram(first_ns=now)
            if dg.pieces.get(frag.offset) == frag.data:
                status[r] = b.STATUS_FRAGMENT  # an exact copy (a retransmission): nothing new
                continue
            problem = frag.problem or self._check(dg, frag)
            if problem:
                self.counts[problem] += 1
                if problem == "overlapping":
                    self._drop(frag.key, "")
                continue
            self._pending[frag.key] = dg
            status[r] = b.STATUS_FRAGMENT
            dg.pieces[frag.offset] = frag.data
            dg.held += len(frag.data)
            self._held += len(frag.data)
            if frag.offset == 0:
                dg.header = frag.header
            if not frag.more:
                dg.total = frag.offset + len(frag.data)
            if dg.total >= 0 and dg.header and dg.held == dg.total:
                payload = b"".join(dg.pieces[k] for k in sorted(dg.pieces))
                self._drop(frag.key, "")
                self.counts["reassembled"] += 1
                done_rows.append(r)
                blobs.append(data[start : start + ip].tobytes() + _rebuilt(dg.header, payload))
        return done_rows, blobs

    def _check(self, dg: _Datagram, frag: _Fragment) -> str:
        """Why ``frag`` cannot join ``dg`` (empty when it can)."""
        end = frag.offset + len(frag.data)
        if not frag.data:
            return "empty"
        if end + len(frag.header or dg.header or b"") > self.config.frag_max_datagram_bytes:
            return "too_long"
        if frag.more and len(frag.data) % 8:
            return "misaligned"
        # Overlapping a piece held, reaching past the end, or a second, different end.
        if dg.total >= 0 and (end > dg.total or not frag.more):
            return "overlapping"
        for k, v in dg.pieces.items():
            if (k < end and frag.offset < k + len(v)) or (not frag.more and k + len(v) > end):
                return "overlapping"
        if self._held + len(frag.data) > self.config.frag_max_total_bytes or (
            not dg.pieces and len(self._pending) >= _MAX_PENDING
        ):
            return "over_memory"
        return ""

    def _drop(self, key: tuple[object, ...], reason: str) -> None:
        dg = self._pending.pop(key, None)
        if dg is None:
            return
        self._held -= dg.held
        if reason:
            self.counts[reason] += 1

    def _expire(self, pb: b.PacketBatch) -> None:
        """Drop partial datagrams older than the timeout, by the batch's newest packet."""
        if not self._pending or not len(pb):
            return
        limit = int(pb.ts_ns.max()) - int(self.config.frag_timeout * NS)
        for key in [k for k, dg in self._pending.items() if dg.first_ns < limit]:
            self._drop(key, "timed_out")


# The columns the kernel fills, which a rebuilt datagram's decode replaces.
_DECODED = (
    "status", "ip_version", "src_hi", "src_lo", "dst_hi", "dst_lo", "proto", "sport", "dport",
    "tcp_flags", "payload_off", "payload_len", "fragment", "encap", "ip_off", "outer_src_hi",
    "outer_src_lo", "outer_dst_hi", "outer_dst_lo",
)
