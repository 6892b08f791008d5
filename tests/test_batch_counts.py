"""What a run counts of each decoded batch (decode.summary.count_batch, one compiled pass):
by hand on a few packets, and against numpy's own counting on every real capture."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from burstwatch.decode import batch as b
from burstwatch.decode.batch import ENCAP_NAMES, STATUS_NAMES, PacketBatch
from burstwatch.decode.decoder import Decoder
from burstwatch.decode.summary import count_batch, undecoded_kinds
from burstwatch.errors import BurstwatchError
from burstwatch.ingest import open_capture

ROOT = Path(__file__).resolve().parents[1]


def demo_packets(n: int) -> PacketBatch:
    records = next(iter(open_capture(str(ROOT / "pcaps" / "demo.pcap")).batches()))
    return Decoder()(records).slice(0, n)


def test_counts_by_hand() -> None:
    packets = dataclasses.replace(
        demo_packets(5),
        status=np.array([b.STATUS_OK, b.STATUS_FRAGMENT, b.STATUS_ARP, b.STATUS_OK,
                         b.STATUS_OTHER_ETHERTYPE], np.uint8),
        encap=np.array([0, b.ENC_VLAN | b.ENC_GRE, 0, b.ENC_GRE, 0], np.uint16),
    )
    counts = count_batch(packets, np.array([60, 70, 80, 90, 100, 7], np.uint32))
    assert counts.wire_bytes == 407  # every record read, whatever its packet became
    assert {STATUS_NAMES[i]: int(c) for i, c in enumerate(counts.status_counts) if c} == {
        "ok": 2, "fragment": 1, "arp": 1, "other_ethertype": 1}
    assert {ENCAP_NAMES[i]: int(c) for i, c in enumerate(counts.encap_counts) if c} == {
        "vlan": 1, "gre": 2}
    # the two not decoded to IP are the demo's Ethernet frames: their ethertype is IPv4's
    assert counts.undecoded == {"ethertype 0x0800": 2}
    assert counts.decoded.tolist() == [0, 3]  # what the flow table takes: status ok only


def test_a_batch_of_ip_packets_has_nothing_undecoded() -> None:
    packets = demo_packets(50)
    counts = count_batch(packets, packets.wire_len)
    assert counts.undecoded == {}
    assert counts.status_counts.sum() == 50 and counts.status_counts[b.STATUS_OK] > 0


def test_the_same_as_numpy_counts_on_real_captures(shared_pcaps: Path) -> None:
    checked = 0
    for path in sorted(p for p in shared_pcaps.rglob("*") if p.is_file() and p.suffix in
                       (".pcap", ".pcapng", ".cap")):
        try:
            batches = list(open_capture(str(path)).batches())
        except BurstwatchError:
            continue
        decoder = Decoder()
        for records in batches:
            packets = decoder(records)
            counts = count_batch(packets, records.wirelen)
            assert counts.wire_bytes == int(records.wirelen.sum(dtype=np.int64)), path
            assert counts.status_counts.tolist() == np.bincount(
                packets.status, minlength=len(STATUS_NAMES)).tolist(), path
            assert counts.encap_counts.tolist() == [
                int(((packets.encap >> k) & 1).sum()) for k in range(len(ENCAP_NAMES))], path
            assert counts.undecoded == undecoded_kinds(packets), path
            assert counts.decoded.tolist() == np.flatnonzero(packets.status == 0).tolist(), path
            checked += 1
    if not checked:
        pytest.skip("no readable capture among the shared ones")
