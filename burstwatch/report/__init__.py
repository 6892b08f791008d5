"""The analyst's report: one self-contained HTML page of the cases, with their bursts drawn."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from burstwatch.outfiles import replace_problem
from burstwatch.report.data import (
    ReportData,
    ReportError,
    from_ledger,
    from_records,
    merge_all,
    read_alerts,
)
from burstwatch.report.html import render

__all__ = ["ReportData", "ReportError", "check_writable", "from_ledger", "from_records", "merge_all",
           "read_alerts", "render", "write_report"]


def check_writable(path: str) -> None:
    """Fail before a long scan, not after it, when the report cannot be written there."""
    folder = Path(path).parent
    problem = replace_problem(path)
    if problem:
        raise ReportError(f"{path}: cannot write the report there ({problem})")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ReportError(f"{path}: cannot write the report there")


def write_report(path: str, data: ReportData) -> int:
    """Render and write the report; the file appears whole or not at all. Returns its size."""
    text = render(data).encode("utf-8")
    target = Path(path)
    problem = replace_problem(target)
    if problem:
        raise ReportError(f"{path}: cannot write the report ({problem})")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=target.parent or ".")
    except OSError as exc:
        raise ReportError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # as open() would have made it
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
    return len(text)
