"""The flow table's ceiling: at it, half-open flows are evicted before established ones,
oldest first, and every eviction and refusal is counted (hand-computed expectations)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from burstwatch.cli.options import add_flow_options, flow_config
from burstwatch.config.settings import ConfigError, load_settings
from burstwatch.decode import PacketBatch, decode
from burstwatch.flows import FlowConfig, FlowRows, FlowTable
from burstwatch.flows import state as fs
from burstwatch.flows.table import RecentKeys
from burstwatch.ingest import open_capture
from burstwatch.ingest.records import RecordBatch
from burstwatch.ledger import Ledger
from burstwatch.netaddr import format_addresses
from tests.craft import pcap_bytes
from tests.flowcraft import ACK, SEC, SYN, Conversation

T0 = 1_000 * SEC
SERVER = "203.0.113.5"


def table_of(max_flows: int) -> FlowTable:
    """A table whose ceiling holds exactly ``max_flows`` flows."""
    mb = (max_flows * FlowTable.FLOW_BYTES + 1) / 2**20
    table = FlowTable(FlowConfig(flow_memory_mb=mb), sample_payloads=False)
    assert table.max_flows == max_flows
    return table


def batch(tmp_path: Path, convs: list[Conversation], name: str) -> PacketBatch:
    packets = sorted((p for c in convs for p in c.packets), key=lambda p: p[0])
    path = pcap_bytes(packets, nanosecond=True).write(tmp_path / name)
    (b,) = [decode(rb) for rb in open_capture(str(path)).batches()]
    return b


def syn(host: int, t: int) -> Conversation:
    c = Conversation(f"10.0.1.{host}", SERVER, 50_000 + host, 443)
    c.up(t, flags=SYN)
    return c


def clients(rows: FlowRows) -> list[str]:
    return format_addresses(rows.orig_hi, rows.orig_lo)  # type: ignore[no-any-return]


def exchange(host: int, t: int) -> Conversation:
    """Two packets, one each way: seen both ways, but too few to be established."""
    c = Conversation(f"10.0.0.{host}", SERVER, 40_000 + host, 443)
    c.up(t, payload=10)
    c.down(t + 1_000, payload=10)
    return c


def test_ceiling_evicts_half_open_then_few_packet_flows_and_keeps_the_established(
    tmp_path: Path,
) -> None:
    table = table_of(6)  # batches are taken in parts of 3 packets
    est = Conversation("10.0.0.1", SERVER, 40_001, 443)
    est.up(T0, flags=SYN)
    est.down(T0 + 1_000_000, flags=SYN | ACK)
    est.up(T0 + 2_000_000)
    est.up(T0 + 3_000_000, payload=500)
    est.down(T0 + 4_000_000, payload=500)
    first = [est, exchange(2, T0 + 1 * SEC), exchange(3, T0 + 2 * SEC), exchange(4, T0 + 3 * SEC),
             syn(1, T0 + 4 * SEC)]
    out = table.update(batch(tmp_path, first, "1.pcap"))
    assert table.active_flows == 5 and table.evicted == 0 and not len(out.rows)

    # Three new keys, room for one: the half-open flow goes, then the oldest two-packet one.
    out = table.update(batch(tmp_path, [syn(k, T0 + 10 * SEC + k) for k in (2, 3, 4)], "2.pcap"))
    assert clients(out.rows) == ["10.0.1.1", "10.0.0.2"]
    assert (out.rows.reason == fs.END_EVICTED).all() and (out.rows.kind == fs.ROW_FLOW).all()
    assert fs.END_NAMES[fs.END_EVICTED] == "evicted"
    assert table.evicted == 2 and table.active_flows == 6

    # The established flow speaks while two more keys arrive: the two oldest half-open flows
    # go, although the two-packet flows are older (one direction is evicted before few packets).
    more = Conversation("10.0.0.1", SERVER, 40_001, 443)
    more.up(T0 + 20 * SEC, payload=100)
    out = table.update(batch(tmp_path, [more, syn(5, T0 + 20 * SEC + 1), syn(6, T0 + 20 * SEC + 2)],
                             "3.pcap"))
    assert clients(out.rows) == ["10.0.1.2", "10.0.1.3"]
    assert table.evicted == 4 and table.active_flows == 6

    # A batch of nine new keys (three parts) while the established flow is busy in it: every
    # key is tracked, the established flow is never the one to go.
    more = Conversation("10.0.0.1", SERVER, 40_001, 443)
    more.down(T0 + 30 * SEC, payload=100)
    out = table.update(batch(tmp_path, [more, *(syn(10 + k, T0 + 30 * SEC + 1 + k) for k in range(9))],
                             "4.pcap"))
    assert "10.0.0.1" not in clients(out.rows)
    assert table.evicted == 4 + len(out.rows) and table.active_flows == 6

    end = table.flush()
    got = clients(end.rows)
    kept = got.index("10.0.0.1")
    assert end.rows.reason[kept] == fs.END_INPUT
    acc = end.rows.acc_i[kept]
    assert (acc[fs.I_PKTS0], acc[fs.I_PKTS1]) == (4, 3)  # every packet of it, none lost
    # Ended flows, evicted or not, were each reported once.
    assert len(end.rows) + table.evicted == 5 + 3 + 2 + 9


def test_no_eviction_below_the_ceiling(tmp_path: Path) -> None:
    table = table_of(8)
    table.update(batch(tmp_path, [syn(k, T0 + k) for k in range(8)], "a.pcap"))
    assert table.active_flows == 8 and table.evicted == 0
    assert table._cap <= 8  # the state arrays never grow past the ceiling


def test_default_ceiling_is_a_few_hundred_megabytes() -> None:
    table = FlowTable()
    assert 100 * 2**20 <= table.max_flows * FlowTable.FLOW_BYTES <= 512 * 2**20


def test_recent_keys_are_bounded() -> None:
    recent = RecentKeys(3600 * SEC, limit=100)
    for k in range(10):
        h = np.arange(k * 50, k * 50 + 50, dtype=np.uint64)
        recent.add(h, np.ones(50, np.int64), np.full(50, k * SEC, np.int64), k * SEC)
        assert len(recent) <= 100
    found, _, end = recent.find(np.array([499, 0], np.uint64))
    assert found.tolist() == [True, False] and end.tolist() == [9 * SEC]


def test_ledger_has_a_memory_limit(tmp_path: Path) -> None:
    def limit(ledger: Ledger) -> str:
        return str(ledger.connection.execute("SELECT current_setting('memory_limit')").fetchone()[0])

    with Ledger.open(None, memory_mb=100) as mem:
        assert limit(mem).startswith(("100.0 MiB", "104.8 MB", "100 MiB"))
    with Ledger.open(str(tmp_path / "l.duckdb")) as on_disk:
        assert limit(on_disk).startswith(("512.0 MiB", "536.8 MB", "512 MiB"))


def test_limits_come_from_the_configuration_and_the_option(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("limits:\n  flow_memory_mb: 32\n  sample_memory_mb: 8\n")
    assert load_settings(str(config)).limits.sample_memory_mb == 8
    p = argparse.ArgumentParser()
    add_flow_options(p)
    p.add_argument("--config")
    assert flow_config(p.parse_args(["--config", str(config)])).flow_memory_mb == 32
    assert flow_config(p.parse_args(["--config", str(config), "--flow-memory", "16"])).flow_memory_mb == 16
    assert flow_config(p.parse_args([])).flow_memory_mb == FlowConfig.flow_memory_mb
    for bad in ("0", "-5", "nan", "inf", "lots"):
        with pytest.raises(ConfigError, match="--flow-memory"):
            flow_config(p.parse_args(["--flow-memory", bad]))
    config.write_text("limits:\n  flow_memory_mb: -1\n")
    with pytest.raises(ConfigError, match="limits.flow_memory_mb"):
        load_settings(str(config))


def test_prepared_steps_give_what_the_table_makes_itself_and_none_for_a_batch_in_parts(
        tmp_path: Path) -> None:
    """``FlowTable.prepare`` (made in the decoding thread) changes nothing of what ``update``
    emits, and is not made for a batch ``update`` takes in parts (above half the ceiling)."""
    packets = batch(tmp_path, [exchange(h, T0 + h * SEC) for h in range(6)], "six.pcap")
    assert len(packets) == 12
    wide, narrow = table_of(64), table_of(8)
    assert wide.prepare(packets) is not None
    assert narrow.prepare(packets) is None  # 12 packets, parts of 4
    plain, prepared = table_of(64), table_of(64)
    got = [plain.update(packets), prepared.update(packets, grouped=prepared.prepare(packets))]
    got += [plain.flush(), prepared.flush()]
    for a, b in ((got[0], got[1]), (got[2], got[3])):
        assert a.rows.flow_id.tolist() == b.rows.flow_id.tolist()
        assert np.array_equal(a.rows.acc_i, b.rows.acc_i)
        assert np.array_equal(a.rows.acc_f, b.rows.acc_f)
    assert len(got[2].rows) == 6
    assert wide.prepare(decode(RecordBatch.empty())) is None  # no decoded packet
