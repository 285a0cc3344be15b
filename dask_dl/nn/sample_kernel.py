"""The per-sample kernel (mini_batch_size=1, H2O's algorithm): forward pass, backprop and the
in-place update of every visited parameter, one row of data at a time.

Everything here is ``nogil``: the shard trainer calls ``train_rows`` from several Python threads at
once on the same state vector, lock-free (HOGWILD!). Nothing allocates inside the per-row loop; the
scratch buffers are allocated once per ``train_rows`` call. Kernels are dtype-generic: training uses
float32, the gradient tests run the very same code in float64.

Layer indexing follows H2O: layer 0 is the input, 1..L the hidden layers, L+1 the output; weight
matrix l (1-based) feeds layer l. Arrays travel in tuples:

    net      (units, woff, boff, acts, drop): ``NetworkLayout.kernel_arrays()``
    lay      (units, woff, boff, aoff, acts): the layout plus each layer's offset in A/E/ustate
    views    (W, B, S1W, S2W, S1B, S2B): the state's parts (``views.state_views``)
    centre   (CW, CB): the elastic-averaging centre's weights and biases
    optim    (opt, l1, l2, rho, omr, eps, rate, mom): one layer's optimizer scalars
    scratch  (xv, gw, g1, g2, sc, uv, uacc, psq, act): per-call buffers (``_row_scratch``)
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .activations import _activate, _softmax_inplace, _unit_gradient, autoencoder_error, output_error
from .codegen import estimate_rsqrt, llvm_inlined
from .network import MAXOUT, SOFTMAX
from .optimizers import (_adadelta_row_sq, _bias_step, _cap_norm, _dense_row_update, _elastic_row_update,
                         _inverse, _l1_term, _layer_rate, _schedule, _step)
from .settings import (ADADELTA, ADAM, DROPPED, HP_AVG_ACT, HP_EA, HP_EPS, HP_L1, HP_L2, HP_MAXW2, HP_N0, HP_NSTEP,
                       HP_OMR, HP_RHO, HP_SPARSITY, IP_AUTOENCODER, IP_CAPS_W2, IP_FAST, IP_INPUT_MAJOR, IP_LOSS,
                       IP_OPT, IP_SEED, SGD)
from .views import model_views, unit_offsets


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def _rows_times(W, b, x, out):
    """out = W x + b for a unit-major matrix ``W`` (flat, out.shape[0] rows of x.shape[0]): four
    rows per pass over ``x``, so each load of x feeds four products (a one-row dot product is
    load-bound; benchmarks/README.md).
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
def forward_train(W, B, lay, drop, x, A, nz, ustate, im):
    """Training-mode forward pass for one row (dropout masks drawn here). Returns the number of
    non-zero inputs (their indices are in nz[:nnz]). ``im``: the first layer is stored input-major
    (sparse=True): its pre-activations are a sum of the non-zero inputs' weight rows.

    Loops run over per-layer and per-row *views*: indexing one big scratch array with runtime
    offsets stops LLVM from vectorising."""
    units, woff, boff, aoff, acts = lay
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
def _input_major_update(params, layer, code, is_output, nz, nnz, xv, fast, skip_zero, optim, cap_w2, max_w2, gv,
                        gacc, inv_n):
    """Update the first layer stored input-major (row i = input i's weights into every unit): with
    sparse inputs and fast_mode only the non-zero inputs' rows are read and written, each one
    contiguous vectorised pass over the units (a unit-major row would be touched at scattered
    columns). Same numerics as the unit-major path: units with no gradient are skipped (a select),
    each unit's squared weight gradients are summed (``gacc``) for its bias's ADADELTA rate.
    ``params``: the layer's (W, B, S1W, S2W, S1B, S2B); ``layer``: (prev, cur, ecur, ust)."""
    estimate_rsqrt()
    W, B, S1W, S2W, S1B, S2B = params
    prev, cur, ecur, ust = layer
    opt, l1, l2, rho, omr, eps, rate, mom = optim
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
    if cap_w2:
        _cap_columns(W, gv, ecur, n_in, max_w2, skip_zero)
    for j in range(n_out):
        g = gv[j]
        if skip_zero and g == 0.0:
            continue
        b = B[j]
        _bias_step(B, S1B, S2B, j, b, g + l2 * b + _l1_term(l1, b), gacc[j] * inv_n, opt, rho, omr, eps, rate,
                   mom)


