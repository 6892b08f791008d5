"""Several capture files read as one timeline, the way mergecap combines them.

Rotated captures (``tcpdump -G``/``-C``, ``live --write-pcap``) do not overlap in time: they
are chained, one file open at a time, and their batches pass through without a copy. Files
that do overlap (two taps, two interfaces) are merged by timestamp, and only the records that
interleave with another file's are copied into a new buffer.

Output order. Each record gets the key (*running maximum* of its file's timestamps up to and
including it, the file's position among the inputs, its position in the file), and records
come out in key order. For files whose packets are in time order that is plain timestamp
order, ties going to the file given first, then to the order inside the file. A record that
steps back in time within its file stays behind the records before it (it travels with the
latest timestamp seen before it): nothing is sorted inside a file, and the result is what a
k-way merge that always takes the earliest next record of any file produces.
"""

from __future__ import annotations

import glob
import os
import stat
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from burstwatch.errors import BurstwatchError, InputError
from burstwatch.flows.kernel import gather_bytes
from burstwatch.ingest.records import I64, CaptureWarning, RecordBatch
from burstwatch.ingest.source import CaptureReader, open_capture
from burstwatch.ordering import stable_argsort

I32 = npt.NDArray[np.int32]
DEFAULT_BATCH_SIZE = 65536
_GLOB_CHARS = frozenset("*?[")
_NO_TIME = int(np.iinfo(np.int64).min)
_END = (int(np.iinfo(np.int64).max), 1 << 62)  # a bound no record reaches


# -- Arguments to paths ----------------------------------------------------------------------


def expand_inputs(args: Sequence[str]) -> list[str]:
    """Turn command-line arguments into the list of capture paths to read.

    Each argument is ``-`` (standard input), a file, a directory (every regular file below it,
    sorted by path; names starting with ``.`` are skipped, and so are the directories they
    name; directory symlinks are not followed), or a glob pattern (``**`` recurses) when no
    file of that literal name exists. A directory with no files or a pattern matching nothing
    is an :class:`InputError`. A path that does not exist is passed through: opening it is
    what fails, and a timeline skips it with a warning. The same file reached twice (or ``-``
    given twice) is read once, at its first place. ``-`` may stand among files: it is read in
    time order with them like any other input.
    """
    out: list[str] = []
    seen: set[object] = set()
    for arg in args:
        for path in _expand_one(arg):
            key = _identity(path)
            if key not in seen:
                seen.add(key)
                out.append(path)
    return out


def _expand_one(arg: str) -> list[str]:
    if arg == "-":
        return [arg]
    if os.path.isdir(arg):
        files = _walk(arg)
        if not files:
            raise InputError(f"{arg}: directory contains no files (hidden ones are skipped)")
        return files
    if not os.path.lexists(arg) and _GLOB_CHARS.intersection(arg):
        found: list[str] = []
        for match in sorted(glob.glob(arg, recursive=True)):
            found.extend(_walk(match) if os.path.isdir(match) else [match])
        if not found:
            raise InputError(f"{arg}: pattern matches no files")
        return found
    return [arg]


def _walk(top: str) -> list[str]:
    files = []
    for root, dirs, names in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = os.path.join(root, name)
            if not name.startswith(".") and os.path.isfile(path):
                files.append(path)
    return sorted(files)


def _identity(path: str) -> object:
    """Same file, same identity: ``a.pcap``, ``./a.pcap`` and a hard link are read once."""
    if path == "-":
        return path
    try:
        st = os.stat(path)
    except OSError:
        return os.path.normpath(path)
    return (st.st_dev, st.st_ino)


# -- What happened to the inputs -------------------------------------------------------------


@dataclass(frozen=True)
class SkippedInput(CaptureWarning):
    """An input that could not be read at all (missing, not a capture, unreadable)."""

    def __str__(self) -> str:
        return f"{self.source}: skipped: {self.message}"


@dataclass
class InputLog:
    """Per-run account of the inputs, for the summary: every warning, and what was read."""

    warnings: list[CaptureWarning] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    files_read: int = 0

    def skip(self, name: str, exc: BurstwatchError) -> None:
        reason = str(exc).removeprefix(f"{name}: ")
        self.skipped.append(name)
        self.warnings.append(SkippedInput(name, 0, reason))


