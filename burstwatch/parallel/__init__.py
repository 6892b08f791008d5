"""Several processes for one capture: flows sharded by key hash, rows merged step by step.

``merge`` puts the shards' rows of one step back into the order one process gives;
``local`` runs the shards as worker processes on this machine. Both load numpy, so they are
loaded on first use: the parser imports ``parallel.options`` without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from burstwatch.lazy import lazy_attributes

if TYPE_CHECKING:
    from burstwatch.parallel.local import ParallelError, run_sharded
    from burstwatch.parallel.plan import default_jobs

__all__ = ["ParallelError", "default_jobs", "run_sharded"]

__getattr__ = lazy_attributes(__name__, {
    "ParallelError": "local", "default_jobs": "plan", "run_sharded": "local"})
