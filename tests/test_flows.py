"""Flows, bursts and features against hand-computed expectations on crafted captures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burstwatch.decode import PacketBatch, decode
from burstwatch.features import compute_features
from burstwatch.flows import BurstRows, FlowConfig, FlowRows, FlowTable
from burstwatch.flows import state as fs
from burstwatch.ingest import open_capture
from burstwatch.netaddr import format_addresses
from tests.craft import pcap_bytes
from tests.flowcraft import ACK, FIN, RST, SEC, SYN, Conversation, three_uploads

T0 = 1_000 * SEC


def packets_of(path: Path) -> list[PacketBatch]:
    return [decode(rb) for rb in open_capture(str(path)).batches()]


def run_flows(batches: list[PacketBatch], config: FlowConfig | None = None) -> tuple[FlowRows, BurstRows]:
    table = FlowTable(config)
    rows, bursts = [], []
    for b in batches:
        out = table.update(b)
        rows.append(out.rows)
        bursts.append(out.bursts)
    out = table.flush()
    rows.append(out.rows)
    bursts.append(out.bursts)
    assert table.active_flows == 0
    return FlowRows.concat(rows), BurstRows.concat(bursts)


def write(tmp_path: Path, convs: list[Conversation], name: str = "c.pcap") -> Path:
    packets = sorted((p for c in convs for p in c.packets), key=lambda p: p[0])
    return pcap_bytes(packets, nanosecond=True).write(tmp_path / name)


@pytest.fixture()
def uploads(tmp_path: Path) -> Path:
    return write(tmp_path, [three_uploads(T0)])


def test_three_uploads_give_exactly_three_bursts(uploads: Path) -> None:
    rows, bursts = run_flows(packets_of(uploads))
    assert len(rows) == 1 and rows.kind[0] == fs.ROW_FLOW
    assert rows.reason[0] == fs.END_FIN
    assert format_addresses(rows.orig_hi, rows.orig_lo) == ["192.168.1.10"]
    assert format_addresses(rows.resp_hi, rows.resp_lo) == ["77.88.8.8"]
    assert (int(rows.orig_port[0]), int(rows.resp_port[0]), int(rows.proto[0])) == (50000, 443, 6)
    acc = rows.acc_i[0]
    # client: SYN, ACK, 6 keepalives, 6000 data segments, FIN, last ACK
    assert acc[fs.I_PKTS0] == 6010
    # server: SYN-ACK, 6 keepalive ACKs, 3000 data ACKs, FIN
    assert acc[fs.I_PKTS1] == 3008
    assert acc[fs.I_PAY0] == 6_000_006 and acc[fs.I_PAY1] == 0
    assert acc[fs.I_FIRST] == T0 and acc[fs.I_LAST] == T0 + 150 * SEC + 2_000_000

    order = np.argsort(bursts.start_ns)
    b = bursts.take(order)
    assert len(b) == 3
    assert b.start_ns.tolist() == [T0 + 10 * SEC, T0 + 70 * SEC, T0 + 130 * SEC]
    assert (b.end_ns - b.start_ns).tolist() == [199_900_000] * 3
    assert b.packets.tolist() == [2000] * 3
    assert b.bytes.tolist() == [2_000_000] * 3
    assert b.direction.tolist() == [0, 0, 0]
    np.testing.assert_allclose(b.rate, 2_000_000 / 0.1999)


def test_three_uploads_features(uploads: Path) -> None:
    rows, _ = run_flows(packets_of(uploads))
    fm = compute_features(rows)
    duration = 150.002
    data, ack, ka = 14 + 40 + 1000, 14 + 40, 14 + 40 + 1
    frames = [54] * 3 + [ka] * 6 + [ack] * 6 + [data] * 6000 + [ack] * 3000 + [54] * 3
    expected = {
        "duration": duration,
        "orig_packets": 6010,
        "resp_packets": 3008,
        "orig_payload_bytes": 6_000_006,
        "resp_payload_bytes": 0,
        "burst_count": 3,
        "up_burst_count": 3,
        "down_burst_count": 0,
        "burst_bytes_sum": 6_000_000,
        "burst_bytes_max": 2_000_000,
        "burst_bytes_mean": 2_000_000,
        "up_burst_bytes_max": 2_000_000,
        "burst_duration_max": 0.1999,
        "burst_duration_mean": 0.1999,
        "peak_burst_rate": 2_000_000 / 0.1999,
        "up_peak_burst_rate": 2_000_000 / 0.1999,
        "mean_rate": 6_000_006 / duration,
        "peak_to_mean_rate": (2_000_000 / 0.1999) / (6_000_006 / duration),
        "burst_duty_cycle": 3 * 0.1999 / duration,
        "idle_before_first_burst": 10.0,
        "inter_burst_mean": 60.0,
        "inter_burst_cv": 0.0,
        "inter_burst_min": 60.0,
        "upload_share": 1.0,
        "burst_upload_share": 1.0,
        "burst_byte_share": 6_000_000 / 6_000_006,
        "packet_size_mean": float(np.mean(frames)),
        "packet_size_std": float(np.std(frames)),
    }
    for name, value in expected.items():
        assert fm.column(name)[0] == pytest.approx(value, rel=1e-9, abs=1e-9), name
    assert fm.column("orig_bytes")[0] == sum(frames[:3:2]) + 6 * ka + 6000 * data + 2 * 54 - 54 + 54


def test_window_rolls_but_never_cuts_a_burst(uploads: Path) -> None:
    # The second upload runs from +70.0 s to +70.1999 s; a 70.1 s window is due in the middle
    # of it, so the window must wait for the burst to end and keep it whole.
    rows, bursts = run_flows(packets_of(uploads), FlowConfig(window=70.1))
    windows = rows.take(np.flatnonzero(rows.kind == fs.ROW_WINDOW))
    windows = windows.take(np.argsort(windows.window_index))
    assert windows.window_index.tolist() == [0, 1]
    fm = compute_features(windows)
    assert fm.column("burst_count").tolist() == [2, 1]
    assert fm.column("burst_bytes_max").tolist() == [2_000_000, 2_000_000]
    # window 1 opens at the keepalive at +85 s: 15 s after the end of the second burst
    assert windows.acc_i[1, fs.I_FIRST] == T0 + 85 * SEC
    assert windows.reason.tolist() == [fs.END_INTERIM, fs.END_FIN]
    flow = rows.take(np.flatnonzero(rows.kind == fs.ROW_FLOW))
    assert len(flow) == 1 and compute_features(flow).column("burst_count")[0] == 3
    # the windows partition the flow's packets
    assert windows.acc_i[:, fs.I_PKTS0].sum() == flow.acc_i[0, fs.I_PKTS0]
    assert len(bursts) == 3


def test_sixty_second_windows(uploads: Path) -> None:
    rows, _ = run_flows(packets_of(uploads), FlowConfig(window=60))
    windows = rows.take(np.flatnonzero(rows.kind == fs.ROW_WINDOW))
    windows = windows.take(np.argsort(windows.window_index))
    assert compute_features(windows).column("burst_count").tolist() == [1, 1, 1]
    assert (windows.acc_i[:, fs.I_FIRST] - T0).tolist() == [0, 70 * SEC, 130 * SEC]


def test_interim_window_is_reported_before_the_flow_ends(uploads: Path) -> None:
    table = FlowTable(FlowConfig(window=60))
    seen_interim_before_end = False
    for b in packets_of(uploads):
        for k in range(0, len(b), 1000):
            out = table.update(b.slice(k, k + 1000))
            if (out.rows.kind == fs.ROW_WINDOW).any():
                assert (out.rows.reason == fs.END_INTERIM).all()
                seen_interim_before_end = True
    assert seen_interim_before_end


def test_keepalives_alone_are_not_bursts(tmp_path: Path) -> None:
    c = Conversation("10.0.0.1", "10.0.0.2", 40000, 22)
    for k in range(20):
        c.up(T0 + k * SEC, payload=1)
        c.down(T0 + k * SEC + 1000, payload=0)
    rows, bursts = run_flows(packets_of(write(tmp_path, [c])))
    assert len(bursts) == 0
    assert compute_features(rows).column("burst_count")[0] == 0
    assert np.isnan(compute_features(rows).column("idle_before_first_burst")[0])


def test_pure_acks_from_the_other_side_neither_break_nor_extend(tmp_path: Path) -> None:
    c = Conversation("10.0.0.1", "10.0.0.2", 40000, 80)
    # 40 segments of 1000 B, 0.4 s apart (within the 0.5 s gap), ACKs in between;
    # then a lone ACK 0.45 s after the last segment must not extend the burst's end.
    for k in range(40):
        c.up(T0 + k * 400_000_000, payload=1000)
        c.down(T0 + k * 400_000_000 + 200_000_000)
    c.down(T0 + 39 * 400_000_000 + 450_000_000)
    _, bursts = run_flows(packets_of(write(tmp_path, [c])))
    assert len(bursts) == 1
    assert int(bursts.end_ns[0] - bursts.start_ns[0]) == 39 * 400_000_000
    assert int(bursts.bytes[0]) == 40_000


def test_gap_just_over_the_limit_splits(tmp_path: Path) -> None:
    c = Conversation("10.0.0.1", "10.0.0.2", 40000, 80)
    for k in range(20):
        c.up(T0 + k * 1_000_000, payload=1000)
    for k in range(20):
        c.up(T0 + 19 * 1_000_000 + 500_000_001 + k * 1_000_000, payload=1000)
    _, bursts = run_flows(packets_of(write(tmp_path, [c])))
    assert sorted(bursts.bytes.tolist()) == [20_000, 20_000]


def test_originator_is_the_syn_sender_even_when_synack_comes_first(tmp_path: Path) -> None:
    c = Conversation("203.0.113.5", "192.168.1.20", 443, 51000)
    # capture starts at the SYN-ACK sent by 203.0.113.5 to the SYN sender 192.168.1.20
    c.up(T0, flags=SYN | ACK)
    c.down(T0 + 1000)
    c.down(T0 + 2000, payload=300)
    rows, _ = run_flows(packets_of(write(tmp_path, [c])))
    assert format_addresses(rows.orig_hi, rows.orig_lo) == ["192.168.1.20"]
    assert int(rows.orig_port[0]) == 51000


def test_timeouts_and_close(tmp_path: Path) -> None:
    idle = Conversation("10.0.0.1", "10.0.0.2", 1111, 53, proto=17)
    idle.up(T0, payload=40)
    idle.down(T0 + 1000, payload=80)
    idle.up(T0 + 200 * SEC, payload=40)  # > 120 s idle: a second flow
    rst = Conversation("10.0.0.3", "10.0.0.4", 2222, 80)
    rst.up(T0, flags=SYN)
    rst.down(T0 + 1000, flags=RST | ACK)
    rst.up(T0 + 10 * SEC, flags=SYN)  # a new connection on the same ports
    fin = Conversation("10.0.0.5", "10.0.0.6", 3333, 80)
    fin.up(T0, flags=SYN)
    fin.down(T0 + 1, flags=SYN | ACK)
    fin.up(T0 + 2, flags=FIN | ACK)
    fin.down(T0 + 3, flags=FIN | ACK)
    fin.up(T0 + 4)  # last ACK: lingers into the same flow
    active = Conversation("10.0.0.7", "10.0.0.8", 4444, 5000, proto=17)
    for k in range(40):
        active.up(T0 + k * 60 * SEC, payload=10)  # 39 minutes, never idle
    rows, _ = run_flows(packets_of(write(tmp_path, [idle, rst, fin, active])))
    flows = rows.take(np.flatnonzero(rows.kind == fs.ROW_FLOW))
    ports = flows.orig_port.tolist()
    reasons = {p: sorted(int(r) for r, q in zip(flows.reason, ports, strict=True) if q == p) for p in set(ports)}
    assert reasons[1111] == [fs.END_IDLE, fs.END_IDLE]  # the capture runs on for 39 min
    assert reasons[2222] == sorted([fs.END_RST, fs.END_IDLE])
    assert reasons[3333] == [fs.END_FIN]
    assert reasons[4444] == [fs.END_ACTIVE, fs.END_INPUT]
    fin_row = flows.take(np.flatnonzero(flows.orig_port == 3333))
    assert fin_row.acc_i[0, fs.I_PKTS0] == 3 and fin_row.acc_i[0, fs.I_PKTS1] == 2
    act = flows.take(np.flatnonzero(flows.orig_port == 4444))
    # 30 min active timeout: packets at 0..30 min in the first flow (31), the rest after
    assert sorted(act.acc_i[:, fs.I_PKTS0].tolist()) == [9, 31]


def _canonical(rows: FlowRows, bursts: BurstRows) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    fm = compute_features(rows)
    r = sorted(
        (int(rows.flow_id[i]), int(rows.kind[i]), int(rows.window_index[i]), int(rows.reason[i]),
         *rows.acc_i[i].tolist(), *np.round(rows.acc_f[i], 6).tolist(),
         *np.nan_to_num(np.round(fm.values[i], 6), nan=-1).tolist())
        for i in range(len(rows))
    )
    b = sorted(
        (int(bursts.flow_id[i]), int(bursts.direction[i]), int(bursts.start_ns[i]),
         int(bursts.end_ns[i]), int(bursts.packets[i]), int(bursts.bytes[i]))
        for i in range(len(bursts))
    )
    return r, b


def _split(batches: list[PacketBatch], cuts: list[int]) -> Iterator[PacketBatch]:
    whole = batches[0] if len(batches) == 1 else None
    assert whole is not None
    points = sorted({c % (len(whole) + 1) for c in cuts} | {0, len(whole)})
    for a, b in zip(points, points[1:], strict=False):
        if b > a:
            yield whole.slice(a, b)


@pytest.fixture(scope="module")
def mixed_capture(tmp_path_factory: pytest.TempPathFactory) -> list[PacketBatch]:
    tmp = tmp_path_factory.mktemp("mixed")
    convs = [three_uploads(T0)]
    c = Conversation("192.168.1.11", "8.8.8.8", 5353, 53, proto=17)
    for k in range(300):
        c.up(T0 + k * 700_000_000, payload=60)
        c.down(T0 + k * 700_000_000 + 20_000_000, payload=200 + k)
    convs.append(c)
    d = Conversation("192.168.1.12", "2001:db8::1", 40000, 443)
    for k in range(0, 400, 1):
        d.down(T0 + 5 * SEC + k * 1_000_000 + (SEC * 3 if k >= 200 else 0), payload=1400)
        if k % 3 == 0:
            d.up(T0 + 5 * SEC + k * 1_000_000 + 500_000)
    convs.append(d)
    return packets_of(write(tmp, convs))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12),
       window=st.sampled_from([300.0, 60.0, 70.1, 5.0]))
def test_batch_boundaries_do_not_change_results(
    mixed_capture: list[PacketBatch], cuts: list[int], window: float
) -> None:
    config = FlowConfig(window=window)
    reference = _canonical(*run_flows(mixed_capture, config))
    assert reference[1], "the capture must contain bursts"
    again = _canonical(*run_flows(list(_split(mixed_capture, cuts)), config))
    assert again == reference


def test_snapshot_shows_open_flows_with_bursts_so_far(uploads: Path) -> None:
    table = FlowTable()
    batch = packets_of(uploads)[0]
    # feed up to just after the second upload (+70.1999 s), then let 1 s pass
    cut = int(np.searchsorted(batch.ts_ns, T0 + 75 * SEC))
    table.update(batch.slice(0, cut))
    table.advance(T0 + 76 * SEC)
    snap = table.snapshot()
    assert len(snap) == 1 and snap.kind[0] == fs.ROW_WINDOW
    fm = compute_features(snap)
    assert fm.column("up_burst_count")[0] == 2
    assert fm.column("burst_bytes_max")[0] == 2_000_000
    # a snapshot changes nothing: the rest of the capture gives the usual single flow
    out = table.update(batch.slice(cut, len(batch)))
    out2 = table.flush()
    rows = FlowRows.concat([out.rows, out2.rows])
    assert len(rows) == 1 and compute_features(rows).column("up_burst_count")[0] == 3
