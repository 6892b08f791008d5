"""Turn a RecordBatch into a PacketBatch with one compiled pass over the headers."""

from __future__ import annotations

import numpy as np

from burstwatch.decode.batch import PacketBatch
from burstwatch.decode.kernel import decode_packets
from burstwatch.ingest.records import RecordBatch


def decode(records: RecordBatch) -> PacketBatch:
    """Decode every record of a batch; undecodable ones get a non-zero ``status``."""
    n = len(records)
    pb = PacketBatch(
        ts_ns=records.ts_ns,
        wire_len=records.wirelen,
        cap_len=records.caplen,
        linktype=records.linktype,
        iface=records.iface,
        status=np.empty(n, np.uint8),
        ip_version=np.empty(n, np.uint8),
        src_hi=np.empty(n, np.uint64),
        src_lo=np.empty(n, np.uint64),
        dst_hi=np.empty(n, np.uint64),
        dst_lo=np.empty(n, np.uint64),
        proto=np.empty(n, np.uint8),
        sport=np.empty(n, np.uint16),
        dport=np.empty(n, np.uint16),
        tcp_flags=np.empty(n, np.uint8),
        payload_off=np.empty(n, np.uint32),
        payload_len=np.empty(n, np.uint32),
        fragment=np.empty(n, np.bool_),
        records=records,
    )
    if n:
        decode_packets(
            records.data, records.offset, records.caplen, records.wirelen, records.linktype,
            pb.status, pb.ip_version, pb.src_hi, pb.src_lo, pb.dst_hi, pb.dst_lo,
            pb.proto, pb.sport, pb.dport, pb.tcp_flags, pb.payload_off, pb.payload_len,
            pb.fragment,
        )
    return pb
