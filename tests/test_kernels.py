"""dask_dl.nn's kernels: exact gradients, regularisation, optimizers, fast_mode, max_w2, dropout, HOGWILD!.

The kernels are dtype-generic, so most checks run ``train_rows`` in float64. Gradient trick: plain SGD with
rate 1, no annealing/decay/regularisation/dropout and one row gives ``old_state - new_state == gradient`` for
every weight and bias; that gradient is checked once against central finite differences of a float64 numpy
loss computed from ``forward.forward`` and then reused as the reference ``g`` for the optimizer tests.
"""
from __future__ import annotations

import numpy as np
import pytest

from dask_dl.nn import codegen
from dask_dl.nn import settings as K
from dask_dl.nn.batch_kernel import train_batches
from dask_dl.nn.forward import forward
from dask_dl.nn.hogwild import train_shard
from dask_dl.nn.network import MAXOUT, RECTIFIER, SOFTMAX, TANH, build_layout, initial_state
from dask_dl.nn.sample_kernel import _rows_times, train_rows, train_rows_elastic
from dask_dl.nn.settings import KernelSettings

FMAX = 3.4e38
RTOL_FD = 1e-5

# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def make(hidden=(4, 3), act="Tanh", n_out=3, classifier=True, seed=0, n_in=5, in_drop=0.0, hid_drop=None,
         dtype=np.float64):
    hid_drop = [0.0] * len(hidden) if hid_drop is None else list(hid_drop)
    layout = build_layout(n_in, list(hidden), act, n_out, classifier, in_drop, hid_drop)
    return layout, initial_state(layout, seed).astype(dtype)


def base_hp(**kw):
    hp = np.zeros(K.N_HP, dtype=np.float64)
    hp[K.HP_RATE] = 1.0
    hp[K.HP_ANNEAL] = 0.0
    hp[K.HP_DECAY] = 1.0
    hp[K.HP_MAXW2] = FMAX
    hp[K.HP_RHO] = 0.99
    hp[K.HP_OMR] = 0.01
    hp[K.HP_EPS] = 1e-8
    hp[K.HP_QALPHA] = 0.3
    hp[K.HP_TPOWER] = 1.5
    hp[K.HP_HUBER] = 0.7
    hp[K.HP_NSTEP] = 1.0
    for k, v in kw.items():
        hp[getattr(K, "HP_" + k.upper())] = v
    if "rho" in kw and "omr" not in kw:
        hp[K.HP_OMR] = 1.0 - kw["rho"]
    return hp


def _row_values(v, dt):
    """Per-row weights or offsets for a kernel call (an empty array: none)."""
    return np.zeros(0, dtype=dt) if v is None else np.ascontiguousarray(np.atleast_1d(v), dtype=dt)


def train(layout, state, X, y, hp, opt=K.SGD, loss=K.CROSS_ENTROPY, fast=0, seed=1, w=None, o=None):
    """Run the kernel in place on every row of X, in order (``w``, ``o``: the rows' weights and offsets;
    an autoencoder layout reconstructs X)."""
    dt = state.dtype
    X = np.ascontiguousarray(np.atleast_2d(X), dtype=dt)
    y = np.ascontiguousarray(np.atleast_1d(y), dtype=dt)
    rows = np.arange(X.shape[0], dtype=np.int64)
    ae = layout.output_code in (TANH, RECTIFIER)
    ip = K.int_params(opt, fast, loss, seed, input_major=layout.input_major, caps_weights=hp[K.HP_MAXW2] < FMAX,
                      autoencoder=ae)
    n = train_rows(state, layout.kernel_arrays(), X, y, _row_values(w, dt), _row_values(o, dt), rows,
                   np.ascontiguousarray(hp, dtype=dt), ip)
    assert n == X.shape[0]
    return state


def n_params(layout):
    return layout.n_weights + layout.n_biases


def sgd_grad(layout, state, x, y, loss, hp=None):
    """Gradient of every weight and bias from the plain-SGD rate-1 trick (state untouched)."""
    hp = base_hp() if hp is None else hp
    s = state.copy()
    train(layout, s, x, y, hp, opt=K.SGD, loss=loss, fast=0)
    n = n_params(layout)
    assert np.array_equal(s[n:], state[n:]), "plain SGD must not touch the optimizer state"
    return state[:n] - s[:n]


def np_forward(layout, state, x, masks=None, in_mask=None, score_scale=False):
    """Independent numpy forward pass: (output, [pre-activations per layer], [activations per layer])."""
    a = np.asarray(x, dtype=np.float64).copy()
    if in_mask is not None:
        a = a * in_mask
    acts, zs = [a], []
    L = layout.n_layers
    for l in range(1, L + 1):
        W = layout.weight_matrix(state, l).astype(np.float64)
        b = layout.bias_vector(state, l).astype(np.float64)
        z = W @ a + b
        zs.append(z)
        if l < L:
            if layout.hidden_code == TANH:
                a = np.tanh(z)
            elif layout.hidden_code == RECTIFIER:
                a = np.maximum(z, 0.0)
            else:
                a = np.maximum(z[0::2], z[1::2])
            if masks is not None:
                a = a * masks[l - 1]
            if score_scale:
                a = a * (1.0 - layout.dropout[l])
        elif layout.output_code == SOFTMAX:
            e = np.exp(z - z.max())
            a = e / e.sum()
        else:
            a = z
        acts.append(a)
    return a, zs, acts


def kink_margin(layout, state, x):
    """Distance of the hidden pre-activations from the activation's kink (inf for Tanh)."""
    _, zs, _ = np_forward(layout, state, x)
    m = np.inf
    for z in zs[:-1]:
        if layout.hidden_code == RECTIFIER:
            m = min(m, np.abs(z).min())
        elif layout.hidden_code == MAXOUT:
            m = min(m, np.abs(z[0::2] - z[1::2]).min())
    return m


def smooth_point(layout, state, seed, n_in):
    """An input row whose hidden pre-activations are >= 1e-3 away from any kink."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        x = rng.normal(size=n_in)
        if kink_margin(layout, state, x) > 1e-3:
            return x
    raise AssertionError("no kink-free point found")


def fd_grad(layout, state, lossfn, h=1e-6):
    n = n_params(layout)
    g = np.zeros(n)
    for k in range(n):
        sp = state.copy()
        sm = state.copy()
        sp[k] += h
        sm[k] -= h
        g[k] = (lossfn(sp) - lossfn(sm)) / (2 * h)
    return g


# float64 reference losses of one output row `o` (softmax probabilities or the linear output)
def ce(o, t):
    return -np.log(o[int(t)])


def quad_softmax(o, t):
    tt = np.zeros_like(o)
    tt[int(t)] = 1.0
    return 0.5 * np.sum((o - tt) ** 2)


def reg_loss(code, hp):
    a, delta, p = hp[K.HP_QALPHA], hp[K.HP_HUBER], hp[K.HP_TPOWER]

    def f(o, t):
        f_ = o[0]
        r = f_ - t
        if code == K.GAUSSIAN:
            return r * r
        if code == K.LAPLACE:
            return abs(r)
        if code == K.QUANTILE:
            return a * max(t - f_, 0.0) + (1 - a) * max(f_ - t, 0.0)
        if code == K.HUBER:
            return r * r if abs(r) <= delta else 2 * delta * abs(r) - delta * delta
        if code == K.POISSON:
            return 2 * (np.exp(f_) - t * f_)
        if code == K.GAMMA:
            return 2 * (f_ + t * np.exp(-f_))
        if code == K.TWEEDIE:
            return 2 * (np.exp((2 - p) * f_) / (2 - p) - t * np.exp((1 - p) * f_) / (1 - p))
        raise ValueError(code)
    return f


def check_gradient(layout, state, x, t, loss, lossfn, hp=None):
    hp = base_hp() if hp is None else hp
    ana = sgd_grad(layout, state, x, t, loss, hp)
    num = fd_grad(layout, state, lambda s: lossfn(forward(layout, s, x[None])[0], t))
    assert np.count_nonzero(num) > 0.3 * num.size, "degenerate check: almost every gradient is zero"
    np.testing.assert_allclose(ana, num, rtol=RTOL_FD, atol=1e-8 * max(1.0, np.abs(num).max()))
    return ana


def unit_row_spans(layout):
    """(layer, row, weight slice in W, bias index in B, fan_in) for every stored row."""
    out = []
    wo, bo = layout.w_offsets, layout.b_offsets
    for l in range(1, layout.n_layers + 1):
        n_in = layout.units[l - 1]
        for r in range(layout.rows(l)):
            out.append((l, r, slice(wo[l - 1] + r * n_in, wo[l - 1] + (r + 1) * n_in), bo[l - 1] + r, n_in))
    return out


def winning_rows(layout, state, x):
    """Per stored row (bias index): False for a Maxout unit's losing channel (never visited), else True."""
    win = np.ones(layout.n_biases, bool)
    if layout.hidden_code == MAXOUT:
        _, zs, _ = np_forward(layout, state, x)
        for l in range(1, layout.n_layers):
            z = zs[l - 1]
            c = (z[1::2] > z[0::2]).astype(int)  # ties -> channel 0
            bo = layout.b_offsets[l - 1]
            win[bo + 2 * np.arange(layout.units[l]) + 1 - c] = False
    return win


