"""Ask the CPU to start loading a byte's cache line now, for a kernel that knows which
bytes it reads next (the packets after the one it decodes) before it needs them."""

from __future__ import annotations

from typing import Any

import numpy as np

_intrinsic: Any = None


def _build() -> Any:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
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
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
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
        global _intrinsic
        if _intrinsic is None:
            _intrinsic = _build()
        from numba.core.registry import cpu_target
        cpu_target.typing_context.refresh()  # take in the intrinsic's typing and lowering
        cpu_target.target_context.refresh()
        return cpu_target.typing_context.resolve_value_type(_intrinsic)


prefetch = _Prefetch()
