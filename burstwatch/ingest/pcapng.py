"""pcapng files: several sections of either byte order, per-interface link type and clock.

The block walk is sequential (each block's length says where the next one starts), so it is a
small numba-compiled loop that fills preallocated columns from packet blocks (EPB, SPB, OPB)
and skips blocks it does not need. Section headers and interface descriptions are rare and
carry variable options, so the walker hands them back to Python, which parses them into a
small numpy interface table and resumes the walk.

Decisions worth knowing:

* ``iface`` is a file-wide interface number (the count of interface blocks before this one
  in the file), so interfaces of different sections never collide. In a single-section file
  it equals the pcapng interface id.
* A packet block whose interface is not defined in its section, or whose captured length
  does not fit inside the block, is skipped: the block framing is still sound, so the rest
  of the file is trustworthy. Each kind of skip is reported once, counted, with the offset
  of the first occurrence (scapy also skips such blocks; Wireshark stops instead).
* Anything that breaks the framing (impossible block length, cut-short file, damaged later
  section header, unusable interface description) ends the stream with a warning; every
  packet before it has been yielded.
* A simple packet block has no timestamp: it gets the last timestamp seen in the file
  (0 before any).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from burstwatch.errors import NotACaptureError
from burstwatch.ingest.bytesource import WINDOW_BYTES, ByteSource
from burstwatch.ingest.records import U8, CaptureWarning, RecordBatch
from burstwatch.jit import njit
from burstwatch.prefetch import ask_ahead

SHB_MAGIC = b"\x0a\x0d\x0d\x0a"
BYTE_ORDER_MAGIC = 0x1A2B3C4D

# Block types.
BT_IDB = 1
BT_OPB = 2  # obsolete packet block
BT_SPB = 3
BT_EPB = 6
BT_SHB = 0x0A0D0D0A  # reads the same in both byte orders

SHB_MIN_LEN = 28
IDB_MIN_LEN = 20
PKT_HEADER_LEN = 28  # EPB/OPB: type, length, interface, ts high, ts low, caplen, origlen
SPB_HEADER_LEN = 12  # type, length, origlen
# Anything longer is treated as corruption rather than read into memory.
MAX_BLOCK_LEN = 16 << 20

OPT_ENDOFOPT = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

# Interface table columns (one int64 row per interface of the current section).
IF_LINKTYPE = 0
IF_SNAPLEN = 1  # 0: no limit
IF_TS_KIND = 2
IF_TS_PARAM = 3
IF_TS_OFFSET_NS = 4
IF_GLOBAL_ID = 5
IF_COLUMNS = 6

# How raw timestamp units become nanoseconds.
TS_MUL = 0  # units of 10^-k s with k <= 9: multiply by param (0: unusable resolution)
TS_DIV = 1  # units of 10^-k s with k > 9: divide by param = 10^(k-9), rounding half up
TS_SHIFT = 2  # units of 2^-k s: param = k

NS_PER_S = 1_000_000_000
MAX_POW10_DIGITS = 27  # finer than 10^-27 s, a 64-bit count cannot reach one nanosecond
INT64_MAX = (1 << 63) - 1

# Walker state shared across calls (int64 slots).
ST_LAST_TS = 0
ST_NOIFACE_N = 1  # packet blocks naming an undefined interface
ST_NOIFACE_AT = 2
ST_SHORT_N = 3  # packet blocks too short for their header or their captured bytes
ST_SHORT_AT = 4
ST_BADTS_N = 5  # packet blocks whose time is outside 0 <= ns < 2^63 (1970 to 2262)
ST_BADTS_AT = 6
ST_SIZE = 7
TS_OUT_OF_RANGE = -1  # _to_ns: the raw count is past what int64 nanoseconds hold
# Blocks the walker skips: (count slot, first offset slot, what is wrong with them).
_SKIPS = (
    (ST_NOIFACE_N, ST_NOIFACE_AT, "name an interface not described in their section"),
    (ST_SHORT_N, ST_SHORT_AT, "too short for the bytes they claim"),
    (ST_BADTS_N, ST_BADTS_AT, "have a time outside 1970 to 2262 (what 64-bit nanoseconds hold), "
     "after the interface's if_tsoffset"),
)

# Walk status codes.
WALK_FULL = 0  # output columns are full
WALK_NEED_MORE = 1  # the window ends inside a block
WALK_BAD_LENGTH = 2  # a block claims an impossible length
WALK_SHB = 3  # a section header starts at the returned position
WALK_IDB = 4  # a complete interface description starts at the returned position


@njit(cache=True, nogil=True, inline="always")
def _u32(buf: U8, p: int, big: bool) -> int:
    # Widen each byte to int64 first: numba types int(uint8) as uint64, and uint64 mixed with
    # int64 arithmetic silently becomes float64.
    b0 = np.int64(buf[p])
    b1 = np.int64(buf[p + 1])
    b2 = np.int64(buf[p + 2])
    b3 = np.int64(buf[p + 3])
    if big:
        return int((b0 << 24) | (b1 << 16) | (b2 << 8) | b3)
    return int((b3 << 24) | (b2 << 16) | (b1 << 8) | b0)


@njit(cache=True, nogil=True, inline="always")
def _u16(buf: U8, p: int, big: bool) -> int:
    b0 = np.int64(buf[p])
    b1 = np.int64(buf[p + 1])
    if big:
        return int((b0 << 8) | b1)
    return int((b1 << 8) | b0)


@njit(cache=True, nogil=True)
def _shr64(hi: int, lo: int, s: int) -> int:
    """The unsigned 64-bit value hi:lo shifted right by s >= 1 (so it fits a signed int64)."""
    if s >= 64:
        return 0
    if s >= 32:
        return hi >> (s - 32)
    return (hi << (32 - s)) | (lo >> s)


@njit(cache=True, nogil=True)
def _to_ns(hi: int, lo: int, kind: int, param: int) -> int:
    """Convert a raw 64-bit timestamp (two 32-bit halves) to nanoseconds without overflow.

    Raw counts may use all 64 bits (2^-32 s units pass 2^63 in 2038, 10^-10 s units today),
    so the fine resolutions work on the halves instead of the signed 64-bit product. A time
    past 2^63 - 1 ns (the year 2262) is TS_OUT_OF_RANGE, never a wrapped value.
    """
    if kind == TS_MUL or (kind == TS_SHIFT and param == 0):
        mul = param if kind == TS_MUL else NS_PER_S
        if hi >= (1 << 31):
            return TS_OUT_OF_RANGE  # the raw count alone is past 2^63
        raw = (hi << 32) | lo
        if mul > 0 and raw > INT64_MAX // mul:
            return TS_OUT_OF_RANGE
        return raw * mul
    if kind == TS_SHIFT:
        k = param
        if k > 33:  # drop bits below 2^-33 s (~0.12 ns) so frac * 1e9 fits in 63 bits
            t = _shr64(hi, lo, k - 33)
            hi = t >> 32
            lo = t & 0xFFFFFFFF
            k = 33
        sec = _shr64(hi, lo, k)
        if sec > INT64_MAX // NS_PER_S:
            return TS_OUT_OF_RANGE
        frac = ((hi << 32) | lo) & ((1 << k) - 1)
        t = sec * NS_PER_S + ((frac * NS_PER_S + (1 << (k - 1))) >> k)
        return t if t >= 0 else TS_OUT_OF_RANGE  # the fraction carried it past 2^63 - 1
    # TS_DIV: unsigned hi:lo // d with round half up, via (2h + b) = 2(q1 d + r1) + b.
    d = param
    h = _shr64(hi, lo, 1)
    q1 = h // d
    t = 2 * (h - q1 * d) + (lo & 1)
    q = 2 * q1 + t // d
    if 2 * (t % d) >= d:
        q += 1
    return q


@njit(cache=True, nogil=True)
def walk_blocks(
    buf: U8,
    pos: int,
    n: int,
    base: int,
    big: bool,
    ifaces: np.ndarray,
    if_count: int,
    state: np.ndarray,
    offset: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    ts_ns: np.ndarray,
    linktype: np.ndarray,
    iface: np.ndarray,
    file_offset: np.ndarray,
) -> tuple[int, int, int]:
    """Fill columns from consecutive blocks of ``buf`` starting at ``pos`` (``base`` is the
    file offset of ``buf[0]``), writing from row ``n``.

    Returns (rows filled, position reached, status).
    """
    end = buf.shape[0]
    cap = offset.shape[0]
    ahead = pos  # every cache line before this one has been asked for
    while n < cap:
        ahead = ask_ahead(buf, ahead, pos)
        if pos + 8 > end:
            return n, pos, WALK_NEED_MORE
        btype = _u32(buf, pos, big)
        if btype == BT_SHB:  # its length is in the new section's byte order
            return n, pos, WALK_SHB
        blen = _u32(buf, pos + 4, big)
        if blen < 12 or blen % 4 != 0 or blen > MAX_BLOCK_LEN:
            return n, pos, WALK_BAD_LENGTH
        if pos + blen > end:
            return n, pos, WALK_NEED_MORE
        if _u32(buf, pos + blen - 4, big) != blen:
            return n, pos, WALK_BAD_LENGTH
        if btype in (BT_EPB, BT_OPB):
            if blen < PKT_HEADER_LEN + 4:
                if state[ST_SHORT_N] == 0:
                    state[ST_SHORT_AT] = base + pos
                state[ST_SHORT_N] += 1
            else:
                ifc = _u32(buf, pos + 8, big) if btype == BT_EPB else _u16(buf, pos + 8, big)
                incl = _u32(buf, pos + 20, big)
                if ifc >= if_count:
                    if state[ST_NOIFACE_N] == 0:
                        state[ST_NOIFACE_AT] = base + pos
                    state[ST_NOIFACE_N] += 1
                elif incl > blen - PKT_HEADER_LEN - 4:
                    if state[ST_SHORT_N] == 0:
                        state[ST_SHORT_AT] = base + pos
                    state[ST_SHORT_N] += 1
                else:
                    t = _to_ns(
                        _u32(buf, pos + 12, big),
                        _u32(buf, pos + 16, big),
                        ifaces[ifc, IF_TS_KIND],
                        ifaces[ifc, IF_TS_PARAM],
                    )
                    off = ifaces[ifc, IF_TS_OFFSET_NS]
                    # Times before 1970 or past 2262 are damage: the flow table counts time
                    # in int64 ns from 0 (its -1 means "not yet"), so they are never passed on.
                    if t < 0 or (off > 0 and t > INT64_MAX - off) or t + off < 0:
                        if state[ST_BADTS_N] == 0:
                            state[ST_BADTS_AT] = base + pos
                        state[ST_BADTS_N] += 1
                        pos += blen
                        continue
                    t += off
                    state[ST_LAST_TS] = t
                    ts_ns[n] = t
                    caplen[n] = incl
                    wirelen[n] = _u32(buf, pos + 24, big)
                    offset[n] = pos + PKT_HEADER_LEN
                    linktype[n] = ifaces[ifc, IF_LINKTYPE]
                    iface[n] = ifaces[ifc, IF_GLOBAL_ID]
                    file_offset[n] = base + pos
                    n += 1
        elif btype == BT_SPB:
            if blen < SPB_HEADER_LEN + 4:
                if state[ST_SHORT_N] == 0:
                    state[ST_SHORT_AT] = base + pos
                state[ST_SHORT_N] += 1
            elif if_count == 0:
                if state[ST_NOIFACE_N] == 0:
                    state[ST_NOIFACE_AT] = base + pos
                state[ST_NOIFACE_N] += 1
            else:
                orig = _u32(buf, pos + 8, big)
                incl = min(orig, blen - SPB_HEADER_LEN - 4)
                snap = ifaces[0, IF_SNAPLEN]
                if snap > 0:
                    incl = min(incl, snap)
                ts_ns[n] = state[ST_LAST_TS]
                caplen[n] = incl
                wirelen[n] = orig
                offset[n] = pos + SPB_HEADER_LEN
                linktype[n] = ifaces[0, IF_LINKTYPE]
                iface[n] = ifaces[0, IF_GLOBAL_ID]
                file_offset[n] = base + pos
                n += 1
        elif btype == BT_IDB:
            return n, pos, WALK_IDB
        pos += blen
    return n, pos, WALK_FULL


def _uint(raw: bytes, big: bool) -> int:
    return int.from_bytes(raw, "big" if big else "little")


def _parse_shb(buf: U8, pos: int) -> tuple[bool, int] | str | None:
    """Check the section header at ``buf[pos:]``.

    Returns (big endian, block length), an error message, or None when ``buf`` ends first.
    """
    if buf.shape[0] - pos < 12:
        return None
    head = bytes(buf[pos : pos + 12])
    bom = head[8:12]
    if bom == BYTE_ORDER_MAGIC.to_bytes(4, "big"):
        big = True
    elif bom == BYTE_ORDER_MAGIC.to_bytes(4, "little"):
        big = False
    else:
        return f"section header block has an unknown byte-order magic 0x{bom.hex()}"
    blen = _uint(head[4:8], big)
    if blen < SHB_MIN_LEN or blen % 4 or blen > MAX_BLOCK_LEN:
        return f"block claims an impossible length of {blen} bytes"
    if buf.shape[0] - pos < blen:
        return None
    trailer = _uint(bytes(buf[pos + blen - 4 : pos + blen]), big)
    if trailer != blen:
        return (
            f"block claims an impossible length of {blen} bytes (its trailing copy says {trailer})"
        )
    major = _uint(bytes(buf[pos + 12 : pos + 14]), big)
    minor = _uint(bytes(buf[pos + 14 : pos + 16]), big)
    if major != 1:
        return f"section header block has unsupported version {major}.{minor}"
    return big, blen


def _ts_rule(tsresol: int) -> tuple[int, int, str | None]:
    """(kind, param, problem) for an ``if_tsresol`` byte."""
    k = tsresol & 0x7F
    if tsresol & 0x80:
        return TS_SHIFT, k, None
    if k <= 9:
        return TS_MUL, 10 ** (9 - k), None
    if k <= MAX_POW10_DIGITS:
        return TS_DIV, 10 ** (k - 9), None
    return TS_MUL, 0, f"timestamp resolution 10^-{k} s is unusable; timestamps set to the offset"


class _Interfaces:
    """The current section's interface table, kept as numpy rows the walker reads directly."""

    def __init__(self) -> None:
        self.rows = np.zeros((16, IF_COLUMNS), np.int64)
        self.count = 0
        self.seen = 0  # interface blocks in the file so far: the next file-wide id

    def new_section(self) -> None:
        self.count = 0

    def add(self, block: bytes, big: bool) -> list[str]:
        """Append one interface from a framed IDB; returns problems with its options."""
        problems: list[str] = []
        linktype = _uint(block[8:10], big)
        snaplen = _uint(block[12:16], big)
        kind, param, off_s = TS_MUL, 1000, 0
        p, end = 16, len(block) - 4
        while p + 4 <= end:
            code = _uint(block[p : p + 2], big)
            olen = _uint(block[p + 2 : p + 4], big)
            if code == OPT_ENDOFOPT:
                break
            if p + 4 + olen > end:
                problems.append("interface description options run past the block; rest ignored")
                break
            value = block[p + 4 : p + 4 + olen]
            if code == OPT_IF_TSRESOL:
                if olen == 1:
                    kind, param, problem = _ts_rule(value[0])
                    if problem:
                        problems.append(problem)
                else:
                    problems.append(f"if_tsresol option has length {olen}, expected 1; ignored")
            elif code == OPT_IF_TSOFFSET:
                if olen == 8:
                    off_s = int.from_bytes(value, "big" if big else "little", signed=True)
                else:
                    problems.append(f"if_tsoffset option has length {olen}, expected 8; ignored")
            p += 4 + olen + (-olen % 4)
        if self.count == self.rows.shape[0]:
            self.rows = np.concatenate([self.rows, np.zeros_like(self.rows)])
        if self.seen == 0xFFFF:
            problems.append("more than 65535 interfaces in the file; later ones share the last id")
        off_ns = max(-INT64_MAX, min(INT64_MAX, off_s * NS_PER_S))
        self.rows[self.count] = (
            linktype,
            snaplen,
            kind,
            param,
            off_ns,
            min(self.seen, 0xFFFF),
        )
        self.count += 1
        self.seen += 1
        return problems