def sections(layout, state):
    return layout.split(state)


# --------------------------------------------------------------------------- #
# 0. sanity of the reference forward
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("act", ["Tanh", "Rectifier", "Maxout"])
@pytest.mark.parametrize("classifier", [True, False])
def test_reference_forward_matches_forward(act, classifier):
    layout, state = make(act=act, n_out=3 if classifier else 1, classifier=classifier, seed=3)
    X = np.random.default_rng(0).normal(size=(7, 5))
    ref = np.stack([np_forward(layout, state, x)[0] for x in X])
    np.testing.assert_allclose(forward(layout, state, X), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_out", [1, 3, 4, 5, 8, 11])
@pytest.mark.parametrize("n_in", [1, 7, 717])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_times_is_w_x_plus_b(n_out, n_in, dtype):
    """The training forward pass's four-rows-at-a-time product: blocks of four and the rest."""
    rng = np.random.default_rng(n_out * 1000 + n_in)
    W, b, x = (rng.normal(size=s).astype(dtype) for s in ((n_out, n_in), n_out, n_in))
    out = np.full(n_out, np.nan, dtype=dtype)
    _rows_times(W.ravel(), b, x, out)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, W.astype(np.float64) @ x + b, rtol=tol, atol=tol * np.sqrt(n_in))


# --------------------------------------------------------------------------- #
# 1. exact gradients vs central finite differences (float64)
# --------------------------------------------------------------------------- #

CLASSIF_CASES = [
    ("CE-binary", 2, K.CROSS_ENTROPY, ce),
    ("CE-multi", 3, K.CROSS_ENTROPY, ce),
    ("Quadratic-binary", 2, K.QUADRATIC_SOFTMAX, quad_softmax),
    ("Quadratic-multi", 3, K.QUADRATIC_SOFTMAX, quad_softmax),
]


@pytest.mark.parametrize("hidden", [(4,), (4, 3)], ids=["1layer", "2layers"])
@pytest.mark.parametrize("act", ["Tanh", "Rectifier", "Maxout"])
@pytest.mark.parametrize("case", CLASSIF_CASES + [("Gaussian", 1, K.GAUSSIAN, None)], ids=lambda c: c[0])
def test_gradient_matches_finite_differences(case, act, hidden):
    name, n_out, loss, lossfn = case
    classifier = lossfn is not None
    layout, state = make(hidden=hidden, act=act, n_out=n_out, classifier=classifier, seed=11)
    x = smooth_point(layout, state, 5, 5)
    if classifier:
        t = float(n_out - 1)
    else:
        lossfn = reg_loss(K.GAUSSIAN, base_hp())
        t = forward(layout, state, x[None])[0, 0] - 0.9
    check_gradient(layout, state, x, t, loss, lossfn)


REG_CASES = [
    ("laplace-above", K.LAPLACE, +0.8), ("laplace-below", K.LAPLACE, -0.8),
    ("quantile-above", K.QUANTILE, +0.8), ("quantile-below", K.QUANTILE, -0.8),
    ("huber-inside", K.HUBER, +0.4), ("huber-outside-pos", K.HUBER, +1.6), ("huber-outside-neg", K.HUBER, -1.6),
    ("poisson", K.POISSON, None), ("gamma", K.GAMMA, None), ("tweedie", K.TWEEDIE, None),
]


@pytest.mark.parametrize("case", REG_CASES, ids=lambda c: c[0])
def test_regression_loss_gradients(case):
    name, code, off = case
    hp = base_hp()
    layout, state = make(hidden=(4, 3), act="Tanh", n_out=1, classifier=False, seed=13)
    x = smooth_point(layout, state, 7, 5)
    f = forward(layout, state, x[None])[0, 0]
    t = f + off if off is not None else 1.3  # target = f + off: |f - t| is far from every kink
    check_gradient(layout, state, x, t, code, reg_loss(code, hp), hp)


def test_huber_delta_is_honoured():
    """The same residual 1.0 is quadratic with delta 1.5 and linear with delta 0.5."""
    layout, state = make(hidden=(4,), act="Tanh", n_out=1, classifier=False, seed=2)
    x = smooth_point(layout, state, 1, 5)
    f = forward(layout, state, x[None])[0, 0]
    g_out = []
    for delta in (1.5, 0.5):
        g = sgd_grad(layout, state, x, f - 1.0, K.HUBER, base_hp(huber=delta))
        bias_out = layout.n_weights + layout.b_offsets[-2]
        g_out.append(g[bias_out])  # the output bias gradient is delta itself
    np.testing.assert_allclose(g_out, [2.0, 1.0], rtol=1e-12)


# --------------------------------------------------------------------------- #
# 2. L1 / L2
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("act", ["Tanh", "Rectifier"])
def test_l1_l2_added_to_gradient(act):
    layout, state = make(hidden=(4, 3), act=act, n_out=3, seed=4)
    rng = np.random.default_rng(1)
    B = sections(layout, state)[1]
    B[:] = rng.normal(size=B.size) * (rng.random(B.size) < 0.6)  # some biases exactly 0: sign(0) = 0
    if act == "Rectifier":
        layout.bias_vector(state, 1)[0] = -20.0  # a dead unit (g = 0): still decays with fast_mode off
    x = smooth_point(layout, state, 2, 5)
    g = sgd_grad(layout, state, x, 1.0, K.CROSS_ENTROPY)
    l1, l2 = 1e-3, 3e-2
    s = state.copy()
    train(layout, s, x, 1.0, base_hp(l1=l1, l2=l2), opt=K.SGD, loss=K.CROSS_ENTROPY, fast=0)
    n = n_params(layout)
    p = state[:n]
    expected = p - (g + l1 * np.sign(p) + l2 * p)
    np.testing.assert_allclose(s[:n], expected, rtol=1e-12, atol=1e-14)
    if act == "Rectifier":
        assert layout.bias_vector(s, 1)[0] != -20.0


# --------------------------------------------------------------------------- #
# 3. ADADELTA (and the bias quirk)
# --------------------------------------------------------------------------- #


def adadelta_ref(layout, state, g, rho, eps, keep_w=None, visit=None):
    """numpy ADADELTA step of every parameter given the gradient vector g (weights + biases)."""
    s = state.copy()
    W, B, S1W, S2W, S1B, S2B = sections(layout, s)
    nw = layout.n_weights
    gw, gb = g[:nw], g[nw:]
    keep_w = np.ones(nw, bool) if keep_w is None else keep_w
    for l, r, sl, bk, n_in in unit_row_spans(layout):
        if visit is not None and not visit[bk]:
            continue
        idx = np.arange(sl.start, sl.stop)
        k = idx[keep_w[idx]]
        eg = rho * S1W[k] + (1 - rho) * gw[k] ** 2
        eta = np.sqrt((S2W[k] + eps) / (eg + eps))
        dx = eta * gw[k]
        S1W[k] = eg
        S2W[k] = rho * S2W[k] + (1 - rho) * dx ** 2
        W[k] -= dx
        g2 = np.sum(gw[k] ** 2) / n_in  # the quirk: mean over ALL fan-in of the updated weights' grad^2
        egb = rho * S1B[bk] + (1 - rho) * g2
        etab = np.sqrt((S2B[bk] + eps) / (egb + eps))
        S1B[bk] = egb
        S2B[bk] = rho * S2B[bk] + (1 - rho) * etab ** 2 * g2
        B[bk] -= etab * gb[bk]
    return s


