"""Anomaly scoring of conversations: how far one has gone toward a burst transmission.

:class:`ConversationModel` (``burstwatch.score.conversation``) is a one-sided, monotone
isolation forest over conversation features, trained by ``burstwatch train``, with the shipped
model in ``data/``; :mod:`burstwatch.score.trees` walks its trees; :mod:`burstwatch.score.model_file`
reads and writes model files without pickle; :class:`ModelError` is a model that cannot be
used. See docs/scoring.md.
"""

from burstwatch.score.model_file import ModelError

__all__ = ["ModelError"]
