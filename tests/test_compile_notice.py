"""The first run after an install says it is compiling kernels; a run that loads them from
numba's cache says nothing about it. A fresh NUMBA_CACHE_DIR stands for a fresh install."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from burstwatch.cli.compiling import MESSAGE, CompileNotice

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # compiles kernels with numba in a fresh cache
def test_first_run_announces_compilation_and_the_second_loads_quietly(tmp_path: Path) -> None:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"), PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "burstwatch", "info", "--json", "pcaps/demo.pcap"]
    first = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr
    assert f"burstwatch: {MESSAGE}\n" in first.stderr
    assert "compiled kernels in" in first.stderr
    second = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr
    assert second.stderr == ""
    assert second.stdout == first.stdout


def test_spinner_clears_its_line_when_done() -> None:
    out = io.StringIO()
    notice = CompileNotice(out, spin=True)
    notice.on_start(None)
    assert notice.drawn.wait(60)  # a frame is drawn while a compilation is running
    notice.on_end(None)
    notice.close()
    text = out.getvalue()
    assert f"\r| {MESSAGE}" in text
    # The spinner's line is erased, then the closing line is written in its place.
    assert text.endswith("(kept in numba's cache for later runs)\n")
    assert "\r\033[Kburstwatch: compiled kernels in " in text