@pytest.mark.parametrize("act", ["Tanh", "Maxout"])
def test_adadelta_first_step_from_zero_state(act):
    rho, eps = 0.95, 1e-6
    layout, state = make(hidden=(4, 3), act=act, n_out=3, seed=5)
    x = smooth_point(layout, state, 3, 5)
    g = sgd_grad(layout, state, x, 2.0, K.CROSS_ENTROPY)
    s = state.copy()
    train(layout, s, x, 2.0, base_hp(rho=rho, eps=eps), opt=K.ADADELTA, loss=K.CROSS_ENTROPY, fast=0)
    W0 = sections(layout, state)[0]
    W, B, S1W, S2W, S1B, S2B = sections(layout, s)
    nw = layout.n_weights
    gw = g[:nw]
    # the closed form of the first step, weight by weight
    moved = gw != 0
    step = np.sqrt(eps / ((1 - rho) * gw ** 2 + eps)) * gw
    np.testing.assert_allclose(W, W0 - step, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(S1W, (1 - rho) * gw ** 2, rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(S2W, (1 - rho) * step ** 2, rtol=1e-12, atol=1e-20)
    assert moved.sum() > 0.4 * nw
    # biases: E[g^2] driven by sum(grad^2 of the unit's weights) / fan_in, step uses the bias's own gradient
    gb = g[nw:]
    for l, r, sl, bk, n_in in unit_row_spans(layout):
        g2 = np.sum(gw[sl] ** 2) / n_in
        eta = np.sqrt(eps / ((1 - rho) * g2 + eps))
        if gb[bk] == 0.0 and g2 == 0.0:  # Maxout losing channel: its bias has no gradient
            continue
        np.testing.assert_allclose(S1B[bk], (1 - rho) * g2, rtol=1e-12, atol=1e-20)
        np.testing.assert_allclose(S2B[bk], (1 - rho) * eta ** 2 * g2, rtol=1e-12, atol=1e-20)
        np.testing.assert_allclose(B[bk], sections(layout, state)[1][bk] - eta * gb[bk], rtol=1e-12, atol=1e-15)
    # the whole state, two steps (the 2nd one from non-zero optimizer state)
    np.testing.assert_allclose(s, adadelta_ref(layout, state, g, rho, eps, visit=winning_rows(layout, state, x)),
                               rtol=1e-12, atol=1e-18)
    x2 = smooth_point(layout, s, 9, 5)
    g2v = sgd_grad(layout, s, x2, 0.0, K.CROSS_ENTROPY)
    s2 = s.copy()
    train(layout, s2, x2, 0.0, base_hp(rho=rho, eps=eps), opt=K.ADADELTA, loss=K.CROSS_ENTROPY, fast=0)
    win2 = winning_rows(layout, s, x2)
    np.testing.assert_allclose(s2, adadelta_ref(layout, s, g2v, rho, eps, visit=win2), rtol=1e-10, atol=1e-18)
    if act == "Maxout":  # a losing channel's weights AND optimizer state are left alone
        S1W1, S1W2 = sections(layout, s)[2], sections(layout, s2)[2]
        for l, r, sl, bk, n_in in unit_row_spans(layout):
            if not win2[bk]:
                assert np.array_equal(S1W2[sl], S1W1[sl])


# --------------------------------------------------------------------------- #
# 4. manual learning rate: annealing, decay, momentum, Nesterov
# --------------------------------------------------------------------------- #


def layer_of_params(layout):
    """Receiving layer (1-based) of every weight and bias."""
    lw = np.concatenate([np.full(layout.rows(l) * layout.units[l - 1], l) for l in range(1, layout.n_layers + 1)])
    lb = np.concatenate([np.full(layout.rows(l), l) for l in range(1, layout.n_layers + 1)])
    return np.concatenate([lw, lb])


def test_rate_annealing_and_decay():
    layout, state = make(hidden=(4, 3), act="Tanh", n_out=3, seed=6)
    x = smooth_point(layout, state, 4, 5)
    g = sgd_grad(layout, state, x, 0.0, K.CROSS_ENTROPY)
    rate, anneal, n0, decay = 0.1, 0.01, 50.0, 0.5
    s = state.copy()
    train(layout, s, x, 0.0, base_hp(rate=rate, anneal=anneal, n0=n0, decay=decay), opt=K.SGD)
    n = n_params(layout)
    lay = layer_of_params(layout)
    eff = rate / (1 + anneal * n0) * decay ** (lay - 1)
    np.testing.assert_allclose(s[:n], state[:n] - eff * g, rtol=1e-12, atol=1e-15)
    assert set(np.unique(lay)) == {1, 2, 3}


def test_annealing_advances_by_nstep_per_row():
    layout, state = make(hidden=(4,), act="Tanh", n_out=3, seed=6)
    X = np.random.default_rng(8).normal(size=(2, 5))
    y = np.array([0.0, 2.0])
    rate, anneal, n0, step = 0.2, 0.05, 10.0, 3.0
    hp = base_hp(rate=rate, anneal=anneal, n0=n0, nstep=step)
    n = n_params(layout)
    g1 = sgd_grad(layout, state, X[0], y[0], K.CROSS_ENTROPY)
    s1 = state.copy()
    s1[:n] -= rate / (1 + anneal * n0) * g1
    g2 = sgd_grad(layout, s1, X[1], y[1], K.CROSS_ENTROPY)
    expected = s1[:n] - rate / (1 + anneal * (n0 + step)) * g2
    s = state.copy()
    train(layout, s, X, y, hp, opt=K.SGD)
    np.testing.assert_allclose(s[:n], expected, rtol=1e-10, atol=1e-14)


def velocity(layout, s):
    _, _, S1W, _, S1B, _ = sections(layout, s)
    return np.concatenate([S1W, S1B])


@pytest.mark.parametrize("opt", [K.MOMENTUM, K.NESTEROV], ids=["momentum", "nesterov"])
def test_momentum_two_steps(opt):
    layout, state = make(hidden=(4, 3), act="Tanh", n_out=3, seed=7)
    X = np.random.default_rng(9).normal(size=(2, 5))
    y = np.array([1.0, 2.0])
    rate, m = 0.05, 0.7
    hp = base_hp(rate=rate, mom_start=m, mom_stable=m, mom_ramp=0.0)
    n = n_params(layout)
    w0 = state[:n]
    g1 = sgd_grad(layout, state, X[0], y[0], K.CROSS_ENTROPY)
    v1 = -rate * g1
    w1 = w0 + v1 if opt == K.MOMENTUM else w0 + (1 + m) * v1
    s = state.copy()
    train(layout, s, X[:1], y[:1], hp, opt=opt)
    np.testing.assert_allclose(s[:n], w1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(velocity(layout, s), v1, rtol=1e-12, atol=1e-15)
    g2 = sgd_grad(layout, s, X[1], y[1], K.CROSS_ENTROPY)
    v2 = m * v1 - rate * g2
    w2 = w1 + v2 if opt == K.MOMENTUM else w1 - m * v1 + (1 + m) * v2
    train(layout, s, X[1:], y[1:], hp, opt=opt)
    np.testing.assert_allclose(s[:n], w2, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(velocity(layout, s), v2, rtol=1e-11, atol=1e-14)
    # the second step must really depend on the first step's velocity
    assert np.abs(m * v1).max() > 1e-3


@pytest.mark.parametrize("n0,expected_m", [(0.0, 0.1), (50.0, 0.5), (100.0, 0.9), (250.0, 0.9), ("noramp", 0.1)])
def test_momentum_ramp(n0, expected_m):
    layout, state = make(hidden=(4,), act="Tanh", n_out=3, seed=8)
    ramp = 100.0
    if n0 == "noramp":
        n0, ramp = 50.0, 0.0
    n = n_params(layout)
    rng = np.random.default_rng(2)
    v0 = rng.normal(size=n) * 0.1
    _, _, S1W, _, S1B, _ = sections(layout, state)
    S1W[:] = v0[:layout.n_weights]
    S1B[:] = v0[layout.n_weights:]
    x = smooth_point(layout, state, 1, 5)
    g = sgd_grad(layout, state, x, 1.0, K.CROSS_ENTROPY)
    rate = 0.03
    s = state.copy()
    train(layout, s, x, 1.0, base_hp(rate=rate, mom_start=0.1, mom_stable=0.9, mom_ramp=ramp, n0=n0),
          opt=K.MOMENTUM)
    v = expected_m * v0 - rate * g
    np.testing.assert_allclose(velocity(layout, s), v, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s[:n], state[:n] + v, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- #
# 5. fast_mode
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("nonzero", [[2], [0, 2, 4]], ids=["sparse-path", "dense-path"])
@pytest.mark.parametrize("fast", [1, 0], ids=["fast", "nofast"])
def test_fast_mode_skips_zero_inputs(fast, nonzero):
    rho, eps = 0.9, 1e-6
    layout, state = make(hidden=(4, 3), act="Rectifier", n_out=3, seed=9)
    layout.bias_vector(state, 1)[1] = -50.0  # hidden unit 1 of layer 1 is dead: a = 0, g = 0
    _, _, S1W, S2W, S1B, S2B = sections(layout, state)
    S1W[:], S2W[:], S1B[:], S2B[:] = 0.01, 0.02, 0.03, 0.04
    x = np.zeros(5)
    x[nonzero] = np.random.default_rng(3).normal(size=len(nonzero)) + 2.0
    assert kink_margin(layout, state, x) > 1e-3
    g = sgd_grad(layout, state, x, 0.0, K.CROSS_ENTROPY)
    _, _, a = np_forward(layout, state, x)
    # which weights see a zero input, which units have g == 0
    nw = layout.n_weights
    zero_in = np.zeros(nw, bool)
    visit = np.ones(layout.n_biases, bool)
    for l, r, sl, bk, n_in in unit_row_spans(layout):
        zero_in[sl] = a[l - 1] == 0.0
        if fast and g[nw + bk] == 0.0:
            visit[bk] = False
    assert zero_in[:layout.w_offsets[1]].sum() == 4 * (5 - len(nonzero))
    assert visit[1] != bool(fast)  # the dead unit is skipped entirely in fast_mode only
    keep = ~zero_in if fast else np.ones(nw, bool)
    expected = adadelta_ref(layout, state, g, rho, eps, keep_w=keep, visit=visit)
    s = state.copy()
    train(layout, s, x, 0.0, base_hp(rho=rho, eps=eps), opt=K.ADADELTA, loss=K.CROSS_ENTROPY, fast=fast)
    np.testing.assert_allclose(s, expected, rtol=1e-12, atol=1e-18)
    W0, _, S1W0, S2W0, _, _ = sections(layout, state)
    W, _, S1W_, S2W_, _, _ = sections(layout, s)
    if fast:
        # weights of zero inputs and their optimizer state are untouched
        assert np.array_equal(W[zero_in], W0[zero_in])
        assert np.array_equal(S1W_[zero_in], S1W0[zero_in]) and np.array_equal(S2W_[zero_in], S2W0[zero_in])
    else:
        # no gradient for them, so the weight stays, but the ADADELTA averages decay
        assert np.array_equal(W[zero_in], W0[zero_in])
        np.testing.assert_allclose(S1W_[zero_in], rho * 0.01, rtol=1e-12)
        np.testing.assert_allclose(S2W_[zero_in], rho * 0.02, rtol=1e-12)
    assert not np.array_equal(W[~zero_in], W0[~zero_in])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt,kw", [
    (K.ADADELTA, {}), (K.ADADELTA, {"l1": 1e-3, "l2": 1e-2}), (K.ADAM, {"rate": 0.01, "b1": 0.9, "adam_bs": 1.0}),
    (K.ADAM, {"rate": 0.01, "b1": 0.9, "adam_bs": 1.0, "l2": 1e-2}),
], ids=["adadelta", "adadelta-l1l2", "adam", "adam-l2"])
def test_fast_mode_skip_leaves_zero_input_weights_bit_identical(opt, kw, dtype):
    # ADADELTA's skip is arithmetic (gradient 0, decay 1), Adam's a conditional store: either way the
    # skipped weights and BOTH optimizer states must come back bit for bit, in float32 too, even
    # where L2 or Adam's momentum would move them; weights of non-zero inputs must move
    layout, state = make(hidden=(8,), act="Tanh", n_out=3, seed=4, n_in=40)
    state = state.astype(dtype)
    _, _, S1W, S2W, _, _ = sections(layout, state)
    rng = np.random.default_rng(2)
    S1W[:], S2W[:] = rng.random(S1W.shape) * 0.1, rng.random(S2W.shape) * 0.1  # Adam: non-zero momentum
    x = rng.normal(size=40) * (np.arange(40) % 3 == 0)  # 2 of 3 inputs zero, both unit-major paths
    s = state.copy()
    train(layout, s, x, 1.0, base_hp(rho=0.95, eps=1e-6, **kw), opt=opt, fast=1)
    zero = np.zeros(layout.n_weights, bool)
    zero[:layout.w_offsets[1]] = np.tile(x == 0.0, 8)  # first layer, unit-major rows of 40 inputs
    for k in (0, 2, 3):  # W, S1W, S2W
        assert np.array_equal(sections(layout, s)[k][zero], sections(layout, state)[k][zero])
    first = slice(0, layout.w_offsets[1])
    moved = ~zero[first]
    assert np.all(sections(layout, s)[0][first][moved] != sections(layout, state)[0][first][moved])


def test_fast_mode_dead_unit_is_not_regularised():
    layout, state = make(hidden=(4,), act="Rectifier", n_out=3, seed=9)
    layout.bias_vector(state, 1)[0] = -50.0
    x = smooth_point(layout, state, 0, 5)
    s_fast, s_slow = state.copy(), state.copy()
    hp = base_hp(rate=0.1, l1=1e-3, l2=1e-2)
    train(layout, s_fast, x, 1.0, hp, opt=K.SGD, fast=1)
    train(layout, s_slow, x, 1.0, hp, opt=K.SGD, fast=0)
    w = lambda s: layout.weight_matrix(s, 1)[0]  # noqa: E731
    assert np.array_equal(w(s_fast), w(state)) and layout.bias_vector(s_fast, 1)[0] == -50.0
    np.testing.assert_allclose(w(s_slow), w(state) - 0.1 * (1e-3 * np.sign(w(state)) + 1e-2 * w(state)))


# --------------------------------------------------------------------------- #
# 6. max_w2
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("opt", [K.SGD, K.ADADELTA], ids=["sgd", "adadelta"])
def test_max_w2_caps_incoming_norms(opt):
    layout, state = make(hidden=(4, 3), act="Tanh", n_out=3, seed=10)
    x = smooth_point(layout, state, 6, 5)
    hp = base_hp(rate=0.01, eps=1e-6, rho=0.95)
    free = train(layout, state.copy(), x, 1.0, hp, opt=opt, fast=0)
    Wf = sections(layout, free)[0]
    sqs = np.array([np.sum(Wf[sl] ** 2) for _, _, sl, _, _ in unit_row_spans(layout)])
    max_w2 = float(np.median(sqs))  # about half of the units exceed it, some only slightly
    assert np.sum((sqs > max_w2) & (sqs < 1.5 * max_w2)) >= 2
    capped = train(layout, state.copy(), x, 1.0, base_hp(rate=0.01, eps=1e-6, rho=0.95, maxw2=max_w2), opt=opt,
                   fast=0)
    Wf, Bf = sections(layout, free)[:2]
    Wc, Bc = sections(layout, capped)[:2]
    n_capped = 0
    for l, r, sl, bk, n_in in unit_row_spans(layout):
        sq = np.sum(Wf[sl] ** 2)
        assert np.sum(Wc[sl] ** 2) <= max_w2 * (1 + 1e-12)
        if sq > max_w2:
            n_capped += 1
            np.testing.assert_allclose(Wc[sl], Wf[sl] * np.sqrt(max_w2 / sq), rtol=1e-12)
        else:
            np.testing.assert_array_equal(Wc[sl], Wf[sl])
    assert n_capped >= 5 and len(sqs) - n_capped >= 5
    np.testing.assert_allclose(Bc, Bf, rtol=1e-12)  # biases are not rescaled


# --------------------------------------------------------------------------- #
# 7. dropout
# --------------------------------------------------------------------------- #


def test_input_dropout_trains_and_drops_half():
    layout, state = make(hidden=(4,), act="Tanh", n_out=3, seed=12, in_drop=0.5)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 5))
    y = rng.integers(0, 3, size=300).astype(np.float64)
    s = state.copy()
    train(layout, s, X, y, base_hp(), opt=K.ADADELTA, loss=K.CROSS_ENTROPY, fast=1, seed=7)
    assert np.all(np.isfinite(s)) and not np.array_equal(s, state)
    # per row, a dropped input's column of W1 keeps its value (plain SGD, no regularisation)
    x = smooth_point(layout, state, 1, 5)
    dropped = 0
    n_seeds = 300
    for sd in range(n_seeds):
        s = state.copy()
        train(layout, s, x, 0.0, base_hp(rate=0.1), opt=K.SGD, seed=sd)
        moved = np.any(layout.weight_matrix(s, 1) != layout.weight_matrix(state, 1), axis=0)
        dropped += int((~moved).sum())
    frac = dropped / (5 * n_seeds)
    assert abs(frac - 0.5) < 0.05, frac


@pytest.mark.parametrize("act", ["Tanh", "Maxout"])
def test_hidden_dropout_gives_masked_network_gradient(act):
    """With dropout the update is the exact gradient of the masked network (dropped units learn nothing)."""
    ratio = 0.4
    layout, state = make(hidden=(4, 3), act=act, n_out=3, seed=14, in_drop=0.3, hid_drop=[ratio, ratio])
    x = smooth_point(layout, state, 2, 5)
    nw = layout.n_weights
    n_units = n_drop = n_checked = 0
    for sd in range(40):
        s = state.copy()
        train(layout, s, x, 1.0, base_hp(), opt=K.SGD, loss=K.CROSS_ENTROPY, seed=sd)
        g = state[:n_params(layout)] - s[:n_params(layout)]
        gb = g[nw:]
        ch = 2 if act == "Maxout" else 1
        masks = []
        for l in (1, 2):
            bo = layout.b_offsets[l - 1]
            u = layout.units[l]
            masks.append(np.array([np.any(gb[bo + j * ch:bo + (j + 1) * ch] != 0) for j in range(u)], float))
        in_mask = np.any(layout.weight_matrix(s, 1) != layout.weight_matrix(state, 1), axis=0).astype(float)
        if masks[0].sum() == 0 or masks[1].sum() == 0:
            continue  # a whole layer dropped: the masks cannot be read back from the update
        n_units += 7
        n_drop += int(7 - masks[0].sum() - masks[1].sum())

        def lossfn(sv, masks=masks, in_mask=in_mask):
            return ce(np_forward(layout, sv, x, masks=masks, in_mask=in_mask)[0], 1.0)

        num = fd_grad(layout, state, lossfn)
        np.testing.assert_allclose(g, num, rtol=RTOL_FD, atol=1e-8 * max(1.0, np.abs(num).max()))
        n_checked += 1
    assert n_checked >= 25
    assert abs(n_drop / n_units - ratio) < 0.15, n_drop / n_units


@pytest.mark.parametrize("act", ["Tanh", "Rectifier", "Maxout"])
def test_scoring_forward_scales_hidden_outputs(act):
    layout, state = make(hidden=(4, 3), act=act, n_out=3, seed=15, in_drop=0.2, hid_drop=[0.5, 0.25])
    X = np.random.default_rng(5).normal(size=(6, 5))
    got = forward(layout, state, X)
    ref = np.stack([np_forward(layout, state, x, score_scale=True)[0] for x in X])
    unscaled = np.stack([np_forward(layout, state, x)[0] for x in X])
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    assert np.abs(got - unscaled).max() > 1e-3


# --------------------------------------------------------------------------- #
# 8. HOGWILD!
# --------------------------------------------------------------------------- #


def _separable(n=2000, d=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=d)
    score = X @ w
    keep = np.abs(score) > 0.3  # a margin around the boundary
    X = X[keep]
    y = (score[keep] > 0).astype(np.float32)
    return X, y


def _hw_settings(**kw):
    hp = base_hp(rho=0.99, eps=1e-8)
    for k, v in kw.items():
        hp[getattr(K, "HP_" + k.upper())] = v
    return KernelSettings(hp=hp, opt=K.ADADELTA, fast=True, loss=K.CROSS_ENTROPY)


def test_hogwild_two_threads_learns():
    X, y = _separable()
    layout = build_layout(20, [8], "Rectifier", 2, True, 0.0, [0.0])
    state = initial_state(layout, 1)
    half = len(y) // 2
    blocks = [(X[:half], y[:half]), (X[half:], y[half:])]
    done = train_shard(state, layout, blocks, n_samples=5 * len(y), settings=_hw_settings(), n_threads=2,
                       rng_seeds=(1, 0), n_seen=0.0)
    assert done == 5 * len(y)
    assert state.dtype == np.float32 and np.all(np.isfinite(state))
    acc = np.mean(forward(layout, state, X).argmax(axis=1) == y)
    assert acc > 0.95, acc


def test_hogwild_threads_walk_all_their_blocks_and_raise_kernel_errors():
    """Each HOGWILD! thread runs its kernel calls (one per block) in order on one thread of its
    own, the first on the calling thread, and the threads meet once per shard; an error in any
    thread reaches the caller after the others finish."""
    import threading

    from dask_dl.nn import hogwild
    seen = []

    def kernel(tag):
        seen.append((tag, threading.get_ident()))

    hogwild._run_threads(kernel, [[(("t0", 0),), (("t0", 1),)], [(("t1", 0),), (("t1", 1),), (("t1", 2),)]])
    by_thread = {}
    for tag, ident in seen:
        by_thread.setdefault(tag[0], []).append((tag[1], ident))
    assert [b for b, _ in by_thread["t0"]] == [0, 1] and [b for b, _ in by_thread["t1"]] == [0, 1, 2]
    assert {i for _, i in by_thread["t0"]} == {threading.get_ident()}
    (other,) = {i for _, i in by_thread["t1"]}
    assert other != threading.get_ident()

    finished = []

    def failing(tag):
        if tag == "bad":
            raise FloatingPointError("kernel failed in thread 1")
        finished.append(tag)

    with pytest.raises(FloatingPointError, match="thread 1"):
        hogwild._run_threads(failing, [[("a",), ("b",)], [("bad",), ("never",)]])
    assert finished == ["a", "b"]  # the other thread ran to its end; the failed one stopped


@pytest.mark.parametrize("drop", [0.0, 0.2])
def test_hogwild_single_thread_is_reproducible(drop):
    X, y = _separable(600, 20, seed=1)
    layout = build_layout(20, [8, 4], "Tanh", 2, True, drop, [drop, drop])
    init = initial_state(layout, 3)
    runs = []
    for seed_parts in [(5, 1), (5, 1), (6, 1)]:
        s = init.copy()
        train_shard(s, layout, [(X, y)], n_samples=1500, settings=_hw_settings(), n_threads=1, rng_seeds=seed_parts,
                    n_seen=0.0, order_seed=seed_parts[0])
        runs.append(s)
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], init)
    assert not np.array_equal(runs[0], runs[2])  # the seed does drive the shuffle / dropout



