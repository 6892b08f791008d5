"""`burstwatch live` end to end: a burst scenario replayed through a veth pair at its timing.

Two network namespaces made by the test hold the two ends of a veth pair: the replay runs in
one, `burstwatch live` captures in the other, so the generated traffic (public addresses
included) never touches this host's own network stack. Frames go to a MAC address owned by no
interface; only a promiscuous capture sees them. Everything is removed again, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest

from burstwatch.synth.replay import write_records
from burstwatch.synth.scenarios import run_scenario
from tests.conftest import REPO
from tests.flowcraft import SYN, frame

SCHEMA = json.loads((REPO / "docs" / "alert.schema.json").read_text())
BURSTWATCH = str(Path(sys.executable).with_name("burstwatch"))

REPLAY = "import sys; from burstwatch.synth.replay import replay; replay(sys.argv[1], sys.argv[2])"


def _why_not() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux (creates network namespaces and veth pairs)"
    if shutil.which("ip") is None or subprocess.run(["ip", "netns", "list"], capture_output=True).returncode:
        return "ip netns is not available here"
    return None


pytestmark = [pytest.mark.skipif(_why_not() is not None, reason=str(_why_not())), pytest.mark.slow]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture()
def link() -> Iterator[tuple[str, str, str, str]]:
    """(sender namespace, its interface, capture namespace, its interface)."""
    pid = os.getpid()
    a, b, ia, ib = f"bwsend-{pid}", f"bwcap-{pid}", f"bws{pid}", f"bwc{pid}"
    for ns in (a, b):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    try:
        _ip("netns", "add", a)
        _ip("netns", "add", b)
        _ip("link", "add", ia, "netns", a, "type", "veth", "peer", "name", ib, "netns", b)
        for ns, dev in ((a, ia), (b, ib)):
            subprocess.run(["ip", "netns", "exec", ns, "sh", "-c",
                            f"echo 1 > /proc/sys/net/ipv6/conf/{dev}/disable_ipv6 || true"],
                           capture_output=True)
            _ip("-n", ns, "link", "set", dev, "up")
        yield a, ia, b, ib
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


MACS = bytes.fromhex("02b5770000fe") + bytes.fromhex("02b577000001")  # to a MAC no one owns


def _frames(tmp: Path, flood: int = 0) -> Path:
    """A quiet-then-burst TLS session to 77.88.8.8, short enough for a test, as framed records;
    with ``flood`` SYNs from as many spoofed sources spread over it."""
    session = run_scenario("exfil_tls", 31, quiet_s=3, bursts=3, gap_s=3,
                           burst_bytes=1_500_000, rate=10e6, tail_s=8)
    frames = []
    for pkt in session.packets():
        ip = bytes(pkt.data)
        ethertype = b"\x08\x00" if ip[0] >> 4 == 4 else b"\x86\xdd"
        frames.append((pkt.ts_ns, MACS + ethertype + ip))
    if flood:
        t0, t1 = frames[0][0], frames[-1][0]
        for k in range(flood):
            src = f"11.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}"
            syn = frame(src, "192.168.1.9", 1024 + k % 60_000, 80, flags=SYN)
            frames.append((t0 + (t1 - t0) * k // flood, MACS + syn[12:]))
        frames.sort(key=lambda f: f[0])
    path = tmp / "replay.bin"
    write_records(path, frames)
    return path


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass (a bound, not a pace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


class Live:
    """`burstwatch live` in the capture namespace, each of its pipes read by exactly one thread
    (``communicate()`` beside a reader thread would race it for the last lines)."""

    def __init__(self, cap_ns: str, args: list[str], capturing_lines: int = 1) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", cap_ns, BURSTWATCH, "live", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        self.out: list[str] = []
        self.ready = threading.Event()  # set once ``capturing_lines`` status lines came
        self._readers = [threading.Thread(target=f, daemon=True)
                         for f in (lambda: self._read_err(capturing_lines), self._read_out)]
        for r in self._readers:
            r.start()

    def _read_err(self, capturing_lines: int) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            if sum("packets (" in x for x in self.err) >= capturing_lines:
                self.ready.set()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self.out.extend(self.proc.stdout)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait_ready(self, timeout: float) -> None:
        assert self.ready.wait(timeout), "live capture did not start: " + self.stderr

    def finish(self, stop: signal.Signals | None = None, timeout: float = 60) -> int:
        """Send ``stop`` (if any), wait for the exit and for both pipes to be read to the end."""
        if stop is not None:
            self.proc.send_signal(stop)
        self.proc.wait(timeout=timeout)
        for r in self._readers:
            r.join(timeout=10)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


def test_live_alerts_while_the_burst_session_is_open_and_stops_cleanly(
    link: tuple[str, str, str, str], tmp_path: Path
) -> None:
    send_ns, send_if, cap_ns, cap_if = link
    alerts = tmp_path / "alerts.jsonl"
    replay = _frames(tmp_path)
    # The session's flow stays open for the idle timeout (10 min) after its last packet, so an
    # alert that arrives within the generous wait below came while the session was open, however
    # slowly a busy machine runs the judgement.
    live = Live(cap_ns, ["-i", cap_if, "--interval", "1", "--status-every", "1",
                         "--idle-timeout", "600", "--alerts", str(alerts), "--format", "jsonl",
                         "--state", str(tmp_path / "live.duckdb")])
    try:
        live.wait_ready(30)
        sender = subprocess.Popen(["ip", "netns", "exec", send_ns, sys.executable, "-c", REPLAY,
                                  send_if, str(replay)])
        assert sender.wait(timeout=180) == 0
        assert wait_for(lambda: alerts.exists() and bool(alerts.read_text().strip()), 300), (
            "no alert while the session was open: " + live.stderr)
        returncode = live.finish(signal.SIGTERM, timeout=30)
    finally:
        live.kill()
    assert returncode == 1, live.stderr
    text = alerts.read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    for r in records:
        jsonschema.validate(r, SCHEMA)
    hits = [r for r in records if r["destination"]["ip"] == "77.88.8.8"]
    assert hits and hits[0]["source"]["ip"] == "192.168.1.50"
    assert hits[-1]["burstwatch"]["case"]["level"] in ("medium", "high", "critical")
    assert hits[-1]["burstwatch"]["encryption"]["verdict"] == "tls"
    # one case for the conversation, revised as it grew: never the same revision twice
    assert {r["burstwatch"]["case"]["id"] for r in hits} == {hits[0]["burstwatch"]["case"]["id"]}
    keys = [(r["burstwatch"]["case"]["id"], r["burstwatch"]["case"]["revision"]) for r in records]
    assert len(keys) == len(set(keys))
    assert [r["burstwatch"]["case"]["revision"] for r in hits] == list(range(1, len(hits) + 1))
    # what went to stdout is the same stream of alerts
    assert [json.loads(x) for x in live.out if x.strip()] == records
    assert any("summary:" in line and "dropped 0" in line for line in live.err)


def test_live_still_alerts_on_the_burst_session_through_a_flood_at_the_ceiling(
    link: tuple[str, str, str, str], tmp_path: Path
) -> None:
    """40,000 unique 5-tuples against a ceiling of 2,560 flows: the half-open flood is
    evicted, the established session is kept and raises its case."""
    send_ns, send_if, cap_ns, cap_if = link
    alerts = tmp_path / "alerts.jsonl"
    replay = _frames(tmp_path, flood=40_000)
    live = Live(cap_ns, ["-i", cap_if, "--interval", "1", "--status-every", "1",
                         "--alerts", str(alerts), "--format", "jsonl", "--flow-memory", "10",
                         "--state", str(tmp_path / "live.duckdb")])
    try:
        live.wait_ready(30)
        sender = subprocess.run(["ip", "netns", "exec", send_ns, sys.executable, "-c", REPLAY,
                                 send_if, str(replay)], timeout=300)
        assert sender.returncode == 0
        returncode = live.finish(signal.SIGTERM, timeout=60)
    finally:
        live.kill()
    assert returncode == 1, live.stderr
    records = [json.loads(line) for line in alerts.read_text().splitlines()]
    hits = [r for r in records if r["destination"]["ip"] == "77.88.8.8"]
    assert hits and hits[-1]["burstwatch"]["case"]["level"] in ("medium", "high", "critical"), live.stderr
    summary = next(line for line in live.err if line.startswith("summary:"))
    evicted = int(summary.split("; ")[-1].split(" flows evicted")[0].replace(",", ""))
    # Each flood packet the kernel delivered is a flow; beyond the 2,560-flow ceiling nearly
    # all are evicted. Packets the kernel dropped on a loaded machine never reached the table.
    dropped = int(summary.split(" and dropped ")[1].split(";")[0].split()[0].replace(",", ""))
    assert evicted >= 30_000 - dropped, summary


def test_live_stops_after_count_and_writes_a_capture(link: tuple[str, str, str, str], tmp_path: Path) -> None:
    send_ns, send_if, cap_ns, cap_if = link
    replay = _frames(tmp_path)
    pcaps = tmp_path / "cap"
    live = Live(cap_ns, ["-i", cap_if, "--count", "500", "--write-pcap", str(pcaps),
                         "--format", "jsonl", "--status-every", "1", "--no-state"])
    sender = None
    try:
        live.wait_ready(30)
        sender = subprocess.Popen(["ip", "netns", "exec", send_ns, sys.executable, "-c", REPLAY,
                                  send_if, str(replay)])
        returncode = live.finish()
    finally:
        if sender is not None:
            sender.kill()
        live.kill()
    assert returncode in (0, 1), live.stderr
    files = list(pcaps.glob("*.pcap"))
    assert files
    from burstwatch.ingest import open_capture

    n = sum(len(b) for f in files for b in open_capture(str(f)).batches())
    assert n >= 500


def test_live_missing_interface_is_one_line_exit_2() -> None:
    done = subprocess.run([BURSTWATCH, "live", "-i", "bwnosuch0", "--duration", "1", "--no-state"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    errors = [x for x in done.stderr.splitlines() if x.startswith("burstwatch: error")]
    assert errors == ["burstwatch: error: interface bwnosuch0 does not exist"]
    assert "Traceback" not in done.stderr


def test_live_with_two_fanout_workers_merges_alerts(link: tuple[str, str, str, str], tmp_path: Path) -> None:
    send_ns, send_if, cap_ns, cap_if = link
    alerts = tmp_path / "alerts.jsonl"
    replay = _frames(tmp_path)
    # What is tested here is the fan-out and the merge, not the thresholds: with three busy
    # processes on two cores the replay cannot keep its 10 MB/s pace, so a rule that needs
    # only an encrypted upload burst abroad is used.
    rule = tmp_path / "any-burst.yml"
    rule.write_text("title: encrypted upload burst abroad\nid: 9c1e2b7a-4d3f-4e8a-b6c5-2a1d0f9e8b7c\nname: t-1\nlevel: medium\n"
                    "logsource: {product: burstwatch, category: flow}\ndetection:\n"
                    "  selection:\n    burstwatch.encryption.verdict: tls\n"
                    "    burstwatch.destination.scope: foreign\n"
                    "    burstwatch.flow.up_burst_count|gte: 1\n  condition: selection\n")
    live = Live(cap_ns, ["-i", cap_if, "--workers", "2", "--rules", str(rule), "--no-score",
                         "--interval", "1", "--status-every", "1", "--alerts", str(alerts),
                         "--format", "jsonl", "--no-state"], capturing_lines=3)  # both capturing
    try:
        live.wait_ready(60)
        subprocess.run(["ip", "netns", "exec", send_ns, sys.executable, "-c", REPLAY, send_if,
                        str(replay)], check=True, timeout=120)
        # The case comes once the last burst has ended and a tick judged it.
        assert wait_for(lambda: "77.88.8.8" in (alerts.read_text() if alerts.exists() else ""),
                        timeout=120), live.stderr
        returncode = live.finish(signal.SIGINT)
    finally:
        live.kill()
    err = live.stderr
    assert returncode == 1, err
    records = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert any(r["destination"]["ip"] == "77.88.8.8" for r in records), err
    assert "2 worker(s)" in err and "dropped 0" in err


def test_live_restart_after_sigkill_keeps_its_history(link: tuple[str, str, str, str], tmp_path: Path) -> None:
    """Killed with SIGKILL after its first case, live restarted on the same state file
    continues the conversation: the second replay's bursts join the first's in one case,
    at the next revision."""
    send_ns, send_if, cap_ns, cap_if = link
    state = tmp_path / "live.duckdb"
    replay = _frames(tmp_path)
    first_alerts = tmp_path / "first.jsonl"
    args = ["-i", cap_if, "--interval", "1", "--status-every", "1", "--format", "jsonl",
            "--state", str(state)]
    live = Live(cap_ns, [*args, "--alerts", str(first_alerts)])
    try:
        live.wait_ready(30)
        subprocess.run(["ip", "netns", "exec", send_ns, sys.executable, "-c", REPLAY, send_if,
                        str(replay)], check=True, timeout=120)
        assert wait_for(lambda: first_alerts.exists() and "77.88.8.8" in first_alerts.read_text(),
                        timeout=120), live.stderr
        live.proc.send_signal(signal.SIGKILL)
        live.finish(timeout=30)
    finally:
        live.kill()
    first = [json.loads(x) for x in first_alerts.read_text().splitlines()]
    first_bursts = first[-1]["burstwatch"]["case"]["upload_bursts"]
    first_revision = first[-1]["burstwatch"]["case"]["revision"]
    assert first_bursts >= 1
    second_alerts = tmp_path / "second.jsonl"
    live = Live(cap_ns, [*args, "--alerts", str(second_alerts)])
    try:
        live.wait_ready(30)
        subprocess.run(["ip", "netns", "exec", send_ns, sys.executable, "-c", REPLAY, send_if,
                        str(replay)], check=True, timeout=120)

        def grown() -> bool:
            if not second_alerts.exists():
                return False
            recs = [json.loads(x) for x in second_alerts.read_text().splitlines() if x.strip()]
            return any(r["burstwatch"]["case"]["upload_bursts"] > first_bursts for r in recs)

        assert wait_for(grown, timeout=60), live.stderr
        assert live.finish(signal.SIGTERM, timeout=30) == 1, live.stderr
    finally:
        live.kill()
    second = [json.loads(x) for x in second_alerts.read_text().splitlines()]
    case = second[-1]["burstwatch"]["case"]
    assert case["id"] == first[-1]["burstwatch"]["case"]["id"]
    assert case["upload_bursts"] > first_bursts  # the first run's bursts are still there
    assert case["revision"] > first_revision  # revised, not a new case


def test_a_second_live_on_the_same_state_exits_2(link: tuple[str, str, str, str], tmp_path: Path) -> None:
    _, _, cap_ns, cap_if = link
    state = tmp_path / "live.duckdb"
    live = Live(cap_ns, ["-i", cap_if, "--status-every", "1", "--state", str(state)])
    try:
        live.wait_ready(30)
        second = subprocess.run(["ip", "netns", "exec", cap_ns, BURSTWATCH, "live", "-i", cap_if,
                                 "--state", str(state), "--duration", "5"],
                                capture_output=True, text=True, timeout=120)
        assert live.finish(signal.SIGTERM, timeout=30) == 0, live.stderr
    finally:
        live.kill()
    assert second.returncode == 2
    errors = [x for x in second.stderr.splitlines() if x.startswith("burstwatch: error")]
    assert len(errors) == 1 and "in use by another" in errors[0], second.stderr
    assert "Traceback" not in second.stderr
