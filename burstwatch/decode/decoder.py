"""Turn a RecordBatch into a PacketBatch with one compiled pass over the headers.

``decode`` is that pass alone (stateless); ``Decoder`` adds what needs memory across batches:
IP fragments are set aside and their datagrams reassembled (``decode.reassembly``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from burstwatch.decode.batch import PacketBatch
from burstwatch.decode.config import DecodeConfig
from burstwatch.decode.kernel import decode_packets
from burstwatch.decode.reassembly import Reassembler
from burstwatch.ingest.records import RecordBatch

DEFAULT_CONFIG = DecodeConfig()
_TABLES: dict[DecodeConfig, tuple[np.ndarray, np.ndarray]] = {}


def _tables(config: DecodeConfig) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's settings and UDP port table, built once per configuration."""
    got = _TABLES.get(config)
    if got is None:
        got = _TABLES[config] = (config.kernel_config(), config.udp_table())
    return got


def decode(
    records: RecordBatch, config: DecodeConfig = DEFAULT_CONFIG,
    kernel: Callable[..., None] = decode_packets,
) -> PacketBatch:
    """Decode every record of a batch; undecodable ones get a non-zero ``status``.
    ``kernel``: another build of ``decode_packets`` (tests run its plain-Python source)."""
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
        encap=np.empty(n, np.uint16),
        ip_off=np.empty(n, np.uint32),
        outer_src_hi=np.empty(n, np.uint64),
        outer_src_lo=np.empty(n, np.uint64),
        outer_dst_hi=np.empty(n, np.uint64),
        outer_dst_lo=np.empty(n, np.uint64),
        records=records,
    )
    if n:
        cfg, udp = _tables(config)
        kernel(
            records.data, records.offset, records.caplen, records.wirelen, records.linktype,
            cfg, udp, pb.status, pb.ip_version, pb.src_hi, pb.src_lo, pb.dst_hi, pb.dst_lo,
            pb.proto, pb.sport, pb.dport, pb.tcp_flags, pb.payload_off, pb.payload_len,
            pb.fragment, pb.encap, pb.ip_off, pb.outer_src_hi, pb.outer_src_lo,
            pb.outer_dst_hi, pb.outer_dst_lo,
        )
    return pb


class Decoder:
    """``decode`` with what one timeline needs remembered: fragments held for reassembly.
    ``counts`` receives the reassembly counters (``decode.reassembly.REASSEMBLY_COUNTERS``)."""

    def __init__(self, config: DecodeConfig = DEFAULT_CONFIG,
                 counts: dict[str, int] | None = None) -> None:
        self.config = config
        self.reassembler = Reassembler(config, counts) if config.reassemble else None

    def __call__(self, records: RecordBatch) -> PacketBatch:
        packets = decode(records, self.config)
        if self.reassembler is None:
            return packets
        return self.reassembler.process(packets, self._again)

    def _again(self, records: RecordBatch) -> PacketBatch:
        return decode(records, self.config)