@pytest.mark.parametrize("elastic", [False, True])
def test_thread_local_models_average_per_thread_copies(elastic):
    """thread_local_models: each HOGWILD! thread trains its own copy of the state across all the
    blocks, and the state becomes their mean weighted by the rows each trained. The copies do not
    race, so this equals running the threads' jobs one after the other, bit for bit."""
    import dataclasses

    from dask_dl.nn import hogwild
    X, y = _separable(900, 20, seed=2)
    layout = build_layout(20, [8], "Rectifier", 2, True, 0.0, [0.0])
    init = initial_state(layout, 4)
    blocks = [(X[:500], y[:500]), (X[500:], y[500:])]
    ks = dataclasses.replace(_hw_settings(), thread_copies=True)
    center = (init + np.float32(0.01)) if elastic else None
    strength = 1e-3 if elastic else 0.0
    n = 1300
    state = init.copy()
    done = train_shard(state, layout, blocks, n_samples=n, settings=ks, n_threads=3, rng_seeds=(7, 1), n_seen=10.0,
                       order_seed=7, center=center, elastic_strength=strength)
    assert done == n

    copies, rows_done, seen = [init.copy() for _ in range(3)], np.zeros(3), 0
    hp = ks.hp.astype(np.float32)
    hp[K.HP_EA] = strength
    for bi, thread_rows in hogwild.shard_plan([len(b[1]) for b in blocks], n_samples=n, n_threads=3, position=0.0,
                                              order_seed=7):
        Xb, yb = blocks[bi]
        for t, rows in enumerate(thread_rows):
            hp_t = hp.copy()
            hp_t[K.HP_N0] = 10.0 + seen
            hp_t[K.HP_NSTEP] = len(thread_rows)
            ip = K.int_params(ks.opt, ks.fast, ks.loss, hogwild.thread_seed(7, 1, bi, t))
            args = (layout.kernel_arrays(), Xb, yb, _row_values(None, Xb.dtype), _row_values(None, Xb.dtype), rows,
                    hp_t, ip)
            if elastic:
                train_rows_elastic(copies[t], center, *args)
            else:
                train_rows(copies[t], *args)
            rows_done[t] += len(rows)
        seen += sum(len(r) for r in thread_rows)
    assert (rows_done > 0).all() and len({c.tobytes() for c in copies}) == 3  # three different copies
    w = rows_done / rows_done.sum()
    expected = copies[0] * np.float32(w[0])
    for c, wt in zip(copies[1:], w[1:]):
        expected += c * np.float32(wt)
    np.testing.assert_array_equal(state, expected)


