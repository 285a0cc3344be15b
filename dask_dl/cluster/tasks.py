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


_LOCAL_MODELS: dict = {}  # elastic averaging: this process's worker-local models, by (fit, worker)


def _worker_address() -> str:
    from distributed import get_worker
    try:
        return get_worker().address
    except ValueError:  # not inside a worker (local scheduler)
        return "local"


def train_on_worker(center: np.ndarray, layout, ks, n_samples: int, seed_parts: tuple, n_seen: float,
                    shuffle: bool, n_threads: int | None, position: float, fit_seed: int, elastic: tuple | None,
                    *blocks):
    """One iteration on one worker: HOGWILD!-train a copy of the centre (or, with elastic averaging,
    this worker's persistent local model pulled towards the centre) on ``n_samples`` draws from this
    worker's blocks. Returns (state, samples trained, compute seconds)."""
    import time
    if n_threads is None:
        from distributed import get_worker
        try:
            n_threads = get_worker().state.nthreads
        except ValueError:
            n_threads = 1
    t0 = time.perf_counter()
    if elastic is None:
        state = center.copy()
        done = hogwild.train_shard(state, layout, list(blocks), n_samples, ks, n_threads, seed_parts, n_seen,
                                   shuffle=shuffle, position=position, fit_seed=fit_seed)
    else:
        fit_key, strength = elastic
        key = (fit_key, _worker_address())
        state = _LOCAL_MODELS.get(key)
        first = state is None  # first iteration, or a replacement worker: start from the centre (as H2O)
        if first:
            state = center.copy()
        done = hogwild.train_shard(state, layout, list(blocks), n_samples, ks, n_threads, seed_parts, n_seen,
                                   shuffle=shuffle, position=position, fit_seed=fit_seed,
                                   center=None if first else center, elastic=strength)
        _LOCAL_MODELS[key] = state
        state = state.copy()  # the local model stays here; the reduction gets a copy
    return state, done, time.perf_counter() - t0


def drop_fit_state(fit_key: str) -> int:
    """Forget a finished fit's worker-local models (run on every worker at the end of fit)."""
    keys = [k for k in _LOCAL_MODELS if k[0] == fit_key]
    for k in keys:
        del _LOCAL_MODELS[k]
    return len(keys)


def weighted_mean(a: tuple, b: tuple) -> tuple:
    """Combine two (state, samples, seconds) results into their sample-weighted mean (one node of
    the reduction tree); seconds is the slowest worker's compute time."""
    sa, na, ta = a
    sb, nb, tb = b
    t = max(ta, tb)
    if na == 0:
        return sb, nb, t
    if nb == 0:
        return sa, na, t
    n = na + nb
    out = sa * np.float32(na / n)
    out += sb * np.float32(nb / n)
    return out, n, t


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
