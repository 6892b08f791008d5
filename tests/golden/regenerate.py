"""Write the golden files of the demo capture's records, every kind in every format:

    python tests/golden/regenerate.py

flows, bursts and conversations as `burstwatch flows pcaps/demo.pcap [--bursts |
--conversations] -o FILE` writes them, alerts (the case records) as `burstwatch scan
pcaps/demo.pcap --alerts FILE`, from the repository root (the records name the capture as
given). Run it after an intended change to a record and review the diff: every field of
every record is pinned, so the diff is the change.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
GOLDEN = Path(__file__).resolve().parent
CAPTURE = "pcaps/demo.pcap"
FORMATS = ("jsonl", "csv", "parquet")
# record kind (file stem) -> the command line that writes it, with {out} for the file
COMMANDS: dict[str, list[str]] = {
    "flows": ["flows", CAPTURE, "-o", "{out}"],
    "bursts": ["flows", CAPTURE, "--bursts", "-o", "{out}"],
    "conversations": ["flows", CAPTURE, "--conversations", "-o", "{out}"],
    "alerts": ["scan", CAPTURE, "--format", "jsonl", "--alerts", "{out}"],
}


def write(stem: str, fmt: str, out: Path) -> int:
    """Write the ``stem`` records as ``fmt`` to ``out`` from the repository root; the exit
    status of the command."""
    from burstwatch.cli.main import main

    argv = [str(out) if a == "{out}" else a for a in COMMANDS[stem]]
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return main(argv)
    finally:
        os.chdir(cwd)


def regenerate() -> None:
    for stem in COMMANDS:
        for fmt in FORMATS:
            out = GOLDEN / f"{stem}.{fmt}"
            code = write(stem, fmt, out)
            print(f"{out.relative_to(ROOT)} (exit {code})")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    regenerate()
