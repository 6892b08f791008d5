"""Commands import only what they use: which modules a command loads is checked in a fresh
interpreter (deterministic), never how long it takes (that is bench/bench_startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numba", "sklearn", "numpy", "duckdb", "pyarrow", "rich", "yaml", "plotly")

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
