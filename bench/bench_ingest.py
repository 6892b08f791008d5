"""Ingest + decode throughput and peak memory, next to a plain dpkt loop doing the same work.

    python bench/bench_ingest.py [--packets N | CAPTURE] [--runs R] [--out PATH]
    python bench/bench_ingest.py CAPTURE --rss-check 512M
    python bench/bench_ingest.py CAPTURE --against OTHER_TREE [--pairs P] [--runs R]
    python bench/bench_ingest.py CAPTURE --wrap-vxlan OUT.pcap

Without CAPTURE a capture of N packets is generated (burstwatch.synth.bulk when present, else
the small generator below). Each system runs in its own child process, so each peak RSS
(``ru_maxrss``) belongs to that system alone; "startup" is the peak before the first byte is
read (interpreter, numpy, numba, dpkt). Both compute per packet the 5-tuple and the
transport payload length; the totals are compared so the two really did the same work.

``--rss-check BYTES`` runs burstwatch alone, once, and exits 1 if its peak RSS exceeds BYTES:
meant for captures larger than RAM is comfortable with (e.g. > 2 GB), where reading must
stream rather than hold the file.

``--against TREE`` times this checkout's burstwatch and another checkout's (e.g. main's, to
see what a change costs), each through its own ``bench/bench_ingest.py``, in fresh processes
taking turns, and reports the best CPU and wall time of each: on a shared machine CPU time
is the steadier of the two.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SYSTEMS = ("burstwatch", "dpkt")
SINGLE_RUN_BYTES = 1 << 30  # beyond this a single timed run is enough (and page cache can't hold many)


def parse_size(text: str) -> int:
    """'2G', '512M', '64k' or a number of bytes (binary multiples)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)i?[bB]?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(float(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()])


