"""Side by side: burstwatch against argus, suricata and nfstream on one capture, whole processes.

    python bench/bench_compare.py CAPTURE [--rounds 3] [--nfstream-python PATH] [--only NAMES]
                                          [--baseline TREE] [--cold] [--check]

Every round runs every system once, in an order rotated from round to round, so load on a
shared machine falls on all of them alike (pairing); the table gives the median wall time,
packets per second and the peak resident set (the child's, from wait4) of each, and each
one's wall time as a multiple of argus's in the same rounds. Systems not installed are
listed as missing, never silently dropped:

  cat              reading the file (the floor)
  burstwatch info  read and decode every packet (`burstwatch info`)
  burstwatch scan  the whole job (`burstwatch scan`, in-memory ledger)
  burstwatch flows -o x.jsonl  flow records with features and enrichment, as JSON lines
  argus            flow records (`argus -r CAPTURE -w FILE`; Debian argus-server)
  suricata         no rules, flow and protocol logging (`suricata -r`; Debian suricata, in
                   bookworm-backports for Debian 12)
  nfstream         NFStreamer with statistical features (PyPI nfstream; --nfstream-python
                   names an interpreter that has it, default this one)
  baseline scan    with --baseline TREE: `burstwatch scan` of another source tree (an older
                   commit checked out with `git worktree add`), in the same rounds, so a
                   change is measured against what it replaced under the same load

Without it, the capture is read into the page cache before every run (as `cat` would), and
the header says how much of it the cache holds in 2 MiB folios (a mapped reader's page
faults depend on it). With --cold the page cache is dropped before every run (root:
/proc/sys/vm/drop_caches), so each system reads the capture from disk, as it would a
capture just copied off a sensor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

NFSTREAM = ("import sys\nfrom nfstream import NFStreamer\n"
            "n = 0\nfor _ in NFStreamer(source=sys.argv[1], statistical_analysis=True):\n"
            "    n += 1\nprint(n)\n")


def systems(capture: str, out: Path, nfstream_python: str) -> tuple[dict[str, list[str]], list[str]]:
    """The command line of each installed system, and the names of the missing ones."""
    bw = [sys.executable, "-m", "burstwatch"]
    have: dict[str, list[str]] = {
        "cat": ["sh", "-c", 'cat "$1" | wc -c', "cat", capture],
        "burstwatch info": [*bw, "info", capture],
        "burstwatch scan": [*bw, "scan", capture],
        "burstwatch flows -o x.jsonl": [*bw, "flows", capture, "-o", str(out / "x.jsonl")],
    }
    missing = []
    if shutil.which("argus"):
        have["argus"] = ["argus", "-r", capture, "-w", str(out / "x.argus")]
    else:
        missing.append("argus (apt-get install argus-server)")
    if shutil.which("suricata"):
        have["suricata"] = ["suricata", "-r", capture, "-l", str(out), "-k", "none",
                            "--set", "outputs.1.eve-log.enabled=yes", "-S", "/dev/null"]
    else:
        missing.append("suricata (apt-get install suricata; on Debian 12 from bookworm-backports: "
                       "apt-get install -t bookworm-backports suricata)")
    probe = subprocess.run([nfstream_python, "-c", "import nfstream"], capture_output=True)
    if probe.returncode == 0:
        have["nfstream"] = [nfstream_python, "-c", NFSTREAM, capture]
    else:
        missing.append(f"nfstream (pip install nfstream; not importable by {nfstream_python})")
    return have, missing


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_page_cache() -> None:
    """Write dirty pages out and drop the clean ones, so the next run reads from disk."""
    os.sync()
    DROP_CACHES.write_text("3\n")


def read_into_page_cache(capture: str) -> None:
    """Read the capture once (as ``cat`` does, into a reused buffer): every run starts with
    all of it in the page cache, even where the system pages out what has not been touched
    for a while (this machine's DAMON reclaim took parts of a 5 GB capture between rounds)."""
    buf = bytearray(8 << 20)
    with open(capture, "rb", buffering=0) as f:
        while f.readinto(buf):  # type: ignore[attr-defined]
            pass


def run_once(argv: list[str], out: Path, cold: bool = False,
             capture: str | None = None) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit status) of one whole process (``cold``: with the
    page cache dropped first; otherwise ``capture`` is read into it first)."""
    for f in out.glob("x.*"):
        f.unlink()
    if cold:
        drop_page_cache()
    elif capture is not None:
        read_into_page_cache(capture)
    cwd = str(ROOT)
    if argv[0] == "--tree":  # run from another source tree: `-m` imports the package there
        cwd, argv = argv[1], argv[2:]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, proc.returncode


HUGE_SHARE = """
import mmap, os, sys
from pathlib import Path
path = sys.argv[1]
with open(path, "rb") as f:
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    m.madvise(mmap.MADV_HUGEPAGE)
    for at in range(0, len(m), mmap.PAGESIZE):
        m[at]
    mine, rss, pmd = False, 0, 0
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:
            mine = line.rstrip().endswith(os.path.abspath(path))
        elif mine and head[0] == "Rss:":
            rss += int(head[1])
        elif mine and head[0] == "FilePmdMapped:":
            pmd += int(head[1])
