"""The mapped input's page hints: read ahead of the position (so a capture not in the page
cache is read while earlier batches are decoded) and released behind it (so the resident
set stays bounded), checked on the calls the source makes."""

from __future__ import annotations

import ctypes
import mmap
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from burstwatch.ingest import bytesource
from burstwatch.ingest.bytesource import MmapSource


class _Recorder:
    """Stands in for the C library's madvise: records each call as (option, offset in the
    source's mapping, length), then makes it (or answers ``refuse(option)``'s error)."""

    def __init__(self, src: MmapSource, refuse: Callable[[int], bool] = lambda option: False) -> None:
        self.base = src._base
        self.real = bytesource._MADVISE
        self.refuse = refuse
        self.calls: list[tuple[int, int, int]] = []

    def __call__(self, address: int, length: int, option: int) -> int:
        self.calls.append((option, address - self.base, length))
        if self.refuse(option) or self.real is None:
            return -1
        return self.real(address, length, option)


def test_the_page_hints_are_given_without_holding_the_gil() -> None:
    """mmap.madvise holds the GIL while the kernel unmaps the pages released; the C
    library's, called through ctypes (not as a Python-API function), does not."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the C library's madvise is looked up on Linux")
    call = bytesource._MADVISE
    assert isinstance(call, ctypes._CFuncPtr)  # type: ignore[attr-defined]
    assert not call._flags_ & ctypes._FUNCFLAG_PYTHONAPI  # type: ignore[attr-defined]


def test_windows_announce_the_bytes_ahead_and_release_those_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 200 << 20
    path = tmp_path / "big.bin"
    with path.open("wb") as f:
        f.truncate(size)
    with path.open("rb") as f:
        src = MmapSource(f)
        assert src._mm is not None
        rec = _Recorder(src)
        monkeypatch.setattr(bytesource, "_MADVISE", rec)
        step = 16 << 20
        seen = 0
        while src.pos < size:
            w = src.window(step)
            seen += int(w.shape[0])
            src.advance(int(w.shape[0]))
        assert seen == size
    ahead = [(s, n) for o, s, n in rec.calls if o == mmap.MADV_WILLNEED]
    behind = [(s, n) for o, s, n in rec.calls if o == mmap.MADV_DONTNEED]
    # every byte was announced before it was read, up to the read-ahead distance early
    covered = np.zeros(size // mmap.PAGESIZE, bool)
    for s, n in ahead:
        covered[s // mmap.PAGESIZE:(s + n) // mmap.PAGESIZE] = True
    assert covered.all()
    assert ahead[0][0] == 0 and ahead[0][1] >= step + bytesource._READ_AHEAD - mmap.PAGESIZE
    assert max(s + n for s, n in ahead) == size
    # pages were given back, never within the lag behind the final position
    assert behind and max(s + n for s, n in behind) <= size - bytesource._RELEASE_LAG


def test_a_small_file_gets_no_hints_it_does_not_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(bytes(1000))
    with path.open("rb") as f:
        src = MmapSource(f)
        rec = _Recorder(src)
        monkeypatch.setattr(bytesource, "_MADVISE", rec)
        assert src.window(4096).shape[0] == 1000
        src.advance(1000)
    assert rec.calls == []


def _vm_flags(path: Path) -> list[str]:
    """The kernel's flags (``VmFlags``) of this process's mapping of ``path``."""
    mine = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:
            mine = line.rstrip().endswith(str(path))
        elif mine and line.startswith("VmFlags:"):
            return head[1:]
    raise AssertionError(f"{path} is not mapped")


THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@pytest.mark.skipif(not THP.is_file() or "[never]" in (THP.read_text() if THP.is_file() else ""),
                    reason="needs transparent huge pages (Linux, not 'never')")
def test_a_mapped_capture_is_read_and_mapped_in_huge_pieces(tmp_path: Path) -> None:
    """The kernel is asked for 2 MiB folios (``hg``) and front-to-back reading (``sr``) on
    the capture's own mapping: it read a cold capture into 4 KiB pages otherwise."""
    path = tmp_path / "capture.bin"
    with path.open("wb") as f:
        f.truncate(4 << 20)
    with path.open("rb") as f:
        src = MmapSource(f)
        flags = _vm_flags(path)
        src.close()
    assert "hg" in flags and "sr" in flags, flags


