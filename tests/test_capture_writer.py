"""The rotating capture writer writes records that read back unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from burstwatch.ingest import open_capture
from burstwatch.outputs.capture import RotatingPcapWriter
from tests.conftest import PROJECT_PCAPS


def test_rotating_writer_round_trip(tmp_path: Path) -> None:
    src = list(open_capture(str(PROJECT_PCAPS / "demo.pcap")).batches(batch_size=500))
    w = RotatingPcapWriter(str(tmp_path), max_bytes=400_000, keep=100)
    for b in src:
        w.write(b)
    w.close()
    assert len(w.files) > 3  # rotated by size
    back = [b for f in w.files for b in open_capture(str(f)).batches()]
    ts = np.concatenate([b.ts_ns for b in back])
    assert np.array_equal(ts, np.concatenate([b.ts_ns for b in src]))
    wire = np.concatenate([b.wirelen for b in back])
    assert np.array_equal(wire, np.concatenate([b.wirelen for b in src]))
    first_src = bytes(src[0].data[src[0].offset[0] : src[0].offset[0] + src[0].caplen[0]])
    first_back = bytes(back[0].data[back[0].offset[0] : back[0].offset[0] + back[0].caplen[0]])
    assert first_src == first_back


def test_rotating_writer_keeps_the_newest_files(tmp_path: Path) -> None:
    src = list(open_capture(str(PROJECT_PCAPS / "demo.pcap")).batches(batch_size=200))
    w = RotatingPcapWriter(str(tmp_path), max_bytes=100_000, keep=3)
    for b in src:
        w.write(b)
    w.close()
    assert len(list(tmp_path.glob("*.pcap"))) == 3
