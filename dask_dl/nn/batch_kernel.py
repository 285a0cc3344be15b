"""The mini-batch kernel (mini_batch_size > 1): each batch of rows makes ONE update with the
batch-mean gradient. Layer products are BLAS-3 (np.dot -> sgemm on (batch x units) blocks); the
per-weight update is the per-sample path's row update (optimizers), fed the summed gradient row,
so every optimizer, L1/L2, max_w2 and fast_mode behave the same.

Arrays travel in tuples as in ``sample_kernel``; ``lay`` here is (units, woff, boff, aoff, acts,
rows_of, zoff) with offsets of (batch x units) blocks and ``rows_of`` the weight rows per layer
(2 per Maxout unit).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .activations import _activate, _softmax_inplace, _unit_gradient, autoencoder_error, output_error
from .codegen import estimate_rsqrt
from .network import MAXOUT, SOFTMAX
from .optimizers import (_bias_step, _cap_norm, _dense_row_update, _elastic_row_update, _inverse, _l1_term,
                         _layer_rate, _schedule)
from .settings import (ADAM, DROPPED, HP_EA, HP_EPS, HP_L1, HP_L2, HP_MAXW2, HP_N0, HP_NSTEP, HP_OMR, HP_RHO,
                       IP_AUTOENCODER, IP_BATCH, IP_CAPS_W2, IP_FAST, IP_LOSS, IP_OPT, IP_SEED, SGD)
from .views import model_views, unit_offsets


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def _batch_forward(W, B, lay, drop, X, rows, start, m, A, U, Z):
    """Training-mode forward pass of rows[start:start + m] (dropout masks drawn here)."""
    estimate_rsqrt()
    units, woff, boff, aoff, acts, rows_of, zoff = lay
    n_layers = units.shape[0] - 1
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


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _unit_gradients(g, cur, ecur, ust, code, is_output, m, n_out):
    """dLoss/dz of every (row, weight row) of a layer into ``g`` (Maxout: only the winning channel)."""
    for b in range(m):
        for j in range(n_out):
            e = ecur[b, j]
            if is_output:
                g[b, j] = e
            elif code == MAXOUT:
                st = ust[b, j]
                g[b, 2 * j] = e if st == 0 else e - e
                g[b, 2 * j + 1] = e if st == 1 else e - e
            elif ust[b, j] == DROPPED:
                g[b, j] = e - e
            else:
                g[b, j] = _unit_gradient(code, e, cur[b, j])


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def _batch_backward(views, centre, lay, A, E, U, Z, dW, m, inv, hp, ip, n_seen, sc):
    """Backpropagate E (output error already set) through the batch and make ONE update of every
    weight row with a gradient, layer by layer from the top; ``inv`` = 1 / m in the state's dtype."""
    estimate_rsqrt()
    W, B, S1W, S2W, S1B, S2B = views
    CW, CB = centre
    units, woff, boff, aoff, acts, rows_of, zoff = lay
    n_layers = units.shape[0] - 1
    opt = ip[IP_OPT]
    fast = ip[IP_FAST] != 0
    cap_w2 = ip[IP_CAPS_W2] != 0
    rho, omr, eps = hp[HP_RHO], hp[HP_OMR], hp[HP_EPS]
    l1, l2, lam = hp[HP_L1], hp[HP_L2], hp[HP_EA]
    max_w2 = hp[HP_MAXW2]
    skip_zero = fast or (opt == SGD and l1 == 0.0 and l2 == 0.0)
    noacc = sc[:0]
    rate0, mom = _schedule(hp, n_seen, sc)
    if opt == ADAM:
        eps = sc[3]
    for l in range(n_layers, 0, -1):
        n_in, n_out, nr = units[l - 1], units[l], rows_of[l]
        cur = A[aoff[l]:aoff[l] + m * n_out].reshape((m, n_out))
        ecur = E[aoff[l]:aoff[l] + m * n_out].reshape((m, n_out))
        ust = U[aoff[l]:aoff[l] + m * n_out].reshape((m, n_out))
        g = Z[zoff[l]:zoff[l] + m * nr].reshape((m, nr))  # pre-activations no longer needed
        _unit_gradients(g, cur, ecur, ust, acts[l], l == n_layers, m, n_out)
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
                gsq = _elastic_row_update(w, s1, s2, cw, drow, inv, opt, l1, l2, lam, rho, omr, eps, rate, mom, fast)
            else:
                gsq = _dense_row_update(w, s1, s2, drow, inv, opt, l1, l2, rho, omr, eps, rate, mom, fast, noacc)
            if cap_w2:
                _cap_norm(w, max_w2)
            bk = bo + r
            b_ = B[bk]
            gb = gsum * inv + l2 * b_ + _l1_term(l1, b_) + lam * (b_ - CB[bk])
            _bias_step(B, S1B, S2B, bk, b_, gb, gsq * inv_n, opt, rho, omr, eps, rate, mom)


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy", inline="always")
def _batch_layout(units, acts, bs):
    """(weight rows per layer, offsets of (bs x units) blocks, offsets of (bs x weight rows) blocks,
    the largest layer's weight count)."""
    n_layers = units.shape[0] - 1
    rows_of = units.copy()
    max_w = 0
    for l in range(1, n_layers + 1):
        rows_of[l] = units[l] * (2 if acts[l] == MAXOUT else 1)
        max_w = max(max_w, rows_of[l] * units[l - 1])
    return rows_of, unit_offsets(units, bs), unit_offsets(rows_of, bs), max_w


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def train_batches_elastic(state, center, net, X, y, w, o, rows, hp, ip):
    """Mini-batch HOGWILD! SGD (mini_batch_size = ip[IP_BATCH] > 1): rows[0:bs], rows[bs:2bs], ... each
    make ONE update with the batch-mean gradient. fast_mode: a weight whose gradient is exactly 0
    for the whole batch, and a unit with no gradient, are not touched. ``hp[HP_EA]`` != 0 adds the
    elastic-averaging pull towards ``center``. ``net`` is ``NetworkLayout.kernel_arrays()``; ``w``
    and ``o`` the rows' weights and offsets (empty: none), as in ``train_rows_elastic``."""
    estimate_rsqrt()
    units, woff, boff, acts, drop = net
    n_layers = units.shape[0] - 1
    views, centre = model_views(state, center, units, woff, boff)
    bs = ip[IP_BATCH]
    np.random.seed(ip[IP_SEED])
    loss = ip[IP_LOSS]
    # scratch, allocated once: activations/errors (batch x units), pre-activations/gradients
    # (batch x weight rows), the summed weight gradient of the largest layer
    rows_of, aoff, zoff, max_w = _batch_layout(units, acts, bs)
    lay = (units, woff, boff, aoff, acts, rows_of, zoff)
    A = np.zeros(aoff[n_layers + 1], dtype=state.dtype)
    E = np.zeros(aoff[n_layers + 1], dtype=state.dtype)
    U = np.zeros(aoff[n_layers + 1], dtype=np.int8)
    Z = np.zeros(zoff[n_layers + 1], dtype=state.dtype)
    dW = np.zeros(max_w, dtype=state.dtype)
    scale = np.zeros(1, dtype=state.dtype)
    sc = np.zeros(5, dtype=state.dtype)
    out_code = acts[n_layers]
    n_out = units[n_layers]
    co = aoff[n_layers]
    n_rows = rows.shape[0]
    ae = ip[IP_AUTOENCODER] != 0
    n0 = hp[HP_N0]
    step = hp[HP_NSTEP]
    for start in range(0, n_rows, bs):
        m = min(bs, n_rows - start)
        scale[0] = 1.0 / m  # in the state's dtype: a float64 factor would widen the float32 update loop
        _batch_forward(views[0], views[1], lay, drop, X, rows, start, m, A, U, Z)
        aout = A[co:co + m * n_out].reshape((m, n_out))
        eout = E[co:co + m * n_out].reshape((m, n_out))
        for b in range(m):
            r = rows[start + b]
            if o.shape[0] > 0:
                aout[b, 0] += o[r]
            if ae:
                autoencoder_error(aout[b], eout[b], 0, n_out, out_code, loss, X[r], hp)
            else:
                output_error(aout[b], eout[b], 0, n_out, out_code, loss, y[r], hp)
            if w.shape[0] > 0:
                for k in range(n_out):
                    eout[b, k] *= w[r]
        _batch_backward(views, centre, lay, A, E, U, Z, dW, m, scale[0], hp, ip, n0 + start * step, sc)
    return n_rows


def train_batches(state, net, X, y, w, o, rows, hp, ip):
    """``train_batches_elastic`` without a centre (plain HOGWILD! mini-batch SGD; hp[HP_EA] must be
    0): the same compiled kernel, as ``sample_kernel.train_rows``."""
    return train_batches_elastic(state, state, net, X, y, w, o, rows, hp, ip)
