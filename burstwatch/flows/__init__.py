"""Flows: bidirectional flow table, bursts per direction, windows of long-lived flows."""

from burstwatch.flows.config import FlowConfig
from burstwatch.flows.records import BurstRows, FlowOutput, FlowRows, PayloadSamples
from burstwatch.flows.table import FlowTable

__all__ = ["BurstRows", "FlowConfig", "FlowOutput", "FlowRows", "FlowTable", "PayloadSamples"]
