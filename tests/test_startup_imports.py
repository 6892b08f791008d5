"""Commands import only what they use: which modules a command loads is checked in a fresh
interpreter (deterministic), never how long it takes (that is bench/bench_startup.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numba", "sklearn", "numpy", "duckdb", "pyarrow", "pyarrow.parquet", "rich", "yaml",
         "plotly", "cryptography")

PROBE = """
import json, sys
from burstwatch.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --version and --help exit from argparse
    code = exc.code
heavy = [m for m in {heavy!r} if m in sys.modules]
sys.stderr.write("\\nLOADED " + json.dumps(heavy) + "\\n")
"""


def loaded(*argv: str) -> set[str]:
    """The heavy packages present in ``sys.modules`` after running ``burstwatch ARGV``."""
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    line = [x for x in proc.stderr.splitlines() if x.startswith("LOADED ")]
    assert line, proc.stderr
    return set(json.loads(line[-1][len("LOADED "):]))


def test_version_and_help_load_nothing_heavy() -> None:
    assert loaded("--version") == set()
    assert loaded("--help") == set()
    assert loaded("scan", "--help") == set()


def test_lookup_loads_no_kernels() -> None:
    mods = loaded("lookup", "--json", "8.8.8.8")
    assert "numpy" in mods  # it did run: the geography tables are numpy arrays
    assert not mods & {"numba", "sklearn", "duckdb", "pyarrow"}


def test_rules_lint_loads_no_kernels() -> None:
    mods = loaded("rules", "lint", str(ROOT / "rules"))
    assert "yaml" in mods  # it did read the rules
    assert not mods & {"numba", "sklearn", "duckdb", "pyarrow"}


@pytest.mark.parametrize("argv", [("scan", "pcaps/demo.pcap"), ("flows", "pcaps/demo.pcap", "-o", "-")])
def test_scan_and_flows_load_no_scikit_learn(argv: tuple[str, ...]) -> None:
    mods = loaded(*argv)
    assert "numba" in mods  # they did run the pipeline
    assert "sklearn" not in mods
    assert "pyarrow.parquet" not in mods  # Parquet is for -o x.parquet and cluster runs
    assert "cryptography" not in mods  # only a QUIC Initial needs AES; the demo has none


@pytest.mark.parametrize("argv", [("info", "pcaps/demo.pcap"), ("flows", "pcaps/demo.pcap", "-o", "-")])
def test_reading_commands_load_no_ledger_database(argv: tuple[str, ...]) -> None:
    """``info`` and ``flows`` keep no ledger and judge nothing: neither DuckDB nor
    scikit-learn is loaded (with a build of the kernels as well, where the scorer is checked
    too: tests/test_aot.py)."""
    mods = loaded(*argv)
    assert "numpy" in mods  # they did run
    assert not mods & {"duckdb", "sklearn"}


def test_scan_sets_up_numba_without_scipy_linalg_or_cffi() -> None:
    """numba's checks for linear algebra and cffi (burstwatch/jit.py) import neither package;
    they stay importable afterwards, and the pipeline's kernels still run."""
    probe = PROBE.replace("{heavy!r}", repr(("numba", "scipy.linalg", "pycparser", "cffi")))
    proc = subprocess.run([sys.executable, "-c", probe, "scan", "pcaps/demo.pcap"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    line = [x for x in proc.stderr.splitlines() if x.startswith("LOADED ")]
    assert line, proc.stderr
    assert json.loads(line[-1][len("LOADED "):]) == ["numba"]
    assert "cases: 1 (" in proc.stdout  # the pipeline ran and found the demo's case


def test_hidden_modules_import_again_after_numba_is_set_up() -> None:
    code = ("import burstwatch.jit, sys\n"
            "assert 'scipy.linalg' not in sys.modules and 'cffi' not in sys.modules\n"
            "import scipy.linalg.cython_blas, cffi\n"
            "cffi.FFI()\n"
            "from numba.np import arraymath\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.stdout.strip() == "ok", proc.stderr


NO_DATABASE_PROBE = """
import json, sys
from burstwatch.cli.main import main

code = main(sys.argv[1:])
sys.stderr.write("\\nSEEN " + json.dumps(["duckdb" in sys.modules, code]) + "\\n")
"""


@pytest.mark.parametrize("report", [False, True])
def test_a_scan_judges_without_duckdb_unless_its_report_asks_the_ledger(
        report: bool, tmp_path: Path) -> None:
    """A one-shot scan's in-memory ledger holds its rows as Arrow tables and answers the
    conversation question from them: DuckDB is never imported. A report reads the ledger in
    SQL: then the rows move into a database. The demo's case either way."""
    extra = ["--report", str(tmp_path / "r.html")] if report else []
    proc = subprocess.run([sys.executable, "-c", NO_DATABASE_PROBE, "scan", "pcaps/demo.pcap",
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=600)
    line = [x for x in proc.stderr.splitlines() if x.startswith("SEEN ")]
    assert line, proc.stderr
    imported, code = json.loads(line[-1][len("SEEN "):])
    assert imported == report
    assert code == 1 and "cases: 1 (" in proc.stdout


THREADS_PROBE = """
import os, sys
import burstwatch.cli
import numpy
print(os.environ.get("OPENBLAS_NUM_THREADS"), len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc (Linux)")
def test_a_command_starts_no_blas_threads_unless_asked() -> None:
    """numpy's OpenBLAS would start a worker thread per core (which spins before it sleeps);
    a command loads numpy with one thread, the interpreter's own, unless the user chose."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", THREADS_PROBE], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600, check=True).stdout.split()
    assert out == ["1", "1"]
    env["OPENBLAS_NUM_THREADS"] = "3"
    out = subprocess.run([sys.executable, "-c", THREADS_PROBE], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600, check=True).stdout.split()
    assert out[0] == "3"
