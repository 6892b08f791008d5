"""Decode: raw record batches -> PacketBatch columns (link, IP, transport headers)."""

from burstwatch.decode.batch import PacketBatch
from burstwatch.decode.decoder import decode

__all__ = ["PacketBatch", "decode"]
