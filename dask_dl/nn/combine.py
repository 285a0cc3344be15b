"""Combining model copies that trained from one start: their weighted mean (model averaging), or
the sum of their updates (HOGWILD!'s shared copy, as H2O's threads on one node).

Copies averaged after each trained n rows move about as far as one copy did: while the copies
drift the same way (a young model), the mean takes 1/k of the steps a shared copy takes, which
costs accuracy on small data and few epochs. Summing their updates keeps every step, but once the
copies' updates are mostly noise (or too many to add up) the sum overshoots and the mean is
better. ``summation_gain`` measures which case holds from the updates themselves
(measurements: benchmarks/README.md, issue 17).
"""
from __future__ import annotations

import numpy as np


def weighted_mean_of(states: list, rows) -> np.ndarray:
    """The mean of ``states`` weighted by the ``rows`` each trained, in their dtype (a new array).
    A state that trained nothing counts for nothing (the first must have trained). Thread copies
    (nn.hogwild) and the workers' copies (the reduction tree, cluster.tasks) average alike."""
    w = np.asarray(rows, dtype=np.float64) / float(np.sum(rows))
    out = states[0] * states[0].dtype.type(w[0])
    for s, wt in zip(states[1:], w[1:]):
        if wt > 0:
            out += s * states[0].dtype.type(wt)
    return out


def summation_gain(shifts: list) -> float:
    """How many mean shifts to move: k copies whose shifts agree (drift) add up, as one copy
    trained on all their rows would have moved; k shifts that are independent noise are best
    averaged (gain 1). With shift_i = drift + noise_i, ||mean shift||^2 / mean ||shift_i||^2 runs
    from 1/k (noise) to 1 (drift), so k times it runs from 1 to k."""
    k = len(shifts)
    mean = shifts[0].astype(np.float64)
    for d in shifts[1:]:
        mean += d
    mean /= k
    spread = sum(float(np.dot(d, d)) for d in shifts) / k
    if spread <= 0.0:
        return 1.0
    return float(min(k, max(1.0, k * float(np.dot(mean, mean)) / spread)))


def combine_into(copies: list, start: np.ndarray, n_params: int, gain: float | None = None) -> float:
    """Move the copies' weights and biases (their first ``n_params`` values) ``gain`` mean updates
    from ``start`` (default: ``summation_gain``; the number of copies: their sum; 1: their mean),
    average their optimizer state, write the result into every copy and make it the new ``start``
    (all in place). Returns the gain used."""
    k = len(copies)
    shifts = [c[:n_params] - start for c in copies]
    gain = summation_gain(shifts) if gain is None else gain
    params = shifts[0]
    for d in shifts[1:]:
        params += d
    params *= params.dtype.type(gain / k)
    params += start
    rest = weighted_mean_of([c[n_params:] for c in copies], np.ones(k))
    for c in copies:
        c[:n_params] = params
        c[n_params:] = rest
    start[:] = params
    return gain
