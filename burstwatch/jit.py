"""numba's ``njit`` for every kernel module, with numba's set-up trimmed.

When numba first sets up its compiler (the first kernel compiled or loaded from the cache)
it loads support for every kind of callee a kernel might have, two of which cost a command
more than all of burstwatch's kernels take to load:

- numpy's linear algebra: numba imports scipy's BLAS bindings to see whether it can compile
  ``np.dot``, which imports all of ``scipy.linalg`` (0.2 s and about 20 MiB here);
- C functions declared with cffi: numba creates a ``cffi.FFI()``, which imports pycparser and
  builds its lexer's regular expressions (about 0.15 s).

No burstwatch kernel calls either, so numba sets up here, once, with both modules hidden
(numba then compiles no ``np.dot`` and no cffi call, which nothing here makes); afterwards
they import as usual (``train`` fits its model with scikit-learn, which needs scipy).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from numba import njit
from numba.core.registry import cpu_target

__all__ = ["njit"]

UNUSED_BY_KERNELS = ("scipy.linalg.cython_blas", "cffi")


@contextmanager
def _hidden(names: tuple[str, ...]) -> Iterator[None]:
    """While inside, importing any of ``names`` fails at once (ImportError); afterwards each
    is back as it was (imported or not)."""
    missing = object()
    saved = {name: sys.modules.get(name, missing) for name in names}
    for name in names:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is missing:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module  # type: ignore[assignment]


def _set_up_numba() -> None:
    """Load numba's typing and lowering registries now (numba would at the first kernel),
    without the support nothing here uses."""
    with _hidden(UNUSED_BY_KERNELS):
        cpu_target.target_context.refresh()


_set_up_numba()
