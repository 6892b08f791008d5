"""Two keys with one 64-bit hash: the flow table keeps the key it holds and counts the other
key's packets as collisions, never merging them. Collisions are forced by giving every
packet the same hash (a real one is a 1 in 2^64 event, so nothing else would reach this)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from burstwatch.decode import PacketBatch, decode
from burstwatch.flows import FlowRows, FlowTable
from burstwatch.flows import key as flow_key
from burstwatch.flows import state as fs
from burstwatch.ingest import open_capture
from burstwatch.netaddr import format_addresses
from tests.craft import pcap_bytes
from tests.flowcraft import SEC, frame

T0 = 1_000 * SEC
A = ("10.0.0.1", "203.0.113.5", 40000, 53)
B = ("10.0.0.2", "198.51.100.7", 41000, 53)


def batch(tmp_path: Path, name: str, who: list[tuple[str, str, int, int]], t: int) -> PacketBatch:
    packets = [(t + i * SEC, frame(*k, proto=17, payload=10)) for i, k in enumerate(who)]
    path = pcap_bytes(packets, nanosecond=True).write(tmp_path / name)
    (only,) = [decode(rb) for rb in open_capture(str(path)).batches()]
    return only


@pytest.fixture()
def one_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    real = flow_key.batch_keys

    def colliding(p: PacketBatch, idx: np.ndarray) -> flow_key.BatchKeys:
        keys = real(p, idx)
        keys.hash[:] = np.uint64(0x5EED)
        return keys

    monkeypatch.setattr(flow_key, "batch_keys", colliding)


@pytest.mark.parametrize("prepared", [False, True])
def test_the_key_the_table_holds_wins_and_the_rest_is_counted(
        tmp_path: Path, one_hash: None, prepared: bool) -> None:
    table = FlowTable()
    batches = [
        batch(tmp_path, "1.pcap", [A, B, A, B, A], T0),  # A first: B's two collide
        batch(tmp_path, "2.pcap", [B, B, A], T0 + 10 * SEC),  # B first, A held: B's collide
        batch(tmp_path, "3.pcap", [B], T0 + 20 * SEC),  # only B, A held: it collides
    ]
    collided = []
    rows = []
    for b in batches:
        grouped = table.prepare(b) if prepared else None
        rows.append(table.update(b, grouped=grouped).rows)
        collided.append(table.hash_collisions)
    rows.append(table.flush().rows)
    assert collided == [2, 4, 5]
    flows = FlowRows.concat(rows)
    assert len(flows) == 1
    assert format_addresses(flows.orig_hi, flows.orig_lo) == [A[0]]
    assert int(flows.acc_i[0][fs.I_PKTS0]) == 4  # A's 3 + 1, none of B's


def test_a_group_of_one_key_is_not_counted(tmp_path: Path) -> None:
    """Without collisions (real hashes) nothing is counted and both flows are kept."""
    table = FlowTable()
    b = batch(tmp_path, "1.pcap", [A, B, A, B, A], T0)
    assert table.prepare(b) is not None and table.prepare(b).collided == 0  # type: ignore[union-attr]
    rows = FlowRows.concat([table.update(b).rows, table.flush().rows])
    assert table.hash_collisions == 0
    assert sorted(int(r[fs.I_PKTS0]) for r in rows.acc_i) == [2, 3]
