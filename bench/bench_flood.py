"""`burstwatch live` under a flood of unique 5-tuples: peak memory against the configured
ceilings, and whether an established burst session is still detected during the flood.

Run as root: python bench/bench_flood.py [--flows 1000000] [--rate 25000] [--flow-memory 64]

Set-up: two network namespaces made here (and removed at exit) joined by a veth pair
(``bench_live.namespaces``). `burstwatch live` captures in one, with a state file and a
configuration whose ``limits`` are the ceilings under test. From the other, two senders
start together: a quiet-then-burst TLS session to 77.88.8.8 replayed at its own timing, and
SYNs from ``--flows`` distinct spoofed sources (one 5-tuple each) paced at ``--rate``; the
session lasts as long as the flood. Peak RSS is read from /proc/PID/status (VmRSS sampled,
and VmHWM) of the live process.

The same session is first replayed alone (the control run). The benchmark passes when the
flood run's peak RSS stays under the control run's peak plus the configured ceilings (flow
table, payload samples, ledger), the session's case is raised at medium or above, and
evictions were counted. Kernel drops are reported: packets the kernel dropped
never reached the table, so the number of flows the table saw is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_live import DST_MAC, SRC_MAC, Net, namespaces

SERVER = "77.88.8.8"
FRAME = 60  # Ethernet + IPv4 + TCP SYN, padded to the minimum frame


def flood_frames(n: int) -> np.ndarray:
    """``n`` SYN frames, each from its own source address and port, to one internal host."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, bytes(4),
                     bytes([192, 168, 1, 9]))
    tcp = struct.pack("!HHIIBBHHH", 0, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    template = np.frombuffer(DST_MAC + SRC_MAC + b"\x08\x00" + ip + tcp + bytes(6), np.uint8)
    frames = np.tile(template, (n, 1))
    k = np.arange(n, dtype=np.uint32) + (11 << 24)  # 11.0.0.0 onwards
    frames[:, 26:30] = k.astype(">u4").view(np.uint8).reshape(n, 4)
    frames[:, 34:36] = (1024 + np.arange(n) % 60_000).astype(">u2").view(np.uint8).reshape(n, 2)
    return frames


def session_records(path: Path, bursts: int) -> float:
    """The burst session as framed records (ts, length, frame); returns its length in s."""
    from burstwatch.synth.replay import write_records
    from burstwatch.synth.scenarios import run_scenario

    session = run_scenario("exfil_tls", 31, quiet_s=10, bursts=bursts, gap_s=10,
                           burst_bytes=1_500_000, rate=10e6, tail_s=10)
    frames = [(p.ts_ns, DST_MAC + SRC_MAC + (b"\x08\x00" if p.data[0] >> 4 == 4 else b"\x86\xdd")
               + bytes(p.data)) for p in session.packets()]
    write_records(path, frames)
    return (frames[-1][0] - frames[0][0]) / 1e9


# ---- senders (run inside the sending namespace) ----
def flood_main(iface: str, path: str, rate: float) -> None:
    import socket

    frames = np.load(path)
    view = memoryview(frames.tobytes())
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    start = time.monotonic()
    chunk = 500
    for a in range(0, frames.shape[0], chunk):
        for i in range(a, min(a + chunk, frames.shape[0])):
            s.send(view[i * FRAME : (i + 1) * FRAME])
        wait = (a + chunk) / rate - (time.monotonic() - start)
        if wait > 0:
            time.sleep(wait)
    print(json.dumps({"sent": int(frames.shape[0]), "elapsed": time.monotonic() - start}))


# ---- orchestration ----
def rss_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Run:
    peak_kib: int
    summary: str
    levels: list[str]
    flood_sent: int = 0
    flood_seconds: float = 0.0


def run_live(net: Net, tmp: Path, config: Path, session: Path, flood: Path | None,
             rate: float) -> Run:
    """`burstwatch live` with the session (and the flood) replayed at it; its peak RSS."""
    me = os.path.abspath(__file__)
    alerts = tmp / "alerts.jsonl"
    alerts.unlink(missing_ok=True)
    state = tmp / "live.duckdb"
    state.unlink(missing_ok=True)
    live = subprocess.Popen(
        ["ip", "netns", "exec", net.rx_ns, sys.executable, "-m", "burstwatch", "live",
         "-i", net.rx_if, "--config", str(config), "--state", str(state),
         "--interval", "2", "--status-every", "5", "--alerts", str(alerts), "--format", "jsonl"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    err: list[str] = []
    ready = threading.Event()

    def read_err() -> None:
        assert live.stderr is not None
        for line in live.stderr:
            err.append(line)
            if "packets (" in line:
                ready.set()

    reader = threading.Thread(target=read_err, daemon=True)
    reader.start()
    sent = {"sent": 0, "elapsed": 0.0}
    try:
        if not ready.wait(180):
            raise RuntimeError("live did not start:\n" + "".join(err))
        senders = [subprocess.Popen(["ip", "netns", "exec", net.tx_ns, sys.executable, me,
                                     "_replay", net.tx_if, str(session)])]
        if flood is not None:
            senders.append(subprocess.Popen(
                ["ip", "netns", "exec", net.tx_ns, sys.executable, me, "_flood", net.tx_if,
                 str(flood), str(rate)], stdout=subprocess.PIPE, text=True))
        peak = 0
        while any(p.poll() is None for p in senders):
            peak = max(peak, rss_kib(live.pid, "VmRSS"))
            time.sleep(0.2)
        if flood is not None:
            sent = json.loads(senders[1].communicate()[0])
        settle = time.monotonic() + 6  # the last interval judges the conversation
        while time.monotonic() < settle:
            peak = max(peak, rss_kib(live.pid, "VmRSS"))
            time.sleep(0.2)
        peak = max(peak, rss_kib(live.pid, "VmHWM"))
        live.send_signal(signal.SIGINT)
        live.wait(timeout=300)
        reader.join(timeout=10)
    finally:
        if live.poll() is None:
            live.kill()
    summary = next((x.strip() for x in err if x.startswith("summary:")), "(no summary)")
    records = [json.loads(x) for x in alerts.read_text().splitlines()] if alerts.exists() else []
    levels = [r["burstwatch"]["case"]["level"] for r in records if r["destination"]["ip"] == SERVER]
    return Run(peak, summary, levels, sent["sent"], sent["elapsed"])


def main(argv: list[str]) -> int:
    if argv and argv[0] == "_replay":
        from burstwatch.synth.replay import replay

        replay(argv[1], argv[2])
        return 0
    if argv and argv[0] == "_flood":
        flood_main(argv[1], argv[2], float(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=1_000_000, help="unique 5-tuples in the flood")
    ap.add_argument("--rate", type=float, default=10_000.0, help="flood packets per second")
    ap.add_argument("--flow-memory", type=float, default=64.0, help="flow table ceiling, MiB")
    ap.add_argument("--sample-memory", type=float, default=16.0, help="sample store ceiling, MiB")
    ap.add_argument("--ledger-memory", type=float, default=128.0, help="ledger ceiling, MiB")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_flood needs root (network namespaces, packet sockets)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name, namespaces() as net:
        tmp = Path(tmp_name)
        np.save(tmp / "flood.npy", flood_frames(args.flows))
        # As many bursts, 10 s apart, as it takes for the session to outlast the flood.
        length = session_records(tmp / "session.bin", max(2, int(args.flows / args.rate / 12) + 1))
        config = tmp / "config.yaml"
        config.write_text(f"limits:\n  flow_memory_mb: {args.flow_memory}\n"
                          f"  sample_memory_mb: {args.sample_memory}\n"
                          f"  ledger_memory_mb: {args.ledger_memory}\n")
        control = run_live(net, tmp, config, tmp / "session.bin", None, args.rate)
        flood = run_live(net, tmp, config, tmp / "session.bin", tmp / "flood.npy", args.rate)
    evicted = 0
    if "flows evicted" in flood.summary:
        evicted = int(flood.summary.split("; ")[-1].split(" flows evicted")[0].replace(",", ""))
    ceilings = int((args.flow_memory + args.sample_memory + args.ledger_memory) * 1024)
    detected = any(level in ("medium", "high", "critical") for level in flood.levels)
    ok = flood.peak_kib <= control.peak_kib + ceilings and detected and evicted > 0
    print(f"flood: {flood.flood_sent:,} unique 5-tuples in {flood.flood_seconds:.1f} s "
          f"({flood.flood_sent / max(flood.flood_seconds, 1e-9):,.0f}/s) beside a {length:.0f} s "
          f"burst session; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(f"ceilings: flow table {args.flow_memory:g} MiB, samples {args.sample_memory:g} MiB, "
          f"ledger {args.ledger_memory:g} MiB")
    print(f"live peak RSS: session alone {control.peak_kib / 1024:,.0f} MiB; with the flood "
          f"{flood.peak_kib / 1024:,.0f} MiB (+{(flood.peak_kib - control.peak_kib) / 1024:,.0f} "
          f"MiB, allowed +{ceilings / 1024:,.0f} MiB)")
    print(f"session alone: {control.summary}")
    print(f"with the flood: {flood.summary}")
    print(f"session to {SERVER} during the flood: "
          f"{'case at ' + flood.levels[-1] if flood.levels else 'NO CASE'}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
