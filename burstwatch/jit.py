"""``njit`` for every kernel module: the kernels compiled ahead of time where a build of them
matches, numba's JIT otherwise, loaded only then.

Importing numba and setting up its compiler costs a command about half a second and 110 MiB
(llvmlite's LLVM alone is 68 MiB of it), more than the demo capture takes to scan. So a
kernel is a ``Kernel``: a plain object that, called from Python, runs the ahead-of-time build
of its signature (``burstwatch/aot.py`` builds one extension module from the recorded
signatures, ``kernels.json``, after the first run) when the arguments have exactly the types
it was built for, and otherwise hands the call to a numba dispatcher. The first call that
needs one loads numba (``use_jit``), and each kernel gets its dispatcher when it needs one;
numba types a ``Kernel`` as that dispatcher, so kernels it compiles call (and inline) their
helpers exactly as if numba had decorated them at import.

``BURSTWATCH_KERNELS=jit`` skips all of this: numba decorates every kernel at import, as
before (the kernel manifest and the ahead-of-time build itself run so).

When numba loads, it sets up without two of its callee kinds, whose support costs more than
all of burstwatch's kernels take to load:

- numpy's linear algebra: numba imports scipy's BLAS bindings to see whether it can compile
  ``np.dot``, which imports all of ``scipy.linalg`` (0.2 s and about 20 MiB here);
- C functions declared with cffi: numba creates a ``cffi.FFI()``, which imports pycparser and
  builds its lexer's regular expressions (about 0.15 s).

No burstwatch kernel calls either, so numba sets up with both modules hidden; afterwards they
import as usual (``train`` fits its model with scikit-learn, which needs scipy).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["Kernel", "njit", "use_jit", "jit_loaded", "when_jit_loads", "install_ahead"]

UNUSED_BY_KERNELS = ("scipy.linalg.cython_blas", "cffi")
MODE_VARIABLE = "BURSTWATCH_KERNELS"  # "jit": numba decorates every kernel at import

_lock = threading.RLock()
_kernels: dict[tuple[str, str], Kernel] = {}  # (module, name) -> kernel
# Ahead-of-time builds of kernels whose modules are not imported yet: each kernel takes its
# own when its module defines it, so loading a build imports nothing (``install_ahead``).
_pending: dict[tuple[str, str], list[tuple[tuple[ArgumentType, ...], Callable[..., Any]]]] = {}
_loaded_hooks: list[Callable[[], None]] = []
_numba_njit: Any = None  # numba.njit once numba is set up
# The call no build had (kernel and argument types) that made numba load, if one did (for
# tests, benchmarks and a stale kernels.json).
missed: list[str] = []


class ArgumentType:
    """One argument's type in a built signature, checked against a value as numba's ``typeof``
    would type it. An array built read-only or of layout A also takes a writable or
    contiguous one (it only reads it, through its strides); never the other way round."""

    __slots__ = ("scalar", "dtype", "ndim", "any_layout", "writable")

    def __init__(self, part: dict[str, Any]) -> None:
        self.scalar: str | None = part.get("scalar")
        self.dtype = None if self.scalar else np.dtype(part["dtype"])
        self.ndim = int(part.get("ndim", 0))
        layout = part.get("layout", "A")
        if self.scalar is None and layout not in ("C", "A"):
            raise ValueError(f"array layout {layout!r} is not built ahead of time")
        self.any_layout = layout == "A"
        self.writable = not part.get("readonly", True)

    def accepts(self, value: Any) -> bool:
        if self.scalar is not None:
            return scalar_type(value) == self.scalar
        if not isinstance(value, np.ndarray):
            return False
        dtype = value.dtype
        if (dtype is not self.dtype and dtype != self.dtype) or value.ndim != self.ndim:
            return False
        flags = value.flags  # a new object per read: read once
        return (self.any_layout or flags.c_contiguous) and (not self.writable or flags.writeable)


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        layout = "C" if value.flags.c_contiguous else "A"
        return f"{value.dtype}[{value.ndim}d {layout}{'' if value.flags.writeable else ' ro'}]"
    return scalar_type(value) or type(value).__name__


def scalar_type(value: Any) -> str | None:
    """numba's type name for a scalar argument (``typeof``), None for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return "int64"
        return "uint64" if 0 <= value < 2**64 else None
    if isinstance(value, float):
        return "float64"
    if isinstance(value, np.generic) and value.dtype.kind in "iuf":
        return value.dtype.name
    return None