def _resident_mib(path: Path) -> float:
    """Resident MiB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, mine = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:
            mine = line.rstrip().endswith(str(path))
        elif mine and line.startswith("Rss:"):
            total += int(head[1])
    return total / 1024


@pytest.mark.slow  # 4 s of writing and reading 330 MB; the pipeline's own bound is tested below
def test_pages_a_straggler_touches_behind_the_lag_are_released_again(tmp_path: Path) -> None:
    """A reader that lags further than the release lag faults pages in again; the next
    releases cover them, so the mapped capture's resident pages stay bounded."""
    lag, step = bytesource._RELEASE_LAG, 16 << 20
    size = lag + 20 * step
    path = tmp_path / "capture.bin"
    with path.open("wb") as f:
        f.write(np.ones(size, np.uint8).tobytes())
    with path.open("rb") as f:
        src = MmapSource(f)
        while src.pos < size:
            w = src.window(step)
            int(w[::mmap.PAGESIZE].sum())  # the reader touches its window
            src.advance(int(w.shape[0]))
            behind = src.pos - lag - step // 2  # a straggler re-reads 8 MiB past the lag
            if behind > 0:
                int(src._all[behind:behind + step // 2:mmap.PAGESIZE].sum())
        resident = _resident_mib(path)
    # the last lag and a step or two are resident; 19 stragglers' 8 MiB each would be more
    assert resident < (lag + 3 * step) / 2**20, resident


@pytest.mark.parametrize("through", ["the C library", "mmap.madvise"])
def test_a_refused_hint_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through: str
) -> None:
    """A file system that refuses a paging hint still gives every byte, whether the hint
    goes through the C library or (where there is none to ask) through the mmap object."""

    class Refusing:
        def __init__(self, mm: mmap.mmap) -> None:
            self.mm = mm
            self.refused = 0

        def madvise(self, option: int, start: int = 0, length: int = 0) -> None:
            if option != mmap.MADV_DONTNEED:
                self.refused += 1
                raise OSError(22, "Invalid argument")
            self.mm.madvise(option, start, length)

    data = np.arange(40 << 20, dtype=np.uint32).view(np.uint8)[: 40 << 20]
    path = tmp_path / "capture.bin"
    path.write_bytes(data.tobytes())
    with path.open("rb") as f:
        src = MmapSource(f)
        if through == "mmap.madvise":
            monkeypatch.setattr(bytesource, "_MADVISE", None)
            refusing = src._mm = Refusing(src._mm)  # type: ignore[arg-type,assignment]
        else:
            rec = _Recorder(src, refuse=lambda option: option != mmap.MADV_DONTNEED)
            monkeypatch.setattr(bytesource, "_MADVISE", rec)
        got = []
        while src.pos < data.shape[0]:
            w = src.window(8 << 20)
            got.append(w.copy())
            src.advance(int(w.shape[0]))
    assert np.array_equal(np.concatenate(got), data)
    refused = refusing.refused if through == "mmap.madvise" else sum(
        1 for option, _, _ in rec.calls if option != mmap.MADV_DONTNEED)
    assert refused > 0


def test_a_reader_done_with_a_batch_gives_its_mapped_pages_back(tmp_path: Path) -> None:
    """``release_read`` drops the pages a batch's bytes lie on (and a little before them,
    where fault-around maps the previous batch's pages again), only of a capture mapped by
    ``MmapSource``: the bytes read afterwards are the file's, unchanged."""
    if bytesource._MADVISE is None:
        pytest.skip("no madvise to give pages back with")
    size = 64 << 20
    path = tmp_path / "capture.bin"
    content = np.arange(size // 8, dtype=np.uint64)
    path.write_bytes(content.tobytes())
    with path.open("rb") as f:
        src = MmapSource(f)
        whole = src._all
        int(whole[::mmap.PAGESIZE].sum())  # every page mapped
        assert _resident_mib(path) > 60
        batch = whole[(16 << 20) + 100:(48 << 20) - 100]
        bytesource.release_read(batch, batch.shape[0])
        resident = _resident_mib(path)
        # 32 MiB of batch and 1 MiB before it given back; the rest stays
        assert 28 < resident < 32, resident
        # read again: the file's bytes, faulted back in from the page cache
        assert np.array_equal(batch.view(np.uint8), content.view(np.uint8)[
            (16 << 20) + 100:(48 << 20) - 100])
        bytesource.release_read(whole[:10], 0)  # nothing read: at most the page before
        assert _resident_mib(path) > 30


def test_pages_of_anything_but_a_mapped_capture_are_left_alone() -> None:
    """Anonymous memory given to ``madvise(MADV_DONTNEED)`` would read back as zeros: an
    array of our own and a mapping not made by ``MmapSource`` keep their bytes."""
    own = np.full(8 << 20, 7, np.uint8)
    bytesource.release_read(own, own.shape[0])
    assert (own == 7).all()
    anonymous = mmap.mmap(-1, 8 << 20)
    view = np.frombuffer(anonymous, np.uint8)
    view[:] = 9
    bytesource.release_read(view, view.shape[0])
    assert (view == 9).all()
    del view
    anonymous.close()


def _udp_capture(path: Path, packets: int, payload: int = 1000) -> None:
    """A classic pcap of IPv4/UDP packets, four per flow (ports change every four), each
    with ``payload`` bytes: new flows all the way, so the flow table keeps reading first
    payloads from batches behind the reading position."""
    frame = 14 + 20 + 8 + payload
    rec = np.zeros((packets, 16 + frame), np.uint8)
    header = rec[:, :16].view("<u4")
    header[:, 0] = 1_700_000_000 + np.arange(packets, dtype=np.uint32) // 10_000
    header[:, 1] = (np.arange(packets, dtype=np.uint32) % 10_000) * 100
    header[:, 2] = header[:, 3] = frame
    pkt = rec[:, 16:]
    pkt[:, 12:14] = (0x08, 0x00)
    pkt[:, 14] = 0x45
    pkt[:, 16:18] = np.array([(20 + 8 + payload) >> 8, (20 + 8 + payload) & 255], np.uint8)
    pkt[:, 22], pkt[:, 23] = 64, 17
    pkt[:, 26:30] = (10, 0, 0, 1)
    pkt[:, 30:34] = (198, 51, 100, 7)
    flow = (np.arange(packets) // 4).astype(np.uint32)
    pkt[:, 34] = 0x80 | (flow >> 8) & 0x7F  # source port 32768 + flow (mod 32768)
    pkt[:, 35] = flow & 0xFF
    pkt[:, 36:38] = (0x01, 0xBB)
    pkt[:, 38:40] = np.array([(8 + payload) >> 8, (8 + payload) & 255], np.uint8)
    pkt[:, 42:] = np.random.default_rng(1).integers(0, 256, (packets, payload), np.uint8)
    glob = np.array([0xA1B2C3D4, 0x00040002, 0, 0, 65535, 1], "<u4").view(np.uint8)
    glob = np.concatenate([glob[:4], np.array([2, 0, 4, 0], np.uint8), glob[8:]])
    path.write_bytes(glob.tobytes() + rec.tobytes())


@pytest.mark.slow
def test_a_scans_mapped_capture_stays_bounded_while_the_table_reads_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow table reads its flows' first payloads from batches the reading has passed
    (and released); it gives each batch's pages back when done, so the capture's resident
    pages stay within a few windows however long the capture (without that they grew with
    it: 0.7-1.6 GiB on the 5 M-packet capture)."""
    from burstwatch.config import load_settings
    from burstwatch.enrich.annotate import FlowAnnotator
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.pipeline import Pipeline, RunStats, run_flows

    path = tmp_path / "udp.pcap"
    _udp_capture(path, 200_000)  # 210 MB: more than eight windows
    peak = [0.0]
    table_part = Pipeline.table_part

    def watched(self: Pipeline, decoded: object) -> object:
        out = table_part(self, decoded)  # type: ignore[arg-type]
        peak[0] = max(peak[0], _resident_mib(path))
        return out

    monkeypatch.setattr(Pipeline, "table_part", watched)
    settings, geo = load_settings(), GeoDatabase.bundled()
    rows = sum(len(b.rows) for b in run_flows([str(path)], None, RunStats(),
                                              lambda: FlowAnnotator(geo, settings)))
    assert rows >= 30_000
    window = bytesource.WINDOW_BYTES / 2**20
    assert 0 < peak[0] < 4 * window, peak[0]
