"""The console entry point leaves without the interpreter's teardown, and loses nothing by it."""

from __future__ import annotations

import os
import pstats
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A stand-in command: writes to standard output without flushing, registers an exit handler,
# and leaves an object whose finaliser runs only in the interpreter's teardown.
CHILD = """
import atexit, sys, threading
import burstwatch.cli.main as entry

class Teardown:
    def __del__(self):
        sys.stdout.write("teardown ran\\n")
        sys.stdout.flush()

kept = Teardown()
{setup}

def command():
    sys.stdout.write("found 1 case\\n")  # still in the buffer when the command returns
    atexit.register(lambda: sys.stdout.write("exit handler ran\\n"))
    {before_return}
    return 3

entry.main = command
entry.run()
"""

WORKER = """
release = threading.Event()
def work():
    release.wait()
    sys.stdout.write("thread finished\\n")
worker = threading.Thread(target=work)
threading._register_atexit(release.set)  # the interpreter's exit releases it, then joins it
"""


# Standard output buffered, as a run whose output goes to a file or a pipe has it.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "PYTHONPATH": str(ROOT)}


def child(setup: str = "", before_return: str = "pass") -> subprocess.CompletedProcess[str]:
    code = CHILD.format(setup=setup, before_return=before_return)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=120)


def test_fast_exit_keeps_output_handlers_and_status_and_skips_the_teardown() -> None:
    done = child()
    assert done.returncode == 3, done.stderr
    assert done.stdout == "found 1 case\nexit handler ran\n"
    assert done.stderr == ""


def test_a_thread_still_working_gets_the_interpreters_own_exit() -> None:
    done = child(setup=WORKER, before_return="worker.start()")
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    # the thread was waited for, and the teardown ran as in any interpreter exit
    assert set(lines) == {"found 1 case", "thread finished", "exit handler ran", "teardown ran"}
    assert lines[0] == "found 1 case"


def test_a_profiler_still_writes_its_findings(tmp_path: Path) -> None:
    script = tmp_path / "command.py"
    script.write_text(CHILD.format(setup="", before_return="pass"))
    stats = tmp_path / "run.prof"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), str(script)],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr  # cProfile takes the exit and says 0 itself
    assert "command" in {name for _, _, name in pstats.Stats(str(stats)).stats}  # type: ignore[attr-defined]
    assert "teardown ran" in done.stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_standard_output_that_fails_at_the_last_flush_gets_the_interpreters_own_exit() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-c", CHILD.format(setup="", before_return="pass")],
            stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV, timeout=120)
    # what Python does when standard output cannot be flushed at exit: status 120
    assert done.returncode == 120, done.stderr