print(round(100 * pmd / max(rss, 1)))
"""


def huge_share(capture: str) -> str:
    """How much of the capture's page cache is in 2 MiB folios (mapped whole): the state
    the file was cached in moves a mapped reader's time (faults and unmapping a page at a
    time) by 5-10 % on the 5 M-packet capture. Measured in a child, after the warm-up runs
    (everything resident: mapping it reads nothing)."""
    if not sys.platform.startswith("linux"):
        return "page cache: not measured here"
    done = subprocess.run([sys.executable, "-c", HUGE_SHARE, capture], capture_output=True,
                          text=True)
    if done.returncode:
        return "page cache: not measured (no transparent huge pages?)"
    return f"page cache: {done.stdout.strip()} % of the capture in 2 MiB folios"


def count_packets(capture: str) -> int:
    """Counted by a child, so this process stays small: a forked child's peak RSS counts
    the parent's pages until it execs."""
    done = subprocess.run([sys.executable, "-m", "burstwatch", "info", "--json", capture],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, check=True)
    return int(json.loads(done.stdout.splitlines()[0])["packets"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nfstream-python", default=sys.executable)
    ap.add_argument("--only", help="comma-separated system names to run")
    ap.add_argument("--baseline", help="another source tree whose scan runs in the same rounds")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when a target is missed (scan 2x argus, 3x suricata, "
                         "300 MiB; flows -o within 15 %% of scan)")
    ap.add_argument("--cold", action="store_true",
                    help="drop the page cache before every run (needs root)")
    args = ap.parse_args()
    if args.cold and not os.access(DROP_CACHES, os.W_OK):
        ap.error(f"--cold drops the page cache: it needs to write {DROP_CACHES} (root)")
    packets = count_packets(args.capture)
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        out = Path(tmp)
        have, missing = systems(args.capture, out, args.nfstream_python)
        if args.baseline:
            tree = str(Path(args.baseline).resolve())
            have["baseline scan"] = ["--tree", tree, sys.executable, "-m", "burstwatch", "scan",
                                     args.capture]
            have["baseline flows -o x.jsonl"] = ["--tree", tree, sys.executable, "-m",
                                                 "burstwatch", "flows", args.capture, "-o",
                                                 str(out / "base.jsonl")]
        if args.only:
            keep = set(args.only.split(","))
            have = {k: v for k, v in have.items() if k in keep}
        for argv in have.values():  # warm: page cache, numba's cache, bytecode
            run_once(argv, out)
        cache = "page cache dropped before each run" if args.cold else huge_share(args.capture)
        walls: dict[str, list[float]] = {k: [] for k in have}
        rss: dict[str, list[int]] = {k: [] for k in have}
        failed: dict[str, int] = {}
        names = list(have)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                wall, peak, code = run_once(have[name], out, args.cold, args.capture)
                walls[name].append(wall)
                rss[name].append(peak)
                if code not in (0, 1):  # scan exits 1 when it flags something
                    failed[name] = code
    load = os.getloadavg()
    size = Path(args.capture).stat().st_size
    print(f"capture: {args.capture} ({packets:,} packets, {size / 1e9:.2f} GB); {args.rounds} "
          f"paired rounds; {cache}; "
          f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print()
    print("| system | wall s | packets/s | peak RSS MiB | x argus | each round s |")
    print("|---|---:|---:|---:|---:|---|")
    argus = walls.get("argus")
    for name in sorted(have, key=lambda k: statistics.median(walls[k])):
        med = statistics.median(walls[name])
        ratio = (statistics.median([a / b for a, b in zip(walls[name], argus, strict=True)])
                 if argus else float("nan"))
        flag = f" (exit {failed[name]})" if name in failed else ""
        rounds = ", ".join(f"{w:.2f}" for w in walls[name])
        print(f"| {name}{flag} | {med:.2f} | {packets / med / 1e6:.2f} M | "
              f"{max(rss[name]) / 2**20:.0f} | {ratio:.2f} | {rounds} |")
    if missing:
        print()
        print("missing: " + "; ".join(missing))
    if args.check:
        missed = missed_targets({k: statistics.median(v) for k, v in walls.items()},
                                {k: max(v) for k, v in rss.items()})
        for line in missed:
            print(f"target missed: {line}")
        return 1 if missed else 0
    return 0


def missed_targets(wall: dict[str, float], peak: dict[str, int]) -> list[str]:
    """The side-by-side targets (issue 16) that medians ``wall`` and peaks ``peak`` miss:
    scan at least 2x quicker than argus and 3x than suricata, at most 300 MiB, and
    ``flows -o`` within 15 % of scan. Only systems that ran are compared; scan must have."""
    scan = wall.get("burstwatch scan")
    if scan is None:
        return ["burstwatch scan did not run"]
    missed = []
    for peer, times in (("argus", 2.0), ("suricata", 3.0)):
        if peer in wall and wall[peer] / scan < times:
            missed.append(f"scan {wall[peer] / scan:.2f}x {peer}, not {times:g}x")
    if peak["burstwatch scan"] > 300 * 2**20:
        missed.append(f"scan peak {peak['burstwatch scan'] / 2**20:.0f} MiB, over 300")
    flows = wall.get("burstwatch flows -o x.jsonl")
    if flows is not None and flows > 1.15 * scan:
        missed.append(f"flows -o {flows / scan - 1:.0%} over scan, not within 15 %")
    return missed


if __name__ == "__main__":
    raise SystemExit(main())
