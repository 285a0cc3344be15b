"""Optimizer steps for one parameter or one contiguous run of weights (H2O's ADADELTA, plain
SGD, momentum, Nesterov; dask_dl's Adam), plus the learning-rate schedule and max_w2.

Every helper ends up inside the kernels' loops, where LLVM vectorises it, in one of two ways:

* the one-parameter formulas (``_adaptive``, ``_step``, ``_l1_term``, ...) are ``inline="always"``:
  numba copies them into their callers before typing, so constant arguments fold away early;
* the loops over a run of weights (``_dense_row_update``, ``_adaptive_row``, ``_bias_step``, ...)
  are ``codegen.llvm_inlined``: numba compiles each once per signature and LLVM inlines it into
  every caller. numba's copy-and-retype at each of their call sites was ~3/4 of the
  per-sample kernel's compile; LLVM's inlining made it 36% shorter at the same training speed
  (benchmarks/README.md, issue 21).

Dtype-generic: scalars stay in the state's dtype so float32 loops are not widened to float64.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .codegen import llvm_inlined
from .settings import (ADADELTA, ADAM, HP_ADAM_BS, HP_ANNEAL, HP_B1, HP_DECAY, HP_EPS, HP_MOM_RAMP, HP_MOM_START,
                       HP_MOM_STABLE, HP_RATE, HP_RHO, MOMENTUM, SGD)


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _adaptive(opt, s1, s2, grad, rho, omr, eps, rate, mom):
    """The adaptive optimizers' formulas for one parameter: (new state 1, new state 2, step dx).
    ADADELTA: running means of grad^2 and dx^2. Adam (rho/omr = beta2, 1 - beta2; mom = beta1; rate
    and eps bias-corrected by _schedule): the first and second moments of grad."""
    if opt == ADAM:
        m = mom * s1 + (rho + omr - mom) * grad  # rho + omr = 1: 1 - beta1 in the state's dtype
        v = rho * s2 + omr * grad * grad
        return m, v, rate * m / (np.sqrt(v) + eps)
    eg = rho * s1 + omr * grad * grad
    s2, dx = _adadelta_step(eg, s2, grad, rho, omr, eps)
    return eg, s2, dx


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _adadelta_step(eg, s2, grad, rho, omr, eps):
    """ADADELTA's step from the new running mean of grad^2 (``eg``): (new running mean of dx^2, dx).
    sqrt(num / den) as num / sqrt(num * den): LLVM turns the reciprocal square root into the CPU's
    estimate (vrsqrt14ps; on x86 in float32 without a Newton step, see codegen.estimate_rsqrt)
    instead of a divide and a square root; num, den >= epsilon keep the product a normal float."""
    num = s2 + eps
    dx = num / np.sqrt(num * (eg + eps)) * grad
    return rho * s2 + omr * dx * dx, dx


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _step(P, S1, S2, k, p, grad, opt, rho, omr, eps, rate, mom):
    """Apply one optimizer step to parameter P[k] (current value p) with gradient grad."""
    if opt == ADADELTA or opt == ADAM:
        S1[k], S2[k], dx = _adaptive(opt, S1[k], S2[k], grad, rho, omr, eps, rate, mom)
        P[k] = p - dx
    elif opt == SGD:
        P[k] = p - rate * grad
    elif opt == MOMENTUM:
        v = mom * S1[k] - rate * grad
        S1[k] = v
        P[k] = p + v
    else:  # NESTEROV (Sutskever/Bengio form of the look-ahead step)
        vp = S1[k]
        v = mom * vp - rate * grad
        S1[k] = v
        P[k] = p - mom * vp + (1.0 + mom) * v


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _l1_term(l1, w):
    if w > 0.0:
        return l1
    if w < 0.0:
        return -l1
    return l1 - l1


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _weight_grad(g, a, wi, l1, l2, reg):
    """A weight's gradient ``g * a``, plus its L1/L2 terms when ``reg`` (constant in the row loops'
    specialised copies, so those copies carry no test)."""
    grad = g * a
    if reg:
        grad += l2 * wi + _l1_term(l1, wi)
    return grad


@llvm_inlined
def _adaptive_row(w, s1, s2, prev, g, opt, l1, l2, rho, omr, eps, rate, mom, fast, reg, gacc, acc):
    """``_dense_row_update``'s loop for ADADELTA and Adam (``_adaptive``). ``opt``, ``fast``,
    ``reg`` and ``acc`` are loop-invariant: where the caller passes constants, LLVM folds their
    tests away and this copy of the loop has none of them.

    ADADELTA's fast_mode skip of a zero input is arithmetic, not a conditional store: the skipped
    element gets gradient 0 and decay factor 1, so its state is written back unchanged and its step
    is 0. A conditional store becomes a masked store (``vmaskmovps``), slow on AVX2 CPUs
    (benchmarks/README.md, "Issue 15")."""
    gsq = g - g
    if fast and opt == ADADELTA:  # tested outside the loops: a branch inside one stops vectorisation
        one = omr / omr  # 1 in the state's dtype (omr = 1 - rho > 0; a 1.0 literal is float64 in numba)
        for i in range(w.shape[0]):
            a = prev[i]
            wi = w[i]
            grad = _weight_grad(g, a, wi, l1, l2, reg)
            on = a != 0.0
            grad = grad if on else grad - grad
            n1, n2, dx = _adaptive(opt, s1[i], s2[i], grad, rho if on else one, omr, eps, rate, mom)
            s1[i] = n1
            s2[i] = n2
            w[i] = wi - dx  # dx is 0 at gradient 0
            g2 = grad * grad
            gsq += g2
            if acc:
                gacc[i] += g2
        return gsq
    # Adam keeps the conditional stores: an arithmetic skip would need beta1 -> 1 and a zeroed step
    for i in range(w.shape[0]):
        a = prev[i]
        wi = w[i]
        grad = _weight_grad(g, a, wi, l1, l2, reg)
        keep = (not fast) or a != 0.0
        n1, n2, dx = _adaptive(opt, s1[i], s2[i], grad, rho, omr, eps, rate, mom)
        s1[i] = n1 if keep else s1[i]
        s2[i] = n2 if keep else s2[i]
        w[i] = wi - dx if keep else wi
        g2 = grad * grad if keep else grad - grad
        gsq += g2
        if acc:
            gacc[i] += g2
    return gsq


@llvm_inlined
def _adadelta_row_sq(w, s1, s2, prev, prev_sq, g, rho, omr, eps, fast):
    """ADADELTA on one unit's incoming weights without L1/L2 or elastic terms, given ``prev_sq``
    (the inputs squared, computed once per layer and row of data): omr * (g a_i)^2 is then
    (omr g^2) a_i^2, one multiply per weight fewer, and the caller gets the row's sum of squared
    gradients as g^2 * sum(prev_sq) instead of a reduction in the loop. With
    ``fast`` a zero input keeps its weight and state by a decay factor of 1 (its gradient is
    already 0), a select and no masked store, as in ``_adaptive_row``."""
    c = omr * g * g
    if fast:  # tested outside the loops, as in _adaptive_row: a branch inside one stops vectorisation
        one = omr / omr
        for i in range(w.shape[0]):
            a = prev[i]
            r = rho if a != 0.0 else one
            eg = r * s1[i] + c * prev_sq[i]
            n2, dx = _adadelta_step(eg, s2[i], g * a, r, omr, eps)
            s1[i] = eg  # stores after the loads: storing s1 first was slower (benchmarks/README.md)
            s2[i] = n2
            w[i] = w[i] - dx
        return
    for i in range(w.shape[0]):
        eg = rho * s1[i] + c * prev_sq[i]
        n2, dx = _adadelta_step(eg, s2[i], g * prev[i], rho, omr, eps)
        s1[i] = eg
        s2[i] = n2
        w[i] = w[i] - dx


@llvm_inlined
def _dense_row_update(w, s1, s2, prev, g, opt, l1, l2, rho, omr, eps, rate, mom, fast, gacc):
    """Update a contiguous run of weights whose gradients are ``g * prev[i]`` (+ L1/L2); returns the
    sum of squared gradients. Unit-major: one unit's incoming weights (prev = the inputs). Input-major
    first layer: one input's outgoing weights (prev = the units' gradients, g = the input), and each
    element's squared gradient is also added to ``gacc[i]`` (its unit's total; empty: not wanted).

    One loop per optimizer family so LLVM vectorises it; fast_mode's "skip zero inputs" is a select
    (the skipped weight and its state keep their values), not a branch. Inside the whole kernel
    LLVM does not unswitch the loop on its invariant tests (the function is too big), so H2O's
    default settings (ADADELTA, no L1/L2) get copies of it with those tests folded to constants."""
    acc = gacc.shape[0] > 0
    reg = l1 != 0.0 or l2 != 0.0
    if opt == ADADELTA or opt == ADAM:
        if opt == ADADELTA and not reg and not acc:
            if fast:
                return _adaptive_row(w, s1, s2, prev, g, ADADELTA, l1, l2, rho, omr, eps, rate, mom, True, False,
                                     gacc, False)
            return _adaptive_row(w, s1, s2, prev, g, ADADELTA, l1, l2, rho, omr, eps, rate, mom, False, False,
                                 gacc, False)
        return _adaptive_row(w, s1, s2, prev, g, opt, l1, l2, rho, omr, eps, rate, mom, fast, reg, gacc, acc)
    gsq = g - g
    n = w.shape[0]
    if opt == SGD:
        for i in range(n):
            a = prev[i]
            wi = w[i]
            grad = g * a + l2 * wi + _l1_term(l1, wi)
            keep = (not fast) or a != 0.0
            grad = grad if keep else grad - grad  # a skipped weight steps by 0 (no masked store)
            w[i] = wi - rate * grad
            g2 = grad * grad
            gsq += g2
            if acc:
                gacc[i] += g2
    else:
        for i in range(n):
            a = prev[i]
            wi = w[i]
            grad = g * a + l2 * wi + _l1_term(l1, wi)
            if fast and a == 0.0:
                continue
            gsq += grad * grad
            if acc:
                gacc[i] += grad * grad
            _step(w, s1, s2, i, wi, grad, opt, rho, omr, eps, rate, mom)
    return gsq


@llvm_inlined
def _elastic_row_update(w, s1, s2, cw, prev, g, opt, l1, l2, lam, rho, omr, eps, rate, mom, fast):
    """``_dense_row_update`` plus the elastic-averaging pull lam * (w - centre). Kept apart so the
    plain loop carries no centre stream: when the centre is the state itself the aliasing sends
    LLVM's vectorised loop to its scalar fallback."""
    gsq = g - g
    for i in range(w.shape[0]):
        a = prev[i]
        if fast and a == 0.0:
            continue
        wi = w[i]
        grad = g * a + l2 * wi + _l1_term(l1, wi) + lam * (wi - cw[i])
        gsq += grad * grad
        _step(w, s1, s2, i, wi, grad, opt, rho, omr, eps, rate, mom)
    return gsq


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _schedule(hp, n_seen, sc):
    """Manual learning rate and momentum after ``n_seen`` samples (H2O's documented schedule:
    rate annealing, linear momentum ramp); ignored by ADADELTA. Returned through the scratch ``sc``
    so they are in the state's dtype: a float64 scalar would widen the float32 update loops.

    Adam (hp[HP_ADAM_BS] > 0): the step size and epsilon with Adam's bias corrections folded in
    (rate * sqrt(1 - beta2^t) / (1 - beta1^t), epsilon * sqrt(1 - beta2^t), t = updates so far + 1;
    the same step as dividing m and v by their corrections) and annealed like the manual rate
    (/ (1 + rate_annealing * n_seen)), beta1 as the "momentum", the epsilon in sc[3]."""
    bs = hp[HP_ADAM_BS]
    if bs > 0.0:
        t = 1.0 + n_seen / bs
        c2 = np.sqrt(1.0 - hp[HP_RHO] ** t)
        sc[0] = hp[HP_RATE] * c2 / (1.0 - hp[HP_B1] ** t) / (1.0 + hp[HP_ANNEAL] * n_seen)
        sc[1] = hp[HP_B1]
        sc[3] = hp[HP_EPS] * c2
        return sc[0], sc[1]
    sc[0] = hp[HP_RATE] / (1.0 + hp[HP_ANNEAL] * n_seen)
    ramp = hp[HP_MOM_RAMP]
    if ramp > 0.0 and n_seen < ramp:
        sc[1] = hp[HP_MOM_START] + (hp[HP_MOM_STABLE] - hp[HP_MOM_START]) * n_seen / ramp
    else:
        sc[1] = hp[HP_MOM_STABLE] if ramp > 0.0 else hp[HP_MOM_START]
    return sc[0], sc[1]


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _layer_rate(hp, rate0, l, sc):
    """rate_decay: layer l learns at rate0 * rate_decay^(l-1) (in the state's dtype, see _schedule)."""
    sc[2] = rate0 * hp[HP_DECAY] ** (l - 1)
    return sc[2]


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _inverse(sc, n):
    """1 / n in the state's dtype (sc[4]): a float32 divided by an integer would be float64 in
    numba and drag the bias steps into double precision."""
    sc[4] = 1.0 / n
    return sc[4]


@llvm_inlined
def _cap_norm(w, max_w2):
    """max_w2: rescale a unit's incoming weights when their squared norm exceeds max_w2."""
    s = w[0] - w[0]
    for i in range(w.shape[0]):
        s += w[i] * w[i]
    if s > max_w2:
        scale = np.sqrt(max_w2 / s)
        for i in range(w.shape[0]):
            w[i] *= scale


@llvm_inlined
def _bias_step(B, S1B, S2B, bk, b, gb, g2, opt, rho, omr, eps, rate, mom):
    """One optimizer step of bias B[bk] (current value b, gradient gb). With ADADELTA, H2O drives a
    bias's adaptive rate by ``g2``, its unit's mean squared weight gradient."""
    if opt == ADADELTA:
        eg = rho * S1B[bk] + omr * g2
        S1B[bk] = eg
        eta = np.sqrt((S2B[bk] + eps) / (eg + eps))
        S2B[bk] = rho * S2B[bk] + omr * eta * eta * g2
        B[bk] = b - eta * gb
    else:
        _step(B, S1B, S2B, bk, b, gb, opt, rho, omr, eps, rate, mom)