@llvm_inlined
def _cap_columns(W, gv, col, n_in, max_w2, skip_zero):
    """max_w2 for an input-major matrix, where a unit's incoming weights are a column; ``col`` is
    scratch of one value per unit (the layer's error, no longer needed). Skipped units are not capped."""
    n_out = gv.shape[0]
    for j in range(n_out):
        col[j] = gv[j] - gv[j]
    for i in range(n_in):
        w = W[i * n_out:(i + 1) * n_out]
        for j in range(n_out):
            col[j] += w[j] * w[j]
    for j in range(n_out):
        if col[j] > max_w2 and not (skip_zero and gv[j] == 0.0):
            col[j] = np.sqrt(max_w2 / col[j])
        else:
            col[j] = gv[j] - gv[j] + 1
    for i in range(n_in):
        w = W[i * n_out:(i + 1) * n_out]
        for j in range(n_out):
            w[j] *= col[j]


@llvm_inlined
def _gathered_row_update(w, s1, s2, nz, nnz, xv, gw, g1, g2, g, optim):
    """fast_mode on sparse inputs: only the non-zero inputs' weights move. Gather them into
    contiguous scratch, run the vectorised row update there, scatter back (a scalar sqrt/div per
    weight would cost more than the dense loop saves). Returns the sum of squared gradients."""
    opt, l1, l2, rho, omr, eps, rate, mom = optim
    for k in range(nnz):
        i = nz[k]
        gw[k] = w[i]
        g1[k] = s1[i]
        g2[k] = s2[i]
    no_skip = nnz < 0  # False as a run-time bool: the unit rows' compiled _dense_row_update serves here too
    gsq = _dense_row_update(gw[:nnz], g1[:nnz], g2[:nnz], xv[:nnz], g, opt, l1, l2, rho, omr, eps, rate, mom, no_skip,
                            xv[:0])
    for k in range(nnz):
        i = nz[k]
        w[i] = gw[k]
        s1[i] = g1[k]
        s2[i] = g2[k]
    return gsq


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def backward_update(views, centre, lay, A, E, nz, nnz, ustate, hp, ip, n_seen, scratch):
    """Backpropagate E (output error already set) and update every visited parameter in place, layer
    by layer from the output: a first layer stored input-major (ip[IP_INPUT_MAJOR]) by
    ``_input_major_update``, every other layer by ``_unit_major_update``. Those two are kernels of
    their own (a fresh install compiles them in two processes at once, see precompile); this one is
    inlined into its one caller, which would otherwise optimise and compile all of it a second time."""
    estimate_rsqrt()
    W, B, S1W, S2W, S1B, S2B = views
    units, woff, boff, aoff, acts = lay
    xv, gw, g1, g2, sc, uv, uacc, psq, act = scratch
    n_layers = units.shape[0] - 1
    opt = ip[IP_OPT]
    fast = ip[IP_FAST] != 0
    im = ip[IP_INPUT_MAJOR] != 0
    cap_w2 = ip[IP_CAPS_W2] != 0
    rho, omr, eps = hp[HP_RHO], hp[HP_OMR], hp[HP_EPS]
    l1, l2 = hp[HP_L1], hp[HP_L2]
    lam = hp[HP_EA]  # elastic averaging: pull towards the centre the iteration started from
    rate0, mom = _schedule(hp, n_seen, sc)
    if opt == ADAM:
        eps = sc[3]
    skip_zero = fast or (opt == SGD and l1 == 0.0 and l2 == 0.0)
    # H2O's defaults (ADADELTA, no L1/L2, no elastic pull): rows take the inputs squared (_adadelta_row_sq)
    plain_adadelta = opt == ADADELTA and l1 == 0.0 and l2 == 0.0 and lam == 0.0
    sparse_in = 2 * nnz < units[0]
    if (sparse_in or im) and fast:
        for k in range(nnz):
            xv[k] = A[nz[k]]  # the non-zero inputs, contiguous
    mode = (fast, sparse_in, skip_zero, plain_adadelta, cap_w2)
    for l in range(n_layers, 0, -1):
        optim = (opt, l1, l2, rho, omr, eps, _layer_rate(hp, rate0, l, sc), mom)
        if not (l == 1 and im):
            _unit_major_update(views, centre, lay, l, A, E, nz, nnz, ustate, scratch, optim, hp, mode)
            continue
        n_in, n_out = units[0], units[1]
        inv_n = _inverse(sc, n_in)
        wo, w1, bo = woff[0], woff[1], boff[0]
        params = (W[wo:w1], B[bo:bo + n_out], S1W[wo:w1], S2W[wo:w1], S1B[bo:bo + n_out], S2B[bo:bo + n_out])
        a0, a1 = aoff[0], aoff[1]
        layer = (A[a0:a0 + n_in], A[a1:a1 + n_out], E[a1:a1 + n_out], ustate[a1:a1 + n_out])
        _input_major_update(params, layer, acts[1], n_layers == 1, nz, nnz, xv, fast, skip_zero, optim, cap_w2,
                            hp[HP_MAXW2], uv[:n_out], uacc[:n_out], inv_n)


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def _unit_major_update(views, centre, lay, l, A, E, nz, nnz, ustate, scratch, optim, hp, mode):
    """Backpropagate through layer l stored unit-major (row r = unit r's incoming weights) and update
    its weights and biases, one contiguous row per unit by the cheapest loop the settings allow.
    ``optim``: the layer's optimizer scalars; ``mode``: (fast, sparse_in, skip_zero, plain_adadelta,
    cap_w2) as ``backward_update`` settled them for this row of data."""
    estimate_rsqrt()
    W, B, S1W, S2W, S1B, S2B = views
    CW, CB = centre
    units, woff, boff, aoff, acts = lay
    xv, gw, g1, g2, sc, uv, uacc, psq, act = scratch
    opt, l1, l2, rho, omr, eps, rate, mom = optim
    fast, sparse_in, skip_zero, plain_adadelta, cap_w2 = mode
    n_layers = units.shape[0] - 1
    beta, target = hp[HP_SPARSITY], hp[HP_AVG_ACT]  # sparse autoencoder: pull mean activations to target
    lam = hp[HP_EA]
    max_w2 = hp[HP_MAXW2]
    noacc = uacc[:0]  # unit-major rows need no per-element gradient sums
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
    inv_n = _inverse(sc, n_in)
    # fast_mode's zero-input test is a masked store per weight: drop it when no input is zero
    row_fast = fast and not (l == 1 and nnz == n_in)
    # (the sparse first layer has an update loop of its own)
    squared = plain_adadelta and not (l == 1 and sparse_in and fast)
    ssq = rho - rho
    if squared:
        for i in range(n_in):
            v = prev[i]
            psq[i] = v * v
            ssq += v * v
    if l > 1:
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
            gsq = _gathered_row_update(w, s1, s2, nz, nnz, xv, gw, g1, g2, g, optim)
        elif l == 1 and sparse_in and fast:
            for k in range(nnz):
                i = nz[k]
                wi = w[i]
                grad = g * prev[i] + l2 * wi + _l1_term(l1, wi) + lam * (wi - cw[i])
                gsq += grad * grad
                _step(w, s1, s2, i, wi, grad, opt, rho, omr, eps, rate, mom)
        else:
            if l > 1:
                for i in range(n_in):
                    eprev[i] += g * w[i]  # with the pre-update weights
            if lam != 0.0:
                gsq = _elastic_row_update(w, s1, s2, cw, prev, g, opt, l1, l2, lam, rho, omr, eps, rate, mom, fast)
            elif squared:
                _adadelta_row_sq(w, s1, s2, prev, psq[:n_in], g, rho, omr, eps, row_fast)
                gsq = g * g * ssq
            else:
                gsq = _dense_row_update(w, s1, s2, prev, g, opt, l1, l2, rho, omr, eps, rate, mom, row_fast, noacc)
        if cap_w2:
            _cap_norm(w, max_w2)
        bk = bo + r
        b = B[bk]
        gb = g + l2 * b + _l1_term(l1, b) + lam * (b - CB[bk])
        if beta > 0.0 and l < n_layers:
            gb += beta * (act[aoff[l] + j] - target)
        _bias_step(B, S1B, S2B, bk, b, gb, gsq * inv_n, opt, rho, omr, eps, rate, mom)


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _row_scratch(units, dtype):
    """The per-call buffers of ``backward_update`` (see the module docstring), allocated once."""
    u0 = units[0]
    xv = np.zeros(u0, dtype=dtype)  # sparse fast path: gathered inputs, weights, state
    gw = np.zeros(u0, dtype=dtype)
    g1 = np.zeros(u0, dtype=dtype)
    g2 = np.zeros(u0, dtype=dtype)
    sc = np.zeros(5, dtype=dtype)  # scalars kept in the state's dtype (see optimizers._schedule)
    uv = np.zeros(units[1], dtype=dtype)  # input-major first layer: unit gradients, their sums
    uacc = np.zeros(units[1], dtype=dtype)
    psq = np.zeros(units[:-1].max(), dtype=dtype)  # a layer's inputs squared (_adadelta_row_sq)
    act = np.zeros(units.sum(), dtype=dtype)  # sparse autoencoder: each unit's running mean activation
    return xv, gw, g1, g2, sc, uv, uacc, psq, act


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def train_rows_elastic(state, center, net, X, y, w, o, rows, hp, ip):
    """Train on X[rows[0]], X[rows[1]], ... in that order, updating ``state`` in place (lock-free);
    every gradient gets hp[HP_EA] * (theta - center) (elastic averaging; 0 when off). ``w``: the
    rows' observation weights, multiplying their loss (empty: 1 each); ``o``: offsets added to the
    (linear) output's pre-activation (empty: none).

    ``net`` is ``NetworkLayout.kernel_arrays()``; ``hp``/``ip`` hold the float/int parameters
    (slots HP_*/IP_*, see settings). Seeds this thread's RNG stream (dropout) from ip[IP_SEED].
    Returns the number of rows trained.
    """
    estimate_rsqrt()
    units, woff, boff, acts, drop = net
    n_layers = units.shape[0] - 1
    views, centre = model_views(state, center, units, woff, boff)
    aoff = unit_offsets(units, 1)
    lay = (units, woff, boff, aoff, acts)
    A = np.zeros(aoff[n_layers + 1], dtype=state.dtype)
    E = np.zeros(aoff[n_layers + 1], dtype=state.dtype)
    ustate = np.zeros(aoff[n_layers + 1], dtype=np.int8)
    nz = np.zeros(units[0], dtype=np.int64)
    scratch = _row_scratch(units, state.dtype)
    im = ip[IP_INPUT_MAJOR] != 0
    np.random.seed(ip[IP_SEED])
    loss = ip[IP_LOSS]
    co = aoff[n_layers]
    n_out = units[n_layers]
    out_code = acts[n_layers]
    n0 = hp[HP_N0]
    step = hp[HP_NSTEP]
    weighted = w.shape[0] > 0
    offset = o.shape[0] > 0
    ae = ip[IP_AUTOENCODER] != 0
    sparsity = hp[HP_SPARSITY] > 0.0
    act = scratch[8]
    for t in range(rows.shape[0]):
        r = rows[t]
        nnz = forward_train(views[0], views[1], lay, drop, X[r], A, nz, ustate, im)
        if sparsity:  # hidden units: H2O's 0.999 / 0.001 running mean, kept per call from its first row
            for k in range(aoff[1], co):
                act[k] = A[k] if t == 0 else 0.999 * act[k] + 0.001 * A[k]
        if offset:
            A[co] += o[r]
        if ae:
            autoencoder_error(A, E, co, n_out, out_code, loss, X[r], hp)
        else:
            output_error(A, E, co, n_out, out_code, loss, y[r], hp)
        if weighted:
            for k in range(n_out):
                E[co + k] *= w[r]
        backward_update(views, centre, lay, A, E, nz, nnz, ustate, hp, ip, n0 + t * step, scratch)
    return rows.shape[0]


def train_rows(state, net, X, y, w, o, rows, hp, ip):
    """``train_rows_elastic`` without a centre (plain HOGWILD! SGD; hp[HP_EA] must be 0): the same
    compiled kernel, so a fit compiles one (a jitted wrapper re-optimised the whole kernel again)."""
    return train_rows_elastic(state, state, net, X, y, w, o, rows, hp, ip)
