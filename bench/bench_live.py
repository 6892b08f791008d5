"""Live-capture throughput: the highest packet rate captured, decoded and put through
FlowTable.update with zero kernel drops, with 1 and with 2 fan-out worker processes.

Run as root: python bench/bench_live.py [--seconds 5] [--packets 32768] [--max-rate N]

Set-up: two network namespaces made here (and removed at exit), joined by a veth pair. A
generated capture (burstwatch.synth.write_bulk) is replayed into the pair from one namespace
through a PACKET_TX_RING (one send() per up to 4096 frames, qdisc bypassed), paced to a
target rate; workers in the other namespace run LiveSource -> decode -> FlowTable.update.
Frames carry an unowned destination MAC, so no stack processes them and nothing leaves the
pair. The rate search doubles until a trial drops or falls short, then bisects.

A trial passes when the kernel reports zero drops and every sent packet was processed. The
workers also report where their CPU time went, and so what limits them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mmap
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOL_PACKET = 263
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_LOSS = 14
PACKET_QDISC_BYPASS = 20
TPACKET_V2 = 1
TX_FRAME = 2048
TX_DATA = 32  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): where a TX frame's bytes start
TX_BLOCK = 1 << 20
TP_STATUS_SEND_REQUEST = 1
DST_MAC = bytes.fromhex("02b5770000fe")  # owned by no interface
SRC_MAC = bytes.fromhex("02b577000001")


# ---- sender (runs inside the sending namespace) ----
def send_main(iface: str, frames_path: str, rate: float, seconds: float) -> None:
    """Replay frames (cycling) at ``rate`` packets/s (0: as fast as possible); print JSON.

    Every distinct frame gets its own TX-ring slot, written once: a round only flips the
    status words of the next ``chunk`` slots to SEND_REQUEST and calls send(), so the
    sender's own cost is the kernel's transmit path, not copying frames.
    """
    z = np.load(frames_path)
    data, lens = z["data"], z["lens"]
    per_block = TX_BLOCK // TX_FRAME
    slots = -(-lens.shape[0] // per_block) * per_block  # whole blocks
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
    sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    sock.setsockopt(SOL_PACKET, PACKET_LOSS, 1)
    sock.setsockopt(
        SOL_PACKET, PACKET_TX_RING, struct.pack("4I", TX_BLOCK, slots // per_block, TX_FRAME, slots)
    )
    mm = mmap.mmap(sock.fileno(), slots * TX_FRAME, mmap.MAP_SHARED,
                   mmap.PROT_READ | mmap.PROT_WRITE)
    ring = np.frombuffer(mm, np.uint8).reshape(slots, TX_FRAME)
    status = ring[:, :4].view(np.uint32)[:, 0]
    starts = np.zeros(lens.shape[0], np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    for i in range(slots):  # pad to whole blocks by repeating the first frames
        j = i % lens.shape[0]
        start, length = int(starts[j]), int(lens[j])
        ring[i, TX_DATA : TX_DATA + length] = data[start : start + length]
        ring[i, 4:12].view(np.uint32)[:] = length  # tp_len, tp_snaplen
    sock.bind((iface, 0))

    chunk = 4096 if rate <= 0 else int(min(4096, max(64, rate / 200)))  # ~5 ms bursts
    sent = head = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if rate > 0:
            due = int((now - t0) * rate) - sent
            if due < chunk:
                time.sleep(max(0.0, (sent + chunk) / rate - (now - t0)))
                continue
        # The kernel resumes at the slot after the last one it sent: flag from there on.
        first = min(chunk, slots - head)
        status[head : head + first] = TP_STATUS_SEND_REQUEST
        status[: chunk - first] = TP_STATUS_SEND_REQUEST
        sock.send(b"")  # transmit every flagged slot; returns when all are sent
        sent += chunk
        head = (head + chunk) % slots
    elapsed = time.perf_counter() - t0
    del ring, status
    mm.close()
    sock.close()
    print(json.dumps({"sent": sent, "elapsed": elapsed}), flush=True)


# ---- capture worker (runs inside the capturing namespace) ----
def capture_main(iface: str, group: int | None, stop_path: str) -> None:
    """LiveSource -> decode -> FlowTable.update until told to stop; print JSON."""
    from burstwatch.decode import decode
    from burstwatch.enrich.encryption.opening import SAMPLE_POLICY
    from burstwatch.flows import FlowTable
    from burstwatch.ingest.live import LiveSource

    table = FlowTable(sample_policy=SAMPLE_POLICY)  # samples as `burstwatch live` keeps them
    with LiveSource(iface, fanout_group=group) as src:
        _warm_kernels()
        print("ready", flush=True)
        packets = 0
        t_decode = t_update = 0.0
        first = last = 0.0
        cpu0 = time.process_time()
        for batch in src.batches(timeout_ms=100):
            if len(batch) == 0:
                if os.path.exists(stop_path):
                    break
                table.advance(time.time_ns())
                continue
            if not packets:
                first = time.perf_counter()
                cpu0 = time.process_time()
            t1 = time.process_time()
            pb = decode(batch)
            t2 = time.process_time()
            table.update(pb)
            t3 = time.process_time()
            t_decode += t2 - t1
            t_update += t3 - t2
            packets += len(batch)
            last = time.perf_counter()
        cpu = time.process_time() - cpu0
        kernel, drops = src.stats()
    print(json.dumps({
        "packets": packets, "kernel_packets": kernel, "drops": drops, "cpu": cpu,
        "wall": max(last - first, 1e-9), "decode": t_decode, "update": t_update,
        "flows": table.active_flows,
    }), flush=True)


def _warm_kernels() -> None:
    """Run every compiled kernel once on a dummy block, so no measurement pays for compiling."""
    from burstwatch.decode import decode
    from burstwatch.flows import FlowTable
    from burstwatch.ingest.live import walk_blocks
    from burstwatch.ingest.records import RecordBatch

    frame = np.frombuffer(
        DST_MAC + SRC_MAC + bytes.fromhex("0800450000280001400040060000c6120001c6120002")
        + bytes.fromhex("04d201bb00000001000000005010ffff00000000"), np.uint8,
    )
    block = np.zeros(48 + 48 + frame.shape[0], np.uint8)
    block[12:24].view(np.uint32)[:] = (1, 48, block.shape[0])  # num_pkts, first, blk_len
    block[48 + 12 : 48 + 20].view(np.uint32)[:] = frame.shape[0]  # snaplen, len
    block[48 + 24 : 48 + 26].view(np.uint16)[:] = 48  # tp_mac
    block[96:] = frame
    cols = [np.zeros(1, t) for t in (np.int64, np.uint32, np.uint32, np.int64, np.int64)]
    n = walk_blocks(block, np.zeros(1, np.int64), np.array([block.shape[0]], np.int64),
                    sys.byteorder == "big", 0, *cols)
    assert n == 1
    batch = RecordBatch(block, cols[0], cols[1], cols[2], np.full(1, time.time_ns(), np.int64),
                        np.ones(1, np.uint16), np.zeros(1, np.uint16), cols[4])
    table = FlowTable()
    table.update(decode(batch))
    table.advance(time.time_ns())
    table.flush()


def warm_up() -> None:
    """Compile (or load cached) numba kernels once, before any worker starts."""
    cmd = [sys.executable, os.path.abspath(__file__), "_warm"]
    subprocess.run(cmd, check=True)


# ---- orchestration (root namespace) ----
@dataclass
class Net:
    tx_ns: str
    rx_ns: str
    tx_if: str
    rx_if: str


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=30)


@contextlib.contextmanager
def namespaces() -> Iterator[Net]:
    pid = os.getpid()
    net = Net(f"bwbench-tx-{pid}", f"bwbench-rx-{pid}", f"bwbt{pid}", f"bwbr{pid}")
    try:
        _ip("netns", "add", net.tx_ns)
        _ip("netns", "add", net.rx_ns)
        _ip("link", "add", net.tx_if, "type", "veth", "peer", "name", net.rx_if)
        _ip("link", "set", net.tx_if, "netns", net.tx_ns)
        _ip("link", "set", net.rx_if, "netns", net.rx_ns)
        for ns, dev in ((net.tx_ns, net.tx_if), (net.rx_ns, net.rx_if)):
            path = f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"
            subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", f"echo 1 > {path}"], check=True)
            _ip("-n", ns, "link", "set", dev, "up")
        yield net
    finally:
        _ip("netns", "del", net.tx_ns, check=False)
        _ip("netns", "del", net.rx_ns, check=False)


def make_frames(path: Path, count: int) -> tuple[int, float]:
    """Frames of a generated capture, re-addressed to unowned MACs; (count, mean length)."""
    from burstwatch.ingest import open_capture
    from burstwatch.synth import write_bulk

    pcap = path.with_suffix(".pcap")
    write_bulk(pcap, packets=count, flows=max(1000, count // 8))
    chunks: list[bytes] = []
    for batch in open_capture(str(pcap)).batches():
        for i in range(len(batch)):
            o, c = int(batch.offset[i]), int(batch.caplen[i])
            f = bytes(batch.data[o : o + c])
            if len(f) <= TX_FRAME - TX_DATA:
                chunks.append(DST_MAC + SRC_MAC + f[12:])
    pcap.unlink()
    lens = np.array([len(f) for f in chunks], np.uint32)
    np.savez(path, data=np.frombuffer(b"".join(chunks), np.uint8), lens=lens)
    return len(chunks), float(lens.mean())


def _inside(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), *args]


def trial(net: Net, frames: Path, workers: int, rate: float, seconds: float) -> dict:
    """One run: start workers, replay at ``rate``, stop workers, sum up."""
    stop = Path(tempfile.gettempdir()) / f"bwbench-stop-{os.getpid()}"
    stop.unlink(missing_ok=True)
    group = str(0x5000 + os.getpid() % 0x1000) if workers > 1 else "-"
    procs = [
        subprocess.Popen(_inside(net.rx_ns, "_capture", net.rx_if, group, str(stop)),
                         stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            ready, _, _ = select.select([p.stdout], [], [], 120)
            if not ready or p.stdout.readline().strip() != "ready":
                raise RuntimeError("capture worker did not start")
        out = subprocess.run(
            _inside(net.tx_ns, "_send", net.tx_if, str(frames), str(rate), str(seconds)),
            capture_output=True, text=True, timeout=seconds + 120,
        )
        if out.returncode:
            raise RuntimeError(f"sender failed: {out.stderr.strip()}")
        sent = json.loads(out.stdout)
        stop.touch()
        results = []
        for p in procs:
            stdout, _ = p.communicate(timeout=120)
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        stop.unlink(missing_ok=True)
    got = sum(r["packets"] for r in results)
    drops = sum(r["drops"] for r in results)
    offered = sent["sent"] / sent["elapsed"]
    return {
        "workers": workers, "target": rate, "offered": offered, "sent": sent["sent"],
        "captured": got, "drops": drops, "ok": drops == 0 and got >= sent["sent"],
        "per_worker": results,
    }


def describe(t: dict) -> str:
    parts = []
    for r in t["per_worker"]:
        cpu = max(r["cpu"], 1e-9)
        other = max(cpu - r["decode"] - r["update"], 0.0)
        parts.append(
            f"[{r['packets']:,} pkts, cpu {r['cpu']:.2f}s of {r['wall']:.2f}s wall: "
            f"capture {other / cpu:.0%}, decode {r['decode'] / cpu:.0%}, "
            f"flows {r['update'] / cpu:.0%}; capacity ~{r['packets'] / cpu:,.0f} pkt/s]"
        )
    verdict = "ok" if t["ok"] else f"FAIL (drops {t['drops']:,}, captured {t['captured']:,})"
    return (
        f"workers={t['workers']} target={t['target']:>10,.0f} offered={t['offered']:>10,.0f} "
        f"pkt/s sent={t['sent']:,} {verdict} " + " ".join(parts)
    )


def search(net: Net, frames: Path, workers: int, seconds: float, max_rate: float) -> dict | None:
    """Highest passing rate: double from 50k until failure, then bisect 3 times.

    Stops early when the sender cannot offer the target rate (then the capture was not
    the limit, and the best passing trial is reported as such).
    """
    best: dict | None = None
    rate, bad = 50_000.0, None
    while rate <= max_rate:
        t = trial(net, frames, workers, rate, seconds)
        print(describe(t), flush=True)
        if t["offered"] < 0.95 * rate:  # the sender, not the capture, is the limit here
            print(f"  sender reached only {t['offered']:,.0f} of {rate:,.0f} pkt/s", flush=True)
            if t["ok"] and (best is None or t["offered"] > best["offered"]):
                best = t
            return best
        if not t["ok"]:
            bad = rate
            break
        best, rate = t, rate * 2
    if bad is not None and best is not None:
        lo, hi = best["target"], bad
        for _ in range(3):
            mid = (lo + hi) / 2
            t = trial(net, frames, workers, mid, seconds)
            print(describe(t), flush=True)
            if t["ok"] and t["offered"] >= 0.95 * mid:
                best, lo = t, mid
            else:
                hi = mid
    return best


def main(argv: list[str]) -> int:
    if argv and argv[0] == "_send":
        send_main(argv[1], argv[2], float(argv[3]), float(argv[4]))
        return 0
    if argv and argv[0] == "_warm":
        _warm_kernels()
        return 0
    if argv and argv[0] == "_capture":
        capture_main(argv[1], None if argv[2] == "-" else int(argv[2]), argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each trial")
    ap.add_argument("--packets", type=int, default=32768, help="distinct frames replayed")
    ap.add_argument("--max-rate", type=float, default=3_200_000.0)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_live needs root (network namespaces, packet sockets)", file=sys.stderr)
        return 2
    warm_up()
    with tempfile.TemporaryDirectory() as tmp, namespaces() as net:
        frames = Path(tmp) / "frames.npz"
        count, mean = make_frames(frames, args.packets)
        print(f"replaying {count:,} distinct frames, mean {mean:.0f} bytes, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", flush=True)
        t = trial(net, frames, 1, 0, args.seconds)
        print("unpaced sender, 1 worker: " + describe(t), flush=True)
        for workers in args.workers:
            best = search(net, frames, workers, args.seconds, args.max_rate)
            if best is None:
                print(f"workers={workers}: no rate passed", flush=True)
            else:
                gbit = best["offered"] * mean * 8 / 1e9
                print(f"BEST workers={workers}: {best['offered']:,.0f} pkt/s "
                      f"({gbit:.2f} Gbit/s) with zero drops", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
