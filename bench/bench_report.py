"""Measure the HTML report with many cases: file size, time to write it, and time to open it
in headless chromium (to the first screen drawn, and to every plot drawn).

Run: python bench/bench_report.py [--cases 100] [--bursts 200] [--connections 20] [--runs 3]
[--keep FILE]

The cases are the demo capture's case record repeated with other hosts, parties and
countries, each given ``--bursts`` upload and as many download bursts over a day on
``--connections`` connections: the largest a case record lists (200 bursts) on every case,
so the figures are an upper end. Needs /usr/bin/chromium and playwright (test extra). Exits 1
when the file is 10 MB or more or opening it takes 3 s or more.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from burstwatch.outputs.ecs import iso
from burstwatch.report.data import Bursts, CaseView, Connection, from_records
from burstwatch.report.html import render

NS = 1_000_000_000
T0 = 1_710_252_000 * NS
MAX_BYTES = 10_000_000
MAX_OPEN_S = 3.0
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
COUNTRIES = ["RU", "CN", "NL", "DE", "BR", "IR", "KP", "VN", "TR", "FR"]


def demo_record() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        alerts = Path(tmp) / "a.jsonl"
        demo = Path(__file__).resolve().parent.parent / "pcaps" / "demo.pcap"
        subprocess.run([sys.executable, "-m", "burstwatch", "scan", str(demo), "--alerts",
                        str(alerts), "--format", "jsonl"], capture_output=True, check=False)
        return dict(json.loads(alerts.read_text().splitlines()[0]))


def bursts(rng: np.random.Generator, n: int, direction: int, flows: list[str]) -> Bursts:
    start = np.sort(T0 + rng.integers(0, 86_400 * NS, n))
    dur = rng.integers(NS // 20, 5 * NS, n)
    size = rng.integers(100_000, 5_000_000, n)
    which = rng.integers(0, len(flows), n)
    return Bursts(start, start + dur, size, size / (dur / NS), np.full(n, direction, np.int8),
                  [flows[i] for i in which.tolist()])


def joined(a: Bursts, b: Bursts) -> Bursts:
    return Bursts(np.concatenate([a.start_ns, b.start_ns]), np.concatenate([a.end_ns, b.end_ns]),
                  np.concatenate([a.bytes, b.bytes]), np.concatenate([a.rate, b.rate]),
                  np.concatenate([a.direction, b.direction]), a.flow_id + b.flow_id)


def make_views(n_cases: int, n_bursts: int, n_conns: int) -> list[CaseView]:
    rng = np.random.default_rng(1)
    template = demo_record()
    views = []
    for k in range(n_cases):
        rec = copy.deepcopy(template)
        case = rec["burstwatch"]["case"]
        host = f"10.{k // 250}.{k % 250}.{k % 7 + 2}"
        flows = [f"{rng.integers(0, 1 << 62):016x}" for _ in range(n_conns)]
        up = bursts(rng, n_bursts, 0, flows)
        down = bursts(rng, n_bursts, 1, flows)
        rec["source"]["ip"] = host
        rec["destination"]["geo"]["country_iso_code"] = COUNTRIES[k % len(COUNTRIES)]
        rec["destination"]["as"]["number"] = 64_500 + k % 30
        case.update(id=f"{k:016x}", flows=flows, upload_bursts=n_bursts,
                    upload_bytes=int(up.bytes.sum()))
        rec["burstwatch"]["conversation"]["party"] = f"party{k}.example.net"
        case["bursts"] = [{"start": iso(s), "end": iso(e), "bytes": int(b), "rate": float(r),
                           "flow_id": f} for s, e, b, r, f in zip(
                               up.start_ns.tolist(), up.end_ns.tolist(), up.bytes.tolist(),
                               up.rate.tolist(), up.flow_id, strict=True)]
        rec["burstwatch"]["case"]["findings"] = rec["burstwatch"]["case"]["findings"] + [
            dict(rec["burstwatch"]["case"]["findings"][-1], flow_id=f) for f in flows]
        conns = [Connection(f, host, 40_000 + i, "77.88.8.8", 443, "tcp", T0, T0 + 86_400 * NS,
                            int(up.bytes.sum()) // n_conns, 10_000, "relay.example.net",
                            "t13d1513h1_8daaf6152771_91b187c34d40", "tls")
                 for i, f in enumerate(flows)]
        views.append(CaseView(rec, up, joined(up, down), conns))
    return views


def open_in_chromium(path: Path) -> tuple[float, float, int]:
    """(seconds from navigation to the first screen drawn, seconds to draw every plot,
    requests other than the file)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(offline=True, viewport={"width": 1280, "height": 900}).new_page()
        others: list[str] = []
        own = path.resolve().as_uri()
        page.route("**/*", lambda r: r.continue_() if r.request.url == own
                   else (others.append(r.request.url), r.abort()))
        page.goto(own)
        page.wait_for_function("document.body.dataset.ready === 'yes'", timeout=120_000)
        # the plots in view are drawn by the observer's first callback: two frames later
        opened = page.evaluate("""() => new Promise(done => requestAnimationFrame(
            () => requestAnimationFrame(() => done(performance.now()))))""") / 1e3
        drawn = page.evaluate("document.querySelectorAll('.main-svg').length")
        every = page.evaluate("""() => { const t = performance.now(); burstwatchDrawAll();
                                          return (performance.now() - t) / 1e3; }""")
        browser.close()
    if not drawn:
        raise SystemExit("no plot was drawn on the first screen")
    return opened, every, len(others)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--bursts", type=int, default=200, help="upload (and download) bursts per case")
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--keep", metavar="FILE", help="write the report here (default: a temp file)")
    ap.add_argument("--runs", type=int, default=3, help="open it this often; the best counts")
    args = ap.parse_args()
    views = make_views(args.cases, args.bursts, args.connections)
    data = from_records([v.record for v in views], ["US"])
    data.cases = views
    data.notes = []
    t = time.perf_counter()
    text = render(data)
    render_s = time.perf_counter() - t
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "report.html"
    path.write_text(text, encoding="utf-8")
    size = path.stat().st_size
    runs = [open_in_chromium(path) for _ in range(args.runs)]
    opened = min(r[0] for r in runs)
    every = min(r[1] for r in runs)
    requests = max(r[2] for r in runs)
    print(f"{args.cases} cases x {args.bursts} upload + {args.bursts} download bursts, "
          f"{args.connections} connections each")
    print(f"file: {size / 1e6:.2f} MB (limit {MAX_BYTES / 1e6:.0f} MB); written in {render_s:.2f} s")
    print(f"chromium: opened, first screen drawn, {opened:.2f} s after navigation "
          f"(limit {MAX_OPEN_S:g} s; best of {args.runs}: "
          f"{', '.join(f'{r[0]:.2f}' for r in runs)}); every plot drawn in a further "
          f"{every:.2f} s; requests made: {requests}; load average {os.getloadavg()[0]:.1f}")
    ok = size < MAX_BYTES and opened < MAX_OPEN_S and requests == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
