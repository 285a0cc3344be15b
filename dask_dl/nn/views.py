"""Array views without reference counting, for the kernels' hot loops.

Every slice a numba function takes of an array increments and later decrements the reference count
of the array's memory (NRT_incref/NRT_decref: an atomic add each). The per-sample kernels slice the
state once per unit and layer, so on the MNIST default network that was ~100 atomic operations per
sample; and because HOGWILD! threads train ONE shared state, they all hit the same counter's cache
line, so a second thread added no speed. ``unowned(a)`` is ``a`` without its
memory owner: slices of it skip the counting. Use it only on arrays something else keeps alive for
the whole call (a kernel's arguments: the caller holds them).
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
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


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def state_views(state, n_w, n_b):
    """The flat state's parts: W | B | S1W | S2W | S1B | S2B (see network.NetworkLayout), as views
    without reference counting (the caller keeps ``state`` alive)."""
    state = unowned(state)
    return (state[0:n_w], state[n_w:n_w + n_b], state[n_w + n_b:2 * n_w + n_b],
            state[2 * n_w + n_b:3 * n_w + n_b], state[3 * n_w + n_b:3 * n_w + 2 * n_b],
            state[3 * n_w + 2 * n_b:3 * n_w + 3 * n_b])


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def model_views(state, center, units, woff, boff):
    """(the state's parts, the centre's weights and biases) for a layout's offsets, as views without
    reference counting: what every training kernel starts from (the caller keeps both alive)."""
    n_layers = units.shape[0] - 1
    n_w, n_b = woff[n_layers], boff[n_layers]
    return state_views(state, n_w, n_b), (unowned(center)[0:n_w], unowned(center)[n_w:n_w + n_b])


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def unit_offsets(units, per_unit):
    """Start of every layer's slice in a scratch buffer of per_unit values per unit (last = total)."""
    off = np.zeros(units.shape[0] + 1, dtype=np.int64)
    for l in range(units.shape[0]):
        off[l + 1] = off[l] + units[l] * per_unit
    return off
