"""numba kernels: per-sample forward, backprop and in-place parameter update (H2O's algorithm).

Everything here is ``nogil``: the shard trainer calls ``train_rows`` from several Python threads at
once on the same state vector, lock-free (HOGWILD!). Nothing allocates inside the per-row loop; the
scratch buffers are allocated once per ``train_rows`` call. Kernels are dtype-generic: training uses
float32, the gradient tests run the very same code in float64.

Layer indexing follows H2O: layer 0 is the input, 1..L the hidden layers, L+1 the output; weight
matrix l (1-based) feeds layer l. Offsets come from ``network.NetworkLayout``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .network import MAXOUT, RECTIFIER, SOFTMAX, TANH
from .codegen import estimate_rsqrt
from .views import unowned

# optimizer codes
ADADELTA, SGD, MOMENTUM, NESTEROV, ADAM = 0, 1, 2, 3, 4
# output error codes (classification)
CROSS_ENTROPY, QUADRATIC_SOFTMAX = 0, 1
# output error codes (regression; the honoured loss, see docs/h2o-differences.md)
GAUSSIAN, LAPLACE, QUANTILE, HUBER, POISSON, GAMMA, TWEEDIE = 10, 11, 12, 13, 14, 15, 16

# float hyper-parameter slots
HP_RHO, HP_EPS, HP_RATE, HP_ANNEAL, HP_DECAY = 0, 1, 2, 3, 4
HP_MOM_START, HP_MOM_RAMP, HP_MOM_STABLE, HP_L1, HP_L2 = 5, 6, 7, 8, 9
HP_MAXW2, HP_QALPHA, HP_TPOWER, HP_HUBER, HP_N0, HP_NSTEP, HP_OMR, HP_EA = 10, 11, 12, 13, 14, 15, 16, 17
# Adam (optimizer="adam"): beta1 and rows per update (> 0 only for Adam); beta2 / 1 - beta2 ride in
# HP_RHO / HP_OMR, the step size in HP_RATE, epsilon in HP_EPS
HP_B1, HP_ADAM_BS = 18, 19
N_HP = 20
# integer slots
IP_OPT, IP_FAST, IP_LOSS, IP_SEED, IP_BATCH, IP_INPUT_MAJOR = 0, 1, 2, 3, 4, 5
N_IP = 6

DROPPED = 2  # unit_state value of a hidden unit dropped for this row
EXP_CAP = 1e19


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def _capped_exp(v):
    return min(np.exp(v), EXP_CAP)


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


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _adaptive_row(w, s1, s2, prev, g, opt, l1, l2, rho, omr, eps, rate, mom, fast, reg, gacc, acc):
    """``_dense_row_update``'s loop for ADADELTA and Adam (``_adaptive``). ``opt``, ``fast``,
    ``reg`` and ``acc`` are loop-invariant: where the caller passes constants, LLVM folds their
    tests away and this copy of the loop has none of them.

    ADADELTA's fast_mode skip of a zero input is arithmetic, not a conditional store: the skipped
    element gets gradient 0 and decay factor 1, so its state is written back unchanged and its step
    is 0. LLVM turns ``s[i] = new if keep else s[i]`` into masked stores (``vmaskmovps``), which
    AVX2 CPUs (AMD Zen 2/3) execute slowly: 1.15 vs 0.42 ns per weight on Zen 3."""
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
    # Adam keeps the conditional stores (an arithmetic skip needs beta1 -> 1 and a zeroed step;
    # not measured faster for the mini-batch kernel's Adam)
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


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _adadelta_row_sq(w, s1, s2, prev, prev_sq, g, rho, omr, eps, fast):
    """ADADELTA on one unit's incoming weights without L1/L2 or elastic terms, given ``prev_sq``
    (the inputs squared, computed once per layer and row of data): omr * (g a_i)^2 is then
    (omr g^2) a_i^2, one multiply per weight fewer, and the caller gets the row's sum of squared
    gradients as g^2 * sum(prev_sq) instead of a reduction in the loop (kernel 3-6% faster). With
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
            s1[i] = eg  # stores after the loads: s1 stored first ran 3-5% slower in 3 of 4 A/B pairs
            s2[i] = n2
            w[i] = w[i] - dx
        return
    for i in range(w.shape[0]):
        eg = rho * s1[i] + c * prev_sq[i]
        n2, dx = _adadelta_step(eg, s2[i], g * prev[i], rho, omr, eps)
        s1[i] = eg
        s2[i] = n2
        w[i] = w[i] - dx


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _dense_row_update(w, s1, s2, prev, g, opt, l1, l2, rho, omr, eps, rate, mom, fast, gacc):
    """Update a contiguous run of weights whose gradients are ``g * prev[i]`` (+ L1/L2); returns the
    sum of squared gradients. Unit-major: one unit's incoming weights (prev = the inputs). Input-major
    first layer: one input's outgoing weights (prev = the units' gradients, g = the input), and each
    element's squared gradient is also added to ``gacc[i]`` (its unit's total; empty: not wanted).

    One loop per optimizer family so LLVM vectorises it; fast_mode's "skip zero inputs" is a select
    (the skipped weight and its state keep their values), not a branch. Inside the whole kernel
    LLVM does not unswitch the loop on its invariant tests (the function is too big: perf showed
    the tests, masks and an un-unrolled loop in the hot path), so H2O's default settings (ADADELTA,
    no L1/L2) get copies of it with those tests folded to constants."""
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


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _elastic_row_update(w, s1, s2, cw, prev, g, opt, l1, l2, lam, rho, omr, eps, rate, mom, fast):
    """``_dense_row_update`` plus the elastic-averaging pull lam * (w - centre). Kept apart so the
    plain loop carries no centre stream: when the centre is the state itself the aliasing sends
    LLVM's vectorised loop to its scalar fallback (measured 5x slower)."""
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


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _cap_norm(w, max_w2):
    """max_w2: rescale a unit's incoming weights when their squared norm exceeds max_w2."""
    s = w[0] - w[0]
    for i in range(w.shape[0]):
        s += w[i] * w[i]
    if s > max_w2:
        scale = np.sqrt(max_w2 / s)
        for i in range(w.shape[0]):
            w[i] *= scale


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
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


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def output_error(A, E, co, n_out, out_code, loss, target, hp):
    """Write dLoss/dz of the output pre-activations into E[co:co+n_out]."""
    if out_code == SOFTMAX:
        k_true = int(target)
        if loss == CROSS_ENTROPY:
            for k in range(n_out):
                E[co + k] = A[co + k] - (1.0 if k == k_true else 0.0)
        else:  # exact gradient of 0.5 * ||p - t||^2 through the softmax
            s = 0.0
            for k in range(n_out):
                p = A[co + k]
                s += p * (p - (1.0 if k == k_true else 0.0))
            for k in range(n_out):
                p = A[co + k]
                E[co + k] = p * ((p - (1.0 if k == k_true else 0.0)) - s)
        return
    f = A[co]
    t = target
    if loss == GAUSSIAN:
        d = 2.0 * (f - t)
    elif loss == LAPLACE:
        d = 1.0 if f > t else -1.0
    elif loss == QUANTILE:
        a = hp[HP_QALPHA]
        d = -a if t > f else 1.0 - a
    elif loss == HUBER:
        delta = hp[HP_HUBER]
        r = f - t
        if abs(r) <= delta:
            d = 2.0 * r
        else:
            d = 2.0 * delta if r > 0 else -2.0 * delta
    elif loss == POISSON:
        d = 2.0 * (_capped_exp(f) - t)
    elif loss == GAMMA:
        d = 2.0 * (1.0 - t * _capped_exp(-f))
    else:  # TWEEDIE
        p = hp[HP_TPOWER]
        d = 2.0 * (_capped_exp((2.0 - p) * f) - t * _capped_exp((1.0 - p) * f))
    E[co] = d


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _activate(code, z):
    """A unit's output from its pre-activation: Tanh, Rectifier; any other code passes z through
    (Maxout picks its channel, Softmax normalises the layer, Linear is z)."""
    if code == TANH:
        return np.tanh(z)
    if code == RECTIFIER:
        return max(z, z - z)
    return z


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _unit_gradient(code, e, a):
    """dLoss/dz of a Tanh or Rectifier unit from dLoss/da (e) and its output a, in e's dtype."""
    if code == TANH:
        return e - e * a * a  # e * (1 - a^2)
    return e if a > 0.0 else e - e


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def _softmax_inplace(a):
    m = a[0]
    for k in range(1, a.shape[0]):
        m = max(m, a[k])
    s = m - m
    for k in range(a.shape[0]):
        e = np.exp(a[k] - m)
        a[k] = e
        s += e
    for k in range(a.shape[0]):
        a[k] = a[k] / s


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def _rows_times(W, b, x, out):
    """out = W x + b for a unit-major matrix ``W`` (flat, out.shape[0] rows of x.shape[0]): four
    rows per pass over ``x``, so each load of x feeds four products (a one-row dot product is
    load-bound: MNIST's first layer 90 -> 64 ps per multiply-add on Zen 3; benchmarks/README.md).
    Dense even for sparse inputs: the vectorised dot beats a gather over the non-zeros."""
    n_out = out.shape[0]
    n_in = x.shape[0]
    j = 0
    while j + 4 <= n_out:
        w0 = W[j * n_in:(j + 1) * n_in]
        w1 = W[(j + 1) * n_in:(j + 2) * n_in]
        w2 = W[(j + 2) * n_in:(j + 3) * n_in]
        w3 = W[(j + 3) * n_in:(j + 4) * n_in]
        z0 = b[j]
        z1 = b[j + 1]
        z2 = b[j + 2]
        z3 = b[j + 3]
        for i in range(n_in):
            xi = x[i]
            z0 += w0[i] * xi
            z1 += w1[i] * xi
            z2 += w2[i] * xi
            z3 += w3[i] * xi
        out[j] = z0
        out[j + 1] = z1
        out[j + 2] = z2
        out[j + 3] = z3
        j += 4
    while j < n_out:
        w = W[j * n_in:(j + 1) * n_in]
        z = b[j]
        for i in range(n_in):
            z += w[i] * x[i]
        out[j] = z
        j += 1


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def forward_train(W, B, units, woff, boff, aoff, acts, drop, x, A, nz, ustate, im):
    """Training-mode forward pass for one row (dropout masks drawn here). Returns the number of
    non-zero inputs (their indices are in nz[:nnz]). ``im``: the first layer is stored input-major
    (sparse=True): its pre-activations are a sum of the non-zero inputs' weight rows.

    Loops run over per-layer and per-row *views*: indexing one big scratch array with runtime
    offsets stops LLVM from vectorising (measured 10x slower)."""
    n_layers = units.shape[0] - 1
    u0 = units[0]
    nnz = 0
    p_in = drop[0]
    a0 = A[0:u0]
    for i in range(u0):
        v = x[i]
        if p_in > 0.0 and np.random.random() < p_in:
            v = 0.0
        a0[i] = v
        if v != 0.0:
            nz[nnz] = i
            nnz += 1
    for l in range(1, n_layers + 1):
        n_in = units[l - 1]
        n_out = units[l]
        prev = A[aoff[l - 1]:aoff[l - 1] + n_in]
        cur = A[aoff[l]:aoff[l] + n_out]
        ust = ustate[aoff[l]:aoff[l] + n_out]
        wo = woff[l - 1]
        bo = boff[l - 1]
        code = acts[l]
        p = drop[l]
        hidden = l < n_layers
        if code == MAXOUT:  # hidden layers only: two channels per unit, the larger one wins
            for j in range(n_out):
                if hidden and p > 0.0 and np.random.random() < p:
                    cur[j] = 0.0
                    ust[j] = DROPPED
                    continue
                best = B[bo + 2 * j]
                for c in range(2):
                    r = 2 * j + c
                    w = W[wo + r * n_in:wo + (r + 1) * n_in]
                    z = B[bo + r]
                    for i in range(n_in):
                        z += w[i] * prev[i]
                    if c == 0 or z > best:
                        best = z
                        ust[j] = c
                cur[j] = _activate(code, best)
            continue
        if l == 1 and im:
            for j in range(n_out):
                cur[j] = B[bo + j]
            for k in range(nnz):
                i = nz[k]
                xi = prev[i]
                w = W[wo + i * n_out:wo + (i + 1) * n_out]
                for j in range(n_out):
                    cur[j] += xi * w[j]
        else:
            _rows_times(W[wo:wo + n_out * n_in], B[bo:bo + n_out], prev, cur)
        # the dropout masks, one draw per unit in unit order (as the Maxout loop); a dropped unit's
        # pre-activation is discarded
        for j in range(n_out):
            ust[j] = 0
            if hidden and p > 0.0 and np.random.random() < p:
                cur[j] = 0.0
                ust[j] = DROPPED
            else:
                cur[j] = _activate(code, cur[j])
        if code == SOFTMAX:
            _softmax_inplace(cur)
    return nnz


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def _input_major_update(W, B, S1W, S2W, S1B, S2B, prev, cur, ecur, ust, code, is_output, nz, nnz, xv, fast,
                        skip_zero, opt, l1, l2, rho, omr, eps, rate, mom, cap_w2, max_w2, gv, gacc, inv_n):
    """Update the first layer stored input-major (row i = input i's weights into every unit): with
    sparse inputs and fast_mode only the non-zero inputs' rows are read and written, each one
    contiguous vectorised pass over the units (a unit-major row would be touched at scattered
    columns). Same numerics as the unit-major path: units with no gradient are skipped (a select),
    each unit's squared weight gradients are summed (``gacc``) for its bias's ADADELTA rate."""
    estimate_rsqrt()
    n_out = cur.shape[0]
    n_in = prev.shape[0]
    for j in range(n_out):
        e = ecur[j]
        if is_output:
            gv[j] = e
        elif ust[j] == DROPPED:
            gv[j] = e - e
        else:
            gv[j] = _unit_gradient(code, e, cur[j])
        gacc[j] = e - e
    rows = nnz if fast else n_in
    for k in range(rows):
        i = nz[k] if fast else k
        xi = xv[k] if fast else prev[i]
        _dense_row_update(W[i * n_out:(i + 1) * n_out], S1W[i * n_out:(i + 1) * n_out],
                          S2W[i * n_out:(i + 1) * n_out], gv, xi, opt, l1, l2, rho, omr, eps, rate, mom,
                          skip_zero, gacc)
    if cap_w2:  # a unit's incoming weights are a column here
        col = ecur  # reuse: the layer's error is no longer needed
        for j in range(n_out):
            col[j] = gv[j] - gv[j]
        for i in range(n_in):
            w = W[i * n_out:(i + 1) * n_out]
            for j in range(n_out):
                col[j] += w[j] * w[j]
        for j in range(n_out):
            if col[j] > max_w2 and not (skip_zero and gv[j] == 0.0):  # skipped units are not capped
                col[j] = np.sqrt(max_w2 / col[j])
            else:
                col[j] = gv[j] - gv[j] + 1
        for i in range(n_in):
            w = W[i * n_out:(i + 1) * n_out]
            for j in range(n_out):
                w[j] *= col[j]
    for j in range(n_out):
        g = gv[j]
        if skip_zero and g == 0.0:
            continue
        b = B[j]
        _bias_step(B, S1B, S2B, j, b, g + l2 * b + _l1_term(l1, b), gacc[j] * inv_n, opt, rho, omr, eps, rate,
                   mom)


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def backward_update(W, B, S1W, S2W, S1B, S2B, CW, CB, units, woff, boff, aoff, acts, A, E, nz, nnz, ustate,
                    hp, opt, fast, n_seen, xv, gw, g1, g2, sc, im, uv, uacc, psq):
    """Backpropagate E (output error already set) and update every visited parameter in place.
    ``im``: the first layer is stored input-major (see _input_major_update)."""
    estimate_rsqrt()
    n_layers = units.shape[0] - 1
    rho = hp[HP_RHO]
    omr = hp[HP_OMR]
    eps = hp[HP_EPS]
    l1 = hp[HP_L1]
    l2 = hp[HP_L2]
    lam = hp[HP_EA]  # elastic averaging: pull towards the centre the iteration started from
    max_w2 = hp[HP_MAXW2]
    cap_w2 = max_w2 < 3.0e38
    rate0, mom = _schedule(hp, n_seen, sc)
    if opt == ADAM:
        eps = sc[3]
    skip_zero = fast or (opt == SGD and l1 == 0.0 and l2 == 0.0)
    # H2O's defaults (ADADELTA, no L1/L2, no elastic pull): rows take the inputs squared (_adadelta_row_sq)
    plain_adadelta = opt == ADADELTA and l1 == 0.0 and l2 == 0.0 and lam == 0.0
    noacc = uacc[:0]  # unit-major rows need no per-element gradient sums
    sparse_in = 2 * nnz < units[0]
    if (sparse_in or im) and fast:
        for k in range(nnz):
            xv[k] = A[nz[k]]  # the non-zero inputs, contiguous
    for l in range(n_layers, 0, -1):
        n_in = units[l - 1]
        n_out = units[l]
        prev = A[aoff[l - 1]:aoff[l - 1] + n_in]
        eprev = E[aoff[l - 1]:aoff[l - 1] + n_in]
        cur = A[aoff[l]:aoff[l] + n_out]
        ecur = E[aoff[l]:aoff[l] + n_out]
        ust = ustate[aoff[l]:aoff[l] + n_out]
        wo = woff[l - 1]
        bo = boff[l - 1]
        code = acts[l]
        prev_hidden = l > 1
        rate = _layer_rate(hp, rate0, l, sc)
        inv_n = _inverse(sc, n_in)
        # fast_mode's zero-input test is a masked store per weight: drop it when no input is zero
        row_fast = fast and not (l == 1 and nnz == n_in)
        # (the input-major and sparse first layers have update loops of their own)
        squared = plain_adadelta and not (l == 1 and (im or (sparse_in and fast)))
        ssq = rho - rho
        if squared:
            for i in range(n_in):
                v = prev[i]
                psq[i] = v * v
                ssq += v * v
        if l == 1 and im:
            _input_major_update(W[wo:woff[1]], B[bo:bo + n_out], S1W[wo:woff[1]], S2W[wo:woff[1]],
                                S1B[bo:bo + n_out], S2B[bo:bo + n_out], prev, cur, ecur, ust, code, l == n_layers,
                                nz, nnz, xv, fast, skip_zero, opt, l1, l2, rho, omr, eps, rate, mom, cap_w2,
                                max_w2, uv[:n_out], uacc[:n_out], inv_n)
            continue
        if prev_hidden:
            eprev[:] = 0.0
        for j in range(n_out):
            if l == n_layers:
                g = ecur[j]
                r = j
            else:
                st = ust[j]
                if st == DROPPED:
                    continue
                e = ecur[j]
                if code == MAXOUT:  # only the winning channel learns
                    g = e
                    r = 2 * j + st
                else:
                    g = _unit_gradient(code, e, cur[j])
                    r = j
            if skip_zero and g == 0.0:
                continue
            w = W[wo + r * n_in:wo + (r + 1) * n_in]
            s1 = S1W[wo + r * n_in:wo + (r + 1) * n_in]
            s2 = S2W[wo + r * n_in:wo + (r + 1) * n_in]
            cw = CW[wo + r * n_in:wo + (r + 1) * n_in]
            gsq = g - g  # a zero of the state's dtype
            if l == 1 and sparse_in and fast and lam == 0.0:
                # fast_mode: only the non-zero inputs' weights move. Gather them into contiguous
                # scratch, run the vectorised row update there, scatter back (a scalar sqrt/div per
                # weight would cost more than the dense loop saves)
                for k in range(nnz):
                    i = nz[k]
                    gw[k] = w[i]
                    g1[k] = s1[i]
                    g2[k] = s2[i]
                gsq = _dense_row_update(gw[:nnz], g1[:nnz], g2[:nnz], xv[:nnz], g, opt, l1, l2, rho, omr, eps,
                                        rate, mom, False, noacc)
                for k in range(nnz):
                    i = nz[k]
                    w[i] = gw[k]
                    s1[i] = g1[k]
                    s2[i] = g2[k]
            elif l == 1 and sparse_in and fast:
                for k in range(nnz):
                    i = nz[k]
                    wi = w[i]
                    grad = g * prev[i] + l2 * wi + _l1_term(l1, wi) + lam * (wi - cw[i])
                    gsq += grad * grad
                    _step(w, s1, s2, i, wi, grad, opt, rho, omr, eps, rate, mom)
            else:
                if prev_hidden:
                    for i in range(n_in):
                        eprev[i] += g * w[i]  # with the pre-update weights
                if lam != 0.0:
                    gsq = _elastic_row_update(w, s1, s2, cw, prev, g, opt, l1, l2, lam, rho, omr, eps, rate,
                                              mom, fast)
                elif squared:
                    _adadelta_row_sq(w, s1, s2, prev, psq[:n_in], g, rho, omr, eps, row_fast)
                    gsq = g * g * ssq
                else:
                    gsq = _dense_row_update(w, s1, s2, prev, g, opt, l1, l2, rho, omr, eps, rate, mom, row_fast,
                                            noacc)
            if cap_w2:
                _cap_norm(w, max_w2)
            bk = bo + r
            b = B[bk]
            gb = g + l2 * b + _l1_term(l1, b) + lam * (b - CB[bk])
            _bias_step(B, S1B, S2B, bk, b, gb, gsq * inv_n, opt, rho, omr, eps, rate, mom)


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _state_views(state, n_w, n_b):
    """The flat state's parts: W | B | S1W | S2W | S1B | S2B (see network.NetworkLayout), as views
    without reference counting (``views.unowned``: the caller keeps ``state`` alive)."""
    state = unowned(state)
    return (state[0:n_w], state[n_w:n_w + n_b], state[n_w + n_b:2 * n_w + n_b],
            state[2 * n_w + n_b:3 * n_w + n_b], state[3 * n_w + n_b:3 * n_w + 2 * n_b],
            state[3 * n_w + 2 * n_b:3 * n_w + 3 * n_b])


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _unit_offsets(units, per_unit):
    """Start of every layer's slice in a scratch buffer of per_unit values per unit (last = total)."""
    off = np.zeros(units.shape[0] + 1, dtype=np.int64)
    for l in range(units.shape[0]):
        off[l + 1] = off[l] + units[l] * per_unit
    return off


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def train_rows_elastic(state, center, n_w, n_b, units, woff, boff, acts, drop, X, y, rows, hp, ip):
    """Train on X[rows[0]], X[rows[1]], ... in that order, updating ``state`` in place (lock-free);
    every gradient gets hp[HP_EA] * (theta - center) (elastic averaging; 0 when off).

    ``hp``/``ip`` hold the float/int hyper-parameters (slots HP_*/IP_*). Seeds this thread's RNG
    stream (dropout) from ip[IP_SEED]. Returns the number of rows trained.
    """
    estimate_rsqrt()
    W, B, S1W, S2W, S1B, S2B = _state_views(state, n_w, n_b)
    CW = unowned(center)[0:n_w]
    CB = unowned(center)[n_w:n_w + n_b]
    n_layers = units.shape[0] - 1
    aoff = _unit_offsets(units, 1)
    A = np.zeros(aoff[n_layers + 1], dtype=state.dtype)
    E = np.zeros(aoff[n_layers + 1], dtype=state.dtype)
    ustate = np.zeros(aoff[n_layers + 1], dtype=np.int8)
    nz = np.zeros(units[0], dtype=np.int64)
    xv = np.zeros(units[0], dtype=state.dtype)  # sparse fast path: gathered inputs, weights, state
    gw = np.zeros(units[0], dtype=state.dtype)
    g1 = np.zeros(units[0], dtype=state.dtype)
    g2 = np.zeros(units[0], dtype=state.dtype)
    sc = np.zeros(5, dtype=state.dtype)  # scalars kept in the state's dtype (see _schedule)
    im = ip[IP_INPUT_MAJOR] != 0
    uv = np.zeros(units[1], dtype=state.dtype)  # input-major first layer: unit gradients, their sums
    uacc = np.zeros(units[1], dtype=state.dtype)
    psq = np.zeros(units[:-1].max(), dtype=state.dtype)  # a layer's inputs squared (_adadelta_row_sq)
    np.random.seed(ip[IP_SEED])
    opt = ip[IP_OPT]
    fast = ip[IP_FAST] != 0
    loss = ip[IP_LOSS]
    co = aoff[n_layers]
    n_out = units[n_layers]
    out_code = acts[n_layers]
    n0 = hp[HP_N0]
    step = hp[HP_NSTEP]
    for t in range(rows.shape[0]):
        r = rows[t]
        nnz = forward_train(W, B, units, woff, boff, aoff, acts, drop, X[r], A, nz, ustate, im)
        output_error(A, E, co, n_out, out_code, loss, y[r], hp)
        backward_update(W, B, S1W, S2W, S1B, S2B, CW, CB, units, woff, boff, aoff, acts, A, E, nz, nnz, ustate,
                        hp, opt, fast, n0 + t * step, xv, gw, g1, g2, sc, im, uv, uacc, psq)
    return rows.shape[0]


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def train_rows(state, n_w, n_b, units, woff, boff, acts, drop, X, y, rows, hp, ip):
    """``train_rows_elastic`` without a centre (plain HOGWILD! SGD)."""
    estimate_rsqrt()
    return train_rows_elastic(state, state, n_w, n_b, units, woff, boff, acts, drop, X, y, rows, hp, ip)


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def train_batches_elastic(state, center, n_w, n_b, units, woff, boff, acts, drop, X, y, rows, hp, ip):
    """Mini-batch HOGWILD! SGD (mini_batch_size = ip[IP_BATCH] > 1): rows[0:bs], rows[bs:2bs], ... each
    make ONE update with the batch-mean gradient. Layer products are BLAS-3 (np.dot -> sgemm on
    (batch x units) blocks); the per-weight update is the per-sample path's row update, fed the
    summed gradient row, so every optimizer, L1/L2, max_w2 and fast_mode (a weight whose gradient is
    exactly 0 for the whole batch, and a unit with no gradient, are not touched) behave the same.
    ``hp[HP_EA]`` != 0 adds the elastic-averaging pull towards ``center``."""
    estimate_rsqrt()
    W, B, S1W, S2W, S1B, S2B = _state_views(state, n_w, n_b)
    CW = unowned(center)[0:n_w]
    CB = unowned(center)[n_w:n_w + n_b]
    n_layers = units.shape[0] - 1
    bs = ip[IP_BATCH]
    np.random.seed(ip[IP_SEED])
    opt = ip[IP_OPT]
    fast = ip[IP_FAST] != 0
    loss = ip[IP_LOSS]
    rho, omr, eps = hp[HP_RHO], hp[HP_OMR], hp[HP_EPS]
    l1, l2, lam = hp[HP_L1], hp[HP_L2], hp[HP_EA]
    max_w2 = hp[HP_MAXW2]
    cap_w2 = max_w2 < 3.0e38
    skip_zero = fast or (opt == SGD and l1 == 0.0 and l2 == 0.0)
    # scratch, allocated once: activations/errors (batch x units), pre-activations/gradients
    # (batch x weight rows: 2 per Maxout unit), the summed weight gradient of the largest layer
    n_ch = np.ones(n_layers + 1, dtype=np.int64)
    rows_of = units.copy()
    max_w = 0
    for l in range(1, n_layers + 1):
        if acts[l] == MAXOUT:
            n_ch[l] = 2
        rows_of[l] = units[l] * n_ch[l]
        max_w = max(max_w, rows_of[l] * units[l - 1])
    aoff = _unit_offsets(units, bs)
    zoff = _unit_offsets(rows_of, bs)
    A = np.zeros(aoff[n_layers + 1], dtype=state.dtype)
    E = np.zeros(aoff[n_layers + 1], dtype=state.dtype)
    U = np.zeros(aoff[n_layers + 1], dtype=np.int8)
    Z = np.zeros(zoff[n_layers + 1], dtype=state.dtype)
    dW = np.zeros(max_w, dtype=state.dtype)
    noacc = np.zeros(0, dtype=state.dtype)
    scale = np.zeros(1, dtype=state.dtype)
    sc = np.zeros(5, dtype=state.dtype)
    out_code = acts[n_layers]
    n_out_final = units[n_layers]
    n_rows = rows.shape[0]
    n0 = hp[HP_N0]
    step = hp[HP_NSTEP]
    for start in range(0, n_rows, bs):
        m = min(bs, n_rows - start)
        scale[0] = 1.0 / m
        inv = scale[0]  # in the state's dtype: a float64 factor would widen the float32 update loop
        # ---- forward
        u0 = units[0]
        a0 = A[0:m * u0].reshape((m, u0))
        p_in = drop[0]
        for b in range(m):
            xr = X[rows[start + b]]
            for i in range(u0):
                v = xr[i]
                if p_in > 0.0 and np.random.random() < p_in:
                    v = v - v
                a0[b, i] = v
        for l in range(1, n_layers + 1):
            n_in, n_out, nr = units[l - 1], units[l], rows_of[l]
            prev = A[aoff[l - 1]:aoff[l - 1] + m * n_in].reshape((m, n_in))
            cur = A[aoff[l]:aoff[l] + m * n_out].reshape((m, n_out))
            ust = U[aoff[l]:aoff[l] + m * n_out].reshape((m, n_out))
            z = Z[zoff[l]:zoff[l] + m * nr].reshape((m, nr))
            Wl = W[woff[l - 1]:woff[l - 1] + nr * n_in].reshape((nr, n_in))
            np.dot(prev, Wl.T, z)
            bo = boff[l - 1]
            code = acts[l]
            p = drop[l]
            hidden = l < n_layers
            for b in range(m):
                for j in range(n_out):
                    if hidden and p > 0.0 and np.random.random() < p:
                        cur[b, j] = 0.0
                        ust[b, j] = DROPPED
                        continue
                    if code == MAXOUT:
                        z0 = z[b, 2 * j] + B[bo + 2 * j]
                        z1 = z[b, 2 * j + 1] + B[bo + 2 * j + 1]
                        cur[b, j] = max(z0, z1)
                        ust[b, j] = 0 if z0 >= z1 else 1
                        continue
                    ust[b, j] = 0
                    cur[b, j] = _activate(code, z[b, j] + B[bo + j])  # SOFTMAX is normalised below
                if code == SOFTMAX:
                    _softmax_inplace(cur[b])
        # ---- output error
        co = aoff[n_layers]
        aout = A[co:co + m * n_out_final].reshape((m, n_out_final))
        eout = E[co:co + m * n_out_final].reshape((m, n_out_final))
        for b in range(m):
            output_error(aout[b], eout[b], 0, n_out_final, out_code, loss, y[rows[start + b]], hp)
        # ---- backward + update, layer by layer from the top
        rate0, mom = _schedule(hp, n0 + start * step, sc)
        if opt == ADAM:
            eps = sc[3]
        for l in range(n_layers, 0, -1):
            n_in, n_out, nr = units[l - 1], units[l], rows_of[l]
            cur = A[aoff[l]:aoff[l] + m * n_out].reshape((m, n_out))
            ecur = E[aoff[l]:aoff[l] + m * n_out].reshape((m, n_out))
            ust = U[aoff[l]:aoff[l] + m * n_out].reshape((m, n_out))
            g = Z[zoff[l]:zoff[l] + m * nr].reshape((m, nr))  # pre-activations no longer needed
            code = acts[l]
            for b in range(m):
                for j in range(n_out):
                    e = ecur[b, j]
                    if l == n_layers:
                        g[b, j] = e
                    elif code == MAXOUT:
                        st = ust[b, j]
                        g[b, 2 * j] = e if st == 0 else e - e
                        g[b, 2 * j + 1] = e if st == 1 else e - e
                    elif ust[b, j] == DROPPED:
                        g[b, j] = e - e
                    else:
                        g[b, j] = _unit_gradient(code, e, cur[b, j])
            prev = A[aoff[l - 1]:aoff[l - 1] + m * n_in].reshape((m, n_in))
            wo = woff[l - 1]
            Wl = W[wo:wo + nr * n_in].reshape((nr, n_in))
            dWl = dW[0:nr * n_in].reshape((nr, n_in))
            np.dot(g.T, prev, dWl)  # summed over the batch
            if l > 1:  # back-propagate with the pre-update weights
                eprev = E[aoff[l - 1]:aoff[l - 1] + m * n_in].reshape((m, n_in))
                np.dot(g, Wl, eprev)
            rate = _layer_rate(hp, rate0, l, sc)
            inv_n = _inverse(sc, n_in)
            bo = boff[l - 1]
            for r in range(nr):
                gsum = g[0, 0] - g[0, 0]
                active = False
                for b in range(m):
                    gsum += g[b, r]
                    active = active or g[b, r] != 0.0
                if skip_zero and not active:
                    continue
                w = W[wo + r * n_in:wo + (r + 1) * n_in]
                s1 = S1W[wo + r * n_in:wo + (r + 1) * n_in]
                s2 = S2W[wo + r * n_in:wo + (r + 1) * n_in]
                drow = dW[r * n_in:(r + 1) * n_in]
                if lam != 0.0:
                    cw = CW[wo + r * n_in:wo + (r + 1) * n_in]
                    gsq = _elastic_row_update(w, s1, s2, cw, drow, inv, opt, l1, l2, lam, rho, omr, eps, rate,
                                              mom, fast)
                else:
                    gsq = _dense_row_update(w, s1, s2, drow, inv, opt, l1, l2, rho, omr, eps, rate, mom, fast,
                                            noacc)
                if cap_w2:
                    _cap_norm(w, max_w2)
                bk = bo + r
                b_ = B[bk]
                gb = gsum * inv + l2 * b_ + _l1_term(l1, b_) + lam * (b_ - CB[bk])
                _bias_step(B, S1B, S2B, bk, b_, gb, gsq * inv_n, opt, rho, omr, eps, rate, mom)
    return n_rows


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def train_batches(state, n_w, n_b, units, woff, boff, acts, drop, X, y, rows, hp, ip):
    """``train_batches_elastic`` without a centre (plain HOGWILD! mini-batch SGD)."""
    estimate_rsqrt()
    return train_batches_elastic(state, state, n_w, n_b, units, woff, boff, acts, drop, X, y, rows, hp, ip)