def _read_first_shb(src: ByteSource, window_bytes: int) -> tuple[bool, int]:
    want = window_bytes
    while True:
        buf = src.window(want)
        if bytes(buf[:4]) != SHB_MAGIC:
            raise NotACaptureError("not a pcapng file (first block is not a section header)")
        got = _parse_shb(buf, 0)
        if isinstance(got, str):
            raise NotACaptureError(got)
        if got is not None:
            return got
        if buf.shape[0] < want:
            raise NotACaptureError("file ends inside the pcapng section header block")
        want *= 2


def read_pcapng(
    src: ByteSource,
    name: str,
    warnings: list[CaptureWarning],
    batch_size: int = 65536,
    window_bytes: int = WINDOW_BYTES,
) -> Iterator[RecordBatch]:
    """Yield record batches from a pcapng stream positioned at its first byte."""
    batch_size = max(1, batch_size)
    big, shb_len = _read_first_shb(src, window_bytes)
    src.advance(shb_len)
    table = _Interfaces()
    state = np.zeros(ST_SIZE, np.int64)

    def report_skips() -> None:
        for count, at, what in _SKIPS:
            if state[count]:
                warnings.append(CaptureWarning(
                    name, int(state[at]),
                    f"{int(state[count])} packet block(s) {what}; skipped (offset is the first)"))
                state[count] = 0

    want = window_bytes
    try:
        while True:
            buf = src.window(want)
            if buf.shape[0] == 0:
                return
            base = src.pos
            offset = np.empty(batch_size, np.int64)
            caplen = np.empty(batch_size, np.uint32)
            wirelen = np.empty(batch_size, np.uint32)
            ts_ns = np.empty(batch_size, np.int64)
            linktype = np.empty(batch_size, np.uint16)
            iface = np.empty(batch_size, np.uint16)
            file_offset = np.empty(batch_size, np.int64)
            n = pos = 0
            error = ""
            while True:
                n, pos, status = walk_blocks(
                    buf, pos, n, base, big, table.rows, table.count, state,
                    offset, caplen, wirelen, ts_ns, linktype, iface, file_offset,
                )  # fmt: skip
                if status == WALK_SHB:
                    got = _parse_shb(buf, pos)
                    if got is None:
                        status = WALK_NEED_MORE
                    elif isinstance(got, str):
                        error = got
                    else:
                        big, blen = got
                        table.new_section()
                        pos += blen
                        continue
                elif status == WALK_IDB:
                    blen = _uint(bytes(buf[pos + 4 : pos + 8]), big)
                    if blen < IDB_MIN_LEN:
                        error = f"interface description block is too short ({blen} bytes)"
                    else:
                        for problem in table.add(bytes(buf[pos : pos + blen]), big):
                            warnings.append(CaptureWarning(name, base + pos, problem))
                        pos += blen
                        continue
                elif status == WALK_BAD_LENGTH:
                    blen = _uint(bytes(buf[pos + 4 : pos + 8]), big)
                    error = f"block claims an impossible length of {blen} bytes"
                    framed = blen >= 12 and blen % 4 == 0 and blen <= MAX_BLOCK_LEN
                    if framed and pos + blen <= buf.shape[0]:
                        trailer = _uint(bytes(buf[pos + blen - 4 : pos + blen]), big)
                        if trailer != blen:
                            error += f" (its trailing copy says {trailer})"
                break
            if n:
                yield RecordBatch(
                    data=buf,
                    offset=offset[:n],
                    caplen=caplen[:n],
                    wirelen=wirelen[:n],
                    ts_ns=ts_ns[:n],
                    linktype=linktype[:n],
                    iface=iface[:n],
                    file_offset=file_offset[:n],
                )
            src.advance(pos)
            if error:
                report_skips()
                warnings.append(CaptureWarning(name, src.pos, f"{error}; stopped reading here"))
                return
            if status == WALK_NEED_MORE:
                if buf.shape[0] < want:  # the input ended inside a block
                    if buf.shape[0] > pos:
                        report_skips()
                        warnings.append(
                            CaptureWarning(
                                name,
                                src.pos,
                                f"capture is cut short inside a block ({buf.shape[0] - pos} "
                                "trailing bytes ignored)",
                            )
                        )
                    return
                # One block larger than the window: widen it; otherwise slide it forward.
                want = want * 2 if pos == 0 else window_bytes
            else:
                want = window_bytes
    finally:
        report_skips()