# --------------------------------------------------------------------------- #
# 9. float32 vs float64
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("opt,loss,n_out,classifier,act", [
    (K.SGD, K.CROSS_ENTROPY, 3, True, "Tanh"),
    (K.ADADELTA, K.CROSS_ENTROPY, 3, True, "Maxout"),
    (K.NESTEROV, K.QUADRATIC_SOFTMAX, 2, True, "Rectifier"),
    (K.ADADELTA, K.GAUSSIAN, 1, False, "Tanh"),
], ids=["sgd-ce", "adadelta-ce-maxout", "nesterov-quad", "adadelta-gauss"])
def test_float32_matches_float64(opt, loss, n_out, classifier, act):
    for seed in range(16, 60):  # a point where the softmax is not saturated (else the update is ~0)
        layout, s32 = make(hidden=(4, 3), act=act, n_out=n_out, classifier=classifier, seed=seed, dtype=np.float32)
        s64 = s32.astype(np.float64)
        x = smooth_point(layout, s64, seed, 5).astype(np.float32).astype(np.float64)
        if kink_margin(layout, s64, x) > 1e-3 and (not classifier or forward(layout, s64, x[None]).max() < 0.9):
            break
    else:
        raise AssertionError("no unsaturated starting point")
    t = 1.0 if classifier else float(forward(layout, s64, x[None])[0, 0] + 0.5)
    hp = base_hp(rate=0.05, eps=1e-6, rho=0.95, mom_start=0.5)
    a32, a64 = s32.copy(), s64.copy()
    train(layout, a32, x, t, hp, opt=opt, loss=loss, fast=0)
    train(layout, a64, x, t, hp, opt=opt, loss=loss, fast=0)
    assert a32.dtype == np.float32
    n = n_params(layout)
    d32 = a32[:n].astype(np.float64) - s64[:n]
    d64 = a64[:n] - s64[:n]
    assert np.abs(d64).max() > 1e-4
    np.testing.assert_allclose(d32, d64, rtol=1e-3, atol=1e-5 * np.abs(d64).max() + 1e-7)
    # the whole state to float32 precision, but for the adaptive step's own error on x86: float32
    # kernels take the reciprocal square root estimate as it is (codegen.estimate_rsqrt, < 2^-14)
    step_error = 2.0 ** -13 * np.abs(d64).max() if codegen.ENABLED and opt == K.ADADELTA else 0.0
    np.testing.assert_allclose(a32.astype(np.float64), a64, rtol=1e-5, atol=1e-7 + step_error)