def int_params(opt: int, fast: bool, loss: int, seed: int, batch: int = 1, input_major: bool = False) -> np.ndarray:
    """The kernels' integer parameter vector (slots IP_*)."""
    ip = np.zeros(N_IP, dtype=np.int64)
    ip[IP_OPT], ip[IP_FAST], ip[IP_LOSS], ip[IP_SEED] = opt, int(fast), loss, seed
    ip[IP_BATCH], ip[IP_INPUT_MAJOR] = batch, int(input_major)
    return ip


def loss_code(kind: str, loss: str) -> int:
    """Kernel code of the output error for a resolved (kind, loss)."""
    if kind in ("binomial", "multinomial"):
        return CROSS_ENTROPY if loss == "CrossEntropy" else QUADRATIC_SOFTMAX
    return {"Quadratic": GAUSSIAN, "Absolute": LAPLACE, "Quantile": QUANTILE, "Huber": HUBER}.get(loss, -1)


def regression_code(distribution: str, loss: str) -> int:
    code = loss_code("regression", loss)
    if code != -1:
        return code
    return {"poisson": POISSON, "gamma": GAMMA, "tweedie": TWEEDIE, "gaussian": GAUSSIAN,
            "laplace": LAPLACE, "quantile": QUANTILE, "huber": HUBER}[distribution]
