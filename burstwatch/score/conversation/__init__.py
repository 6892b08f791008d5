"""The conversation anomaly score: how far a (local host, remote party) conversation departs
from benign ones, in the direction of a burst transmission.

- :class:`ConversationModel`: ``fit(rows)``, ``score(features) -> (scores, reasons)`` (the
  judge's ``ConversationScorer``), ``save``/``load``/``default()``, ``site_trained``.
- :func:`rows_from_ledger`, :func:`rows_from_captures`: training rows over consecutive horizons.
- :data:`DIRECTIONS`: each feature's exfiltration direction (+1, -1, 0 = not used).

See docs/scoring.md.
"""

from burstwatch.score.conversation.model import MIN_ROWS, ConversationModel, default_model_path
from burstwatch.score.conversation.rows import (
    ConversationRows,
    rows_from_captures,
    rows_from_ledger,
)
from burstwatch.score.conversation.transform import DIRECTIONS

__all__ = [
    "DIRECTIONS",
    "MIN_ROWS",
    "ConversationModel",
    "ConversationRows",
    "default_model_path",
    "rows_from_captures",
    "rows_from_ledger",
]
