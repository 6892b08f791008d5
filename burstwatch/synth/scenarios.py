"""The scenario library: every exfil and benign scenario by name.

A scenario is a function ``(rng, start_ts, client, server=None, **params) -> Session``;
``start_ts`` is in epoch seconds, ``server`` defaults to the scenario's usual peer. Exfil
sessions carry their bursts' ground truth in ``Session.bursts``.

Two families. :data:`EXFIL` and :data:`BENIGN` (together :data:`SCENARIOS`) are single
sessions of minutes that share one parameter set per kind; the scorer's corpus is drawn from
exactly these. :data:`CONVERSATION_EXFIL` and :data:`CONVERSATION_BENIGN` (together
:data:`CONVERSATION_SCENARIOS`) run for up to hours, across connections, with schedules and
jitter, for judging a host's conversation with a party rather than one flow. :func:`run_scenario`
and the command line know both (:data:`ALL_SCENARIOS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from burstwatch.synth.benign import (
    backup_upload,
    browsing,
    browsing_abroad,
    continuous_upload_abroad,
    dns_lookups,
    encrypted_call,
    large_download,
    os_update,
    os_update_abroad,
    photo_backup_home,
    ssh_interactive_abroad,
    video_stream,
    video_stream_abroad,
)
from burstwatch.synth.exfil import (
    exfil_conn_per_burst,
    exfil_jittered_session,
    exfil_many_small,
    exfil_pull_after_idle,
    exfil_quic,
    exfil_slow_uplink,
    exfil_tls,
    exfil_tls_port,
    exfil_tls_v6,
    exfil_udp_unknown,
    exfil_wireguard,
)
from burstwatch.synth.model import Endpoint, Session
from burstwatch.synth.writer import write_capture

Scenario = Callable[..., Session]

EXFIL: dict[str, Scenario] = {
    "exfil_tls": exfil_tls,
    "exfil_tls_port": exfil_tls_port,
    "exfil_tls_v6": exfil_tls_v6,
    "exfil_quic": exfil_quic,
    "exfil_wireguard": exfil_wireguard,
    "exfil_udp_unknown": exfil_udp_unknown,
}
BENIGN: dict[str, Scenario] = {
    "browsing": browsing,
    "video_stream": video_stream,
    "video_stream_abroad": video_stream_abroad,
    "backup_upload": backup_upload,
    "large_download": large_download,
    "os_update": os_update,
    "encrypted_call": encrypted_call,
    "dns_lookups": dns_lookups,
}
SCENARIOS: dict[str, Scenario] = EXFIL | BENIGN

CONVERSATION_EXFIL: dict[str, Scenario] = {
    "exfil_pull_after_idle": exfil_pull_after_idle,
    "exfil_conn_per_burst": exfil_conn_per_burst,
    "exfil_slow_uplink": exfil_slow_uplink,
    "exfil_jittered_session": exfil_jittered_session,
    "exfil_many_small": exfil_many_small,
}
CONVERSATION_BENIGN: dict[str, Scenario] = {
    "continuous_upload_abroad": continuous_upload_abroad,
    "photo_backup_home": photo_backup_home,
    "ssh_interactive_abroad": ssh_interactive_abroad,
    "browsing_abroad": browsing_abroad,
    "os_update_abroad": os_update_abroad,
}
CONVERSATION_SCENARIOS: dict[str, Scenario] = CONVERSATION_EXFIL | CONVERSATION_BENIGN
ALL_SCENARIOS: dict[str, Scenario] = SCENARIOS | CONVERSATION_SCENARIOS

DEFAULT_START = 1_710_252_000.0  # 2024-03-12 14:00:00 UTC
DEFAULT_CLIENT_V4 = "192.168.1.50"
DEFAULT_CLIENT_V6 = "fd00::50"


def run_scenario(
    name: str,
    seed: int = 0,
    *,
    start_ts: float = DEFAULT_START,
    client: Endpoint | None = None,
    server: Endpoint | None = None,
    **params: Any,
) -> Session:
    """Run scenario ``name`` (any of :data:`ALL_SCENARIOS`) with a generator seeded by ``seed``."""
    if name not in ALL_SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; choose from {sorted(ALL_SCENARIOS)}")
    if client is None:
        v6 = name.endswith("_v6") or (server is not None and server.version == 6)
        client = Endpoint(DEFAULT_CLIENT_V6 if v6 else DEFAULT_CLIENT_V4)
    return ALL_SCENARIOS[name](np.random.default_rng(seed), start_ts, client, server, **params)


def write_scenario(path: str, name: str, seed: int = 0, **kwargs: Any) -> Session:
    """Run a scenario and write it to ``path`` (link options as for ``write_capture``)."""
    link_keys = ("link", "nanosecond", "big_endian", "snaplen")
    link = {k: kwargs.pop(k) for k in link_keys if k in kwargs}
    session = run_scenario(name, seed, **kwargs)
    write_capture(path, session.packets(), **link)
    return session
