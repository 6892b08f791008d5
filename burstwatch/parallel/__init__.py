"""Several processes for one capture: flows sharded by key hash, rows merged step by step.

``merge`` puts the shards' rows of one step back into the order one process gives;
``local`` runs the shards as worker processes on this machine.
"""

from burstwatch.parallel.local import ParallelError, default_jobs, run_sharded

__all__ = ["ParallelError", "default_jobs", "run_sharded"]
