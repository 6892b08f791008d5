"""Flows: bidirectional flow table, bursts per direction, windows of long-lived flows.

Only the configuration is imported eagerly: the command-line parser reads its defaults, and
the rest (numba kernels) is loaded when first used, so a command that builds no flows does
not pay for compiling or loading them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from burstwatch.flows.config import FlowConfig
from burstwatch.lazy import lazy_attributes

if TYPE_CHECKING:
    from burstwatch.flows.records import BurstRows, FlowOutput, FlowRows, PayloadSamples
    from burstwatch.flows.table import FlowTable

__all__ = ["BurstRows", "FlowConfig", "FlowOutput", "FlowRows", "FlowTable", "PayloadSamples"]

__getattr__ = lazy_attributes(__name__, {
    "BurstRows": "records", "FlowOutput": "records", "FlowRows": "records",
    "PayloadSamples": "records", "FlowTable": "table"})

