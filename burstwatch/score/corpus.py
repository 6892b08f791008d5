"""Generated traffic for training and measuring the scorer, from :mod:`burstwatch.synth`.

One capture per (scenario, seed), holding several sessions of that scenario, each with its
own internal host and its own parameters drawn from the ranges below, so a baseline has the
spread real traffic has (small and large backups, slow and fast links, short and long calls).
Every draw comes from a generator seeded by (seed, scenario, session): the same seed always
gives the same bytes. A training corpus is tens of gigabytes of pcap, so :func:`corpus_rows`
keeps only the feature rows and deletes each capture as soon as it has been read.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from burstwatch.score.rows import CaptureRows, read_rows
from burstwatch.synth import BENIGN, EXFIL, SCENARIOS, Endpoint, merge, write_capture
from burstwatch.synth.addresses import internal_v4, internal_v6

START_TS = 1_710_252_000.0  # 2024-03-12 14:00:00 UTC
START_SPREAD_S = 900.0  # sessions of one capture start within this many seconds
BENIGN_CLASSES: tuple[str, ...] = tuple(BENIGN)
EXFIL_CLASSES: tuple[str, ...] = tuple(EXFIL)
_STREAM_BYTES_MAX = 60e6  # keep one generated stream under ~40k packets
_CALL_PACKETS_MAX = 20_000  # per direction

Rng = np.random.Generator


def _logu(rng: Rng, lo: float, hi: float) -> float:
    """Log-uniform: sizes and rates vary by factors, not by fixed steps."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _stream(rng: Rng, rtt: tuple[float, float]) -> dict[str, Any]:
    chunk = _logu(rng, 1.5e5, 4e6)
    interval = float(rng.uniform(2.0, 10.0))
    duration = min(_logu(rng, 20.0, 900.0), _STREAM_BYTES_MAX * interval / chunk)
    return {"duration_s": duration, "chunk_bytes": int(chunk), "chunk_interval_s": interval,
            "rate": _logu(rng, 1e6, 1.5e7), "rtt_ms": float(rng.uniform(*rtt))}


def _call(rng: Rng) -> dict[str, Any]:
    pps = float(rng.uniform(20.0, 100.0))
    lo = int(rng.integers(60, 200))
    return {"duration_s": min(_logu(rng, 10.0, 900.0), _CALL_PACKETS_MAX / pps), "pps": pps,
            "size": (lo, lo + int(rng.integers(20, 900))), "rtt_ms": float(rng.uniform(20.0, 180.0))}


BENIGN_PARAMS: dict[str, Callable[[Rng], dict[str, Any]]] = {
    "browsing": lambda r: {
        "duration_s": float(r.uniform(120.0, 600.0)),
        "page_interval_s": _logu(r, 4.0, 40.0),
        "response_bytes": (int(_logu(r, 300, 5_000)), int(_logu(r, 2e4, 1.5e6))),
        "requests": (1, int(r.integers(2, 9))),
    },
    "video_stream": lambda r: _stream(r, (5.0, 50.0)),
    "video_stream_abroad": lambda r: _stream(r, (60.0, 180.0)),
    "backup_upload": lambda r: {
        "total_bytes": int(_logu(r, 3e5, 6e7)), "part_bytes": int(_logu(r, 2.5e5, 1e7)),
        "rate": _logu(r, 3e5, 1.5e7), "rtt_ms": float(r.uniform(5.0, 80.0)),
    },
    "large_download": lambda r: {
        "total_bytes": int(_logu(r, 3e5, 8e7)), "rate": _logu(r, 5e5, 2.5e7),
        "rtt_ms": float(r.uniform(20.0, 220.0)),
    },
    "os_update": lambda r: {
        "total_bytes": int(_logu(r, 3e5, 5e7)), "rate": _logu(r, 1e6, 3e7),
        "rtt_ms": float(r.uniform(5.0, 40.0)),
    },
    "encrypted_call": _call,
    "dns_lookups": lambda r: {"duration_s": float(r.uniform(120.0, 900.0)), "per_minute": _logu(r, 1.0, 40.0)},
}


def exfil_params(rng: Rng) -> dict[str, Any]:
    """Exfiltration variants: from one small slow burst to several large fast ones."""
    return {
        "quiet_s": _logu(rng, 20.0, 600.0),
        "bursts": int(rng.integers(1, 6)),
        "burst_bytes": int(_logu(rng, 2e5, 2e7)),
        "rate": _logu(rng, 2e6, 3e7),
        "gap_s": _logu(rng, 10.0, 300.0),
        "tail_s": float(rng.uniform(5.0, 60.0)),
    }


@dataclass(frozen=True)
class CorpusCapture:
    """A generated capture: ``sessions`` sessions of scenario ``label``."""

    path: str
    label: str
    kind: str  # "benign" or "exfil"
    seed: int
    sessions: int
    packets: int


def session_params(label: str, rng: Rng) -> dict[str, Any]:
    """A parameter draw for one session of scenario ``label``."""
    return exfil_params(rng) if label in EXFIL else BENIGN_PARAMS[label](rng)


def write_scenario_capture(
    out_dir: str | Path, label: str, seed: int, sessions: int, *, vary: bool = True
) -> CorpusCapture:
    """Write ``sessions`` sessions of ``label`` (defaults when ``vary`` is off) to one pcap."""
    scenario = SCENARIOS[label]
    code = sorted(SCENARIOS).index(label)
    flows = []
    for i in range(sessions):
        rng = np.random.default_rng([seed, code, i])
        host = 10 + i % 240
        client = Endpoint(internal_v6(host) if label.endswith("_v6") else internal_v4(host))
        start = START_TS + float(rng.uniform(0.0, START_SPREAD_S))
        params = session_params(label, rng) if vary else {}
        flows.extend(scenario(rng, start, client, None, **params).flows)
    path = Path(out_dir) / f"{label}-s{seed}.pcap"
    count = write_capture(path, merge(flows))
    return CorpusCapture(str(path), label, "exfil" if label in EXFIL else "benign", seed, sessions, count)


def write_corpus(
    out_dir: str | Path, plan: dict[str, int], seeds: Sequence[int], *, vary: bool = True
) -> list[CorpusCapture]:
    """One capture per (scenario in ``plan``, seed), with ``plan[scenario]`` sessions each."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return [write_scenario_capture(out_dir, label, seed, n, vary=vary)
            for seed in seeds for label, n in plan.items()]


def corpus_rows(
    plan: dict[str, int], seeds: Sequence[int], *, vary: bool = True, workdir: str | Path | None = None
) -> tuple[CaptureRows, list[CorpusCapture]]:
    """Feature rows of the corpus :func:`write_corpus` would write, one capture on disk at a time.

    Row ``source`` indexes the returned capture list (whose paths no longer exist).
    """
    parts, captures = [], []
    with tempfile.TemporaryDirectory(prefix="burstwatch-corpus-", dir=workdir) as tmp:
        for seed in seeds:
            for label, n in plan.items():
                capture = write_scenario_capture(tmp, label, seed, n, vary=vary)
                parts.append(read_rows([capture.path]))
                Path(capture.path).unlink()
                captures.append(capture)
    return CaptureRows.concat(parts), captures