def _display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _start(
    path: str, batch_size: int
) -> tuple[CaptureReader, Iterator[RecordBatch], RecordBatch | None]:
    """Open ``path`` and read its first batch, so a broken header counts as an unreadable
    file instead of failing half-way through a run. The first batch is None for a capture
    without packets (its reader is then finished)."""
    name = _display_name(path)
    try:
        reader = open_capture(path)
    except OSError as exc:  # mmap refused, and the like: open_capture maps the common ones
        raise InputError(f"{name}: {exc.strerror or exc}") from None
    records = reader.batches(batch_size)
    try:
        first = next(records, None)
    except BurstwatchError as exc:  # the header parsers do not know the file name
        if str(exc).startswith(f"{name}: "):
            raise
        raise type(exc)(f"{name}: {exc}") from None
    return reader, records, first


def iter_files(
    inputs: Sequence[str], log: InputLog, batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[tuple[CaptureReader, Iterator[RecordBatch]]]:
    """Each readable input in turn with its batches, for reading files separately.

    Unreadable inputs are logged in ``log`` and skipped; when none is readable the first
    error is raised after all were tried. A file's reader warnings join ``log.warnings`` when
    its batches are exhausted or closed. Iterate each file's batches before the next file.
    """
    first_error: BurstwatchError | None = None
    read = 0
    for path in inputs:
        try:
            reader, records, first = _start(path, batch_size)
        except BurstwatchError as exc:
            first_error = first_error or exc
            log.skip(_display_name(path), exc)
            continue
        read += 1
        log.files_read += 1
        yield reader, _resume(reader, records, first, log)
    if not read:
        raise first_error or InputError("no input files")


def _resume(
    reader: CaptureReader, records: Iterator[RecordBatch], first: RecordBatch | None,
    log: InputLog,
) -> Iterator[RecordBatch]:
    try:
        if first is not None:
            yield first
            yield from records
    finally:
        if hasattr(records, "close"):
            records.close()
        log.warnings.extend(reader.warnings)


# -- One timeline ----------------------------------------------------------------------------


class _Segment:
    """A batch read but not yet emitted entirely. Its records' merge keys are worked out
    only where another input's records could sort among them: never for one input alone,
    whose batches pass through as they are read."""

    __slots__ = ("batch", "floor", "_key", "start")

    def __init__(self, batch: RecordBatch, floor: int) -> None:
        self.batch = batch
        self.floor = floor  # the file's latest timestamp before this batch
        self._key: I64 | None = None
        self.start = 0

    @property
    def key(self) -> I64:
        """Running maximum of the file's timestamps, record by record."""
        if self._key is None:
            key = np.maximum.accumulate(self.batch.ts_ns)
            np.maximum(key, self.floor, out=key)
            self._key = key
        return self._key


class _File:
    """One readable input on its way through the timeline."""

    def __init__(self, rank: int, path: str, first_ts: int) -> None:
        self.rank = rank  # position among the inputs: breaks timestamp ties
        self.path = path
        self.first_ts = first_ts
        self.reader: CaptureReader | None = None
        self.records: Iterator[RecordBatch] | None = None
        self.pending: deque[_Segment] = deque()
        self.top = _NO_TIME  # latest timestamp read so far: no later record sorts before it
        self.done = False

    def push(self, batch: RecordBatch) -> None:
        floor = self.top
        self.top = max(floor, int(batch.ts_ns.max()))
        self.pending.append(_Segment(batch, floor))


Piece = tuple[RecordBatch, _Segment, int, int, int]  # batch, its segment, first, end, file rank


class Timeline:
    """Several inputs as one time-ordered stream of record batches (see the module docstring).

    Opening peeks at every input's first packet: regular files are opened, peeked and closed
    again (read for real when the timeline reaches them); standard input and pipes cannot be
    opened twice, so they stay open with their first batch held. Unreadable inputs are
    skipped with a warning; when none is readable the first error is raised here.
    """

    def __init__(self, inputs: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.sources = [_display_name(p) for p in inputs]  # names, by source index
        self.log = InputLog()
        self._batch_size = max(1, batch_size)
        self._done_bytes = 0
        self._size = 0
        self._size_known = True
        self._open: list[_File] = []
        first_error: BurstwatchError | None = None
        files = []
        for rank, path in enumerate(inputs):
            reopen = _regular_file(path)
            try:
                reader, records, first = _start(path, 1 if reopen else self._batch_size)
            except BurstwatchError as exc:
                first_error = first_error or exc
                self.log.skip(self.sources[rank], exc)
                continue
            self.log.files_read += 1
            self._size += reader.size_hint
            self._size_known &= reader.size_hint > 0
            if first is None:  # no packets: nothing to place in time
                self.log.warnings.extend(reader.warnings)
                self._done_bytes += reader.bytes_consumed
                continue
            file = _File(rank, path, int(first.ts_ns[0]))
            if reopen:
                if hasattr(records, "close"):
                    records.close()  # read for real later: one file open at a time
            else:
                file.reader, file.records = reader, records
                file.push(first)
                self._open.append(file)
            files.append(file)
        if not self.log.files_read:
            raise first_error or InputError("no input files")
        files.sort(key=lambda f: (f.first_ts, f.rank))
        self._queue = deque(files)

    @property
    def name(self) -> str:
        """A short name for the whole input, for messages."""
        read = [n for n in self.sources if n not in self.log.skipped]
        return read[0] if len(read) == 1 else f"{read[0]} and {len(read) - 1} more"

    @property
    def bytes_consumed(self) -> int:
        return self._done_bytes + sum(
            f.reader.bytes_consumed for f in self._open if f.reader is not None
        )

    @property
    def size_hint(self) -> int:
        """Total bytes of all readable files, 0 when any size is unknown (gzip, pipes)."""
        return self._size if self._size_known else 0

    def batches(self) -> Generator[RecordBatch, None, None]:
        """The merged stream's record batches."""
        stream = self._stream(sources=False)
        try:
            for batch, _ in stream:
                yield batch
        finally:
            stream.close()

    def sourced_batches(self) -> Generator[tuple[RecordBatch, I32], None, None]:
        """Record batches with each record's source index (into :attr:`sources`); a record's
        ``file_offset`` is an offset in that source."""
        stream = self._stream(sources=True)
        try:
            for batch, source in stream:
                assert source is not None
                yield batch, source
        finally:
            stream.close()

    def _stream(self, sources: bool) -> Generator[tuple[RecordBatch, I32 | None], None, None]:
        """The merged batches, with their records' source indexes where ``sources``."""
        active: list[_File] = []  # in rank order, so equal keys keep file order
        try:
            while True:
                yield from self._emit(active, sources)
                file = self._limiting(active)
                if file is None:
                    return
                if file in active:
                    self._pull(file)
                else:
                    self._queue.popleft()
                    self._activate(file)
                    active.append(file)
                    active.sort(key=lambda f: f.rank)
                active = [f for f in active if f.pending or not f.done]
        finally:
            self.close()

    def close(self) -> None:
        """Release every input still open (the stream ended or was abandoned)."""
        for file in list(self._open):
            if file.records is not None and hasattr(file.records, "close"):
                file.records.close()
            self._finish(file)

    # The merge. A record can be emitted once no unread record of another file can sort
    # before it: every other file's unread records have keys at or above (its ``top``, its
    # rank), and a file not opened yet starts at (first timestamp, rank).

    def _bounds(self, active: list[_File]) -> list[tuple[int, int]]:
        """The two lowest (key, rank) that unread records can still have, lowest first."""
        lows = sorted((f.top, f.rank) for f in active if not f.done)[:2]
        if self._queue:
            lows = sorted([*lows, (self._queue[0].first_ts, self._queue[0].rank)])[:2]
        return lows + [_END] * (2 - len(lows))

    def _limiting(self, active: list[_File]) -> _File | None:
        """The input holding the lowest bound: reading it (or opening it) moves the merge on."""
        best: _File | None = None
        for file in active:
            if not file.done and (best is None or (file.top, file.rank) < (best.top, best.rank)):
                best = file
        if self._queue:
            head = self._queue[0]
            if best is None or (head.first_ts, head.rank) < (best.top, best.rank):
                best = head
        return best

    def _emit(self, active: list[_File], sources: bool
              ) -> Iterator[tuple[RecordBatch, I32 | None]]:
        lows = self._bounds(active)
        pieces: list[list[Piece]] = []
        for file in active:
            bound = lows[1] if lows[0][1] == file.rank else lows[0]
            mine = _take(file, bound)
            if mine:
                pieces.append(mine)
        if not pieces:
            return
        if len(pieces) == 1 or _disjoint(pieces):
            if len(pieces) > 1:
                pieces.sort(key=lambda p: (int(p[0][1].key[p[0][2]]), p[0][4]))
            for mine in pieces:
                for batch, _, lo, hi, rank in mine:
                    yield (_slice(batch, lo, hi),
                           np.full(hi - lo, rank, np.int32) if sources else None)
        else:
            yield from _merge([p for mine in pieces for p in mine], self._batch_size)

    def _activate(self, file: _File) -> None:
        if file.records is None:
            try:
                file.reader, file.records, first = _start(file.path, self._batch_size)
            except BurstwatchError as exc:  # it went away since it was peeked at
                self.log.files_read -= 1
                self.log.skip(self.sources[file.rank], exc)
                file.done = True
                return
            self._open.append(file)
            if first is None:
                self._finish(file)
                return
            file.push(first)

    def _pull(self, file: _File) -> None:
        assert file.records is not None
        try:
            file.push(next(file.records))
        except StopIteration:
            self._finish(file)
        except BurstwatchError as exc:  # readers report damage as warnings; just in case
            assert file.reader is not None
            file.reader.warnings.append(
                CaptureWarning(self.sources[file.rank], file.reader.bytes_consumed, str(exc))
            )
            self._finish(file)

    def _finish(self, file: _File) -> None:
        file.done = True
        if file.reader is not None:
            self.log.warnings.extend(file.reader.warnings)
            self._done_bytes += file.reader.bytes_consumed
        file.reader = file.records = None
        if file in self._open:
            self._open.remove(file)


def _regular_file(path: str) -> bool:
    """Whether the input can be opened a second time and read from the start again."""
    if path == "-":
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # opening it fails and says why


def _take(file: _File, bound: tuple[int, int]) -> list[Piece]:
    """Remove from ``file``'s pending records those sorting before ``bound``; they form a
    prefix, as keys never decrease within a file."""
    side: Literal["left", "right"] = "right" if file.rank < bound[1] else "left"  # by rank
    # No key read yet reaches the bound: all of them go (one input alone, always)
    everything = file.top < bound[0] or (file.top == bound[0] and side == "right")
    out: list[Piece] = []
    while file.pending:
        seg = file.pending[0]
        if everything:
            end = len(seg.batch)
        else:
            end = seg.start + int(np.searchsorted(seg.key[seg.start :], bound[0], side=side))
        if end > seg.start:
            out.append((seg.batch, seg, seg.start, end, file.rank))
        if end < len(seg.batch):
            seg.start = end
            break
        file.pending.popleft()
    return out


def _disjoint(pieces: list[list[Piece]]) -> bool:
    """Whether the files' runs follow one another without interleaving (no copy needed)."""
    spans = sorted(
        ((int(p[0][1].key[p[0][2]]), p[0][4]), (int(p[-1][1].key[p[-1][3] - 1]), p[-1][4]))
        for p in pieces
    )
    return all(spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1))


def _slice(batch: RecordBatch, lo: int, hi: int) -> RecordBatch:
    """Records ``lo:hi`` of a batch, sharing its byte buffer."""
    if lo == 0 and hi == len(batch):
        return batch
    return RecordBatch(
        data=batch.data,
        offset=batch.offset[lo:hi],
        caplen=batch.caplen[lo:hi],
        wirelen=batch.wirelen[lo:hi],
        ts_ns=batch.ts_ns[lo:hi],
        linktype=batch.linktype[lo:hi],
        iface=batch.iface[lo:hi],
        file_offset=batch.file_offset[lo:hi],
    )


def _merge(pieces: list[Piece], batch_size: int) -> Iterator[tuple[RecordBatch, I32]]:
    """Interleave pieces of several files by key into fresh batches, copying their bytes.

    ``pieces`` come in rank order, each file's in record order, so a stable sort on the key
    alone breaks ties by file, then by record.
    """

    def cat(column: str) -> npt.NDArray[Any]:
        return np.concatenate([getattr(b, column)[lo:hi] for b, _, lo, hi, _ in pieces])

    key = np.concatenate([seg.key[lo:hi] for _, seg, lo, hi, _ in pieces])
    order = stable_argsort(key)
    counts = np.array([hi - lo for _, _, lo, hi, _ in pieces], np.int64)
    piece = np.repeat(np.arange(len(pieces)), counts)[order]
    rank = np.repeat(np.array([p[4] for p in pieces], np.int32), counts)[order]
    start, caplen = cat("offset")[order], cat("caplen")[order]
    wirelen, ts_ns = cat("wirelen")[order], cat("ts_ns")[order]
    linktype, iface, file_offset = cat("linktype")[order], cat("iface")[order], cat("file_offset")[order]
    for lo in range(0, len(order), batch_size):
        hi = min(lo + batch_size, len(order))
        lens = caplen[lo:hi]
        out_off = np.zeros(hi - lo, np.int64)
        np.cumsum(lens[:-1], dtype=np.int64, out=out_off[1:])
        data = np.empty(int(out_off[-1]) + int(lens[-1]), np.uint8)
        which = piece[lo:hi]
        for p in np.unique(which):
            mask = which == p
            gather_bytes(pieces[p][0].data, start[lo:hi][mask], lens[mask], out_off[mask], data)
        yield RecordBatch(
            data=data,
            offset=out_off,
            caplen=lens,
            wirelen=wirelen[lo:hi],
            ts_ns=ts_ns[lo:hi],
            linktype=linktype[lo:hi],
            iface=iface[lo:hi],
            file_offset=file_offset[lo:hi],
        ), rank[lo:hi]
