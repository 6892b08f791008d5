"""The first run compiles the late kernels in a second process (``burstwatch/sidecompiler.py``): the
recorded signatures are the ones the pipeline calls, the side process fills numba's cache
with exactly those, and the command starts it at its first compilation and ends it when it
finishes. A fresh NUMBA_CACHE_DIR stands for a fresh install."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from burstwatch.cli.compiling import CompileNotice
from burstwatch.sidecompiler import (
    EARLY_KERNELS,
    EARLY_PACKAGES,
    argument_type,
    describe,
    late_kernels,
    manifest,
)

ROOT = Path(__file__).resolve().parent.parent

# Run in a child: the recorded commands (the demo's scan first) with a compile listener, then
# print what compiled here and the signatures every recorded kernel has now.
PROBE = """
import json, sys
from numba.core import event
compiled = []
depth = [0]
class Top(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        if depth[0] == 0:
            compiled.append(f.__module__ + "." + f.__qualname__)
        depth[0] += 1
    def on_end(self, ev):
        depth[0] -= 1
event.register("numba:compile", Top())
import importlib, tempfile
from pathlib import Path
from burstwatch.builders.kernel_manifest import run_all
from burstwatch.sidecompiler import describe, manifest
with tempfile.TemporaryDirectory() as folder:
    run_all(Path(folder))
signatures = {}
for k in manifest():
    name = k["module"] + "." + k["kernel"]
    disp = getattr(importlib.import_module(k["module"]), k["kernel"])
    signatures[name] = sorted(json.dumps([describe(a) for a in s]) for s in disp.signatures)
print(json.dumps({"compiled": compiled, "signatures": signatures}))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_argument_descriptions_round_trip() -> None:
    for entry in manifest():
        for part in entry["args"]:
            assert describe(argument_type(part)) == part
    with pytest.raises(ValueError, match="unknown scalar type"):
        argument_type({"scalar": "__import__"})


@pytest.mark.slow
def test_the_manifest_holds_the_signatures_the_recorded_commands_call() -> None:
    """Stale after a kernel's arguments change: regenerate with
    ``python -m burstwatch.builders.kernel_manifest``."""
    result = _probe(dict(os.environ, PYTHONPATH=str(ROOT), BURSTWATCH_SIDE_COMPILER="0"))
    recorded: dict[str, list[str]] = {}
    for k in manifest():
        recorded.setdefault(f"{k['module']}.{k['kernel']}", []).append(json.dumps(k["args"]))
    signatures = result["signatures"]
    assert isinstance(signatures, dict)
    for name, sigs in recorded.items():
        assert sorted(sigs) == signatures[name], (
            f"{name}: the recorded commands call other signatures than kernels.json records; "
            "run python -m burstwatch.builders.kernel_manifest")


def test_late_kernels_leave_the_early_ones_to_the_command() -> None:
    late = {(k["module"], k["kernel"]) for k in late_kernels()}
    assert late, "nothing for the side compiler"
    assert not late & EARLY_KERNELS
    assert not any(module.startswith(EARLY_PACKAGES) for module, _ in late)
    everything = {(k["module"], k["kernel"]) for k in manifest()}
    assert everything >= EARLY_KERNELS  # the early names are real kernels
    # only what the scan calls: the pipeline waits for the side process before enriching
    assert all(k["run"] == 0 for k in late_kernels())
    assert not any(k["module"] == "burstwatch.outputs.jsonfill" for k in late_kernels())
    assert any(k["module"] == "burstwatch.outputs.jsonfill" for k in manifest())


@pytest.mark.slow
def test_side_compiler_fills_the_cache_the_command_then_loads(tmp_path: Path) -> None:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),
               PYTHONPATH=str(ROOT), BURSTWATCH_SIDE_COMPILER="0")
    side = subprocess.run([sys.executable, "-m", "burstwatch.sidecompiler"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert side.returncode == 0, side.stderr
    compiled = _probe(env)["compiled"]
    assert isinstance(compiled, list)
    late = {f"{m}.{k}" for m, k in {(e["module"], e["kernel"]) for e in late_kernels()}}
    early = {f"{m}.{k}" for m, k in EARLY_KERNELS}
    assert not late & set(compiled), "the command compiled kernels the side process had cached"
    assert early <= set(compiled)  # the fresh cache was really empty of these


def test_notice_starts_the_side_compiler_once_and_ends_it() -> None:
    started: list[subprocess.Popen[bytes]] = []

    def side() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        started.append(proc)
        return proc

    notice = CompileNotice(io.StringIO(), spin=False, side=side)
    notice.on_start(None)
    notice.on_end(None)
    notice.on_start(None)  # a second compilation does not start another
    notice.on_end(None)
    assert len(started) == 1 and started[0].poll() is None
    notice.close()
    assert started[0].returncode is not None  # ended with the command


def test_no_side_compiler_without_a_compilation() -> None:
    started: list[int] = []
    notice = CompileNotice(io.StringIO(), spin=False, side=lambda: started.append(1) or None)
    notice.close()
    assert started == []


def test_pipeline_waits_for_a_running_side_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    import burstwatch.sidecompiler as side

    done = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    assert done.stdin is not None
    done.stdin.close()  # the child finishes when its input ends
    monkeypatch.setattr(side, "_running", done)
    side.await_side_compiler(timeout=600)  # returns when the side process has finished
    assert done.returncode == 0

    stuck = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        monkeypatch.setattr(side, "_running", stuck)
        side.await_side_compiler(timeout=0.2)  # still running: the wait gives up at its bound
        assert stuck.poll() is None
        assert side._running is None  # ... and later batches do not wait for it again
        side.await_side_compiler()  # none to wait for: returns at once
    finally:
        stuck.kill()
        stuck.wait()


def test_side_compiler_only_where_a_core_is_free() -> None:
    from burstwatch.sidecompiler import core_is_free

    assert core_is_free(others=0, cores=2)  # only this process: the other core is idle
    assert not core_is_free(others=1, cores=2)  # the other core is taken
    assert not core_is_free(others=0, cores=1)  # nothing to run it beside
    assert core_is_free(others=5, cores=16)
    assert not core_is_free(others=15, cores=16)


def test_other_runnable_tasks_sees_a_busy_process() -> None:
    from burstwatch.sidecompiler import other_runnable_tasks

    if other_runnable_tasks() is None:
        pytest.skip("no /proc on this system")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        # A spinning child is running or ready to run whenever it is sampled once it has
        # started; other work on the machine can only add to the count.
        deadline = time.monotonic() + 600
        while (other_runnable_tasks() or 0) < 1:
            assert time.monotonic() < deadline, "the spinning child was never seen running"
    finally:
        busy.kill()
        busy.wait()


def test_side_program_imports_this_package_whatever_the_working_directory(tmp_path: Path) -> None:
    """Run from a folder that holds another ``burstwatch`` (a source checkout beside an
    installed copy), ``python -m`` would compile that one's kernels into its own cache."""
    from burstwatch.sidecompiler import side_program

    decoy = tmp_path / "burstwatch"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy package was imported')\n")
    done = subprocess.run([sys.executable, "-c", side_program()], cwd=tmp_path,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr


def _side_that_finishes(count: int) -> subprocess.Popen[bytes]:
    """A stand-in side process: says it has finished ``count`` kernels, then works on the
    next until its input ends."""
    return subprocess.Popen(
        [sys.executable, "-c",
         f"import sys; sys.stdout.write('.' * {count}); sys.stdout.flush(); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def test_the_command_compiles_from_the_end_up_to_where_the_side_has_got() -> None:
    import select
    import time

    from burstwatch.sidecompiler import compile_from_the_end

    kernels = [{"kernel": f"k{i}"} for i in range(6)]
    proc = _side_that_finishes(2)
    assert proc.stdout is not None
    compiled: list[str] = []

    def compile_one(entry: dict[str, str]) -> None:
        if not compiled:  # the side's report is there before the second look at it
            assert select.select([proc.stdout], [], [], 600)[0]
        compiled.append(entry["kernel"])

    try:
        here = compile_from_the_end(proc, kernels, compile_one, time.monotonic() + 600)
        # the side has finished k0 and k1 and is on k2: this process takes k5, k4, k3
        assert compiled == ["k5", "k4", "k3"] and here == 3
        assert proc.poll() is None  # the side is not waited for here
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()


def test_nothing_is_compiled_again_once_the_side_has_finished() -> None:
    import time

    import burstwatch.sidecompiler as side

    proc = _side_that_finishes(4)
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait()
    compiled: list[object] = []
    assert side.compile_from_the_end(proc, [{}] * 4, compiled.append,
                                     time.monotonic() + 600) == 0
    assert compiled == []


def test_the_side_process_reports_each_kernel(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import burstwatch.sidecompiler as side

    done: list[str] = []
    monkeypatch.setattr(side, "late_kernels", lambda: [{"kernel": "a"}, {"kernel": "b"}])
    monkeypatch.setattr(side, "compile_kernels", lambda ks: done.extend(k["kernel"] for k in ks))
    side.main()
    assert done == ["a", "b"] and capsys.readouterr().out == ".."


def test_ending_the_side_process_closes_its_progress_pipe() -> None:
    import burstwatch.sidecompiler as side

    proc = _side_that_finishes(1)
    side.stop_side_compiler(proc)
    assert proc.returncode is not None and proc.stdout is not None and proc.stdout.closed
    assert proc.stdin is not None
    proc.stdin.close()
