"""Each kernel helper is compiled once per run: a literal argument (a counter starting at 0,
a module constant, a tuple of ports) types as that one value, and numba would compile the
helper again for it, seconds of every first run. Checked on the dispatchers after the demo's
pipeline has run in a process with an empty numba cache (a helper inside a kernel loaded
from the cache is not compiled at all, so only a fresh compile shows the count)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_RUN = """
import json
from burstwatch.config import load_settings
from burstwatch.enrich.annotate import FlowAnnotator
from burstwatch.enrich.encryption import cleartext, prefilter
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows import kernel
from burstwatch.pipeline import RunStats, run_flows

settings, geo = load_settings(), GeoDatabase.bundled()
rows = sum(len(b) for b in run_flows([{demo!r}], None, RunStats(),
                                     lambda: FlowAnnotator(geo, settings)))
helpers = [kernel.finish_flow, kernel._emit_row, kernel._complete_run, kernel._roll_if_due,
           kernel._close_stale, kernel._reset_acc, cleartext._on, prefilter._repeated_version]
print(json.dumps({{"rows": rows,
                   "signatures": {{h.py_func.__name__: len(h.signatures) for h in helpers}}}}))
"""


@pytest.mark.slow
def test_flow_and_classifier_helpers_compile_once(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "BURSTWATCH_SIDE_COMPILER": "0"}
    done = subprocess.run([sys.executable, "-c", _RUN.format(demo=str(ROOT / "pcaps" / "demo.pcap"))],
                          capture_output=True, text=True, env=env, timeout=900, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["rows"] > 0
    signatures = got["signatures"]
    assert signatures == {name: 1 for name in signatures}, signatures
