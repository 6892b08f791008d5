"""One JSON line per record, always valid JSON: a non-finite number (a rate over zero
seconds, a score of a degenerate model, a value from a hostile file) is written as null,
never as the ``NaN``/``Infinity`` that Python's json writes and other JSON readers refuse."""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_line(record: Any, compact: bool = True) -> str:
    """``record`` as JSON without a newline (``compact``: no spaces); NaN and infinities
    become null."""
    seps = (",", ":") if compact else (", ", ": ")
    try:
        return json.dumps(record, separators=seps, allow_nan=False)
    except ValueError:  # only then is the record walked
        return json.dumps(_finite(record), separators=seps, allow_nan=False)
