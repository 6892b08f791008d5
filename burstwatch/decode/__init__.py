"""Decode: raw record batches -> PacketBatch columns (link, IP, transport headers)."""

from burstwatch.decode.batch import PacketBatch
from burstwatch.decode.config import DecodeConfig
from burstwatch.decode.decoder import Decoder, decode

__all__ = ["DecodeConfig", "Decoder", "PacketBatch", "decode"]
