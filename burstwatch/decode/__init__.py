"""Decode: raw record batches -> PacketBatch columns (link, IP, transport headers).

The decoder (numba kernels) is loaded when first used: the batch type alone is light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from burstwatch.decode.batch import PacketBatch
from burstwatch.lazy import lazy_attributes

if TYPE_CHECKING:
    from burstwatch.decode.decoder import decode

__all__ = ["PacketBatch", "decode"]

__getattr__ = lazy_attributes(__name__, {"decode": "decoder"})