def peak_rss_bytes() -> int:
    """This process's peak resident set (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---- capture generation ----


def fallback_generate(path: Path, packets: int, seed: int, chunk: int = 100_000) -> None:
    """Ethernet/IPv4 TCP and UDP records in a realistic size mix, built chunk-wise in numpy.

    Used only when burstwatch.synth.bulk is not installed; checksums are left zero (neither
    reader verifies them).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    frame_len = np.array([66, 590, 1514])  # pure ACKs, mid-size, near-MTU
    mix = np.array([0.4, 0.2, 0.4])
    with open(path, "wb") as out:
        out.write(np.array([0xA1B2C3D4, 0x00040002, 0, 0, 262144, 1], "<u4").tobytes())
        t_us = 1_710_252_000 * 10**6
        for done in range(0, packets, chunk):
            n = min(chunk, packets - done)
            flen = frame_len[rng.choice(3, n, p=mix)]
            udp = rng.random(n) < 0.3
            rec = 16 + flen
            offs = np.concatenate([[0], np.cumsum(rec)[:-1]])
            buf = np.zeros(int(rec.sum()), np.uint8)
            t_us += np.cumsum(rng.exponential(4.0, n)).astype(np.int64)
            ip_len = flen - 14
            # (offset in the record, type, value): pcap record header, Ethernet, IPv4, TCP/UDP
            fields: list[tuple[int, str, Any]] = [
                (0, "<u4", t_us // 10**6), (4, "<u4", t_us % 10**6), (8, "<u4", flen),
                (12, "<u4", flen), (16, ">u2", 0x0200), (20, ">u2", 0x0001),
                (22, ">u2", 0x0200), (26, ">u2", 0x0002), (28, ">u2", 0x0800),
                (30, "u1", 0x45), (32, ">u2", ip_len), (38, "u1", 64),
                (39, "u1", np.where(udp, 17, 6)),
                (42, ">u4", (10 << 24) | rng.integers(1, 1 << 16, n)),
                (46, ">u4", (93 << 24) | rng.integers(1, 1 << 24, n)),
                (50, ">u2", rng.integers(1024, 65536, n)), (52, ">u2", 443),
                (54, ">u2", np.where(udp, ip_len - 20, 0)),  # UDP length; TCP: top of seq
                (62, "u1", np.where(udp, 0, 0x80)),  # TCP data offset: 32-byte header
                (63, "u1", np.where(udp, 0, 0x10)),  # TCP ACK
            ]
            for at, dtype, value in fields:
                dt = np.dtype(dtype)
                vals = np.broadcast_to(np.asarray(value), (n,)).astype(dt)
                raw = vals.view(np.uint8).reshape(n, dt.itemsize)
                buf[(offs + at)[:, None] + np.arange(dt.itemsize)] = raw
            out.write(buf.tobytes())
            t_us = t_us[-1]


def generate(path: Path, packets: int, seed: int) -> str:
    """Write the benchmark capture; return which generator wrote it."""
    try:
        bulk = importlib.import_module("burstwatch.synth.bulk")
    except ImportError:
        bulk = None
    if bulk is not None and hasattr(bulk, "write_bulk"):
        bulk.write_bulk(path, packets=packets, seed=seed)
        return "burstwatch.synth.bulk"
    fallback_generate(path, packets, seed)
    return "bench fallback generator"


# ---- the measured systems (each run in a child process) ----


def run_burstwatch(path: str) -> tuple[int, int]:
    """open_capture -> batches -> Decoder (decapsulation, fragments set aside); returns
    (packets, TCP/UDP payload bytes)."""
    import numpy as np

    from burstwatch.decode import Decoder
    from burstwatch.ingest import open_capture

    packets = payload = 0
    decode = Decoder()
    for records in open_capture(path).batches():
        pb = decode(records)
        packets += len(pb)
        l4 = (pb.status == 0) & ((pb.proto == 6) | (pb.proto == 17)) & ~pb.fragment
        payload += int(pb.payload_len[l4].sum(dtype=np.int64))
    return packets, payload


def wrap_vxlan(src: Path, dst: Path) -> None:
    """Copy the Ethernet capture ``src`` (classic pcap) to ``dst`` with every frame inside
    VXLAN (outer Ethernet, IPv4, UDP 4789), as a cloud traffic mirror delivers it."""
    import struct

    outer = bytes.fromhex("020000000001020000000002" "0800")
    with open(src, "rb") as f, open(dst, "wb") as out:
        head = f.read(24)
        out.write(head)
        endian = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                break
            sec, frac, cap, wire = rec.unpack(h)
            frame = f.read(cap)
            udp_len = 16 + wire
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0, 64, 17, 0,
                             bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
            udp = struct.pack(">HHHH", 49152, 4789, udp_len, 0)
            vxlan = b"\x08\0\0\0\0\0\x2a\0"
            prefix = outer + ip + udp + vxlan
            out.write(rec.pack(sec, frac, cap + len(prefix), wire + len(prefix)))
            out.write(prefix + frame)


def run_dpkt(path: str) -> tuple[int, int]:
    """The same per-packet work with dpkt: Ethernet, IPv4/IPv6, TCP/UDP 5-tuple and length."""
    import gzip

    import dpkt

    with open(path, "rb") as f:
        head = f.read(4)
    opener: Any = gzip.open if head[:2] == b"\x1f\x8b" else open
    packets = payload = 0
    with opener(path, "rb") as f:
        if head == b"\x0a\x0d\x0d\x0a":
            reader: Any = dpkt.pcapng.Reader(f)
        else:
            reader = dpkt.pcap.Reader(f)
        for _ts, buf in reader:
            packets += 1
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                l4 = ip.data
                if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                    _key = (ip.src, ip.dst, ip.p, l4.sport, l4.dport)
                    payload += len(l4.data)
    return packets, payload


def warm_up(system: str, path: str) -> None:
    """Load compiled code and modules outside the timed runs."""
    if system == "burstwatch":
        from burstwatch.decode import decode
        from burstwatch.ingest import open_capture

        for records in open_capture(path).batches(batch_size=64):
            decode(records)
            break
    else:
        import dpkt  # noqa: F401


def worker(system: str, path: str, runs: int) -> None:
    """Child process: time ``runs`` passes, print one JSON line."""
    warm_up(system, path)
    startup = peak_rss_bytes()
    fn = run_burstwatch if system == "burstwatch" else run_dpkt
    times = []
    result = (0, 0)
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn(path)
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "system": system, "packets": result[0], "payload": result[1], "times": times,
        "peak_rss": peak_rss_bytes(), "startup_rss": startup,
    }))