def test_visiting_order_streams_whole_passes_across_iterations():
    """Every pass visits every row once, however the passes are cut into iterations, in a fresh
    order each pass (H2O draws a fresh random order at each sub-epoch iteration), from the seed."""
    from dask_dl.nn.hogwild import visiting_order
    first = visiting_order(100, 37, 0, seed=5)
    second = visiting_order(100, 63, 37, seed=5)
    assert sorted(np.concatenate([first, second])) == list(range(100))  # one epoch = every row once
    two = visiting_order(100, 250, 0, seed=5)
    for p in range(2):
        assert sorted(two[100 * p:100 * (p + 1)]) == list(range(100))
    assert not np.array_equal(two[:100], two[100:200])                 # a new order per pass
    assert np.array_equal(two[:100], np.concatenate([first, second]))  # the same stream, however cut
    assert np.array_equal(two[137:250], visiting_order(100, 113, 137, seed=5))
    assert not np.array_equal(two, visiting_order(100, 250, 0, seed=6))


# --------------------------------------------------------------------------- #
# mini-batches (mini_batch_size > 1): BLAS-3 products, one update per batch
# --------------------------------------------------------------------------- #


def train_batch(layout, state, X, y, hp, opt=K.SGD, loss=K.CROSS_ENTROPY, fast=0, batch=None, seed=1, w=None,
                o=None):
    """Run the mini-batch kernel in place over the rows of X (one batch of all rows by default)."""
    dt = state.dtype
    X = np.ascontiguousarray(np.atleast_2d(X), dtype=dt)
    y = np.ascontiguousarray(np.atleast_1d(y), dtype=dt)
    rows = np.arange(X.shape[0], dtype=np.int64)
    ip = K.int_params(opt, fast, loss, seed, batch or X.shape[0], caps_weights=hp[K.HP_MAXW2] < FMAX)
    n = train_batches(state, layout.kernel_arrays(), X, y, _row_values(w, dt), _row_values(o, dt), rows,
                      np.ascontiguousarray(hp, dtype=dt), ip)
    assert n == X.shape[0]
    return state


def batch_points(layout, state, n, n_in, seed=0):
    return np.array([smooth_point(layout, state, seed + k, n_in) for k in range(n)])


@pytest.mark.parametrize("act", ["Tanh", "Rectifier", "Maxout"])
@pytest.mark.parametrize("case", [("softmax", 3, K.CROSS_ENTROPY, [0.0, 2.0, 1.0, 2.0, 0.0]),
                                  ("quadratic-softmax", 3, K.QUADRATIC_SOFTMAX, [1.0, 0.0, 2.0, 2.0, 1.0]),
                                  ("huber", 1, K.HUBER, [0.3, -1.2, 2.0, 0.1, -0.4])], ids=lambda c: c[0])
def test_minibatch_sgd_step_is_the_mean_of_the_row_gradients(case, act):
    _, n_out, loss, ys = case
    layout, state = make(hidden=(4, 3), act=act, n_out=n_out, classifier=n_out > 1, seed=3)
    X = batch_points(layout, state, 5, 5, seed=11)
    mean_g = np.mean([sgd_grad(layout, state, X[k], ys[k], loss) for k in range(5)], axis=0)
    s = train_batch(layout, state.copy(), X, np.array(ys), base_hp(), loss=loss)
    n = n_params(layout)
    np.testing.assert_allclose(state[:n] - s[:n], mean_g, rtol=1e-10, atol=1e-14)
    assert np.array_equal(s[n:], state[n:])  # plain SGD keeps no optimizer state


def test_minibatch_adadelta_step_uses_the_batch_mean_gradient():
    rho, eps = 0.95, 1e-6
    layout, state = make(hidden=(4, 3), act="Tanh", n_out=3, seed=5)
    X = batch_points(layout, state, 4, 5, seed=21)
    ys = [0.0, 1.0, 2.0, 1.0]
    mean_g = np.mean([sgd_grad(layout, state, X[k], ys[k], K.CROSS_ENTROPY) for k in range(4)], axis=0)
    s = train_batch(layout, state.copy(), X, np.array(ys), base_hp(rho=rho, eps=eps), opt=K.ADADELTA)
    np.testing.assert_allclose(s, adadelta_ref(layout, state, mean_g, rho, eps), rtol=1e-10, atol=1e-18)


def adam_ref(layout, state, g, lr, b1, b2, eps, t):
    """numpy Adam step t (Kingma & Ba, bias-corrected moments) of every weight and bias."""
    s = state.copy()
    W, B, S1W, S2W, S1B, S2B = sections(layout, s)
    nw = layout.n_weights
    for P, M, V, gp in ((W, S1W, S2W, g[:nw]), (B, S1B, S2B, g[nw:])):
        M[:] = b1 * M + (1 - b1) * gp
        V[:] = b2 * V + (1 - b2) * gp ** 2
        P -= lr * (M / (1 - b1 ** t)) / (np.sqrt(V / (1 - b2 ** t)) + eps)
    return s


@pytest.mark.parametrize("batch", [1, 4])
def test_adam_steps_match_numpy_adam(batch):
    """optimizer='adam': two updates (per sample and per mini-batch), from the gradients the
    finite-difference-checked SGD path computes, equal numpy's bias-corrected Adam."""
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-6
    layout, state = make(hidden=(4, 3), act="Tanh", n_out=3, seed=5)
    X = batch_points(layout, state, 2 * batch, 5, seed=31)
    ys = np.array([0.0, 1.0, 2.0, 1.0, 2.0, 0.0, 1.0, 0.0])[:2 * batch]
    hp = base_hp(rate=lr, rho=b2, eps=eps, b1=b1, adam_bs=float(batch))
    expected = state.copy()
    for t, rows in enumerate((slice(0, batch), slice(batch, 2 * batch)), start=1):
        g = np.mean([sgd_grad(layout, expected, X[k], ys[k], K.CROSS_ENTROPY) for k in range(rows.start, rows.stop)],
                    axis=0)
        expected = adam_ref(layout, expected, g, lr, b1, b2, eps, t)
    if batch == 1:
        got = train(layout, state.copy(), X, ys, hp, opt=K.ADAM, fast=0)
    else:
        got = train_batch(layout, state.copy(), X, ys, hp, opt=K.ADAM, batch=batch)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)


def test_adam_step_is_annealed_by_rate_annealing():
    """rate_annealing anneals Adam's step as H2O anneals the manual rate: adam_rate / (1 + rate_annealing
    * samples seen before the update), on top of the bias corrections."""
    lr, b1, b2, eps, anneal, batch = 0.01, 0.8, 0.95, 1e-6, 0.05, 2
    layout, state = make(hidden=(4, 3), act="Tanh", n_out=3, seed=5)
    X = batch_points(layout, state, 2 * batch, 5, seed=31)
    ys = np.array([0.0, 1.0, 2.0, 1.0])
    hp = base_hp(rate=lr, rho=b2, eps=eps, b1=b1, adam_bs=float(batch), anneal=anneal)
    expected = state.copy()
    for t, rows in enumerate((slice(0, batch), slice(batch, 2 * batch)), start=1):
        g = np.mean([sgd_grad(layout, expected, X[k], ys[k], K.CROSS_ENTROPY) for k in range(rows.start, rows.stop)],
                    axis=0)
        expected = adam_ref(layout, expected, g, lr / (1 + anneal * rows.start), b1, b2, eps, t)
    got = train_batch(layout, state.copy(), X, ys, hp, opt=K.ADAM, batch=batch)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
    plain = train_batch(layout, state.copy(), X, ys, base_hp(rate=lr, rho=b2, eps=eps, b1=b1, adam_bs=2.0),
                        opt=K.ADAM, batch=batch)
    assert not np.allclose(plain, got, rtol=1e-6, atol=0)  # the annealing did change the second step


