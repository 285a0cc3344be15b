"""Array views without reference counting, for the kernels' hot loops.

Every slice a numba function takes of an array increments and later decrements the reference count
of the array's memory (NRT_incref/NRT_decref: an atomic add each). The per-sample kernels slice the
state once per unit and layer, so on the MNIST default network that was ~100 atomic operations per
sample; and because HOGWILD! threads train ONE shared state, they all hit the same counter's cache
line, which is what stopped a second thread from adding speed. ``unowned(a)`` is ``a`` without its
memory owner: slices of it skip the counting. Use it only on arrays something else keeps alive for
the whole call (a kernel's arguments: the caller holds them).
"""
from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def unowned(typingctx, arr):
    """The same array (data, shape, strides) with a null memory owner: no reference counting."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src = context.make_array(arr)(context, builder, value=args[0])
        out = context.make_array(arr)(context, builder)
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        out.nitems = src.nitems
        out.itemsize = src.itemsize
        out.data = src.data
        out.shape = src.shape
        out.strides = src.strides
        return out._getvalue()

    return arr(arr), codegen
