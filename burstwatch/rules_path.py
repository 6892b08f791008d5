"""Where the shipped detection rules are, in a source checkout or an installed package."""

from __future__ import annotations

import sys
from pathlib import Path


def bundled_rules_dir() -> Path | None:
    """The shipped ``rules/`` folder, or None if this installation lacks it."""
    candidates = [
        Path(__file__).resolve().parent.parent / "rules",  # source checkout / editable install
        Path(sys.prefix) / "share" / "burstwatch" / "rules",  # installed wheel (data-files)
    ]
    for c in candidates:
        if c.is_dir() and any(c.glob("*.yml")):
            return c
    return None
