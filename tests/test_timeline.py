"""Several captures as one timeline: argument expansion, chaining, merging, bad inputs."""

from __future__ import annotations

import gzip
import heapq
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burstwatch.errors import InputError, NotACaptureError
from burstwatch.ingest import timeline as tl
from burstwatch.ingest.records import RecordBatch
from burstwatch.ingest.timeline import InputLog, Timeline, expand_inputs, iter_files
from tests.craft import pcap_bytes, pcapng_bytes

T0 = 1_700_000_000_000_000_000
MS = 1_000_000

Packet = tuple[int, bytes]  # ts_ns, frame
Row = tuple[int, bytes, str, int, int]  # ts_ns, bytes, source, linktype, file offset


def frame(tag: int, size: int = 60) -> bytes:
    """A frame whose bytes say which packet it is."""
    return tag.to_bytes(4, "big") * (size // 4) + bytes(size % 4)


def write(path: Path, packets: Sequence[Packet], **kw: Any) -> Path:
    """A nanosecond pcap (timestamps kept exactly); ``.gz`` names are compressed."""
    data = pcap_bytes(packets, nanosecond=True, **kw).data
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def header_offsets(packets: Sequence[Packet]) -> list[int]:
    return [r.header_offset for r in pcap_bytes(packets, nanosecond=True).records]


def rows(timeline: Timeline) -> list[Row]:
    out = []
    for batch, source in timeline.sourced_batches():
        for i in range(len(batch)):
            start = int(batch.offset[i])
            out.append((
                int(batch.ts_ns[i]), bytes(batch.data[start : start + int(batch.caplen[i])]),
                timeline.sources[int(source[i])], int(batch.linktype[i]),
                int(batch.file_offset[i]),
            ))
    return out


def heap_merge(files: Sequence[tuple[str, Sequence[Packet], int]]) -> list[Row]:
    """mergecap's rule, one record at a time: take the earliest next record of any file,
    the file given first on a tie. Files are (name, packets, linktype)."""
    heads = [
        (packets[0][0], index, 0) for index, (_, packets, _) in enumerate(files) if packets
    ]
    heapq.heapify(heads)
    offsets = [header_offsets(packets) for _, packets, _ in files]
    out = []
    while heads:
        _, index, k = heapq.heappop(heads)
        name, packets, linktype = files[index]
        out.append((packets[k][0], packets[k][1], name, linktype, offsets[index][k]))
        if k + 1 < len(packets):
            heapq.heappush(heads, (packets[k + 1][0], index, k + 1))
    return out


def sorted_oracle(files: Sequence[tuple[str, Sequence[Packet], int]]) -> list[Row]:
    """For files in time order: all records sorted by (ts, file index, record index)."""
    table = []
    for index, (name, packets, linktype) in enumerate(files):
        for k, (ts, data) in enumerate(packets):
            table.append((ts, index, k, data, name, linktype, header_offsets(packets)[k]))
    table.sort()
    return [(ts, data, name, lt, off) for ts, _, _, data, name, lt, off in table]


class OpenCounter:
    """Counts captures open at once, by wrapping open_capture and each source's close."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = self.most = self.opened = 0
        real = tl.open_capture

        def counting(path: str) -> Any:
            reader = real(path)
            self.now += 1
            self.opened += 1
            self.most = max(self.most, self.now)
            close = reader._source.close

            def closing() -> None:
                self.now -= 1
                close()

            reader._source.close = closing  # type: ignore[method-assign]
            return reader

        monkeypatch.setattr(tl, "open_capture", counting)


# -- expand_inputs ---------------------------------------------------------------------------


def test_directory_is_walked_sorted_without_hidden_files(tmp_path: Path) -> None:
    top = tmp_path / "caps"
    (top / "sub" / "deeper").mkdir(parents=True)
    (top / ".git").mkdir()
    for name in ("b.pcap", "a.pcap", ".hidden.pcap", "sub/c.pcap", "sub/deeper/d.pcap", ".git/x"):
        (top / name).write_bytes(b"x")
    assert expand_inputs([str(top)]) == [
        str(top / n) for n in ("a.pcap", "b.pcap", "sub/c.pcap", "sub/deeper/d.pcap")
    ]


def test_glob_recurses_and_duplicates_keep_first_place(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("x.pcap", "y.txt", "sub/z.pcap"):
        (tmp_path / name).write_bytes(b"x")
    pattern = str(tmp_path / "**" / "*.pcap")
    got = expand_inputs([str(tmp_path / "sub" / "z.pcap"), pattern, str(tmp_path), "-", "-"])
    assert got == [
        str(tmp_path / "sub" / "z.pcap"), str(tmp_path / "x.pcap"), str(tmp_path / "y.txt"), "-"
    ]


def test_same_file_spelled_twice_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.pcap").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert expand_inputs(["a.pcap", "./a.pcap", str(tmp_path / "a.pcap")]) == ["a.pcap"]


def test_a_glob_metacharacter_in_a_real_file_name_is_not_a_pattern(tmp_path: Path) -> None:
    odd = tmp_path / "cap[1].pcap"
    odd.write_bytes(b"x")
    assert expand_inputs([str(odd)]) == [str(odd)]


def test_missing_file_passes_through_for_the_reader_to_report(tmp_path: Path) -> None:
    assert expand_inputs([str(tmp_path / "gone.pcap")]) == [str(tmp_path / "gone.pcap")]


def test_pattern_or_directory_matching_nothing_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="pattern matches no files") as err:
        expand_inputs([str(tmp_path / "*.pcap")])
    assert "\n" not in str(err.value)
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    with pytest.raises(InputError, match="directory contains no"):
        expand_inputs([str(tmp_path / "empty")])


# -- chaining --------------------------------------------------------------------------------


@st.composite
def split_capture(draw: st.DrawFn) -> tuple[list[Packet], list[list[Packet]], list[int], int]:
    """A small capture in time order, its parts at random packet indices, and an order to
    hand the parts over in."""
    n = draw(st.integers(2, 24))
    gaps = draw(st.lists(st.integers(1, 3 * MS), min_size=n, max_size=n))
    sizes = draw(st.lists(st.integers(1, 90), min_size=n, max_size=n))
    packets = [(T0 + sum(gaps[: k + 1]), frame(k, sizes[k])) for k in range(n)]
    cuts = draw(st.sets(st.integers(1, n - 1), min_size=1, max_size=min(4, n - 1)))
    bounds = [0, *sorted(cuts), n]
    parts = [packets[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    order = draw(st.permutations(range(len(parts))))
    return packets, parts, list(order), draw(st.integers(1, 7))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split_capture())
def test_split_capture_given_in_any_order_reads_back_as_the_original(
    case: tuple[list[Packet], list[list[Packet]], list[int], int],
) -> None:
    packets, parts, order, batch_size = case
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write(Path(tmp) / f"part{k}.pcap", parts[k]) for k in order]
        timeline = Timeline([str(p) for p in paths], batch_size=batch_size)
        batches = list(timeline.sourced_batches())
        got = [
            (int(b.ts_ns[i]), bytes(b.data[int(b.offset[i]) : int(b.offset[i]) + int(b.caplen[i])]))
            for b, _ in batches
            for i in range(len(b))
        ]
        assert got == packets
        # Rotated files never overlap: every batch is a reader's own, bytes not copied.
        assert all(not b.data.flags.owndata for b, _ in batches)
        assert all(len(b) <= batch_size for b, _ in batches)
        assert timeline.log.files_read == len(parts) and not timeline.log.warnings
        assert timeline.bytes_consumed == timeline.size_hint == sum(p.stat().st_size for p in paths)


def test_rotated_files_are_opened_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = OpenCounter(monkeypatch)
    files = []
    for k in range(5):
        packets = [(T0 + (10 * k + j) * MS, frame(10 * k + j)) for j in range(7)]
        files.append((str(write(tmp_path / f"rot{k}.pcap", packets)), packets, 1))
    shuffled = [files[k] for k in (3, 0, 4, 2, 1)]
    timeline = Timeline([f[0] for f in shuffled], batch_size=3)
    assert counter.most == 1  # each peek closes its file before the next one opens
    assert rows(timeline) == sorted_oracle(files)
    assert counter.most == 1 and counter.now == 0
    assert counter.opened == 10  # a peek and a read for each


def test_overlapping_files_are_open_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = OpenCounter(monkeypatch)
    a = [(T0 + 2 * k * MS, frame(k)) for k in range(20)]
    b = [(T0 + (2 * k + 1) * MS, frame(100 + k)) for k in range(20)]
    files = [(str(write(tmp_path / "a.pcap", a)), a, 1), (str(write(tmp_path / "b.pcap", b)), b, 1)]
    assert rows(Timeline([f[0] for f in files], batch_size=4)) == sorted_oracle(files)
    assert counter.most == 2 and counter.now == 0


# -- merging ---------------------------------------------------------------------------------


@st.composite
def overlapping_files(draw: st.DrawFn, in_order: bool = True) -> tuple[list[list[Packet]], int]:
    """2-4 files whose timestamps share a narrow range, so they interleave and tie."""
    files = []
    for f in range(draw(st.integers(2, 4))):
        stamps = draw(st.lists(st.integers(0, 12), min_size=0, max_size=15))
        if in_order:
            stamps.sort()
        sizes = draw(st.lists(st.integers(1, 80), min_size=len(stamps), max_size=len(stamps)))
        files.append([(T0 + s * MS, frame(1000 * f + k, sizes[k])) for k, s in enumerate(stamps)])
    return files, draw(st.integers(1, 6))


def _merged(tmp: str, files: list[list[Packet]], batch_size: int) -> tuple[list[Row], list[Row], Timeline]:
    named = [(str(write(Path(tmp) / f"f{k}.pcap", p)), p, 1) for k, p in enumerate(files)]
    timeline = Timeline([n for n, _, _ in named], batch_size=batch_size)
    got = rows(timeline)
    return got, heap_merge(named), timeline


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overlapping_files())
def test_overlapping_files_merge_in_time_order_stable_on_ties(
    case: tuple[list[list[Packet]], int],
) -> None:
    files, batch_size = case
    with tempfile.TemporaryDirectory() as tmp:
        named = [(str(write(Path(tmp) / f"f{k}.pcap", p)), p, 1) for k, p in enumerate(files)]
        timeline = Timeline([n for n, _, _ in named], batch_size=batch_size)
        batches = list(timeline.sourced_batches())
    got = [
        (int(b.ts_ns[i]), bytes(b.data[int(b.offset[i]) : int(b.offset[i]) + int(b.caplen[i])]),
         timeline.sources[int(s[i])], int(b.linktype[i]), int(b.file_offset[i]))
        for b, s in batches
        for i in range(len(b))
    ]
    assert got == sorted_oracle(named)
    assert all(len(b) <= batch_size for b, _ in batches)
    assert all(np.all(np.diff(b.ts_ns) >= 0) for b, _ in batches)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overlapping_files(in_order=False))
def test_files_out_of_order_keep_their_own_order_as_a_record_by_record_merge_does(
    case: tuple[list[list[Packet]], int],
) -> None:
    files, batch_size = case
    with tempfile.TemporaryDirectory() as tmp:
        got, expected, _ = _merged(tmp, files, batch_size)
    assert got == expected


def test_merged_batches_copy_only_the_interleaved_stretch(tmp_path: Path) -> None:
    """A file overlapping the next one only at its end: the rest passes through uncopied."""
    a = [(T0 + k * MS, frame(k)) for k in range(100)]
    b = [(T0 + (95 + k) * MS + 1, frame(500 + k)) for k in range(100)]
    files = [(str(write(tmp_path / "a.pcap", a)), a, 1), (str(write(tmp_path / "b.pcap", b)), b, 1)]
    timeline = Timeline([files[1][0], files[0][0]], batch_size=10)
    batches = list(timeline.batches())
    copied = sum(len(x) for x in batches if x.data.flags.owndata)
    assert 0 < copied <= 20  # of 200: the 9 records within 95-100 ms, give or take a batch edge
    timeline = Timeline([files[1][0], files[0][0]], batch_size=10)
    assert rows(timeline) == sorted_oracle(files)


def test_mixed_pcap_pcapng_and_gzip_with_their_own_link_types(tmp_path: Path) -> None:
    ether = [(T0 + 3 * k * MS, frame(k)) for k in range(30)]
    raw_ip = [(T0 + (3 * k + 1) * MS, frame(100 + k)) for k in range(30)]
    cooked = [(T0 + (3 * k + 1) * MS, frame(200 + k)) for k in range(30)]  # ties with raw_ip
    write(tmp_path / "ether.pcap.gz", ether)
    write(tmp_path / "raw.pcap", raw_ip, linktype=101)
    (tmp_path / "cooked.pcapng").write_bytes(pcapng_bytes(cooked, linktype=113))
    paths = [str(tmp_path / n) for n in ("cooked.pcapng", "ether.pcap.gz", "raw.pcap")]
    timeline = Timeline(paths, batch_size=8)
    got = rows(timeline)
    by_name = {r[2]: r[3] for r in got}
    assert by_name == {paths[0]: 113, paths[1]: 1, paths[2]: 101}
    # pcapng offsets are block offsets, not pcap record offsets: compare the rest.
    expected = sorted_oracle([(paths[0], cooked, 113), (paths[1], ether, 1), (paths[2], raw_ip, 101)])
    assert [r[:4] for r in got] == [r[:4] for r in expected]
    assert timeline.size_hint == 0  # a gzip member's size is unknown until read
    assert timeline.bytes_consumed > 0 and timeline.log.files_read == 3


# -- bad inputs ------------------------------------------------------------------------------


def test_unreadable_files_are_skipped_with_a_warning_naming_them(tmp_path: Path) -> None:
    good1 = [(T0 + k * MS, frame(k)) for k in range(5)]
    good2 = [(T0 + (10 + k) * MS, frame(10 + k)) for k in range(5)]
    write(tmp_path / "good1.pcap", good1)
    write(tmp_path / "good2.pcap", good2)
    (tmp_path / "notes.txt").write_text("not a capture\n")
    (tmp_path / "stub.pcap").write_bytes(pcap_bytes([], nanosecond=True).data[:10])
    names = [str(tmp_path / n) for n in ("good2.pcap", "notes.txt", "gone.pcap", "stub.pcap", "good1.pcap")]
    timeline = Timeline(names, batch_size=3)
    assert [r[0] for r in rows(timeline)] == [ts for ts, _ in good1 + good2]
    assert timeline.log.files_read == 2
    assert timeline.log.skipped == names[1:4]
    messages = [str(w) for w in timeline.log.warnings]
    assert messages == [
        f"{names[1]}: skipped: not a pcap or pcapng capture (starts with 0x{b'not '.hex()})",
        f"{names[2]}: skipped: no such file",
        f"{names[3]}: skipped: file ends inside the pcap global header",
    ]
    assert timeline.name == f"{names[0]} and 1 more"


def test_truncated_file_gives_its_records_up_to_the_damage_and_the_readers_warning(
    tmp_path: Path,
) -> None:
    whole = [(T0 + 2 * k * MS, frame(k)) for k in range(10)]
    other = [(T0 + (2 * k + 1) * MS, frame(100 + k)) for k in range(10)]
    data = pcap_bytes(whole, nanosecond=True).data
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])  # inside the last record
    write(tmp_path / "other.pcap", other)
    timeline = Timeline([str(cut), str(tmp_path / "other.pcap")], batch_size=4)
    got = rows(timeline)
    files = [(str(cut), whole[:9], 1), (str(tmp_path / "other.pcap"), other, 1)]
    assert got == sorted_oracle(files)
    [warning] = timeline.log.warnings
    assert warning.source == str(cut) and "cut short inside a record" in warning.message
    assert not timeline.log.skipped


def test_no_readable_file_raises_the_first_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(NotACaptureError, match=r"a\.txt: not a pcap"):
        Timeline([str(tmp_path / "a.txt"), str(tmp_path / "missing.pcap")])
    with pytest.raises(InputError, match="missing.pcap: no such file"):
        Timeline([str(tmp_path / "missing.pcap"), str(tmp_path / "a.txt")])
    with pytest.raises(InputError, match="no input files"):
        Timeline([])


def test_a_capture_without_packets_is_read_and_adds_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.pcap").write_bytes(pcap_bytes([], nanosecond=True).data)
    packets = [(T0, frame(1))]
    write(tmp_path / "one.pcap", packets)
    timeline = Timeline([str(tmp_path / "empty.pcap"), str(tmp_path / "one.pcap")])
    assert [r[0] for r in rows(timeline)] == [T0]
    assert timeline.log.files_read == 2 and not timeline.log.warnings


def test_a_pipe_is_read_once_and_merged_with_files(tmp_path: Path) -> None:
    """A pipe cannot be peeked at and reopened: it stays open from the peek on."""
    piped = [(T0 + 2 * k * MS, frame(k)) for k in range(40)]
    filed = [(T0 + (2 * k + 1) * MS, frame(100 + k)) for k in range(40)]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = pcap_bytes(piped, nanosecond=True).data

    def feed() -> None:
        with open(fifo, "wb") as out:
            out.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    write(tmp_path / "file.pcap", filed)
    try:
        timeline = Timeline([str(tmp_path / "file.pcap"), str(fifo)], batch_size=16)
        got = rows(timeline)
    finally:
        writer.join(10)
    assert got == sorted_oracle([(str(tmp_path / "file.pcap"), filed, 1), (str(fifo), piped, 1)])


def test_abandoning_the_stream_closes_every_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = OpenCounter(monkeypatch)
    for name, parity in (("a.pcap", 0), ("b.pcap", 1)):
        write(tmp_path / name, [(T0 + (2 * k + parity) * MS, frame(k)) for k in range(50)])
    stream = Timeline([str(tmp_path / "a.pcap"), str(tmp_path / "b.pcap")], batch_size=5).batches()
    while counter.now < 2:  # b opens once a's records reach its first timestamp
        next(stream)
    stream.close()
    assert counter.now == 0


# -- one file at a time ----------------------------------------------------------------------


def _drain(files: Iterator[tuple[Any, Iterator[RecordBatch]]]) -> list[tuple[str, int]]:
    return [(reader.name, sum(len(b) for b in batches)) for reader, batches in files]


def test_iter_files_reads_each_file_separately_and_skips_bad_ones(tmp_path: Path) -> None:
    write(tmp_path / "late.pcap", [(T0 + 9 * MS, frame(1)), (T0 + 10 * MS, frame(2))])
    data = pcap_bytes([(T0, frame(3)), (T0 + MS, frame(4))], nanosecond=True).data
    (tmp_path / "cut.pcap").write_bytes(data[:-5])
    (tmp_path / "junk").write_bytes(b"\0" * 64)
    inputs = [str(tmp_path / n) for n in ("late.pcap", "junk", "cut.pcap")]
    log = InputLog()
    assert _drain(iter_files(inputs, log, batch_size=1)) == [(inputs[0], 2), (inputs[2], 1)]
    assert log.files_read == 2 and log.skipped == [inputs[1]]
    assert [w.source for w in log.warnings] == [inputs[1], inputs[2]]
    assert "cut short" in log.warnings[1].message


def test_iter_files_raises_the_first_error_when_nothing_is_readable(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"\0" * 64)
    log = InputLog()
    with pytest.raises(NotACaptureError, match="junk: not a pcap"):
        _drain(iter_files([str(tmp_path / "junk"), str(tmp_path / "nope")], log))
    assert log.skipped == [str(tmp_path / "junk"), str(tmp_path / "nope")]
