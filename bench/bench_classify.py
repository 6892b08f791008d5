"""Encryption verdicts alone: classify_packed_columns on synthetic flows, timed by CPU time.

    python bench/bench_classify.py [--flows N] [--calls C] [--seed S]

CPU time (``time.process_time``) rather than wall time, so that a shared machine's load moves
the figure less; the best of ``--calls`` calls after one warm-up call (which compiles).
Flows are 3 in 4 TCP, ports drawn from 443, 80, 8080, 53 and 51820, 1-4 random payloads of
40-1400 bytes per direction: every flow goes through the prefilter and the entropy test.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from burstwatch.enrich.encryption.batch import classify_packed_columns


def flows(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """The arguments of classify_packed_columns for ``n`` synthetic flows."""
    rng = random.Random(seed)
    protos, cports, sports, payloads, flow, direction = [], [], [], [], [], []
    for i in range(n):
        protos.append(rng.choice([6, 6, 6, 17]))
        cports.append(rng.randrange(1024, 65535))
        sports.append(rng.choice([443, 80, 8080, 53, 51820]))
        for d in (0, 1):
            for _ in range(rng.randrange(1, 5)):
                payloads.append(rng.randbytes(rng.randrange(40, 1400)))
                flow.append(i)
                direction.append(d)
    data = np.frombuffer(b"".join(payloads), np.uint8)
    lens = np.array([len(p) for p in payloads], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    return (np.array(protos), np.array(cports), np.array(sports), data, offs, lens,
            np.array(flow), np.array(direction))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=20_000)
    ap.add_argument("--calls", type=int, default=15)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    columns = flows(args.flows, args.seed)
    classify_packed_columns(*columns)  # warm-up: compiles or loads the cached kernels
    times = []
    for _ in range(args.calls):
        start = time.process_time()
        classify_packed_columns(*columns)
        times.append(time.process_time() - start)
    print(f"{args.flows} flows, {columns[5].shape[0]} samples, {columns[3].nbytes / 1e6:.1f} MB: "
          f"best CPU {min(times) * 1000:.1f} ms, median {sorted(times)[len(times) // 2] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
