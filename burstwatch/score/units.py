"""Feature values as a person reads them, by registry unit: 9.8 MB/s, 2.0 MB, 95 ms, 4.5 min."""

from __future__ import annotations

import math


def _sig(v: float, digits: int = 3) -> str:
    """``v`` with ``digits`` significant digits, without exponent notation for everyday sizes."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    decimals = max(digits - 1 - int(math.floor(math.log10(abs(v)))), 0)
    return f"{v:.{decimals}f}"


def _scaled(v: float, suffix: str, digits: int) -> str:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{_sig(v / scale, digits)} {prefix}B{suffix}"
    return f"{_sig(v, digits) if abs(v) < 100 else f'{v:.0f}'} B{suffix}"


def _seconds(v: float, digits: int) -> str:
    if abs(v) < 1.0:
        return f"{_sig(v * 1e3, digits)} ms"
    if abs(v) < 120.0:
        return f"{_sig(v, digits)} s"
    if abs(v) < 7200.0:
        return f"{_sig(v / 60.0, digits)} min"
    return f"{_sig(v / 3600.0, digits)} h"


def format_value(value: float | None, unit: str, digits: int = 3) -> str:
    """One value with its unit, ``digits`` significant; ``None``/NaN reads "undefined"."""
    if value is None or math.isnan(value):
        return "undefined"
    if unit == "bytes":
        return _scaled(value, "", digits)
    if unit == "bytes/s":
        return _scaled(value, "/s", digits)
    if unit == "s":
        return _seconds(value, digits)
    if unit in ("packets", "bursts"):
        return f"{value:,.0f} {unit[:-1] if round(value) == 1 else unit}"
    return _sig(value, digits)


def format_pair(value: float, reference: float, unit: str) -> tuple[str, str]:
    """Both values, with enough digits that different numbers never read the same."""
    for digits in (3, 4, 5, 6):
        a, b = format_value(value, unit, digits), format_value(reference, unit, digits)
        if a != b or value == reference:
            break
    return a, b
