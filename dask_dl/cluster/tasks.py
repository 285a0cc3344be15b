"""Functions that run ON the workers: training a shard, scoring, and the averaging combine step.

They receive the centre state and the worker's own data blocks (Dask resolves the futures locally);
only weights and small results cross the network, never the training data.
"""
from __future__ import annotations

import numpy as np

from ..nn import hogwild
from ..nn.forward import forward


def block_rows(block) -> int:
    return int(len(block[1]))


def warm_up() -> bool:
    hogwild.warm_up()
    return True


def train_on_worker(center: np.ndarray, layout, ks, n_samples: int, seed_parts: tuple, n_seen: float,
                    shuffle: bool, n_threads: int | None, position: float, fit_seed: int, *blocks):
    """One iteration on one worker: copy the centre, HOGWILD!-train it on ``n_samples`` draws from
    this worker's blocks, return (state, samples trained)."""
    if n_threads is None:
        from distributed import get_worker
        try:
            n_threads = get_worker().state.nthreads
        except ValueError:  # not inside a worker (local scheduler)
            n_threads = 1
    state = center.copy()
    done = hogwild.train_shard(state, layout, list(blocks), n_samples, ks, n_threads, seed_parts, n_seen,
                               shuffle=shuffle, position=position, fit_seed=fit_seed)
    return state, done


def weighted_mean(a: tuple, b: tuple) -> tuple:
    """Combine two (state, samples) results into their sample-weighted mean (one reduction-tree node)."""
    sa, na = a
    sb, nb = b
    if na == 0:
        return sb, nb
    if nb == 0:
        return sa, na
    n = na + nb
    out = sa * np.float32(na / n)
    out += sb * np.float32(nb / n)
    return out, n


def score_blocks(state: np.ndarray, layout, *blocks):
    """Scoring-mode outputs and targets of a worker's scoring blocks (small: a sample of rows)."""
    outs, ys = [], []
    for X, y in blocks:
        if len(y):
            outs.append(forward(layout, state, X))
            ys.append(y)
    if not outs:
        return np.zeros((0, layout.units[-1]), np.float32), np.zeros(0, np.float32)
    return np.concatenate(outs), np.concatenate(ys)