def tree_worker(tree: str, path: str, runs: int) -> None:
    """Child process: time ``run_burstwatch`` of the checkout ``tree`` (its own bench script,
    its own package first on the path), CPU and wall; print one JSON line."""
    import importlib.util

    sys.path.insert(0, tree)
    spec = importlib.util.spec_from_file_location("tree_bench", Path(tree) / "bench" / "bench_ingest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.warm_up("burstwatch", path)
    cpu, wall = [], []
    result = (0, 0)
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        result = mod.run_burstwatch(path)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    print(json.dumps({"cpu": cpu, "wall": wall, "packets": result[0], "payload": result[1]}))


def compare_trees(path: str, trees: list[str], pairs: int, runs: int) -> str:
    """Each checkout in turn, ``pairs`` times: a table of best CPU and wall seconds."""
    best: dict[str, dict[str, float]] = {t: {"cpu": float("inf"), "wall": float("inf")} for t in trees}
    for k in range(pairs):
        for tree in trees if k % 2 == 0 else trees[::-1]:
            done = subprocess.run(
                [sys.executable, __file__, "--tree-worker", tree, path, "--runs", str(runs)],
                capture_output=True, text=True, check=False,
                env={**os.environ, "PYTHONPATH": tree},
            )
            if done.returncode != 0:
                sys.exit(f"{tree} run failed:\n{done.stderr}")
            got = json.loads(done.stdout.splitlines()[-1])
            for key in ("cpu", "wall"):
                best[tree][key] = min(best[tree][key], *got[key])
    first = best[trees[0]]
    lines = ["| tree | best CPU s | best wall s | CPU vs first |", "|---|---:|---:|---:|"]
    for tree in trees:
        b = best[tree]
        lines.append(f"| {tree} | {b['cpu']:.3f} | {b['wall']:.3f} | {b['cpu'] / first['cpu'] - 1:+.1%} |")
    return "\n".join(lines)


def measure(system: str, path: Path, runs: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", system, str(path), "--runs", str(runs)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        sys.exit(f"{system} run failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


# ---- report ----


def table(results: list[dict[str, Any]], size: int) -> str:
    base = next((r for r in results if r["system"] == "dpkt"), None)
    lines = [
        "| system | packets | runs | best s | packets/s | MB/s | peak RSS MiB | startup RSS MiB | vs dpkt |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        best = min(r["times"])
        ratio = f"{min(base['times']) / best:.1f}x" if base else "-"
        lines.append(
            f"| {r['system']} | {r['packets']:,} | {len(r['times'])} | {best:.3f} | "
            f"{r['packets'] / best / 1e6:.2f} M | {size / best / 1e6:.0f} | "
            f"{r['peak_rss'] / 2**20:.0f} | {r['startup_rss'] / 2**20:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture", nargs="?", help="capture to read (default: generate one)")
    ap.add_argument("--packets", type=int, default=1_000_000, help="packets to generate (default 1M)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=None, help="timed passes per system, best kept "
                    "(default 3; 1 above 1 GiB)")
    ap.add_argument("--out", help="keep the generated capture at this path")
    ap.add_argument("--rss-check", type=parse_size, metavar="BYTES",
                    help="run burstwatch once; exit 1 if its peak RSS exceeds BYTES")
    ap.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--against", metavar="TREE",
                    help="compare with another checkout of burstwatch (paired, fresh processes)")
    ap.add_argument("--pairs", type=int, default=4, help="turns each checkout gets with --against")
    ap.add_argument("--tree-worker", metavar="TREE", help=argparse.SUPPRESS)
    ap.add_argument("--wrap-vxlan", metavar="PATH",
                    help="write CAPTURE with every frame inside VXLAN to PATH, then exit")
    args = ap.parse_args()

    if args.worker:
        worker(args.worker, args.capture, args.runs or 1)
        return 0
    if args.tree_worker:
        tree_worker(args.tree_worker, args.capture, args.runs or 1)
        return 0
    if args.against:
        here = str(Path(__file__).resolve().parent.parent)
        print(compare_trees(args.capture, [str(Path(args.against).resolve()), here], args.pairs,
                            args.runs or 3))
        return 0
    if args.wrap_vxlan:
        wrap_vxlan(Path(args.capture), Path(args.wrap_vxlan))
        return 0
    if args.generate_only:
        print(generate(Path(args.out), args.packets, args.seed))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        if args.capture:
            path, source = Path(args.capture), "given"
        else:
            path = Path(args.out) if args.out else Path(tmp) / "bench.pcap"
            t0 = time.perf_counter()
            # In a child too: Linux carries a parent's peak RSS into the children it starts,
            # so this process must stay small for the workers' figures to be their own.
            source = subprocess.run(
                [sys.executable, __file__, "--generate-only", "--packets", str(args.packets),
                 "--seed", str(args.seed), "--out", str(path)],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
            print(f"generated {args.packets:,} packets with {source} in {time.perf_counter() - t0:.1f} s")
        size = path.stat().st_size
        runs = args.runs or (1 if size > SINGLE_RUN_BYTES or args.rss_check else 3)
        print(f"capture: {path} ({size / 1e6:.1f} MB), {runs} run(s) per system, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}\n")

        systems = ("burstwatch",) if args.rss_check else SYSTEMS
        results = [measure(s, path, runs) for s in systems]
        print(table(results, size))

        if args.rss_check:
            peak = results[0]["peak_rss"]
            verdict = "within" if peak <= args.rss_check else "EXCEEDS"
            print(f"\nrss-check: peak {peak / 2**20:.0f} MiB {verdict} the {args.rss_check / 2**20:.0f} MiB limit")
            return 0 if peak <= args.rss_check else 1
        bw, dp = results
        same = (bw["packets"], bw["payload"]) == (dp["packets"], dp["payload"])
        print(f"\nsame work: packets {bw['packets']:,} / {dp['packets']:,}, TCP+UDP payload bytes "
              f"{bw['payload']:,} / {dp['payload']:,} -> {'match' if same else 'MISMATCH'}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
