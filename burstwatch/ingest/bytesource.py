"""Bounded-memory windows over an input's bytes, whatever the input is.

Readers ask for "at least the next N bytes from here" and then say how many they consumed.
Regular files are memory-mapped (no copy) and pages already processed are released with
``madvise(MADV_DONTNEED)`` so the resident set stays small on captures larger than RAM.
Streams (gzip, standard input, pipes) are read in chunks into fresh arrays, so a batch that
still references an older chunk stays valid.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import weakref
from collections.abc import Callable
from typing import BinaryIO, Protocol

import numpy as np

from burstwatch.ingest.records import U8

# What a reader asks for at a time: each window is a batch of the pipeline, whose steps cost
# a fixed number of Python and numpy calls whatever their size (the flow table's bookkeeping,
# the decoder's set-up, page hints, GIL hand-overs). 24 MiB windows made a scan of the 5 M-
# packet capture 10-19 % faster than 16 MiB ones at the same peak memory (two runs); 32 MiB
# a few % more, but at 310-313 MiB (docs/benchmarks.md, bench/bench_window.py).
WINDOW_BYTES = 24 << 20
_RELEASE_EVERY = 8 << 20  # give back mmap pages in steps of this many bytes
# ... and only this far behind the read position. A reader advances once it has handed a
# batch out and the batch was decoded in its thread; the flow table, in another thread and
# up to a few batches behind, reads its flows' first payloads from the batch and then gives
# the batch's pages back itself (``release_read``). A page released before the table reads
# it is faulted in again from the page cache (a minor fault, only the pages of those few
# payloads) and given back with the batch. A lag that waited for the table instead kept
# every page of the capture mapped that long: two 16 MiB windows cost 55 MiB of resident
# memory, and two 32 MiB windows 95 MiB (docs/benchmarks.md).
_RELEASE_LAG = 8 << 20
# A page faulted in maps its neighbours in the page cache with it (the kernel's fault-around,
# 64 KiB here): ``release_read`` also covers this much before the bytes it is given, where
# the previous batch's pages can be mapped again that way.
_FAULT_AROUND_MARGIN = 1 << 20
# The mappings ``release_read`` may drop pages of: capture files mapped read-only here, whose
# pages come back unchanged from the page cache (not, say, a packet ring shared with the kernel).
_FILE_MAPS: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()
# Ask the kernel to start reading this far ahead of the read position (in steps of
# _RELEASE_EVERY), so a capture that is not in the page cache comes in while the batches
# before it are decoded, not one page fault at a time.
_READ_AHEAD = 64 << 20


def _libc_madvise() -> Callable[[int, int, int], int] | None:
    """The C library's madvise, called through ctypes, which lets go of the GIL for the
    call: ``mmap.madvise`` holds it, and releasing the pages of a few GB read (the kernel
    unmapping each page) held it 0.4 s, while the flow table and enrichment threads waited."""
    try:
        call = ctypes.CDLL(None).madvise
    except (OSError, AttributeError, TypeError):  # no C library to ask (Windows)
        return None
    call.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    call.restype = ctypes.c_int
    return call


_MADVISE = _libc_madvise()


def _advise(mm: mmap.mmap, base: int, name: str, start: int, length: int) -> None:
    """A paging hint (``mmap.MADV_...`` by name) for ``length`` bytes from ``start`` of ``mm``
    (mapped at ``base``); one the platform or the file's system refuses changes nothing but
    speed."""
    option = getattr(mmap, name, None)
    if option is None:
        return
    if _MADVISE is not None:
        _MADVISE(base + start, length, option)  # an error return is a refused hint
        return
    advise = getattr(mm, "madvise", None)
    if advise is None:
        return
    with contextlib.suppress(OSError, ValueError):
        advise(option, start, length)


def release_read(data: U8, end: int) -> None:
    """The caller has read what it needed of ``data[:end]``: where ``data`` is a view of a
    capture file mapped by ``MmapSource``, the mapped pages from a little before it up to
    ``end`` are given back (reading them again faults them in again from the page cache, so
    a page another reader still wanted costs time, never data). Anything else is left alone."""
    base = data
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if not (isinstance(base, memoryview) and base.obj in _FILE_MAPS):
        return
    mapped = np.frombuffer(base, np.uint8)
    first = mapped.ctypes.data  # page-aligned: the mapping's start
    start = max(data.ctypes.data - _FAULT_AROUND_MARGIN, first) // mmap.PAGESIZE * mmap.PAGESIZE
    stop = min(data.ctypes.data + max(end, 0), first + mapped.shape[0])
    stop = -(-stop // mmap.PAGESIZE) * mmap.PAGESIZE
    if stop > start:
        _advise(base.obj, first, "MADV_DONTNEED", start - first, stop - start)


class ByteSource(Protocol):
    """A forward-only view of an input's bytes."""

    pos: int

    def window(self, want: int) -> U8:
        """Bytes from ``pos``; at least ``want`` of them unless the input ends first."""

    def advance(self, n: int) -> None:
        """Mark ``n`` bytes from ``pos`` as consumed."""

    def close(self) -> None:
        """Release the input."""


