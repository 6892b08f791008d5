"""Outputs that cannot be written, and signals: one line on standard error and a documented
exit status, never a traceback; a stopped scan still writes what it found."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from burstwatch.outputs.jsonline import json_line
from tests.conftest import PROJECT_PCAPS, REPO
from tests.craft import pcap_bytes

DEMO = str(PROJECT_PCAPS / "demo.pcap")
FULL = "/dev/full"
needs_dev_full = pytest.mark.skipif(not os.path.exists(FULL), reason="no /dev/full here")


def cli(*args: str, stdout: object = subprocess.PIPE, shell_tail: str = "") -> subprocess.CompletedProcess[str]:
    """The real command in a child process (``shell_tail``: a redirection for sh)."""
    cmd = [sys.executable, "-m", "burstwatch", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if shell_tail:
        line = " ".join(f"'{c}'" for c in cmd) + " " + shell_tail
        return subprocess.run(["sh", "-c", line], capture_output=True,
                              text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    return subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300,  # type: ignore[call-overload]
                          env=env, stdin=subprocess.DEVNULL)


def one_error_line(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    for f in fragments:
        assert f in errors[0], errors[0]


@needs_dev_full
def test_alerts_file_on_a_full_disk() -> None:
    one_error_line(cli("scan", DEMO, "--alerts", FULL), FULL, "cannot write alerts",
                   "No space left on device")


@needs_dev_full
@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_scan_to_a_full_standard_output(fmt: str) -> None:
    one_error_line(cli("scan", DEMO, "--format", fmt, shell_tail=f"> {FULL}"),
                   "cannot write to standard output (No space left on device)")


@needs_dev_full
@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_flows_output_file_on_a_full_disk(tmp_path: Path, suffix: str) -> None:
    link = tmp_path / f"out{suffix}"
    link.symlink_to(FULL)
    one_error_line(cli("flows", DEMO, "-o", str(link)), str(link), "No space left on device")


@pytest.mark.slow
@needs_dev_full
def test_flows_and_info_to_a_full_standard_output() -> None:
    one_error_line(cli("flows", DEMO, shell_tail=f"> {FULL}"), "standard output")
    one_error_line(cli("info", "--json", DEMO, shell_tail=f"> {FULL}"), "standard output")


def test_a_closed_pipe_is_one_line() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: every write is EPIPE
    try:
        done = cli("flows", DEMO, stdout=write_end)
    finally:
        os.close(write_end)
    one_error_line(done, "cannot write to standard output (Broken pipe)")


@pytest.mark.slow
def test_closed_standard_output_and_input() -> None:
    one_error_line(cli("flows", DEMO, shell_tail=">&-"), "standard output is closed")
    one_error_line(cli("scan", "-", shell_tail="<&-"), "standard input is closed")


def test_live_reports_a_failing_alerts_file_and_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from burstwatch.cli.live import Output

    class Full:
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

        def flush(self) -> None:
            return None

    out = Output(argparse.Namespace(format="jsonl", interface="eth0", status_every=10.0,
                                    alerts="alerts.jsonl"), Full())  # type: ignore[arg-type]
    record = {"event": {"start": "2026-06-17T10:00:00Z", "score": math.nan}}
    out.alert(record, "high")
    out.alert(record, "high")
    got = capsys.readouterr()
    assert [json.loads(x) for x in got.out.splitlines()] == [{"event": {"start": "2026-06-17T10:00:00Z", "score": None}}] * 2
    assert got.err.count("\n") == 1  # said once, not once per alert
    assert "alerts.jsonl: cannot write alerts (No space left on device); capturing goes on" in got.err
    assert out.sink_errors


def test_json_lines_never_hold_nan_or_infinity() -> None:
    record = {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": {"d": np.float64("nan")}, "e": 2.5}
    line = json_line(record)
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line) == {"a": None, "b": [1.0, None, None], "c": {"d": None}, "e": 2.5}
    assert json_line({"x": 1.5}) == '{"x":1.5}'


def _tail_chunks(start_ns: int, nano: bool, per_chunk: int = 50_000) -> Iterator[bytes]:
    """Small UDP packets a millisecond apart after ``start_ns``, without end, as pcap records
    built as arrays (no Python object per packet)."""
    frame = bytes.fromhex("ffffffffffff020000000001080045000021000000004011f9d3c0a80164c0a801ff"
                          "d431d4310009000000")
    one = np.frombuffer(pcap_bytes([(0, frame)]).data[24:], np.uint8)
    k = 0
    while True:
        ts = start_ns + 1_000_000 * (np.arange(k, k + per_chunk, dtype=np.int64) + 1)
        recs = one[None, :].repeat(per_chunk, axis=0)
        recs[:, 0:4] = (ts // 1_000_000_000).astype("<u4").view(np.uint8).reshape(-1, 4)
        frac = (ts % 1_000_000_000) // (1 if nano else 1000)
        recs[:, 4:8] = frac.astype("<u4").view(np.uint8).reshape(-1, 4)
        k += per_chunk
        yield recs.tobytes()


def endless_capture(fifo: Path) -> threading.Event:
    """Feed the demo capture, then packets without end, into the named pipe ``fifo``. The
    event is set once the reader has opened it (the command has its signal handlers by
    then); writing ends when the reader goes away."""
    demo = PROJECT_PCAPS.joinpath("demo.pcap").read_bytes()
    nano = demo[:4] == b"\x4d\x3c\xb2\xa1"
    pos, last_ns = 24, 0
    while pos + 16 <= len(demo):
        sec, frac, incl, _ = struct.unpack_from("<IIII", demo, pos)
        last_ns = sec * 1_000_000_000 + (frac if nano else frac * 1000)
        pos += 16 + incl
    os.mkfifo(fifo)
    opened = threading.Event()

    def feed() -> None:
        try:
            with fifo.open("wb") as fh:  # returns once the command opens the pipe
                opened.set()
                fh.write(demo)
                for chunk in _tail_chunks(last_ns, nano):
                    fh.write(chunk)
        except OSError:  # EPIPE: the command stopped reading and exited
            pass

    threading.Thread(target=feed, daemon=True).start()
    return opened


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], threading.Event]:
    fifo = tmp_path / "capture.fifo"
    opened = endless_capture(fifo)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "burstwatch", args[0], str(fifo), *args[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    return proc, opened


@pytest.mark.parametrize("sig", [
    pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
    pytest.param(signal.SIGHUP, marks=pytest.mark.slow),
    signal.SIGINT,
])
def test_a_signal_stops_scan_which_still_writes_the_alerts_found(tmp_path: Path, sig: int) -> None:
    alerts = tmp_path / "alerts.jsonl"
    proc, opened = start(tmp_path, "scan", "--alerts", str(alerts))
    assert opened.wait(300)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + sig, err
    assert f"interrupted ({signal.Signals(sig).name})" in err and "Traceback" not in err
    found = [json.loads(x) for x in alerts.read_text().splitlines()]
    assert [a["destination"]["ip"] for a in found] == ["77.88.8.8"]
    assert "summary:" in out and "cases: 1 (" in out


@pytest.mark.slow
def test_a_signal_stops_flows_which_keeps_the_records(tmp_path: Path) -> None:
    out_file = tmp_path / "flows.jsonl"
    proc, opened = start(tmp_path, "flows", "-o", str(out_file))
    assert opened.wait(300)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted (SIGTERM)" in err
    records = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert any(r["destination"]["ip"] == "77.88.8.8" for r in records)


def test_live_keeps_capturing_when_the_rotating_capture_cannot_be_written(tmp_path: Path) -> None:
    from burstwatch.cli.live import _keep
    from burstwatch.outputs.capture import RotatingPcapWriter

    class FullDisk(RotatingPcapWriter):
        def write(self, batch: object) -> None:  # type: ignore[override]
            raise OSError(28, "No space left on device")

    notices: list[str] = []
    writer = FullDisk(str(tmp_path), linktype=1)
    assert _keep(writer, object(), str(tmp_path), lambda notice: notices.append(notice)) is None
    assert notices == [f"--write-pcap {tmp_path}: cannot write (No space left on device); "
                       "no longer keeping a capture, detection goes on"]


def test_live_json_lines_write_null_for_nan(capsys: pytest.CaptureFixture[str]) -> None:
    from burstwatch.cli.live import Output

    out = Output(argparse.Namespace(format="jsonl", interface="eth0", status_every=10.0), None)
    out.alert({"burstwatch": {"anomaly_score": math.nan, "rate": math.inf}}, "high")
    line = capsys.readouterr().out
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in a JSON line")) == {
        "burstwatch": {"anomaly_score": None, "rate": None}}


@pytest.mark.slow
@needs_dev_full
def test_an_unwritable_standard_error_loses_messages_not_the_run(tmp_path: Path) -> None:
    """``2>/dev/full``: the alerts are written, the exit status is the run's (1: flagged, 2:
    an error), and standard output holds only what belongs there."""
    alerts = tmp_path / "alerts.jsonl"
    done = cli("scan", DEMO, "--format", "jsonl", "--alerts", str(alerts), shell_tail=f"2> {FULL}")
    assert done.returncode == 1
    assert [json.loads(ln)["event"]["kind"] for ln in done.stdout.splitlines()] == ["alert"]
    assert len(alerts.read_text().splitlines()) == 1
    missing = cli("scan", str(tmp_path / "none.pcap"), "--format", "jsonl", shell_tail=f"2> {FULL}")
    assert (missing.returncode, missing.stdout) == (2, "")


@pytest.mark.slow
def test_a_closed_standard_error_loses_messages_not_the_run() -> None:
    done = cli("scan", DEMO, "--format", "jsonl", shell_tail="2>&-")
    assert done.returncode == 1
    assert len(done.stdout.splitlines()) == 1 and "Traceback" not in done.stdout


def test_json_lines_written_behind_keep_their_order_and_their_write_error() -> None:
    """The file's writing thread writes the buffers in the order given; a write that fails
    is raised at the next hand-over or at close as the OSError it was, not lost."""
    import errno

    from burstwatch.outputs.writers import _WriteBehind

    class Raw:
        def __init__(self, fail_at: int | None) -> None:
            self.got: list[bytes] = []
            self.fail_at = fail_at

        def write(self, data: bytes) -> int:
            if self.fail_at is not None and len(self.got) == self.fail_at:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.got.append(bytes(data))
            return len(data)

    ok = Raw(None)
    behind = _WriteBehind(ok)
    for k in range(200):
        behind.write(b"%d\n" % k)
    behind.close()
    assert ok.got == [b"%d\n" % k for k in range(200)]

    full = Raw(3)
    behind = _WriteBehind(full)
    with pytest.raises(OSError, match="No space left"):
        try:
            for _ in range(200):
                behind.write(b"x")
        finally:
            behind.close()
    assert full.got == [b"x"] * 3
    quiet = _WriteBehind(Raw(0))
    quiet.write(b"x")
    quiet.close(quietly=True)  # another exception is on its way: this one is not raised


def test_json_lines_written_behind_never_hang_on_an_unexpected_write_error() -> None:
    """A write that fails with something other than an OSError (a file closed under it) is
    raised as it was; the writer keeps draining its queue, so handing over more never blocks."""
    from burstwatch.outputs.writers import _WriteBehind

    class Closed:
        def write(self, data: bytes) -> int:
            raise ValueError("write to closed file")

    outcome: list[BaseException | None] = []

    def hand_over() -> None:
        behind = _WriteBehind(Closed())
        try:
            for _ in range(50):  # more than the queue holds
                behind.write(b"x")
            behind.close()
            outcome.append(None)
        except ValueError as exc:
            behind.close(quietly=True)
            outcome.append(exc)

    worker = threading.Thread(target=hand_over, daemon=True)
    worker.start()
    worker.join(timeout=60)  # generous: it takes milliseconds; a blocked queue never ends
    assert not worker.is_alive(), "the hand-over blocked"
    assert len(outcome) == 1 and isinstance(outcome[0], ValueError)
