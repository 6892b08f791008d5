"""Kernels compiled ahead of time (burstwatch/aot.py) and the deferred ``njit`` that runs
them (burstwatch/jit.py): a call runs a build only with the argument types numba itself would
give it (numba's typing is the oracle), anything else goes to numba's JIT; the build of the
recorded signatures gives every golden record of the demo without loading numba at all."""

from __future__ import annotations

import importlib
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest
from numba.core.errors import NumbaError
from numba.core.registry import cpu_target

from burstwatch import aot, jit
from burstwatch.jit import ArgumentType, Kernel, scalar_type
from burstwatch.sidecompiler import argument_type, describe

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"


# ---- the argument checks, against numba's own typing -------------------------------------

SCALARS: list[Any] = [True, np.bool_(False), 0, -1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 1.5,
                      np.float64(2.0), np.float32(1.0), np.uint16(3), np.int8(-2), np.int64(5),
                      np.uint64(2**64 - 1)]


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalar_types_are_numbas(value: Any) -> None:
    assert scalar_type(value) == str(numba.typeof(value))


def test_values_numba_does_not_take_as_scalars_have_no_scalar_type() -> None:
    assert scalar_type(2**64) is None
    assert scalar_type("7") is None
    assert scalar_type(np.zeros(1)) is None


def _arrays() -> list[np.ndarray]:
    base = np.arange(48, dtype=np.uint8)
    frozen = base.copy()
    frozen.flags.writeable = False
    unaligned = np.zeros(33, np.uint8)[1:].view(np.uint32)
    assert not unaligned.flags.aligned
    return [base, frozen, base[::2], frozen[::3], base.astype(np.int64), base.view(np.uint32),
            unaligned, base.reshape(6, 8), np.asfortranarray(base.reshape(6, 8)),
            base.reshape(6, 8)[:, ::2], base.astype(">u4"), base.astype(np.float64)]


ARRAYS = _arrays()


def _numba_type(value: Any) -> Any:
    try:
        return numba.typeof(value)
    except NumbaError:
        return None


@pytest.mark.parametrize("built_for", range(len(ARRAYS)))
def test_an_array_is_taken_exactly_where_numba_could_convert_it(built_for: int) -> None:
    """A build for the type numba gives one array takes another exactly where numba's typing
    would convert the other's type to it (the same, read-only from writable, layout A from
    contiguous); C-order and A builds only (F is never recorded)."""
    built_type = _numba_type(ARRAYS[built_for])
    if built_type is None or built_type.layout == "F":
        pytest.skip(f"{ARRAYS[built_for].dtype} {built_type} is never a recorded kernel argument")
    check = ArgumentType(describe(built_type))
    context = cpu_target.typing_context
    for value in ARRAYS:
        given = _numba_type(value)
        if given is None:  # a byte order numba does not take: never accepted
            assert not check.accepts(value)
            continue
        convertible = given == built_type or context.can_convert(given, built_type) is not None
        assert check.accepts(value) == convertible, (given, built_type)


def test_described_types_round_trip_through_the_manifest_form() -> None:
    for value in ARRAYS[:7]:
        typ = numba.typeof(value)
        assert argument_type(describe(typ)) == typ


# ---- the deferred kernel -------------------------------------------------------------------

def _add_one(data: np.ndarray, out: np.ndarray) -> int:
    for i in range(data.shape[0]):
        out[i] = data[i] + 1
    return data.shape[0]


def test_a_kernel_runs_its_build_for_matching_arguments_and_numba_otherwise() -> None:
    calls: list[tuple[Any, ...]] = []

    def built(*args: Any) -> str:
        calls.append(args)
        return "built"

    kernel = Kernel(_add_one, {"cache": False})
    args = [{"dtype": "uint8", "ndim": 1, "layout": "C", "readonly": True},
            {"dtype": "int64", "ndim": 1, "layout": "C", "readonly": False}]
    kernel.built.append((tuple(ArgumentType(a) for a in args), built))
    data, out = np.arange(5, dtype=np.uint8), np.zeros(5, np.int64)
    assert kernel(data, out) == "built" and len(calls) == 1
    # other types: numba compiles them, and the work is done
    assert kernel(data.astype(np.int32), out) == 5
    assert out.tolist() == [1, 2, 3, 4, 5]
    assert kernel(data, out[::1].astype(np.int32)) == 5
    assert len(calls) == 1
    assert kernel.dispatcher.signatures  # numba's dispatcher, reachable as before


