"""Ingest: capture files and interfaces -> batches of raw records (one buffer + offsets).

The readers (numba kernels) are loaded when first used: the record types alone are light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from burstwatch.ingest.records import CaptureWarning, RecordBatch
from burstwatch.lazy import lazy_attributes

if TYPE_CHECKING:
    from burstwatch.ingest.source import CaptureReader, open_capture

__all__ = ["CaptureReader", "CaptureWarning", "RecordBatch", "open_capture"]

__getattr__ = lazy_attributes(__name__, {"CaptureReader": "source", "open_capture": "source"})
