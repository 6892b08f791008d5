"""The kernels compiled ahead of time: one extension module built from the recorded
signatures (``kernels.json``), cached per installation, loaded without numba.

A command that runs kernels first calls ``ready``. Where a build for this installation exists
(same burstwatch sources, numba, Python and CPU: ``build_key``) it is loaded, a few
milliseconds, and numba is never imported unless a kernel is called with argument types the
build lacks (``burstwatch/jit.py`` checks each call). Where none exists, the run goes on with
numba's JIT (as fast on a first run: the build compiles the same kernels, and more), and as
it exits it starts the build in the background, detached and at the lowest priority, so the
runs after it load the build (``burstwatch warmup`` builds in the foreground, for images and
scripts). An install from a wheel built on this machine (``pip install .``: ``setup.py``)
carries its build inside the package (``_ahead``, ``build_installed``), so even the first
run after the install loads it; it is used only where Python, the CPU, numpy and the
sources are those it was built for (``installed_key``). numba's ahead-of-time compiler
(``numba.pycc``) compiles every recorded signature for this CPU (its features, as numba's JIT
would) into a Python extension, and the C compiler links it with numba's runtime. Nothing is
written where the build is used until it is complete (a folder renamed into place). A machine
without a C compiler or Python's headers (``python3-dev``) keeps numba's JIT, and is told so
once.

Two things in numba 0.68's ahead-of-time compiler are set right in the build process:
- it compiles every exported function with one ``Flags`` object, which compiling a function
  may change (SSA turned off), after which the next one fails to type; each gets a copy;
- it releases the GIL in no exported function; those numba would run without it
  (``nogil=True``) do so here too, as the pipeline's threads need.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from burstwatch.jit import MODE_VARIABLE, install_ahead, jit_loaded
from burstwatch.sidecompiler import MANIFEST, core_is_free, manifest

PACKAGE = Path(__file__).resolve().parent
FORMAT = "1"  # of the build folder; a new one is built when it changes
CACHE_VARIABLE = "BURSTWATCH_CACHE_DIR"
AHEAD_VARIABLE = "BURSTWATCH_AHEAD"  # "0": never build or load kernels ahead of time
BUILD_SECONDS = 900.0  # a build process taking longer than this is ended
UNUSED_DAYS = 30.0  # a build no run has loaded for this long is removed by the next build
# Built in a process of their own where a second core is free (``burstwatch warmup``): the
# record walks, the decoder and the flow table (the rest is the classifier, the score and the
# exports; the decoder alone was a third of the compile time).
FIRST_PART = ("burstwatch.ingest.", "burstwatch.decode.", "burstwatch.flows.")

# The build made when the wheel was built (setup.py), installed with the package.
INSTALLED = PACKAGE / "_ahead"
INSTALLED_KEY = "key.txt"

_loaded: Path | None = None


class BuildFailed(Exception):
    """The kernels could not be built ahead of time (the reason, one line)."""


def wanted() -> bool:
    """Whether kernels are built and loaded ahead of time in this process."""
    return (os.environ.get(AHEAD_VARIABLE, "1") != "0"
            and os.environ.get(MODE_VARIABLE, "").strip().lower() != "jit")


def cache_root() -> Path:
    """Where builds are kept: ``$BURSTWATCH_CACHE_DIR``, else the user's cache folder."""
    explicit = os.environ.get(CACHE_VARIABLE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "burstwatch"


def build_key() -> str:
    """What a build depends on: every source file of the package (path, size, modification
    time) and the manifest, numba's installation, Python, and this CPU (model and features:
    the build uses them all)."""
    h = hashlib.sha256(f"{FORMAT}\n{sys.version}\n{sys.platform}\n{os.uname().machine}\n".encode())
    for rel, path in _source_files(PACKAGE):
        st = os.stat(path)
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    spec = importlib.util.find_spec("numba")
    if spec is not None and spec.origin:
        numba_dir = Path(spec.origin).parent
        for name in ("__init__.py", "_version.py"):
            with contextlib.suppress(OSError):
                st = (numba_dir / name).stat()
                h.update(f"{numba_dir / name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(_cpu_description().encode())
    return h.hexdigest()[:20]


def installed_key(package: Path = PACKAGE) -> str:
    """What a build made at install depends on: Python, this CPU, numpy's version and the
    package's sources and manifest by content (an install gives its files new modification
    times, so these cannot be compared as ``build_key`` compares them)."""
    import numpy

    h = hashlib.sha256(f"{FORMAT}\n{sys.version}\n{sys.platform}\n{os.uname().machine}\n"
                       f"numpy {numpy.__version__}\n".encode())
    for rel, path in _source_files(package):
        with open(path, "rb") as f:
            content = f.read()
        h.update(f"{rel}\0{len(content)}\0".encode())
        h.update(content)
    h.update(_cpu_description().encode())
    return h.hexdigest()[:20]


def _source_files(package: Path) -> Iterator[tuple[str, str]]:
    """Every source file of ``package`` and its manifest, in a fixed order: (relative, path)."""
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py") or name == MANIFEST.name:
                path = os.path.join(folder, name)
                yield os.path.relpath(path, package), path


def installed_build() -> Path | None:
    """The build installed with the package, if it was made for this very installation."""
    try:
        key = (INSTALLED / INSTALLED_KEY).read_text(encoding="ascii").strip()
    except OSError:
        return None
    return INSTALLED if key == installed_key() and (INSTALLED / "index.json").is_file() else None


def build_installed(package: Path, processes: int = 1) -> Path:
    """Build the kernels into ``package/_ahead`` (the copy of the package a wheel is made
    from) and record what they were built for. Raises ``BuildFailed``."""
    target = package / INSTALLED.name
    shutil.rmtree(target, ignore_errors=True)
    build(target, processes)
    try:
        (target / INSTALLED_KEY).write_text(installed_key(package) + "\n", encoding="ascii")
    except OSError as exc:
        raise BuildFailed(f"cannot write the build ({exc.strerror or exc})") from None
    return target


def _cpu_description() -> str:
    """The first processor's model and feature flags (Linux); the machine name elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read().split("\n\n", 1)[0]
    except OSError:
        return os.uname().machine
    keep = ("vendor_id", "cpu family", "model", "model name", "flags", "Features", "CPU part")
    return "\n".join(line for line in text.splitlines() if line.split(":", 1)[0].strip() in keep)


def build_dir(key: str | None = None) -> Path:
    return cache_root() / f"kernels-{key or build_key()}"


def loaded() -> Path | None:
    """The build this process runs its kernels from, if any."""
    return _loaded


def load(directory: Path) -> int:
    """Import the build's extension modules and give each kernel its compiled signatures, as
    its module is imported (``jit.install_ahead``); returns how many."""
    global _loaded
    index = json.loads((directory / "index.json").read_text(encoding="utf-8"))
    done = 0
    for part in index["modules"]:
        spec = importlib.util.spec_from_file_location(part["name"], directory / part["file"])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {directory / part['file']}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        done += install_ahead([(k["module"], k["kernel"], k["args"], getattr(module, k["symbol"]))
                               for k in part["kernels"]])
    _loaded = directory
    with contextlib.suppress(OSError):
        os.utime(directory / "index.json")  # in use: kept by ``prune``
    return done


def prune(root: Path, keep: Path, max_age_days: float = UNUSED_DAYS) -> list[Path]:
    """Remove the builds in ``root`` other than ``keep`` that no run has loaded for
    ``max_age_days`` (other installations sharing the cache folder keep theirs while they
    run), and their markers; returns what was removed."""
    cutoff = time.time() - max_age_days * 86400
    gone = []
    for old in root.glob("kernels-*"):
        if old == keep or old.name.startswith(keep.name):
            continue
        try:
            used = (old / "index.json").stat().st_mtime if old.is_dir() else old.stat().st_mtime
        except OSError:
            used = 0.0
        if used < cutoff:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    old.unlink()
            gone.append(old)
    return gone


def ready(build_later: bool = True) -> Path | None:
    """Load this installation's build; None where kernels run by numba's JIT instead: not
    wanted, numba already loaded, or no build yet. Without a build, and with
    ``build_later`` (a command; not a worker process, whose command does it), one is started
    in the background when this process exits (``schedule``): the run goes on at the JIT's
    pace, as fast as a build would be, and later runs load the build. Never raises."""
    if _loaded is not None:
        return _loaded
    if not wanted() or jit_loaded():
        return None
    installed = installed_build()
    if installed is not None and _load_or_say(installed) is not None:
        return installed
    target = build_dir()
    if (target / "index.json").is_file():
        return _load_or_say(target)
    if build_later:
        schedule(target)
    return None


def build_now(on_build: Callable[[bool], None] | None = None) -> Path:
    """Build this installation's kernels here and now (``on_build(True)`` before,
    ``on_build(False)`` after), unless built already, and load them. Raises BuildFailed."""
    if _loaded is not None:
        return _loaded
    installed = installed_build()
    if installed is not None and _load_or_say(installed) is not None:
        return installed
    target = build_dir()
    if not (target / "index.json").is_file():
        if on_build is not None:
            on_build(True)
        try:
            build(target, processes=2 if core_is_free() else 1)
        finally:
            if on_build is not None:
                on_build(False)
    if _load_or_say(target) is None:
        raise BuildFailed(f"the build in {target} does not load")
    return target


def _load_or_say(target: Path) -> Path | None:
    try:
        load(target)
    except (OSError, ImportError, ValueError, KeyError, AttributeError) as exc:
        print(f"burstwatch: note: the kernels built in {target} do not load ({exc}); "
              "numba compiles them instead", file=sys.stderr)
        return None
    return target


def schedule(target: Path) -> None:
    """Start the build of ``target`` in the background when this process exits, unless one
    is running or failed before (or cannot be made here: said once, on stderr)."""
    failed = _failed_marker(target)
    if failed.exists() or _builder_running(target):
        return
    problem = toolchain_problem()
    if problem:
        _remember_failure(target, problem)
        return
    atexit.register(_start_background_build, target)


def _failed_marker(target: Path) -> Path:
    return target.with_name(target.name + ".failed")


def _lock_file(target: Path) -> Path:
    return target.with_name(target.name + ".building")


def _remember_failure(target: Path, reason: str) -> None:
    failed = _failed_marker(target)
    with contextlib.suppress(OSError):
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{reason}\n", encoding="utf-8")
    print(f"burstwatch: note: kernels are compiled by numba at each start instead of once "
          f"ahead of time: {reason} (remove {failed} to try again)", file=sys.stderr)


def _builder_running(target: Path) -> bool:
    """Whether the background build's lock names a live process."""
    try:
        pid = int(_lock_file(target).read_text(encoding="ascii").strip() or 0)
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_background_build(target: Path) -> None:
    """A detached, low-priority process that builds ``target``; its output goes nowhere
    (a failure is kept in ``<target>.failed``)."""
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(target.parent, os.W_OK | os.X_OK):
            return  # a cache folder this user cannot write: nothing to build into
        proc = subprocess.Popen(
            [sys.executable, "-c", _program("background_main"), str(target)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        _lock_file(target).write_text(f"{proc.pid}\n", encoding="ascii")
        print("burstwatch: building the kernels ahead of time in the background "
              f"(pid {proc.pid}); later runs start faster", file=sys.stderr)


def background_main(argv: list[str]) -> None:
    """The background build: one process at the lowest priority, so the machine's other work
    (the next run included) goes first."""
    target = Path(argv[0])
    with contextlib.suppress(OSError):
        os.nice(19)
    try:
        if not (target / "index.json").is_file():
            build(target, processes=1)
    except BuildFailed as exc:
        with contextlib.suppress(OSError):
            _failed_marker(target).write_text(f"{exc}\n", encoding="utf-8")
    finally:
        with contextlib.suppress(OSError):
            _lock_file(target).unlink()


def toolchain_problem() -> str | None:
    """Why no extension can be built here, if it cannot."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None and shutil.which("cc") is None:
        return f"no C compiler ({compiler}) found"
    include = sysconfig.get_paths().get("include")
    if not include or not os.path.isfile(os.path.join(include, "Python.h")):
        return f"Python's C headers are missing ({include}/Python.h; install python3-dev)"
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed"
    return None


def plan(kernels: list[dict[str, Any]], processes: int) -> list[list[int]]:
    """The manifest's entries each build process compiles (one extension module each)."""
    if processes < 2:
        return [list(range(len(kernels)))]
    first = [i for i, k in enumerate(kernels) if k["module"].startswith(FIRST_PART)]
    rest = [i for i, k in enumerate(kernels) if not k["module"].startswith(FIRST_PART)]
    return [p for p in (first, rest) if p]


def build(target: Path, processes: int = 1) -> None:
    """Build every recorded kernel signature into ``target`` (a folder, renamed into place
    when complete), in ``processes`` processes. Raises ``BuildFailed``."""
    problem = toolchain_problem()
    if problem:
        raise BuildFailed(problem)
    kernels = manifest()
    parts = plan(kernels, processes)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    except OSError as exc:
        raise BuildFailed(f"cannot write to {target.parent} ({exc.strerror or exc})") from None
    try:
        env = dict(os.environ, **{MODE_VARIABLE: "jit"})
        procs = [subprocess.Popen([sys.executable, "-c", _program(), str(work), f"_kernels_{n}",
                                   ",".join(map(str, part))],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env)
                 for n, part in enumerate(parts)]
        errors: list[str] = []
        try:
            for proc in procs:
                try:
                    _, err = proc.communicate(timeout=BUILD_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    _, err = proc.communicate()
                    errors.append(f"a build process took over {BUILD_SECONDS:.0f} s")
                    continue
                if proc.returncode != 0:
                    lines = [x for x in err.decode(errors="replace").splitlines() if x.strip()]
                    errors.append(lines[-1].strip() if lines else f"exit status {proc.returncode}")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if errors:
            raise BuildFailed(f"the build failed: {errors[0]}")
        modules = [json.loads((work / f"_kernels_{n}.json").read_text(encoding="utf-8"))
                   for n in range(len(parts))]
        (work / "index.json").write_text(json.dumps({"format": FORMAT, "modules": modules}),
                                         encoding="utf-8")
        try:
            os.rename(work, target)
        except OSError:
            if not (target / "index.json").is_file():  # not a concurrent run's build
                raise
        prune(target.parent, target)
    except OSError as exc:
        raise BuildFailed(f"cannot write the build ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _program(function: str = "build_main") -> str:
    """A build process's code: it imports this very package, not whatever ``burstwatch``
    the working directory holds."""
    return (f"import sys; sys.path.insert(0, {str(PACKAGE.parent)!r}); "
            f"from burstwatch.aot import {function}; {function}(sys.argv[1:])")


def build_main(argv: list[str]) -> None:
    """A build process: ``FOLDER NAME INDICES`` compiles the manifest's entries ``INDICES``
    (comma-separated) into the extension ``FOLDER/NAME`` and describes it in
    ``FOLDER/NAME.json``."""
    folder, name, which = Path(argv[0]), argv[1], [int(i) for i in argv[2].split(",")]
    compile_extension(folder, name, [(i, manifest()[i]) for i in which])


def import_alone(module: str) -> types.ModuleType:
    """Import a kernel's module without running its packages' ``__init__`` (which gather
    each package's names and import DuckDB, pyarrow, the rules): a wheel is built with numba
    and numpy only (``buildsystem/``), and a kernel's module needs no more."""
    if module in sys.modules:
        return sys.modules[module]
    parts = module.split(".")
    for depth in range(1, len(parts)):
        name = ".".join(parts[:depth])
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(PACKAGE.parent.joinpath(*parts[:depth]))]
            sys.modules[name] = package
    return importlib.import_module(module)


def compile_extension(folder: Path, name: str, entries: list[tuple[int, dict[str, Any]]]) -> None:
    """numba's ahead-of-time compiler, for this CPU, with the two corrections above."""

    from llvmlite import binding as llvm
    from numba.core import typing
    from numba.core.codegen import AOTCPUCodegen
    from numba.pycc import CC
    from numba.pycc import compiler as pycc_compiler
    from numba.pycc.compiler import ExportEntry

    from burstwatch.sidecompiler import argument_type

    # This CPU's features too, not only its model's (a virtual machine may lack some).
    AOTCPUCodegen._customize_tm_features = (  # type: ignore[method-assign]
        lambda self: llvm.get_host_cpu_features().flatten())
    nogil: dict[Any, bool] = {}
    compile_extra = pycc_compiler.compile_extra

    def compile_one(typing_context: Any, target_context: Any, func: Any, args: Any,
                    return_type: Any, flags: Any, locals: Any, library: Any = None) -> Any:
        own = flags.copy()
        own.release_gil = nogil.get(func, False)
        return compile_extra(typing_context, target_context, func, args, return_type, own,
                             locals, library=library)

    pycc_compiler.compile_extra = compile_one  # type: ignore[assignment]
    cc = CC(name, source_module="burstwatch.aot")
    cc.output_dir = str(folder)
    cc.target_cpu = "host"
    described = []
    for index, entry in entries:
        dispatcher = getattr(import_alone(entry["module"]), entry["kernel"])
        nogil[dispatcher.py_func] = bool(dispatcher.targetoptions.get("nogil", False))
        args = tuple(argument_type(a) for a in entry["args"])
        symbol = f"k{index:03d}"
        cc._exported_functions[symbol] = ExportEntry(symbol, typing.signature(None, *args),
                                                     dispatcher.py_func)
        described.append({"symbol": symbol, "module": entry["module"],
                          "kernel": entry["kernel"], "args": entry["args"]})
    cc.compile()
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "file": cc.output_file,
                                                     "kernels": described}), encoding="utf-8")
