"""Measure the burst ledger: append throughput, bytes on disk per million bursts, query time.

Run: python bench/bench_ledger.py [--bursts 1000000] [--batch 50000] [--path FILE]

Bursts are generated as columns (no Python loop per burst), shaped like a busy site's day:
2,000 local hosts, 40,000 remote addresses (10 % IPv6), 5 bursts per flow, one flow row per
flow, server names for 70 % of flows from 5,000 names, the usual enrichment columns. Each
batch is one ``Ledger.append`` (one transaction), as the pipeline calls it.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np

from burstwatch.features import compute_features
from burstwatch.flows import BurstRows, FlowRows
from burstwatch.flows import state as st
from burstwatch.flows.records import no_tunnel
from burstwatch.ledger import Ledger, conversations
from burstwatch.records import FlowBatch

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
BURSTS_PER_FLOW = 5
V4 = np.uint64(0xFFFF << 32)


class World:
    """The fixed population the batches are drawn from."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.local_lo = V4 | (np.uint64(0x0A000000) + rng.integers(1, 1 << 16, 2_000, dtype=np.uint64))
        n_remote = 40_000
        v6 = rng.random(n_remote) < 0.1
        self.remote_hi = np.where(v6, (np.uint64(0x2001_0DB8) << np.uint64(32))
                                  | rng.integers(0, 1 << 32, n_remote, dtype=np.uint64), np.uint64(0))
        self.remote_lo = np.where(v6, rng.integers(0, 1 << 63, n_remote, dtype=np.uint64),
                                  V4 | rng.integers(1 << 24, 0xDF000000, n_remote, dtype=np.uint64))
        self.sni = np.array([f"h{i % 7}.svc{i}.example{i % 400}.co.uk" for i in range(5_000)] + [""],
                            object)
        self.kinds = np.array(["tls", "quic", "entropy", "none", "ssh"], object)
        self.countries = np.array(["US", "DE", "NL", "FR", "JP", "BR", "RU", "CN", "GB", "SE"], object)
        self.orgs = np.array([f"Org {i}" for i in range(1_000)], object)


