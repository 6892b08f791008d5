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
from collections.abc import Callable
from typing import BinaryIO, Protocol

import numpy as np

from burstwatch.ingest.records import U8

_RELEASE_EVERY = 8 << 20  # give back mmap pages in steps of this many bytes
# ... and only this far behind the read position (two 16 MiB windows): a batch handed out is
# decoded in one thread and its flows' first payloads copied in another, up to two queued
# batches later. A page released before that is faulted in again from the page cache (a
# minor fault: only the pages of those few payloads); a longer lag keeps every page of the
# capture mapped that long (64 MiB cost 32 MiB more resident memory for no measurable time).
_RELEASE_LAG = 32 << 20
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
            # Read front to back: the kernel reads ahead asynchronously, as for read(),
            # instead of around each faulting page, and does not promote the pages.
            self._all: U8 = np.frombuffer(self._mm, dtype=np.uint8)
            self._base = self._all.ctypes.data
            _advise(self._mm, self._base, "MADV_SEQUENTIAL", 0, size)
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
