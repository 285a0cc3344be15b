"""Losses and activations: the output layer's error (dLoss/dz) and the hidden units' activation
and its gradient, shared by the per-sample and the mini-batch kernels."""
from __future__ import annotations

import numpy as np
from numba import njit

from ..names import EXP_CAP
from .network import RECTIFIER, SOFTMAX, TANH
from .settings import (CROSS_ENTROPY, GAMMA, GAUSSIAN, HP_HUBER, HP_QALPHA, HP_TPOWER, HUBER, LAPLACE, POISSON,
                       QUANTILE)


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def _capped_exp(v):
    return min(np.exp(v), EXP_CAP)


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


@njit(nogil=True, fastmath=True, cache=True, error_model="numpy")
def autoencoder_error(A, E, co, n_out, out_code, loss, x, hp):
    """An autoencoder's dLoss/dz: each output a_k reconstructs input x_k (before input dropout: a
    denoising autoencoder); the loss's gradient in a_k times the output activation's derivative
    (the true gradient; H2O omits the derivative, docs/h2o-differences.md)."""
    delta = hp[HP_HUBER]
    for k in range(n_out):
        a = A[co + k]
        r = a - x[k]
        if loss == LAPLACE:
            d = (r - r + 1.0) if r > 0.0 else -(r - r + 1.0) if r < 0.0 else r - r
        elif loss == HUBER and abs(r) > delta:
            d = 2.0 * delta if r > 0.0 else -2.0 * delta
        else:  # Quadratic (gaussian), and Huber's quadratic zone
            d = 2.0 * r
        E[co + k] = _unit_gradient(out_code, d, a)


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