def make_batch(world: World, rng: np.random.Generator, n_flows: int, t_start: int,
               span_ns: int, first_fid: int) -> FlowBatch:
    """``n_flows`` flows with their bursts, all inside [t_start, t_start + span_ns)."""
    loc = rng.integers(0, world.local_lo.shape[0], n_flows)
    rem = rng.integers(0, world.remote_lo.shape[0], n_flows)
    start = t_start + rng.integers(0, span_ns, n_flows)
    dur = rng.integers(1, 300, n_flows) * NS
    fid = np.arange(first_fid, first_fid + n_flows, dtype=np.int64)
    bytes_up = rng.integers(1_000, 5_000_000, n_flows)
    acc_i = np.zeros((n_flows, st.N_ACC_I), np.int64)
    acc_i[:, st.I_FIRST], acc_i[:, st.I_LAST] = start, start + dur
    acc_i[:, st.I_PAY0], acc_i[:, st.I_PAY1] = bytes_up, bytes_up // 20
    acc_i[:, st.I_PKTS0], acc_i[:, st.I_PKTS1] = bytes_up // 1400 + 1, bytes_up // 2800 + 1
    acc_f = np.zeros((n_flows, st.N_ACC_F))
    acc_f[:, st.F_PEAK_RATE] = acc_f[:, st.F_PEAK_RATE0] = rng.random(n_flows) * 1e7
    u64 = np.zeros(n_flows, np.uint64)
    proto = np.where(rng.random(n_flows) < 0.8, 6, 17).astype(np.uint8)
    rows = FlowRows(
        flow_id=fid, kind=np.zeros(n_flows, np.int8), reason=np.full(n_flows, st.END_FIN, np.int8),
        window_index=np.full(n_flows, -1, np.int32), proto=proto,
        orig_hi=u64, orig_lo=world.local_lo[loc], orig_port=rng.integers(1024, 65535, n_flows).astype(np.uint16),
        resp_hi=world.remote_hi[rem], resp_lo=world.remote_lo[rem],
        resp_port=np.full(n_flows, 443, np.uint16), local_initiated=np.ones(n_flows, np.bool_),
        acc_i=acc_i, acc_f=acc_f, tunnel=no_tunnel(n_flows),
    )
    sni_idx = np.where(rng.random(n_flows) < 0.7, rng.integers(0, 5_000, n_flows), 5_000)
    asn = rng.integers(0, 1_000, n_flows)
    extra = {
        "burstwatch.encryption.verdict": world.kinds[rng.integers(0, 5, n_flows)],
        "tls.client.server_name": world.sni[sni_idx],
        "burstwatch.tls.client.ja4": np.where(sni_idx < 5_000, "t13d1516h2_8daaf6152771_02713d6af862", ""),
        "destination.geo.country_iso_code": world.countries[rem % 10],
        "destination.as.number": (64_000 + asn).astype(np.float64),
        "destination.as.organization.name": world.orgs[asn],
    }
    # bursts: BURSTS_PER_FLOW per flow, spread over the flow's life, mostly uploads
    k = np.repeat(np.arange(n_flows), BURSTS_PER_FLOW)
    n = k.shape[0]
    b_start = start[k] + (dur[k] * (np.tile(np.arange(BURSTS_PER_FLOW), n_flows) / BURSTS_PER_FLOW)).astype(np.int64)
    bursts = BurstRows(
        flow_id=fid[k], direction=(rng.random(n) < 0.3).astype(np.int8), start_ns=b_start,
        end_ns=b_start + rng.integers(1_000_000, 2 * NS, n), packets=rng.integers(2, 2_000, n),
        bytes=rng.integers(10_000, 3_000_000, n), proto=proto[k], orig_hi=u64[k],
        orig_lo=rows.orig_lo[k], orig_port=rows.orig_port[k], resp_hi=rows.resp_hi[k],
        resp_lo=rows.resp_lo[k], resp_port=rows.resp_port[k],
    )
    known = rng.random(n) < 0.5  # half the bursts ended before their flow was classified
    burst_extra = {key: np.where(known, col[k], "") if col.dtype == object else col[k]
                   for key, col in extra.items()}
    return FlowBatch("bench", rows, compute_features(rows), bursts, extra, burst_extra)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bursts", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=50_000, help="bursts per append")
    ap.add_argument("--path", help="ledger file (default: a temporary file, removed after)")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    world = World(rng)
    flows_per_batch = max(args.batch // BURSTS_PER_FLOW, 1)
    n_batches = max(args.bursts // (flows_per_batch * BURSTS_PER_FLOW), 1)
    day = 86_400 * NS
    span = day // n_batches  # one day of traffic in all
    tmp = None if args.path else tempfile.TemporaryDirectory()
    path = args.path or os.path.join(tmp.name if tmp else ".", "bench.duckdb")

    n_bursts = n_rows = 0
    t_append = 0.0
    with Ledger.open(path) as ledger:
        for i in range(n_batches):  # generated one at a time: memory is the ledger's, not ours
            b = make_batch(world, rng, flows_per_batch, T0 + i * span, span, i * flows_per_batch)
            n_bursts += len(b.bursts)
            n_rows += len(b.rows)
            t0 = time.perf_counter()
            ledger.append(b)
            t_append += time.perf_counter() - t0
    rss_appends = peak_rss_mib()
    size = os.path.getsize(path) + (os.path.getsize(path + ".wal") if os.path.exists(path + ".wal") else 0)
    with Ledger.open(path, read_only=True) as ledger:
        t0 = time.perf_counter()
        conv, cb = conversations(ledger)
        t_query = time.perf_counter() - t0

    print(f"bursts appended        {n_bursts:,} (+ {n_rows:,} flow rows) in {n_batches} appends")
    print(f"append                 {t_append:.2f} s  {n_bursts / t_append / 1e3:.0f} k bursts/s "
          "(with their flow rows)")
    print(f"file size              {size:,} bytes  {size / n_bursts * 1e6 / 2**20:.1f} MiB per million bursts")
    print(f"conversations (24 h)   {len(conv):,} conversations, {len(cb):,} bursts in {t_query:.2f} s")
    print(f"peak RSS               {rss_appends:.0f} MiB after the appends, {peak_rss_mib():.0f} MiB "
          "after the query")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
