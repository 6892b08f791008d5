"""Decode: raw record batches -> PacketBatch columns (link, IP, transport headers).

The decoder (numba kernels) and the batch type (numpy) are loaded when first used: the
configuration alone is light, so the command-line parser can read its defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from burstwatch.decode.config import DecodeConfig
from burstwatch.lazy import lazy_attributes

if TYPE_CHECKING:
    from burstwatch.decode.batch import PacketBatch
    from burstwatch.decode.decoder import Decoder, decode

__all__ = ["DecodeConfig", "Decoder", "PacketBatch", "decode"]

__getattr__ = lazy_attributes(__name__, {
    "PacketBatch": "batch", "Decoder": "decoder", "decode": "decoder"})
