"""Anomaly scoring.

The conversation score (what the judge uses) is :mod:`burstwatch.score.conversation`:
``ConversationModel``, trained by ``burstwatch train``. Below, the flow-level scorer: how
unusual a flow-window's burst shape is against benign traffic.

- :class:`BurstScorer`: ``fit(X)`` on benign feature rows, ``score(X)`` in [0, 1] (higher =
  more anomalous, calibrated so a threshold ``t`` passes about ``1 - t`` of benign rows with
  bursts), ``explain(X)``, ``save``/``load`` and ``default()`` (the shipped model).
- :func:`combine`: the policy joining rule hits and the score into one alert level.
- :class:`ModelError`: a model file that cannot be trusted or used.

See docs/scoring.md.
"""

from burstwatch.score.explain import Explanation, Reason
from burstwatch.score.iforest import BurstScorer, default_model_path, has_burst
from burstwatch.score.model_file import ModelError
from burstwatch.score.policy import ANOMALY_THRESHOLD, RAISE_THRESHOLD, combine
from burstwatch.score.transform import TRANSFORMS, transform

__all__ = [
    "ANOMALY_THRESHOLD",
    "RAISE_THRESHOLD",
    "TRANSFORMS",
    "BurstScorer",
    "Explanation",
    "ModelError",
    "Reason",
    "combine",
    "default_model_path",
    "has_burst",
    "transform",
]
