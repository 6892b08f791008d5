"""Replay frames onto an interface at their own timing, for the tests and benchmarks of
`burstwatch live` (a packet socket in a network namespace they made).

The frames are kept as records (8-byte big-endian time in ns, 2-byte length, the frame), so
the sender reads one flat file and sleeps between frames, and nothing else runs beside it.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable
from pathlib import Path


def write_records(path: Path, frames: Iterable[tuple[int, bytes]]) -> None:
    """Frames (time in ns, bytes) as records for ``replay``, in the order given."""
    path.write_bytes(b"".join(struct.pack("!qH", ts, len(f)) + f for ts, f in frames))


def replay(iface: str, path: str) -> None:
    """Send the records of ``path`` on ``iface``, spaced as their times say."""
    data = Path(path).read_bytes()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    pos, start, first = 0, time.monotonic(), None
    while pos < len(data):
        ts, n = struct.unpack_from("!qH", data, pos)
        frame = data[pos + 10 : pos + 10 + n]
        pos += 10 + n
        first = ts if first is None else first
        wait = (ts - first) / 1e9 - (time.monotonic() - start)
        if wait > 0.0005:
            time.sleep(wait)
        s.send(frame)