LAZY_MODULE = """
from burstwatch.jit import njit


@njit(cache=False)
def with_build(x):
    return x + 1


@njit(cache=False)
def without_build(x):
    return x + 2
"""


def _built_int(x: int) -> str:
    return f"built {x}"


@pytest.fixture
def lazy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of a kernel module that is not imported yet; the kernel registry is this
    test's own, and numba is not loaded for it (until a call needs it)."""
    name = f"burstwatch_lazy_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(LAZY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    for state, empty in (("_kernels", {}), ("_pending", {}), ("_loaded_hooks", []),
                         ("missed", []), ("_numba_njit", None)):
        monkeypatch.setattr(jit, state, empty)
    yield name
    sys.modules.pop(name, None)


def test_a_build_waits_for_its_module_to_be_imported(lazy_module: str) -> None:
    """Loading a build imports no kernel module: a command imports only what it uses, and
    each kernel takes its build when its module defines it."""
    taken = jit.install_ahead([(lazy_module, "with_build", [{"scalar": "int64"}], _built_int)])
    assert taken == 1 and lazy_module not in sys.modules
    module = importlib.import_module(lazy_module)
    assert isinstance(module.with_build, Kernel) and module.with_build(3) == "built 3"
    assert module.with_build(2.5) == 3.5  # a type the build lacks: numba's JIT
    assert isinstance(module.without_build, Kernel) and not module.without_build.built
    assert not jit._pending


def test_a_build_installed_after_its_module_is_imported_is_taken_at_once(lazy_module: str) -> None:
    module = importlib.import_module(lazy_module)
    assert module.with_build(3) == 4
    jit.install_ahead([(lazy_module, "with_build", [{"scalar": "int64"}], _built_int)])
    assert module.with_build(3) == "built 3" and not jit._pending