class MmapSource:
    """A regular file, memory-mapped read-only."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._file = fileobj
        size = os.fstat(fileobj.fileno()).st_size
        self.size = size
        self.pos = 0
        self._released = 0
        self._advised = 0  # bytes up to here were announced with MADV_WILLNEED
        if size:
            self._mm: mmap.mmap | None = mmap.mmap(fileobj.fileno(), 0, access=mmap.ACCESS_READ)
            _FILE_MAPS.add(self._mm)
            # Read front to back: the kernel reads ahead asynchronously, as for read(),
            # instead of around each faulting page, and does not promote the pages.
            self._all: U8 = np.frombuffer(self._mm, dtype=np.uint8)
            self._base = self._all.ctypes.data
            _advise(self._mm, self._base, "MADV_SEQUENTIAL", 0, size)
            # In 2 MiB pieces where the kernel can: a capture not yet in the page cache is
            # read into 2 MiB folios (as read() would) instead of the 4 KiB pages a fault
            # brings in, and folios of that size are mapped whole. Unmapped and mapped
            # again a page at a time, the 5 M-packet capture cost 0.7-0.8 s of system time;
            # read in whole folios, 0.5: that scan read cold 28 % quicker, and every later
            # one 7 % (docs/benchmarks.md). Nothing changes where transparent huge pages
            # are off or the file system keeps small folios.
            _advise(self._mm, self._base, "MADV_HUGEPAGE", 0, size)
        else:
            self._mm = None
            self._all = np.zeros(0, np.uint8)
            self._base = 0

    def window(self, want: int) -> U8:
        end = min(self.size, self.pos + max(want, 0))
        ahead = min(self.size, end + _READ_AHEAD)
        if self._mm is not None and ahead - self._advised >= _RELEASE_EVERY:
            start = self._advised // mmap.PAGESIZE * mmap.PAGESIZE
            _advise(self._mm, self._base, "MADV_WILLNEED", start, ahead - start)
            self._advised = ahead
        return self._all[self.pos : end]

    def advance(self, n: int) -> None:
        self.pos += n
        if self._mm is not None and self.pos - _RELEASE_LAG - self._released >= _RELEASE_EVERY:
            # Bytes this far behind ``pos`` are done with: a reader advances once it has
            # handed a batch out, and the batches in flight behind it span less than the lag
            # (a page touched again after this is read back from the page cache, so a longer
            # queue costs at most time, never data). Each release also covers the lag's
            # length before the last one: a page a straggler faulted in again there would
            # otherwise stay resident for the rest of the file (with half this lag, the
            # mapped pages of the 5 M-packet capture grew to 0.7-1.0 GiB).
            upto = (self.pos - _RELEASE_LAG) // mmap.PAGESIZE * mmap.PAGESIZE
            if upto > self._released:
                start = max(0, self._released - _RELEASE_LAG)
                _advise(self._mm, self._base, "MADV_DONTNEED", start, upto - start)
                self._released = upto

    def close(self) -> None:
        self._file.close()


class StreamSource:
    """A non-seekable or compressed stream read in chunks."""

    def __init__(self, stream: BinaryIO, chunk: int = 8 << 20) -> None:
        self._stream = stream
        self._chunk = chunk
        self._buf: U8 = np.zeros(0, np.uint8)
        self._start = 0  # index in _buf of ``pos``
        self._eof = False
        self.pos = 0

    def _fill(self, want: int) -> None:
        have = self._buf.shape[0] - self._start
        if have >= want or self._eof:
            return
        size = max(want, self._chunk)
        fresh = np.empty(size, np.uint8)
        fresh[:have] = self._buf[self._start :]
        filled = have
        view = memoryview(fresh)  # type: ignore[arg-type]
        while filled < want:
            got = self._stream.readinto(view[filled:])  # type: ignore[attr-defined]
            if not got:
                self._eof = True
                break
            filled += got
        self._buf = fresh[:filled]
        self._start = 0

    def window(self, want: int) -> U8:
        self._fill(want)
        return self._buf[self._start : self._start + max(want, 0)]

    def advance(self, n: int) -> None:
        self._start += n
        self.pos += n

    def close(self) -> None:
        self._stream.close()
