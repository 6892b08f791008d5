"""Ingest: capture files and interfaces -> batches of raw records (one buffer + offsets)."""

from burstwatch.ingest.records import CaptureWarning, RecordBatch
from burstwatch.ingest.source import CaptureReader, open_capture

__all__ = ["CaptureReader", "CaptureWarning", "RecordBatch", "open_capture"]
