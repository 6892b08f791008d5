"""Generated sites for the conversation model: hosts with days of ordinary traffic, one ledger each.

A *site* is one capture: ``HOSTS`` internal hosts over ``DAYS`` days. Every host-day draws a
mix of benign sessions from both scenario families (browsing and DNS, video at home and
abroad, downloads, OS updates, calls, cloud backups and photo syncs to home-country clouds,
large uploads abroad, SSH and browsing abroad), each with its own parameters and start time,
so the same host meets the same parties again on later days (novelty is defined after day
one) and its uplink's peak rate comes from its own uploads. An exfiltration site adds one
exfiltration scenario to the last day of ``EXFIL_HOSTS`` of its hosts. Conversations are then read exactly as
``burstwatch train`` reads captures (:func:`rows_from_captures`), one horizon per day.

Every draw comes from a generator seeded by (seed, site, host, day, session): the same seed
always gives the same rows. Sizes are kept moderate so a corpus of a few thousand
conversations is made in minutes.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from burstwatch.ledger import DAY_NS
from burstwatch.score.conversation.rows import ConversationRows, rows_from_captures
from burstwatch.synth import ALL_SCENARIOS, Endpoint, FlowPackets, merge, write_capture
from burstwatch.synth.addresses import internal_v4

Rng = np.random.Generator
START_TS = 1_710_201_600.0  # 2024-03-12 00:00:00 UTC
DAY_S = 86_400.0
HOSTS = 8
DAYS = 3
EXFIL_HOSTS = 4  # hosts of an exfiltration site that run the scenario (on the last day)


def _logu(rng: Rng, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _span(rng: Rng, lo: float, hi: float, ratio: tuple[float, float] = (1.3, 3.0)) -> tuple[int, int]:
    a = _logu(rng, lo, hi)
    return int(a), int(a * rng.uniform(*ratio))


def _stream(rng: Rng, rtt: tuple[float, float]) -> dict[str, Any]:
    chunk = _logu(rng, 1e5, 1e6)
    interval = float(rng.uniform(2.0, 10.0))
    return {"duration_s": min(_logu(rng, 20.0, 600.0), 3e6 * interval / chunk), "chunk_bytes": int(chunk),
            "chunk_interval_s": interval, "rate": _logu(rng, 1e6, 1.5e7), "rtt_ms": float(rng.uniform(*rtt))}


def _call(rng: Rng) -> dict[str, Any]:
    pps = float(rng.uniform(20.0, 100.0))
    return {"duration_s": min(_logu(rng, 10.0, 900.0), 3_000 / pps), "pps": pps,
            "size": _span(rng, 60, 200, (1.2, 5.0)), "rtt_ms": float(rng.uniform(20.0, 180.0))}


# Benign scenarios: a parameter draw each (sizes capped to keep a site small).
BENIGN_DRAWS: dict[str, Callable[[Rng], dict[str, Any]]] = {
    "browsing": lambda r: {"duration_s": float(r.uniform(30.0, 150.0)), "page_interval_s": _logu(r, 5.0, 40.0),
                           "response_bytes": (int(_logu(r, 300, 5_000)), int(_logu(r, 2e4, 2e5)))},
    "dns_lookups": lambda r: {"duration_s": float(r.uniform(120.0, 900.0)), "per_minute": _logu(r, 1.0, 20.0)},
    "video_stream": lambda r: _stream(r, (5.0, 50.0)),
    "video_stream_abroad": lambda r: _stream(r, (60.0, 180.0)),
    "large_download": lambda r: {"total_bytes": int(_logu(r, 3e5, 1e7)), "rate": _logu(r, 5e5, 2.5e7),
                                 "rtt_ms": float(r.uniform(20.0, 220.0))},
    "os_update": lambda r: {"total_bytes": int(_logu(r, 3e5, 8e6)), "rate": _logu(r, 1e6, 3e7),
                            "rtt_ms": float(r.uniform(5.0, 40.0))},
    "encrypted_call": _call,
    "backup_upload": lambda r: {"total_bytes": int(_logu(r, 3e5, 1.5e7)), "part_bytes": int(_logu(r, 2.5e5, 8e6)),
                                "rate": _logu(r, 3e5, 1.5e7), "rtt_ms": float(r.uniform(5.0, 80.0))},
    "photo_backup_home": lambda r: {"photos": int(r.integers(1, 13)), "photo_bytes": _span(r, 1e5, 1.5e6),
                                    "connections": int(r.integers(1, 5)), "rate": _logu(r, 1e6, 2e7),
                                    "rtt_ms": float(r.uniform(10.0, 60.0))},
    "continuous_upload_abroad": lambda r: {"total_bytes": int(_logu(r, 2e6, 2e7)),
                                           "piece_bytes": int(_logu(r, 5e5, 8e6)),
                                           "rate": _logu(r, 5e5, 1e7), "rtt_ms": float(r.uniform(60.0, 200.0))},
    "ssh_interactive_abroad": lambda r: {"duration_s": float(r.uniform(300.0, 2400.0)),
                                         "think_s": float(r.uniform(3.0, 20.0)),
                                         "output_bytes": _logu(r, 100.0, 3_000.0),
                                         "rtt_ms": float(r.uniform(60.0, 250.0))},
    "browsing_abroad": lambda r: {"duration_s": float(r.uniform(30.0, 150.0)), "page_interval_s": _logu(r, 5.0, 40.0)},
    "os_update_abroad": lambda r: {"total_bytes": int(_logu(r, 5e5, 1.5e7)), "packages": int(r.integers(2, 11)),
                                   "rate": _logu(r, 1e6, 2e7), "rtt_ms": float(r.uniform(40.0, 200.0))},
}
# Sessions per host-day: (probability the host does it that day, most sessions that day).
DAILY: dict[str, tuple[float, int]] = {
    "browsing": (0.9, 2),
    "dns_lookups": (0.9, 2),
    "video_stream": (0.3, 2),
    "video_stream_abroad": (0.15, 1),
    "large_download": (0.15, 1),
    "os_update": (0.15, 1),
    "encrypted_call": (0.3, 2),
    "backup_upload": (0.5, 3),
    "photo_backup_home": (0.5, 4),
    "continuous_upload_abroad": (0.12, 1),
    "ssh_interactive_abroad": (0.15, 2),
    "browsing_abroad": (0.4, 2),
    "os_update_abroad": (0.1, 1),
}


def _rate(r: Rng, lo: float, hi: float) -> tuple[float, float]:
    a = _logu(r, lo, hi)
    return a, a * float(r.uniform(1.2, 2.5))


# Exfiltration over hours (conversation scenarios) and over minutes (the flow-level ones).
EXFIL_DRAWS: dict[str, Callable[[Rng], dict[str, Any]]] = {
    "exfil_pull_after_idle": lambda r: {"bursts": int(r.integers(3, 9)), "gap_s": _logu(r, 300.0, 2400.0),
                                        "burst_bytes": _span(r, 2e5, 4e6, (1.2, 3.0)), "rate": _rate(r, 5e5, 5e6)},
    "exfil_conn_per_burst": lambda r: {"slots": int(r.integers(6, 21)), "gap_s": _logu(r, 600.0, 2400.0),
                                       "jitter": float(r.uniform(0.1, 0.5)), "miss_prob": float(r.uniform(0.0, 0.2)),
                                       "burst_bytes": _span(r, 2e5, 3e6, (1.2, 3.0)), "rate": _rate(r, 5e5, 6e6)},
    "exfil_slow_uplink": lambda r: {"slots": int(r.integers(4, 13)), "gap_s": _logu(r, 600.0, 2400.0),
                                    "burst_bytes": _span(r, 2e5, 1.5e6, (1.2, 3.0)),
                                    "chunk_bytes": int(_logu(r, 1e5, 1e6))},
    "exfil_jittered_session": lambda r: {"bursts": int(r.integers(4, 13)), "gap_s": _logu(r, 120.0, 1200.0),
                                         "jitter": float(r.uniform(0.1, 0.5)),
                                         "burst_bytes": _span(r, 2e5, 3e6, (1.2, 3.0)), "rate": _rate(r, 1e6, 8e6)},
    "exfil_many_small": lambda r: {"slots": int(r.integers(15, 61)), "gap_s": _logu(r, 60.0, 600.0),
                                   "burst_bytes": _span(r, 3e4, 2e5, (1.2, 3.0)), "rate": _rate(r, 5e5, 4e6)},
}
SHORT_EXFIL = ("exfil_tls", "exfil_tls_port", "exfil_quic", "exfil_wireguard", "exfil_udp_unknown")
for _name in SHORT_EXFIL:
    EXFIL_DRAWS[_name] = lambda r: {"quiet_s": _logu(r, 20.0, 600.0), "bursts": int(r.integers(1, 6)),
                                    "burst_bytes": int(_logu(r, 2e5, 8e6)), "rate": _logu(r, 2e6, 3e7),
                                    "gap_s": _logu(r, 10.0, 300.0), "tail_s": float(r.uniform(5.0, 60.0))}
CONVERSATION_EXFIL_NAMES = ("exfil_pull_after_idle", "exfil_conn_per_burst", "exfil_slow_uplink",
                            "exfil_jittered_session", "exfil_many_small")


@dataclass(frozen=True)
class SitePlan:
    """One generated site: its seed and number, and the exfiltration it holds (if any)."""

    seed: int
    site: int
    exfil: str = ""  # scenario name; "" for a benign site
    vary: bool = True  # False: the exfiltration scenario with its defaults


def _code(name: str) -> int:
    return sorted(ALL_SCENARIOS).index(name)


def site_sessions(plan: SitePlan) -> tuple[list[FlowPackets], dict[tuple[str, str], str]]:
    """Every flow of the site, and (host, remote address) -> the scenario that made it."""
    flows: list[FlowPackets] = []
    labels: dict[tuple[str, str], str] = {}
    exfil_hosts: set[int] = set()
    if plan.exfil:
        pick = np.random.default_rng([plan.seed, plan.site, 999])
        exfil_hosts = {int(h) for h in pick.choice(HOSTS, size=EXFIL_HOSTS, replace=False)}
    for h in range(HOSTS):
        ip = internal_v4(20 + h)
        for day in range(DAYS):
            day0 = START_TS + day * DAY_S
            for name, (p, most) in DAILY.items():
                rng = np.random.default_rng([plan.seed, plan.site, h, day, _code(name)])
                if rng.random() >= p:
                    continue
                for _ in range(int(rng.integers(1, most + 1))):
                    start = day0 + float(rng.uniform(6.0, 23.0)) * 3600.0
                    session = ALL_SCENARIOS[name](rng, start, Endpoint(ip), None, **BENIGN_DRAWS[name](rng))
                    _add(session.flows, name, flows, labels, overwrite=False)
            if h in exfil_hosts and day == DAYS - 1:
                rng = np.random.default_rng([plan.seed, plan.site, h, day, _code(plan.exfil), 1])
                start = day0 + float(rng.uniform(0.5, 6.0)) * 3600.0
                params = EXFIL_DRAWS[plan.exfil](rng) if plan.vary else {}
                session = ALL_SCENARIOS[plan.exfil](rng, start, Endpoint(ip), None, **params)
                _add(session.flows, plan.exfil, flows, labels, overwrite=True)
    return flows, labels


def _add(new: Sequence[FlowPackets], name: str, flows: list[FlowPackets],
         labels: dict[tuple[str, str], str], overwrite: bool) -> None:
    for f in new:
        key = (f.client.ip, f.server.ip)
        if overwrite or key not in labels:
            labels[key] = name
    flows.extend(new)


def site_rows(plan: SitePlan, workdir: str | Path | None = None) -> ConversationRows:
    """The site's conversation rows, one horizon per day, each labelled with its scenario."""
    flows, labels = site_sessions(plan)
    with tempfile.TemporaryDirectory(prefix="burstwatch-sites-", dir=workdir) as tmp:
        path = Path(tmp) / f"site-{plan.seed}-{plan.site}.pcap"
        write_capture(path, merge(flows))
        rows = rows_from_captures([str(path)], DAY_NS)
    rows.label = np.array([labels.get((h, r), "other") for h, r in
                           zip(rows.local_ip.tolist(), rows.remote_ip.tolist(), strict=True)], object)
    rows.site = np.full(len(rows), f"{plan.seed}/{plan.site}", object)
    return rows


def corpus(plans: Sequence[SitePlan], jobs: int = 1, workdir: str | Path | None = None) -> ConversationRows:
    """Rows of every site in ``plans``, in plan order (``jobs`` sites generated at once)."""
    return ConversationRows.concat(list(_each(plans, jobs, workdir)))


def _each(plans: Sequence[SitePlan], jobs: int, workdir: str | Path | None) -> Iterator[ConversationRows]:
    if jobs <= 1:
        for p in plans:
            yield site_rows(p, workdir)
        return
    with ProcessPoolExecutor(jobs) as pool:
        yield from pool.map(site_rows, plans, [workdir] * len(plans))


def benign_plans(seeds: Sequence[int], sites: int) -> list[SitePlan]:
    return [SitePlan(seed, s) for seed in seeds for s in range(sites)]


def exfil_plans(seeds: Sequence[int], names: Sequence[str], vary: bool = True) -> list[SitePlan]:
    return [SitePlan(seed, 100 + i, name, vary) for seed in seeds for i, name in enumerate(names)]
