"""Output files that are replaced whole (a report, a model): only ever a regular file.

They are written to a temporary file beside the target and renamed over it, so a reader never
sees half a file. A rename replaces whatever the name points at, so a device (``-o
/dev/null`` run as root), a FIFO or a directory must be refused first, not replaced.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def replace_problem(path: str | Path) -> str | None:
    """Why a new file may not be renamed over ``path``, or None when it may (absent or regular)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISREG(mode):
        return None
    return "is a directory" if stat.S_ISDIR(mode) else "is not a regular file"