def test_a_module_imported_once_numba_is_loaded_still_runs_its_builds(
        lazy_module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Numba loads at the first call no build had; kernel modules imported after that keep
    their builds (only a kernel without any becomes numba's dispatcher at once)."""
    decorated: list[str] = []

    def numba_njit(**options: Any) -> Any:
        def decorate(func: Any) -> str:
            decorated.append(func.__name__)
            return "numba's dispatcher"
        return decorate

    jit.install_ahead([(lazy_module, "with_build", [{"scalar": "int64"}], _built_int)])
    monkeypatch.setattr(jit, "_numba_njit", numba_njit)
    module = importlib.import_module(lazy_module)
    assert module.with_build(4) == "built 4"
    assert module.without_build == "numba's dispatcher" and decorated == ["without_build"]


_twice = Kernel(lambda x: 2 * x, {"inline": "always", "cache": False})
_plain = Kernel(lambda x: x + 3, {"cache": False})


def _uses_helpers(x: int) -> int:
    return _twice(x) + _plain(x)


def test_kernels_compiled_by_numba_call_and_inline_kernels_named_as_globals() -> None:
    outer = Kernel(_uses_helpers, {"cache": False})
    assert outer(5) == 18
    ir = next(iter(outer.dispatcher.inspect_llvm().values()))
    assert "_twice" not in ir.split("define", 2)[1]  # inlined: no call to it


# ---- the build key and the build that cannot be made ----------------------------------------

def test_the_build_key_changes_with_any_source_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("a.py", "sub/b.py", "kernels.json"):
        (package / name).write_text("x = 1\n")
    (package / "notes.txt").write_text("ignored\n")
    monkeypatch.setattr(aot, "PACKAGE", package)
    first = aot.build_key()
    assert aot.build_key() == first
    (package / "notes.txt").write_text("ignored too\n")
    assert aot.build_key() == first
    st = (package / "sub" / "b.py").stat()
    os.utime(package / "sub" / "b.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert aot.build_key() != first


def test_without_a_toolchain_the_jit_is_used_and_said_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(aot.CACHE_VARIABLE, str(tmp_path))
    monkeypatch.setenv(aot.AHEAD_VARIABLE, "1")
    monkeypatch.setattr(aot, "toolchain_problem", lambda: "no C compiler (cc) found")
    monkeypatch.setattr(aot, "jit_loaded", lambda: False)
    started: list[Path] = []
    monkeypatch.setattr(aot, "_start_background_build", started.append)
    assert aot.ready() is None
    err = capsys.readouterr().err
    assert "no C compiler (cc) found" in err and "numba" in err
    assert aot.ready() is None  # the failure is remembered: no second try, no second note
    assert capsys.readouterr().err == ""
    assert not list(tmp_path.glob("kernels-*/index.json")) and started == []


def test_a_missing_build_is_scheduled_once_for_the_exit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(aot.CACHE_VARIABLE, str(tmp_path))
    monkeypatch.setenv(aot.AHEAD_VARIABLE, "1")
    monkeypatch.setattr(aot, "toolchain_problem", lambda: None)
    monkeypatch.setattr(aot, "jit_loaded", lambda: False)
    at_exit: list[tuple[Any, ...]] = []
    monkeypatch.setattr(aot.atexit, "register", lambda *a: at_exit.append(a))
    assert aot.ready() is None
    assert at_exit == [(aot._start_background_build, aot.build_dir())]
    # a builder named by a live process's lock: no second one
    aot._lock_file(aot.build_dir()).write_text(f"{os.getpid()}\n")
    assert aot.ready() is None and len(at_exit) == 1
    # the lock of a builder that has ended is stale
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    aot._lock_file(aot.build_dir()).write_text(f"{dead}\n")
    assert aot.ready() is None and len(at_exit) == 2


def test_a_new_build_removes_builds_unused_for_a_month(tmp_path: Path) -> None:
    now = time.time()

    def build(name: str, age_days: float) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "index.json").write_text("{}")
        os.utime(folder / "index.json", (now - age_days * 86400,) * 2)
        return folder

    keep, recent, old = build("kernels-new", 90), build("kernels-b", 3), build("kernels-c", 31)
    (tmp_path / "kernels-d.failed").write_text("no C compiler\n")
    os.utime(tmp_path / "kernels-d.failed", (now - 40 * 86400,) * 2)
    (tmp_path / "kernels-new.building").write_text("1\n")
    (tmp_path / "other").mkdir()
    gone = aot.prune(tmp_path, keep)
    assert sorted(p.name for p in gone) == ["kernels-c", "kernels-d.failed"]
    assert keep.is_dir() and recent.is_dir() and not old.exists()
    assert (tmp_path / "kernels-new.building").exists() and (tmp_path / "other").is_dir()


def test_no_background_build_into_a_folder_this_user_cannot_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[object] = []
    monkeypatch.setattr(aot.subprocess, "Popen", lambda *a, **k: spawned.append(a))
    monkeypatch.setattr(aot.os, "access", lambda path, mode: False)
    aot._start_background_build(tmp_path / "kernels-x")
    assert spawned == [] and not aot._lock_file(tmp_path / "kernels-x").exists()


# ---- a real build --------------------------------------------------------------------------

PROBE = """
import json, sys
from burstwatch import aot
from burstwatch import jit
from burstwatch.cli.main import main
code = main(sys.argv[1:])
sys.stderr.write("\\nPROBE " + json.dumps({"numba": "numba" in sys.modules,
                                           "build": str(aot.loaded()),
                                           "missed": jit.missed,
                                           "loaded": sorted(set(sys.modules) & {
                                               "duckdb", "pyarrow", "yaml", "sklearn",
                                               "burstwatch.ledger.store",
                                               "burstwatch.score.conversation"})}) + "\\n")
raise SystemExit(code)
"""


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env[aot.CACHE_VARIABLE] = str(cache)
    env[aot.AHEAD_VARIABLE] = "1"
    env.pop("BURSTWATCH_KERNELS", None)
    return env


def run_probe(cache: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, env=_env(cache),
                          capture_output=True, text=True, timeout=900)
    line = [x for x in proc.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, proc.stderr
    return proc, json.loads(line[-1][len("PROBE "):])


def wait_for_exit(pid: int, timeout: float = 900.0) -> None:
    """Until process ``pid`` (not a child of this one) has ended: its pidfd becomes readable."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"process {pid} still running after {timeout} s"
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The demo's scan with an empty build cache (a first run after an install), and the
    background build it started, waited for."""
    if aot.toolchain_problem():
        pytest.skip(f"no ahead-of-time build here: {aot.toolchain_problem()}")
    cache = tmp_path_factory.mktemp("aot-cache")
    proc = subprocess.run([sys.executable, "-m", "burstwatch", "scan", "pcaps/demo.pcap"],
                          cwd=ROOT, env=_env(cache), capture_output=True, text=True, timeout=900)
    m = re.search(r"in the background \(pid (\d+)\)", proc.stderr)
    assert m, proc.stderr
    wait_for_exit(int(m.group(1)))
    return cache, proc


@pytest.fixture(scope="module")
def built(first_run: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    cache, proc = first_run
    assert proc.returncode == 1, proc.stderr  # the demo's case
    assert not list(cache.glob("*.failed")), [p.read_text() for p in cache.glob("*.failed")]
    assert len(list(cache.glob("kernels-*/index.json"))) == 1, list(cache.iterdir())
    assert not list(cache.glob("*.building"))  # the lock went with the builder
    return cache


@pytest.mark.slow
def test_the_first_run_scans_with_the_jit_and_the_next_loads_the_build(
        built: Path, first_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, proc = first_run
    assert "HIGH" in proc.stdout
    again, probe = run_probe(built, "scan", "pcaps/demo.pcap")
    assert "compiling" not in again.stderr and "background" not in again.stderr
    assert again.stdout == proc.stdout
    assert probe["numba"] is False


@pytest.mark.slow
def test_a_command_with_the_build_imports_only_the_modules_it_uses(built: Path) -> None:
    """``info`` reads and decodes: with the build loaded it imports neither the ledger's
    database nor the rules nor the scorer, as without one (``jit.install_ahead``). ``scan``
    loads the rules and the scorer, and no database either (its ledger holds its rows)."""
    proc, probe = run_probe(built, "info", "pcaps/demo.pcap")
    assert proc.returncode == 0 and "3,660" in proc.stdout, proc.stderr
    assert probe["build"] != "None" and probe["numba"] is False and not probe["missed"]
    assert probe["loaded"] == []
    _, scan = run_probe(built, "scan", "pcaps/demo.pcap")
    assert {"yaml", "burstwatch.score.conversation"} <= set(scan["loaded"])
    assert "duckdb" not in scan["loaded"]


@pytest.mark.slow
def test_warmup_builds_in_the_foreground_and_says_where(tmp_path: Path) -> None:
    if aot.toolchain_problem():
        pytest.skip(f"no ahead-of-time build here: {aot.toolchain_problem()}")
    proc = subprocess.run([sys.executable, "-m", "burstwatch", "warmup"], cwd=ROOT,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "compiling kernels" in proc.stderr and f"(kept in {tmp_path} for later runs)" in proc.stderr
    folder = Path(proc.stdout.strip().removeprefix("kernels: "))
    assert folder.parent == tmp_path and (folder / "index.json").is_file()
    again = subprocess.run([sys.executable, "-m", "burstwatch", "warmup"], cwd=ROOT,
                           env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and again.stdout == proc.stdout and "compiling" not in again.stderr
    scan, probe = run_probe(tmp_path, "scan", "pcaps/demo.pcap")
    assert scan.returncode == 1 and probe["numba"] is False


def test_warmup_refuses_where_builds_are_off(capsys: pytest.CaptureFixture[str]) -> None:
    from burstwatch.cli.main import main

    assert os.environ.get(aot.AHEAD_VARIABLE) == "0"  # tests/conftest.py
    assert main(["warmup"]) == 2
    assert "not built ahead of time here" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["flows", "bursts", "conversations", "alerts"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_build_gives_every_golden_record_without_numba(built: Path, tmp_path: Path,
                                                          stem: str, fmt: str) -> None:
    sys.path.insert(0, str(GOLDEN))
    try:
        from regenerate import COMMANDS
    finally:
        sys.path.remove(str(GOLDEN))
    out = tmp_path / f"{stem}.{fmt}"
    argv = [str(out) if a == "{out}" else a for a in COMMANDS[stem]]
    proc, probe = run_probe(built, *argv)
    assert proc.returncode in (0, 1), proc.stderr
    assert out.read_bytes() == (GOLDEN / f"{stem}.{fmt}").read_bytes()
    assert probe["numba"] is False, f"missing from kernels.json: {probe['missed']}"
    assert probe["build"].startswith(str(built))


@pytest.mark.slow
def test_the_built_scan_says_what_the_jit_scan_says(built: Path) -> None:
    aot_run, probe = run_probe(built, "scan", "pcaps/demo.pcap", "-v")
    assert not probe["numba"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), BURSTWATCH_AHEAD="0")
    jit_run = subprocess.run([sys.executable, "-m", "burstwatch", "scan", "pcaps/demo.pcap", "-v"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert aot_run.returncode == jit_run.returncode == 1  # the demo's case
    assert aot_run.stdout == jit_run.stdout
    assert "HIGH" in aot_run.stdout


BLOCK_NUMBA = """
import importlib.abc, importlib.machinery, sys

class Refuse(importlib.abc.Loader):
    def create_module(self, spec):
        raise ImportError("numba is blocked")
    def exec_module(self, module):
        raise ImportError("numba is blocked")

class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "numba":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            spec.loader = Refuse()
        return spec

sys.meta_path.insert(0, Finder())
"""


@pytest.mark.slow
def test_workers_run_the_build_with_numba_unimportable(built: Path, tmp_path: Path) -> None:
    """``-j 2``: the fork server and its workers load the build too (every process of the run
    starts with a ``sitecustomize`` that lets numba be found, as the build's key needs, but
    not imported)."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "sitecustomize.py").write_text(BLOCK_NUMBA)
    env = _env(built)
    env["PYTHONPATH"] = f"{blocked}{os.pathsep}{ROOT}"
    runs = [subprocess.run([sys.executable, "-m", "burstwatch", "scan", *jobs, "pcaps/demo.pcap",
                            "-v"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
            for jobs in ([], ["-j", "2"])]
    for run in runs:
        assert run.returncode == 1 and "blocked" not in run.stderr, run.stderr
    assert runs[0].stdout == runs[1].stdout and "HIGH" in runs[1].stdout


WALK = """
import json, sys
import numpy as np
from burstwatch import aot, jit
from burstwatch.ingest.pcap import walk_records
aot.ready()
data = np.fromfile("pcaps/demo.pcap", np.uint8)[24:]  # the records, after the file header
data.flags.writeable = False
types = (np.int64, np.uint32, np.uint32, np.int64, np.uint16, np.uint16, np.int64)
out = [np.zeros(5000, t) for t in types]
built = walk_records(data, 24, False, 1000, 262144, 1, *out)
before = jit.jit_loaded()
strided = np.zeros(5000 * 2, np.int64)[::2]  # layout A: not what was built
other = walk_records(data, 24, False, 1000, 262144, 1, strided, *out[1:])
print(json.dumps({"built": list(built), "other": list(other), "jit_before": before,
                  "jit_after": jit.jit_loaded(), "same": bool((strided == out[0]).all())}))
"""


@pytest.mark.slow
def test_arguments_the_build_lacks_go_to_numba_with_the_same_result(built: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", WALK], cwd=ROOT, env=_env(built),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["built"] == result["other"] and result["built"][0] > 0
    assert result["jit_before"] is False and result["jit_after"] is True
    assert result["same"] is True
