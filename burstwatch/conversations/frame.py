"""Columns that conversation rules read: a judgement's conversation records, by their
record paths (``burstwatch.conversation.burst_count``, ``burstwatch.destination.scope``,
...), as flow rules read flow records (``alerts/frame.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from burstwatch.alerts.frame import RecordFrame
from burstwatch.conversations.features import ConversationFeatures
from burstwatch.conversations.model import ConversationBursts, Conversations
from burstwatch.conversations.records import conversation_columns
from burstwatch.rules.catalog import record_catalog

_FIELDS = tuple(s.name for s in record_catalog().at_level("conversation"))


def conversation_frame(conv: Conversations, bursts: ConversationBursts,
                       feats: ConversationFeatures, scope: np.ndarray, scores: np.ndarray,
                       reasons: Sequence[list[dict[str, Any]]]) -> RecordFrame:
    """One row per conversation; the anomaly score as computed (records round it)."""
    cols = conversation_columns(conv, bursts, feats, scope, scores, reasons, "")
    raw = {"burstwatch.conversation.anomaly_score": np.asarray(scores, np.float64)}
    return RecordFrame(cols, _FIELDS, raw)
