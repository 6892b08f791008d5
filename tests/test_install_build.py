"""Kernels compiled into the wheel (setup.py, buildsystem/, ``aot.build_installed``): a wheel
built here carries a build its first run loads (numba never imported, nothing compiled, no
background build), used only where the sources, Python, numpy and CPU are those it was made
for; building one needs numba and numpy only."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from burstwatch import aot
from burstwatch.sidecompiler import manifest

ROOT = Path(__file__).resolve().parent.parent


def _backend() -> Any:
    sys.path.insert(0, str(ROOT / "buildsystem"))
    try:
        import burstwatch_wheel
    finally:
        sys.path.remove(str(ROOT / "buildsystem"))
    return burstwatch_wheel


def test_a_wheel_build_asks_for_numba_and_numpy_as_the_package_requires_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    monkeypatch.chdir(ROOT)  # pip runs the backend in the project's folder
    backend = _backend()
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [d for d in dependencies if re.match(r"(numba|numpy)\b", d)]
    assert len(wanted) == 2
    wheel = backend.get_requires_for_build_wheel()
    editable = backend.get_requires_for_build_editable()
    assert set(wanted) <= set(wheel)
    assert set(wheel) - set(wanted) == set(editable)  # nothing else: no DuckDB, no pyarrow
    assert not any(d.startswith("numba") for d in editable)


def test_the_installed_key_follows_contents_not_modification_times(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("a.py", "sub/b.py", "kernels.json"):
        (package / name).write_text("x = 1\n")
    (package / "notes.txt").write_text("ignored\n")
    first = aot.installed_key(package)
    st = (package / "sub" / "b.py").stat()
    os.utime(package / "sub" / "b.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    (package / "notes.txt").write_text("ignored too\n")
    assert aot.installed_key(package) == first  # an install's new times change nothing
    (package / "sub" / "b.py").write_text("x = 2\n")  # same size, other content
    assert aot.installed_key(package) != first
    (package / "sub" / "b.py").write_text("x = 1\n")
    assert aot.installed_key(package) == first
    (package / "kernels.json").write_text("{}\n")
    assert aot.installed_key(package) != first


def test_the_installed_build_is_loaded_only_where_its_key_matches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = tmp_path / "_ahead"
    installed.mkdir()
    (installed / "index.json").write_text("{}")
    monkeypatch.setattr(aot, "INSTALLED", installed)
    monkeypatch.setattr(aot, "installed_key", lambda package=None: "k1")
    monkeypatch.setattr(aot, "_loaded", None)
    monkeypatch.setenv(aot.CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setenv(aot.AHEAD_VARIABLE, "1")
    monkeypatch.setattr(aot, "jit_loaded", lambda: False)
    monkeypatch.setattr(aot, "toolchain_problem", lambda: None)
    loads: list[Path] = []
    monkeypatch.setattr(aot, "load", lambda directory: loads.append(directory) or 1)
    scheduled: list[tuple[Any, ...]] = []
    monkeypatch.setattr(aot.atexit, "register", lambda *a: scheduled.append(a))

    assert aot.installed_build() is None  # no key written: not made for this installation
    (installed / aot.INSTALLED_KEY).write_text("k0\n")
    assert aot.installed_build() is None
    assert aot.ready() is None and loads == [] and len(scheduled) == 1  # the cache's way
    (installed / aot.INSTALLED_KEY).write_text("k1\n")
    assert aot.installed_build() == installed
    scheduled.clear()
    assert aot.ready() == installed and loads == [installed] and scheduled == []
    (installed / "index.json").unlink()
    assert aot.installed_build() is None


IMPORT_ALONE = """
import importlib.abc, sys
ALLOWED = set(sys.stdlib_module_names) | {"numpy", "numba", "llvmlite", "burstwatch"}
blocked = set()
class OnlyNumbaAndNumpy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in ALLOWED:
            blocked.add(top)
            raise ImportError(f"{name} is not in a wheel's build environment")
        return None
sys.meta_path.insert(0, OnlyNumbaAndNumpy())
from burstwatch.aot import import_alone
from burstwatch.sidecompiler import manifest
for entry in manifest():
    getattr(import_alone(entry["module"]), entry["kernel"]).py_func
import numpy
try:
    import duckdb
except ImportError:
    print("blocked", sorted(blocked))
"""


def test_every_kernel_module_imports_alone_with_numba_and_numpy_only() -> None:
    proc = subprocess.run([sys.executable, "-c", IMPORT_ALONE], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert "duckdb" in proc.stdout  # the block holds: DuckDB could not be imported
    assert len({e["module"] for e in manifest()}) >= 10


# ---- a real wheel ---------------------------------------------------------------------------

PROBE = """
import json, sys
from burstwatch import aot
from burstwatch.cli.main import main
code = main(sys.argv[1:])
sys.stderr.write("\\nPROBE " + json.dumps({"numba": "numba" in sys.modules,
                                           "build": str(aot.loaded()),
                                           "package": aot.PACKAGE.as_posix()}) + "\\n")
raise SystemExit(code)
"""


@pytest.mark.slow
def test_a_wheel_carries_kernels_its_first_run_loads_without_numba(tmp_path: Path) -> None:
    if aot.toolchain_problem():
        pytest.skip(f"no ahead-of-time build here: {aot.toolchain_problem()}")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("burstwatch", "buildsystem", "rules"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop(aot.AHEAD_VARIABLE, None)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("burstwatch-*.whl")
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert f"-{tag}-{tag}-" in wheel.name and not wheel.name.endswith("-none-any.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target",
                    str(target), str(wheel)], env=env, capture_output=True, check=True,
                   timeout=600)
    installed = target / "burstwatch" / "_ahead"
    assert (installed / "index.json").is_file() and (installed / aot.INSTALLED_KEY).is_file()
    assert list(installed.glob("_kernels_*.so")) or list(installed.glob("_kernels_*.pyd"))

    cache = tmp_path / "cache"
    run_env = dict(env, PYTHONPATH=str(target), **{aot.CACHE_VARIABLE: str(cache),
                                                    aot.AHEAD_VARIABLE: "1"})
    run_env.pop("BURSTWATCH_KERNELS", None)
    # (--rules: a --target install leaves the rules' data files out of the prefix)
    first = subprocess.run([sys.executable, "-c", PROBE, "scan", str(ROOT / "pcaps" / "demo.pcap"),
                            "--rules", str(ROOT / "rules")], cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=900)
    line = [x for x in first.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, first.stderr
    probe = json.loads(line[-1][len("PROBE "):])
    assert probe["package"] == (target / "burstwatch").as_posix()  # the installed copy ran
    assert probe["build"] == str(installed) and probe["numba"] is False
    assert "compiling" not in first.stderr and "background" not in first.stderr
    assert not cache.exists() or not list(cache.iterdir())  # nothing built after it
    jit = subprocess.run([sys.executable, "-m", "burstwatch", "scan",
                          str(ROOT / "pcaps" / "demo.pcap"), "--rules", str(ROOT / "rules")],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert first.returncode == jit.returncode == 1
    assert first.stdout == jit.stdout  # the demo's case, as numba's JIT finds it
