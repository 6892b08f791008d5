"""How rule hits and the anomaly score combine into one alert level (docs/scoring.md).

Rules say what an analyst asked for, so they decide whether there is an alert and at what
level; the score only adjusts it. A score at or above ``RAISE_THRESHOLD`` raises a hit one
level, because a rule match that is also rare against the baseline deserves a look sooner; a
low score never lowers a rule, because the baseline may itself contain the behaviour a rule
was written to catch. Without a rule hit the score alone raises an ``anomaly`` alert at
medium, but only above the stricter ``ANOMALY_THRESHOLD`` and only for an encrypted flow to a
foreign endpoint: the one combination this tool exists to find, which keeps score-only alerts
to a small, reviewable share of traffic.
"""

from __future__ import annotations

import math

LEVELS: tuple[str, ...] = ("low", "medium", "high", "critical")  # ascending severity
RAISE_THRESHOLD = 0.99
ANOMALY_THRESHOLD = 0.999
ANOMALY_LEVEL = "medium"


def combine(
    levels_from_rules: list[str],
    anomaly_score: float | None,
    encrypted: bool,
    foreign: bool,
) -> tuple[str | None, str]:
    """The final level (None: no alert) and a one-line reason, for one flow-window.

    ``anomaly_score`` is None (or NaN) when no scorer ran; then the rules decide alone.
    """
    unknown = [lv for lv in levels_from_rules if lv not in LEVELS]
    if unknown:
        raise ValueError(f"unknown rule level {unknown[0]!r}; expected one of {', '.join(LEVELS)}")
    score = None if anomaly_score is None or math.isnan(anomaly_score) else float(anomaly_score)
    if levels_from_rules:
        base = max(levels_from_rules, key=LEVELS.index)
        if score is None:
            return base, f"rule level {base}"
        if score < RAISE_THRESHOLD:
            return base, f"rule level {base}; anomaly score {score:.4f} < {RAISE_THRESHOLD} leaves it"
        if base == LEVELS[-1]:
            return base, f"rule level {base} (highest); anomaly score {score:.4f}"
        raised = LEVELS[LEVELS.index(base) + 1]
        return raised, f"rule level {base} raised to {raised}: anomaly score {score:.4f} >= {RAISE_THRESHOLD}"
    if score is None or score < ANOMALY_THRESHOLD:
        return None, "no rule matched" + ("" if score is None else f"; anomaly score {score:.4f} < {ANOMALY_THRESHOLD}")
    if not (encrypted and foreign):
        why = " and ".join(w for w, ok in (("not encrypted", encrypted), ("not to a foreign endpoint", foreign))
                           if not ok)
        return None, (f"no rule matched; anomaly score {score:.4f} alone alerts only on encrypted flows "
                      f"abroad, and this one is {why}")
    return ANOMALY_LEVEL, (f"anomaly: score {score:.4f} >= {ANOMALY_THRESHOLD} on an encrypted flow "
                           "to a foreign endpoint")
