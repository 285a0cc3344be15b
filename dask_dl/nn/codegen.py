"""Code-generation hints for the float32 kernels that numba has no option for.

``estimate_rsqrt()``, called at the top of a kernel, lets LLVM compute a vectorised float32
``a / sqrt(b)`` in that kernel from the CPU's reciprocal square root estimate alone (x86:
``vrsqrt14ps`` with AVX-512, relative error < 2^-14; ``rsqrtps`` otherwise, < 1.5 * 2^-12), without
the Newton step it adds by default. The ADADELTA update's learning rate is such a quotient, and
the Newton step was a fifth of the update loop's instructions. H2O itself computes that rate with
bit-trick approximations (``MathUtils.approxSqrt``: errors of a few percent), so the estimate is
well inside the precision the algorithm is run at. Float64 (the gradient tests) is untouched, and
so is every other architecture (ARM's estimate has only 8 bits).
"""
from __future__ import annotations

import platform

from numba import njit, types
from numba.extending import intrinsic

# LLVM's per-function attribute (clang's -mrecip): vector float square roots, estimate + 0 steps
_ATTRIBUTE = '"reciprocal-estimates"="vec-sqrtf:0"'
ENABLED = platform.machine().lower() in ("x86_64", "amd64")


@intrinsic
def estimate_rsqrt(typingctx):
    """Mark the calling kernel's LLVM function with the attribute (a no-op off x86-64). The kernel
    must be where the loops end up after inlining: call it in every non-inlined kernel."""

    def codegen(context, builder, signature, args):
        if ENABLED:
            # llvmlite only takes the attribute names it knows; a string attribute goes in as it
            # is written in LLVM IR (it prints the set's items verbatim in the function header)
            set.add(builder.function.attributes, _ATTRIBUTE)
        return context.get_dummy_value()

    return types.none(), codegen


# a row-update loop that LLVM inlines into each kernel calling it (optimizers' docstring says why):
# numba compiles it once per signature; kernels call it, Python cannot
llvm_inlined = njit(nogil=True, fastmath=True, cache=True, error_model="numpy", forceinline=True,
                    no_cpython_wrapper=True, no_cfunc_wrapper=True)