def test_minibatch_batches_are_consecutive_updates():
    """Six rows in batches of 2 = three one-batch steps in row order; a short last batch is its own mean."""
    layout, state = make(hidden=(4,), act="Tanh", n_out=3, seed=2)
    X = batch_points(layout, state, 7, 5, seed=31)
    ys = np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 1.0])
    hp = base_hp(rho=0.9, eps=1e-6)
    whole = train_batch(layout, state.copy(), X, ys, hp, opt=K.ADADELTA, batch=2)
    stepwise = state.copy()
    for lo in range(0, 7, 2):
        train_batch(layout, stepwise, X[lo:lo + 2], ys[lo:lo + 2], hp, opt=K.ADADELTA)
    np.testing.assert_allclose(whole, stepwise, rtol=1e-12, atol=1e-18)


def test_minibatch_fast_mode_leaves_untouched_inputs_alone():
    layout, state = make(hidden=(4,), act="Tanh", n_out=3, seed=4)
    X = batch_points(layout, state, 3, 5, seed=41)
    X[:, 1] = 0.0  # input 1 is zero in every row of the batch
    ys = np.array([0.0, 1.0, 2.0])
    hp = base_hp(rho=0.9, eps=1e-6, l2=1e-3)
    fast = train_batch(layout, state.copy(), X, ys, hp, opt=K.ADADELTA, fast=1)
    slow = train_batch(layout, state.copy(), X, ys, hp, opt=K.ADADELTA, fast=0)
    W0, _, S10, *_ = sections(layout, state)
    Wf, _, S1f, *_ = sections(layout, fast)
    Ws, _, S1s, *_ = sections(layout, slow)
    col = np.arange(layout.units[1]) * 5 + 1  # weights from input 1 into each hidden unit
    assert np.array_equal(Wf[col], W0[col]) and np.array_equal(S1f[col], S10[col])
    assert not np.array_equal(Ws[col], W0[col])  # without fast_mode the L2 term still moves them
    other = np.setdiff1d(np.arange(layout.units[1] * 5), col)
    assert not np.array_equal(Wf[other], W0[other])


def test_minibatch_float32_agrees_with_float64():
    layout, s64 = make(hidden=(8, 6), act="Rectifier", n_out=4, seed=6, n_in=7)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 7))
    ys = rng.integers(0, 4, 40).astype(float)
    hp = base_hp(rho=0.99, eps=1e-8)
    a = train_batch(layout, s64.copy(), X, ys, hp, opt=K.ADADELTA, fast=1, batch=8)
    b = train_batch(layout, s64.astype(np.float32), X, ys, hp, opt=K.ADADELTA, fast=1, batch=8)
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=2e-3, atol=2e-5)


# --------------------------------------------------------------------------- #
# input-major first layer (sparse=True): same numerics as the unit-major layout
# --------------------------------------------------------------------------- #


def to_input_major(layout, state):
    """The same logical model in the input-major layout (first matrix transposed, state alike)."""
    im = build_layout(layout.units[0], list(layout.units[1:-1]), {TANH: "Tanh", RECTIFIER: "Rectifier"}[
        layout.hidden_code], layout.units[-1], layout.output_code == SOFTMAX, layout.dropout[0],
        list(layout.dropout[1:-1]), input_major=True)
    out = state.copy()
    nw, n1 = layout.n_weights, layout.w_offsets[1]
    for base in (0, nw + layout.n_biases, 2 * nw + layout.n_biases):  # W, S1W, S2W
        block = state[base:base + n1].reshape(layout.units[1], layout.units[0])
        out[base:base + n1] = block.T.ravel()
    return im, out


@pytest.mark.parametrize("act", ["Tanh", "Rectifier"])
@pytest.mark.parametrize("opt,fast,kw", [
    (K.ADADELTA, 1, {}), (K.ADADELTA, 0, {}), (K.ADADELTA, 1, {"l1": 1e-3, "l2": 1e-3}),
    (K.SGD, 1, {"rate": 0.05}), (K.SGD, 0, {"rate": 0.05, "l2": 1e-2}),
    (K.NESTEROV, 1, {"rate": 0.05, "mom_start": 0.5, "mom_stable": 0.5}),
    (K.ADADELTA, 1, {"maxw2": 0.3}),
    (K.ADAM, 1, {"rate": 0.01, "b1": 0.9, "adam_bs": 1.0}), (K.ADAM, 0, {"rate": 0.01, "b1": 0.9, "adam_bs": 1.0}),
], ids=["adadelta", "adadelta-nofast", "adadelta-l1l2", "sgd", "sgd-nofast-l2", "nesterov", "max_w2", "adam",
        "adam-nofast"])
def test_input_major_first_layer_trains_identically(act, opt, fast, kw):
    layout, state = make(hidden=(6, 4), act=act, n_out=3, seed=8, n_in=12)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 12)) * (rng.random((30, 12)) < 0.3)  # ~70% zeros: the sparse path
    ys = rng.integers(0, 3, 30).astype(float)
    hp = base_hp(rho=0.95, eps=1e-6, **kw)
    unit_major = train(layout, state.copy(), X, ys, hp, opt=opt, fast=fast)
    im_layout, im_state = to_input_major(layout, state)
    assert np.array_equal(im_layout.weight_matrix(im_state, 1), layout.weight_matrix(state, 1))
    input_major = train(im_layout, im_state, X, ys, hp, opt=opt, fast=fast)
    np.testing.assert_allclose(input_major, to_input_major(layout, unit_major)[1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(forward(im_layout, input_major, X), forward(layout, unit_major, X), rtol=1e-9)


def test_input_major_with_hidden_dropout_matches_unit_major_statistically():
    """With hidden dropout the two layouts draw masks in another order, so compare behaviour: a dropped
    unit's incoming weights and state are untouched in the input-major layout too."""
    layout, state = make(hidden=(6,), act="Rectifier", n_out=3, seed=8, n_in=12, hid_drop=[0.5])
    im_layout, im_state = to_input_major(
        build_layout(12, [6], "Rectifier", 3, True, 0.0, [0.5]), state)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 12)) * (rng.random((1, 12)) < 0.3)
    before = im_state.copy()
    train(im_layout, im_state, x, np.array([1.0]), base_hp(rho=0.95, eps=1e-6), opt=K.ADADELTA, fast=1, seed=3)
    W0, W1 = im_layout.weight_matrix(before, 1), im_layout.weight_matrix(im_state, 1)
    moved = np.abs(W1 - W0).sum(axis=1) > 0          # per unit
    assert 0 < moved.sum() < 6                          # some units dropped (or inactive), some trained
    nw = im_layout.n_weights
    S1 = im_state[nw + im_layout.n_biases:2 * nw + im_layout.n_biases][:im_layout.w_offsets[1]].reshape(12, 6).T
    assert np.all(S1[~moved] == 0.0)                    # untouched units keep a zero ADADELTA state


def test_input_major_layout_requires_fast_mode():
    layout = build_layout(4, [3], "Rectifier", 2, True, 0.0, [0.0], input_major=True)
    ks = KernelSettings(hp=np.zeros(K.N_HP), opt=K.ADADELTA, fast=False, loss=K.CROSS_ENTROPY)
    X, y = np.ones((2, 4), np.float32), np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="fast_mode"):
        train_shard(initial_state(layout, 1), layout, [(X, y)], n_samples=2, settings=ks, n_threads=1,
                    rng_seeds=(1,), n_seen=0.0)


def test_unowned_view_reads_and_writes_the_same_memory():
    """views.unowned drops only the reference counting: data, shape and strides are the array's."""
    from numba import njit

    from dask_dl.nn.views import unowned

    @njit
    def bump_slice(a):
        v = unowned(a)[2:5]
        v[:] += 1.0
        return v.sum(), v.shape[0]

    a = np.arange(8, dtype=np.float32)
    total, n = bump_slice(a)
    assert n == 3 and total == pytest.approx(3 + 4 + 5)
    np.testing.assert_array_equal(a, [0, 1, 3, 4, 5, 5, 6, 7])


