"""Command-line interface: one module per command, one place mapping errors to exit codes.

Before numpy loads, a command asks OpenBLAS for no thread pool of its own (unless the user
set ``OPENBLAS_NUM_THREADS``): burstwatch does no floating-point linear algebra, and the pool's
worker thread, started with numpy, spins for about 0.1 s of CPU before it sleeps, time taken
from the reading, decoding and flow threads on a small machine (docs/benchmarks.md).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
