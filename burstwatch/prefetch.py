"""Ask the CPU to start loading a byte's cache line now, for a kernel that knows which
bytes it reads next (the packets after the one it decodes) before it needs them."""

from __future__ import annotations

from typing import Any

import numpy as np

from burstwatch.jit import njit

_intrinsic: Any = None


def _build() -> Any:
    """numba's intrinsic for LLVM's prefetch of ``array[index]``."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def prefetch_line(typingctx: Any, arr: Any, index: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            array = context.make_array(signature.args[0])(context, builder, args[0])
            at = context.cast(builder, args[1], signature.args[1], types.intp)
            pointer = builder.gep(array.data, [at])
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            # named for the pointer type as this LLVM spells it (p0i8, or p0 where opaque)
            fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
            # read, keep in all cache levels, data cache
            builder.call(fn, [builder.bitcast(pointer, i8p), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(arr, index), codegen

    return prefetch_line


class _Prefetch:
    """``prefetch(array, index)``: a hint in a compiled kernel, nothing in plain Python."""

    def __call__(self, array: np.ndarray, index: int) -> None:
        return None

    @property
    def _numba_type_(self) -> Any:
        # How numba types this object where a kernel names it: as the intrinsic, made when
        # numba first needs it (numba is not loaded to import this module).
        global _intrinsic
        from numba.core.registry import cpu_target
        if _intrinsic is None:
            _intrinsic = _build()
            cpu_target.typing_context.refresh()  # take in the intrinsic's typing and lowering
            cpu_target.target_context.refresh()
        return cpu_target.typing_context.resolve_value_type(_intrinsic)


prefetch = _Prefetch()


# A walk over records asks for the bytes this far past the record it reads: the next record's
# position is in the one before, so the CPU cannot guess it; lines in order, it can load.
# 2 KiB covers the next header behind a full-size Ethernet frame (docs/benchmarks.md).
LOOK_AHEAD = 2048
LINE = 64


@njit(cache=True, nogil=True, inline="always")
def ask_ahead(buf: np.ndarray, asked: int, pos: int) -> int:
    """Ask for every cache line of ``buf`` from ``asked`` to ``LOOK_AHEAD`` bytes past
    ``pos``; returns where the asking stopped (the next call's ``asked``)."""
    upto = min(pos + LOOK_AHEAD, buf.shape[0])
    while asked < upto:
        prefetch(buf, asked)
        asked += LINE
    return asked
