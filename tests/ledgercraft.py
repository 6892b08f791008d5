"""Hand-made FlowBatches with every number known, for the ledger's tests.

HISTORY is ten days before T; CURRENT holds three conversations (every expected value in
test_ledger is worked out by hand from these rows):

- 10.0.0.5 -> example.co.uk: flows 1 and 2 (two names under one registrable domain);
  flow 1's bursts arrive without a server name or verdict, as when a burst ends before its
  flow's first row. HISTORY holds the host's first contact with the same party.
- 10.0.0.5 -> 198.51.100.0/24: flow 3 is windowed (two windows and a whole-flow row),
  flow 4 has bursts and no flow row yet.
- 2001:db8:aaaa::5 -> 2001:db8:1::/48: flow 5's server name is an address literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from burstwatch.features import compute_features
from burstwatch.flows import BurstRows, FlowRows
from burstwatch.flows import state as st
from burstwatch.flows.records import no_tunnel
from burstwatch.netaddr import parse_addresses
from burstwatch.records import FlowBatch

S = 1_000_000_000
DAY = 86_400 * S
T = 1_700_000_000 * S  # 2023-11-14 22:13:20 UTC
A = "10.0.0.5"
B = "2001:db8:aaaa::5"


@dataclass
class Row:
    fid: int
    local: str
    remote: str
    start: int
    end: int
    up: int = 0
    down: int = 0
    kind: int = st.ROW_FLOW
    window: int = -1
    proto: int = 6
    lport: int = 50000
    rport: int = 443


@dataclass
class Burst:
    fid: int
    local: str
    remote: str
    direction: int
    start: int
    end: int
    nbytes: int
    packets: int = 10
    proto: int = 6
    lport: int = 50000
    rport: int = 443


def flow_rows(rows: list[Row]) -> FlowRows:
    n = len(rows)
    acc_i = np.zeros((n, st.N_ACC_I), np.int64)
    acc_f = np.zeros((n, st.N_ACC_F), np.float64)
    for i, r in enumerate(rows):
        acc_i[i, st.I_FIRST], acc_i[i, st.I_LAST] = r.start, r.end
        acc_i[i, st.I_PAY0], acc_i[i, st.I_PAY1] = r.up, r.down
        acc_i[i, st.I_PKTS0], acc_i[i, st.I_PKTS1] = r.up // 1000, r.down // 1000
    lh, ll = parse_addresses([r.local for r in rows])
    rh, rl = parse_addresses([r.remote for r in rows])
    return FlowRows(
        flow_id=np.array([r.fid for r in rows], np.int64),
        kind=np.array([r.kind for r in rows], np.int8),
        reason=np.array([st.END_INTERIM if r.kind == st.ROW_WINDOW else st.END_FIN for r in rows],
                        np.int8),
        window_index=np.array([r.window for r in rows], np.int32),
        proto=np.array([r.proto for r in rows], np.uint8),
        orig_hi=lh, orig_lo=ll, orig_port=np.array([r.lport for r in rows], np.uint16),
        resp_hi=rh, resp_lo=rl, resp_port=np.array([r.rport for r in rows], np.uint16),
        local_initiated=np.ones(n, np.bool_), acc_i=acc_i, acc_f=acc_f, tunnel=no_tunnel(n),
    )


def burst_rows(bursts: list[Burst]) -> BurstRows:
    if not bursts:
        return BurstRows.empty()
    lh, ll = parse_addresses([b.local for b in bursts])
    rh, rl = parse_addresses([b.remote for b in bursts])
    return BurstRows(
        flow_id=np.array([b.fid for b in bursts], np.int64),
        direction=np.array([b.direction for b in bursts], np.int8),
        start_ns=np.array([b.start for b in bursts], np.int64),
        end_ns=np.array([b.end for b in bursts], np.int64),
        packets=np.array([b.packets for b in bursts], np.int64),
        bytes=np.array([b.nbytes for b in bursts], np.int64),
        proto=np.array([b.proto for b in bursts], np.uint8),
        orig_hi=lh, orig_lo=ll, orig_port=np.array([b.lport for b in bursts], np.uint16),
        resp_hi=rh, resp_lo=rl, resp_port=np.array([b.rport for b in bursts], np.uint16),
    )


def _columns(values: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    out = {}
    for key, col in values.items():
        out[key] = np.array(col, np.float64 if key == "destination.as.number" else object)
    return out


def batch(rows: list[Row], bursts: list[Burst], extra: dict[str, list[Any]] | None = None,
          burst_extra: dict[str, list[Any]] | None = None, source: str = "test.pcap") -> FlowBatch:
    fr = flow_rows(rows) if rows else FlowRows.empty()
    return FlowBatch(source, fr, compute_features(fr), burst_rows(bursts),
                     _columns(extra or {}), _columns(burst_extra or {}))


def context(*rows: tuple[str, str, str, str, float, str]) -> dict[str, list[Any]]:
    """Enrichment columns from (verdict, sni, ja4, country, asn, org) per row."""
    keys = ("burstwatch.encryption.verdict", "tls.client.server_name", "burstwatch.tls.client.ja4",
            "destination.geo.country_iso_code", "destination.as.number",
            "destination.as.organization.name")
    return {k: [r[i] for r in rows] for i, k in enumerate(keys)}


NAN = float("nan")
NL = ("NL", 64500.0, "Example NL")
RU = ("RU", 64501.0, "Example RU")

HISTORY = batch(
    [Row(100, A, "203.0.113.99", T - 10 * DAY, T - 10 * DAY + 60 * S, up=1_000_000, down=50_000)],
    [Burst(100, A, "203.0.113.99", 0, T - 10 * DAY + 5 * S, T - 10 * DAY + 5 * S + S // 10,
           1_000_000, 700)],
    context(("tls", "www.example.co.uk", "t13d_hist", *NL)),
    source="old.pcap",
)

CURRENT = batch(
    [
        Row(1, A, "203.0.113.10", T + 10 * S, T + 100 * S, up=3_000_000, down=20_000),
        Row(2, A, "203.0.113.20", T + 200 * S, T + 300 * S, up=500_000, down=10_000, lport=50001),
        Row(3, A, "198.51.100.7", T + 1000 * S, T + 1500 * S, up=400_000, down=1_000,
            kind=st.ROW_WINDOW, window=0, proto=17, lport=40000, rport=8443),
        Row(3, A, "198.51.100.7", T + 1600 * S, T + 2000 * S, up=600_000, down=2_000,
            kind=st.ROW_WINDOW, window=1, proto=17, lport=40000, rport=8443),
        Row(3, A, "198.51.100.7", T + 1000 * S, T + 2000 * S, up=1_000_000, down=3_000,
            proto=17, lport=40000, rport=8443),
        Row(5, B, "2001:db8:1:2::1", T + 3000 * S, T + 3100 * S, up=200_000, down=100),
        Row(6, B, "2001:db8:1:ffff::2", T + 3200 * S, T + 3300 * S, up=1_000, down=2_000),
    ],
    [
        Burst(1, A, "203.0.113.10", 0, T + 20 * S, T + 21 * S, 1_000_000, 700),
        Burst(1, A, "203.0.113.10", 0, T + 60 * S, T + 60 * S + S // 2, 2_000_000, 1400),
        Burst(2, A, "203.0.113.20", 1, T + 210 * S, T + 211 * S, 8_000, 6, lport=50001),
        Burst(3, A, "198.51.100.7", 0, T + 1700 * S, T + 1701 * S, 500_000, 350,
              proto=17, lport=40000, rport=8443),
        Burst(4, A, "198.51.100.99", 0, T + 2500 * S, T + 2501 * S, 50_000, 40, lport=40001),
        Burst(5, B, "2001:db8:1:2::1", 0, T + 3010 * S, T + 3010 * S + S // 2, 150_000, 100),
    ],
    context(
        ("tls", "upload.files.example.co.uk", "t13d_up", *NL),
        ("tls", "api.example.co.uk", "t13d_api", *NL),
        ("entropy", "", "", *RU),
        ("entropy", "", "", *RU),
        ("entropy", "", "", *RU),
        ("tls", "2001:db8:1:2::1", "t13d_v6", "", NAN, ""),
        ("none", "", "", "", NAN, ""),
    ),
    context(
        ("", "", "", *NL),
        ("", "", "", *NL),
        ("tls", "api.example.co.uk", "t13d_api", *NL),
        ("entropy", "", "", *RU),
        ("tls", "", "", *RU),
        ("tls", "2001:db8:1:2::1", "t13d_v6", "", NAN, ""),
    ),
)
