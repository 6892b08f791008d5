"""Exit statuses, documented in the README (like grep: 1 means "found something")."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # ran to the end; nothing flagged
    FLAGGED = 1  # scan/live: at least one alert was raised
    ERROR = 2  # bad input, bad rules, bad model, bad usage: nothing trustworthy to report
    INTERRUPTED = 130  # stopped by SIGINT before the end