class Kernel:
    """A kernel: its Python function, numba's options for it, the ahead-of-time builds of its
    signatures (``install_ahead``) and, once a call needs it, numba's dispatcher."""

    def __init__(self, py_func: Callable[..., Any], options: dict[str, Any]) -> None:
        functools.update_wrapper(self, py_func)
        self.py_func = py_func
        self.options = options
        self.built: list[tuple[tuple[ArgumentType, ...], Callable[..., Any]]] = []
        self._dispatcher: Any = None

    def __call__(self, *args: Any) -> Any:
        for types, compiled in self.built:
            if len(types) == len(args) and all(t.accepts(a) for t, a in zip(types, args, strict=True)):
                return compiled(*args)
        if _numba_njit is None:
            missed.append(f"{self.py_func.__module__}.{self.py_func.__qualname__}"
                          f"({', '.join(_describe(a) for a in args)})")
        return self.dispatcher(*args)

    @property
    def dispatcher(self) -> Any:
        """numba's dispatcher of this kernel (loading numba first if it is not yet)."""
        if self._dispatcher is None:
            use_jit()
            with _lock:
                if self._dispatcher is None:
                    self._dispatcher = _numba_njit(**self.options)(self.py_func)
        return self._dispatcher

    @property
    def _numba_type_(self) -> Any:
        # How numba types this object where a kernel it compiles names it (numba's typeof).
        return self.dispatcher._numba_type_

    def __getattr__(self, name: str) -> Any:
        # What numba's dispatcher has (signatures, overloads, targetoptions, stats, ...).
        if name.startswith("__") or name in ("_dispatcher", "py_func", "options", "built"):
            raise AttributeError(name)
        return getattr(self.dispatcher, name)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return _kernel_named, (self.py_func.__module__, self.py_func.__qualname__)

    def __repr__(self) -> str:
        return f"<kernel {self.py_func.__module__}.{self.py_func.__qualname__}>"


def _kernel_named(module: str, qualname: str) -> Any:
    import importlib

    return getattr(importlib.import_module(module), qualname)


def njit(*args: Any, **options: Any) -> Any:
    """numba's ``njit``, deferred: ``@njit`` and ``@njit(cache=True, ...)`` give a ``Kernel``
    until numba is loaded, numba's dispatcher afterwards (and always under
    ``BURSTWATCH_KERNELS=jit``)."""

    def decorate(func: Callable[..., Any]) -> Any:
        with _lock:
            key = (func.__module__, func.__qualname__)
            builds = _pending.pop(key, [])
            # A module imported after numba loaded (a call no build had) still runs the
            # builds it has; only a kernel without any is numba's at once.
            if _numba_njit is not None and not builds:
                return _numba_njit(**options)(func)
            kernel = Kernel(func, options)
            kernel.built.extend(builds)
            _kernels[key] = kernel
            return kernel

    if args and callable(args[0]) and len(args) == 1 and not options:
        return decorate(args[0])
    if args:
        raise TypeError("njit takes the function, or keyword options only")
    return decorate


def jit_loaded() -> bool:
    """Whether numba is loaded (kernels then get their dispatchers when a call needs one)."""
    return _numba_njit is not None


def when_jit_loads(hook: Callable[[], None]) -> None:
    """Call ``hook`` once numba is loaded (now, if it is)."""
    with _lock:
        if _numba_njit is None:
            _loaded_hooks.append(hook)
            return
    hook()


def forget_jit_hook(hook: Callable[[], None]) -> None:
    with _lock:
        if hook in _loaded_hooks:
            _loaded_hooks.remove(hook)


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


def use_jit() -> None:
    """Load numba; each kernel then gets its dispatcher when first asked for it. A ``Kernel``
    stays where it is (a module's global): numba types it as its dispatcher
    (``Kernel._numba_type_``), so kernels it compiles call and inline their helpers as if
    numba had decorated them at import."""
    global _numba_njit
    with _lock:
        if _numba_njit is not None:
            return
        import numba
        from numba.core.registry import cpu_target

        # Load numba's typing and lowering registries now (numba would at the first kernel),
        # without the support nothing here uses.
        with _hidden(UNUSED_BY_KERNELS):
            cpu_target.target_context.refresh()
        _numba_njit = numba.njit
        hooks, _loaded_hooks[:] = list(_loaded_hooks), []
    for hook in hooks:
        hook()


def install_ahead(entries: Sequence[tuple[str, str, list[dict[str, Any]], Callable[..., Any]]]
                  ) -> int:
    """Give kernels their ahead-of-time builds: (module, kernel, argument types, compiled
    function) each; returns how many builds were taken. A kernel already defined gets its
    build now, any other when its module is imported (``njit``): a command imports only the
    modules it uses, not every module that has a kernel."""
    with _lock:
        for module, name, parts, compiled in entries:
            build = (tuple(ArgumentType(p) for p in parts), compiled)
            kernel = _kernels.get((module, name))
            if kernel is not None:
                kernel.built.append(build)
            else:
                _pending.setdefault((module, name), []).append(build)
    return len(entries)


def _start() -> None:
    if os.environ.get(MODE_VARIABLE, "").strip().lower() == "jit":
        use_jit()


_start()