def test_one_blas_thread_limits_every_blas_the_kernels_use():
    """numba's np.dot runs scipy's own OpenBLAS: it must get the one-thread limit too (its default
    pool spun against the HOGWILD! threads: 2 mini-batch threads ran 3x slower than 1)."""
    import subprocess
    import sys
    # a fresh process, as a worker: the first mini-batch fit sets the limit, then numba loads the kernel
    code = ("import numpy as np\n"
            "from dask_dl.nn import hogwild, settings as K\n"
            "from dask_dl.nn.network import build_layout, initial_state\n"
            "layout = build_layout(3, [4], 'Rectifier', 2, True, 0.0, [0.0])\n"
            "state = initial_state(layout, 1)\n"
            "X = np.ones((8, 3), np.float32); y = np.zeros(8, np.float32)\n"
            "ks = K.KernelSettings(hp=np.zeros(K.N_HP), opt=K.ADADELTA, fast=True, loss=K.CROSS_ENTROPY, batch=4)\n"
            "hogwild.train_shard(state, layout, [(X, y)], n_samples=8, settings=ks, n_threads=1, rng_seeds=(1,),"
            " n_seen=0.0)\n"
            "from threadpoolctl import threadpool_info\n"
            "libs = [(i['filepath'], i['num_threads']) for i in threadpool_info() if i['user_api'] == 'blas']\n"
            "assert len(libs) >= 2, libs  # numpy's and scipy's\n"
            "assert all(n == 1 for _, n in libs), libs\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "OPENBLAS_NUM_THREADS": ""})
    assert out.returncode == 0, out.stderr[-2000:]


def test_settings_huber_delta_copy_and_max_w2_switch():
    """with_huber_delta returns a copy (the fit's settings are shared by its rounds); max_w2 is on
    exactly when the resolved config says so, and the switch reaches the kernels' integer slot."""
    from dask_dl.params import resolve
    from dask_dl.nn.settings import settings_from_config
    ks = settings_from_config(resolve({}, "regression"))
    huber = ks.with_huber_delta(0.25)
    assert huber.hp[K.HP_HUBER] == 0.25 and ks.hp[K.HP_HUBER] == 1.0 and huber.opt == ks.opt
    assert not ks.caps_weights and ks.int_params(3)[K.IP_CAPS_W2] == 0
    capped = settings_from_config(resolve({"max_w2": 10.0}, "regression"))
    assert capped.caps_weights and capped.int_params(3)[K.IP_CAPS_W2] == 1 and capped.hp[K.HP_MAXW2] == 10.0


# --------------------------------------------------------------------------- #
# observation weights and offsets (weights_column, offset_column)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("case", [("gaussian", K.GAUSSIAN, 1, None), ("poisson", K.POISSON, 1, None),
                                  ("tweedie", K.TWEEDIE, 1, None), ("huber", K.HUBER, 1, None),
                                  ("cross-entropy", K.CROSS_ENTROPY, 3, ce)], ids=lambda c: c[0])
def test_a_weighted_row_with_an_offset_gets_the_gradient_of_its_weighted_offset_loss(case):
    """The kernel's step is the gradient of w * loss(f + o, t) (finite differences): the weight
    multiplies the loss, the offset shifts the output's pre-activation."""
    _, code, n_out, lossfn = case
    hp = base_hp()
    classifier = lossfn is not None
    layout, state = make(hidden=(4, 3), act="Tanh", n_out=n_out, classifier=classifier, seed=13)
    x = smooth_point(layout, state, 7, 5)
    w, o = 2.5, (None if classifier else -0.4)
    t = 2.0 if classifier else 1.3
    lossfn = lossfn or reg_loss(code, hp)
    s = state.copy()
    train(layout, s, x, t, hp, opt=K.SGD, loss=code, w=[w], o=None if o is None else [o])
    n = n_params(layout)
    num = fd_grad(layout, state, lambda st: w * lossfn(forward(layout, st, x[None])[0] + (o or 0.0), t))
    assert np.count_nonzero(num) > 0.3 * num.size
    np.testing.assert_allclose(state[:n] - s[:n], num, rtol=RTOL_FD, atol=1e-8 * max(1.0, np.abs(num).max()))


def test_a_zero_weight_row_leaves_every_weight_alone():
    layout, state = make(hidden=(4,), act="Rectifier", n_out=1, classifier=False, seed=2)
    s = train(layout, state.copy(), np.ones(5), 3.0, base_hp(), opt=K.SGD, loss=K.GAUSSIAN, w=[0.0])
    assert np.array_equal(s, state)


def test_minibatch_step_is_the_mean_of_the_weighted_offset_row_gradients():
    layout, state = make(hidden=(4, 3), act="Tanh", n_out=1, classifier=False, seed=3)
    X = batch_points(layout, state, 4, 5, seed=11)
    ys, ws, os_ = [0.3, -1.2, 2.0, 0.1], [1.0, 0.0, 3.0, 0.5], [0.2, -0.5, 0.0, 1.1]
    n = n_params(layout)
    rows = []
    for k in range(4):
        s = train(layout, state.copy(), X[k], ys[k], base_hp(), loss=K.POISSON, w=[ws[k]], o=[os_[k]])
        rows.append(state[:n] - s[:n])
    s = train_batch(layout, state.copy(), X, np.array(ys), base_hp(), loss=K.POISSON, w=ws, o=os_)
    np.testing.assert_allclose(state[:n] - s[:n], np.mean(rows, axis=0), rtol=1e-10, atol=1e-14)


def test_elastic_strength_pulls_every_parameter_towards_the_centre():
    """elastic_averaging_regularization: one plain-SGD row with strength s moves each weight and
    bias by an extra -rate * s * (theta - centre)."""
    layout, state = make(hidden=(4,), act="Tanh", n_out=3, classifier=True, seed=5)
    centre = state + np.random.default_rng(1).normal(scale=0.1, size=state.size)
    x, t = smooth_point(layout, state, 3, 5), 1.0
    n = n_params(layout)
    rows = np.arange(1, dtype=np.int64)
    ip = K.int_params(K.SGD, 0, K.CROSS_ENTROPY, 1)
    after = {}
    for s in (0.0, 0.3):
        hp = base_hp(rate=0.5, ea=s)
        st = state.copy()
        none = _row_values(None, st.dtype)
        train_rows_elastic(st, centre, layout.kernel_arrays(), x[None].copy(), np.array([t]), none, none, rows, hp, ip)
        after[s] = st
    np.testing.assert_allclose(after[0.3][:n] - after[0.0][:n], -0.5 * 0.3 * (state[:n] - centre[:n]), rtol=1e-9,
                               atol=1e-12)



# --------------------------------------------------------------------------- #
# autoencoders: the output reconstructs the input
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("loss", [K.GAUSSIAN, K.LAPLACE, K.HUBER], ids=["quadratic", "absolute", "huber"])
@pytest.mark.parametrize("act", ["Tanh", "Rectifier"])
def test_autoencoder_gradient_is_the_true_gradient_of_the_reconstruction_loss(act, loss):
    """dLoss/dtheta of sum_k loss(a_k, x_k), a = the output activation (H2O omits its derivative;
    dask_dl's policy gives the true gradient), against central finite differences."""
    layout = build_layout(5, [4, 3], act, 5, False, 0.0, [0.0, 0.0], autoencoder=True)
    state = initial_state(layout, 7).astype(np.float64)
    hp = base_hp(huber=0.05)
    x = smooth_point(layout, state, 5, 5)

    def recon_loss(out):
        r = out - x
        if loss == K.LAPLACE:
            return np.abs(r).sum()
        if loss == K.HUBER:
            return np.where(np.abs(r) <= 0.05, r * r, 2 * 0.05 * np.abs(r) - 0.05 ** 2).sum()
        return (r * r).sum()
    s = train(layout, state.copy(), x, 0.0, hp, opt=K.SGD, loss=loss)
    n = n_params(layout)
    num = fd_grad(layout, state, lambda st: recon_loss(forward(layout, st, x[None])[0]))
    assert np.count_nonzero(num) > 0.3 * num.size
    np.testing.assert_allclose(state[:n] - s[:n], num, rtol=RTOL_FD, atol=1e-8 * max(1.0, np.abs(num).max()))


def test_sparsity_pulls_hidden_biases_towards_the_target_activation():
    """sparsity_beta: a hidden unit's bias gets beta * (running mean activation - average_activation)
    added to its gradient; the output layer's biases do not."""
    layout = build_layout(5, [4], "Tanh", 5, False, 0.0, [0.0], autoencoder=True)
    state = initial_state(layout, 3).astype(np.float64)
    x = smooth_point(layout, state, 2, 5)
    plain = train(layout, state.copy(), x, 0.0, base_hp(), opt=K.SGD, loss=K.GAUSSIAN)
    sparse = train(layout, state.copy(), x, 0.0, base_hp(sparsity=0.5, avg_act=-0.2), opt=K.SGD, loss=K.GAUSSIAN)
    running = np.tanh(layout.weight_matrix(state, 1) @ x + layout.bias_vector(state, 1))  # the call's first row
    nb = layout.n_biases
    b_plain = layout.split(plain)[1][:4]
    b_sparse = layout.split(sparse)[1][:4]
    np.testing.assert_allclose(b_plain - b_sparse, 0.5 * (running + 0.2), rtol=1e-9)  # rate 1, plain SGD
    np.testing.assert_array_equal(layout.split(plain)[1][4:nb], layout.split(sparse)[1][4:nb])
