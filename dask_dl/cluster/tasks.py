"""Functions that run ON the workers: training a shard, scoring, and the averaging combine step.

They receive the centre state and the worker's own data blocks (Dask resolves the futures locally);
only weights and small results cross the network, never the training data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..nn import hogwild
from ..nn.forward import forward
from ..scoring import evaluate, sufficient
from .streaming import StreamSource, train_stream


class ModelCopy(NamedTuple):
    """A model state with what produced it: the samples it trained this round (0 for a centre the
    client sent) and the slowest worker's compute seconds. Training tasks return one, the reduction
    tree combines them, and the next round and the scoring tasks start from one where it lies."""
    state: np.ndarray
    n_trained: int = 0
    compute_s: float = 0.0


@dataclass(frozen=True)
class RoundSpec:
    """What one worker trains in one round."""
    layout: object
    settings: object              # nn.settings.KernelSettings
    n_samples: int                # samples this worker trains in this round
    n_seen: float                 # samples the fit trained before this round (rate schedules)
    rng_seeds: tuple              # (fit seed, iteration, worker index): the dropout RNG streams
    position: float               # passes over this worker's rows that earlier rounds made
    order_seed: int               # seed of this worker's row order
    segment: tuple = (0, 1)       # (i, P): replicated data's worker i walks the i-th of P parts of each pass
    n_threads: int | None = None  # None: the worker's own thread count
    elastic_key: str | None = None  # elastic averaging: the fit whose worker-local model trains
    elastic_strength: float = 0.0




_LOCAL_MODELS: dict = {}  # elastic averaging: this process's worker-local models, by (fit, worker)


def _worker_address() -> str:
    from distributed import get_worker
    try:
        return get_worker().address
    except ValueError:  # not inside a worker (local scheduler)
        return "local"


def _worker_threads() -> int:
    from distributed import get_worker
    try:
        return get_worker().state.nthreads
    except ValueError:
        return 1


def train_on_worker(center: ModelCopy, blocks: list, *, spec: RoundSpec) -> ModelCopy:
    """One round on one worker: HOGWILD!-train a copy of the centre (with elastic averaging, this
    worker's persistent local model pulled towards the centre) on ``spec.n_samples`` draws from
    this worker's ``blocks``."""
    import time
    n_threads = spec.n_threads or _worker_threads()
    t0 = time.perf_counter()
    if spec.elastic_key is None:
        state = center.state.copy()
        trained = _train_blocks(state, blocks, spec, n_threads)
        return ModelCopy(state, trained, time.perf_counter() - t0)
    key = (spec.elastic_key, _worker_address())
    local = _LOCAL_MODELS.get(key)
    first = local is None  # first round, or a replacement worker: start from the centre (as H2O)
    if first:
        local = center.state.copy()
    trained = _train_blocks(local, blocks, spec, n_threads, center=None if first else center.state)
    _LOCAL_MODELS[key] = local
    return ModelCopy(local.copy(), trained, time.perf_counter() - t0)  # the local model stays here


def _train_blocks(state, blocks: list, spec: RoundSpec, n_threads: int, center=None) -> int:
    """HOGWILD! over persisted blocks, or over a StreamSource read one partition at a time."""
    if len(blocks) == 1 and isinstance(blocks[0], StreamSource):
        return train_stream(state, blocks[0], spec, n_threads, center)
    return hogwild.train_shard(state, spec.layout, list(blocks), n_samples=spec.n_samples, settings=spec.settings,
                               n_threads=n_threads, rng_seeds=spec.rng_seeds, n_seen=spec.n_seen,
                               position=spec.position, order_seed=spec.order_seed, segment=spec.segment,
                               center=center, elastic_strength=spec.elastic_strength)


def drop_fit_state(fit_key: str) -> int:
    """Forget a finished fit's worker-local models (run on every worker at the end of fit)."""
    keys = [k for k in _LOCAL_MODELS if k[0] == fit_key]
    for k in keys:
        del _LOCAL_MODELS[k]
    return len(keys)


def weighted_mean(a: ModelCopy, b: ModelCopy) -> ModelCopy:
    """One node of the reduction tree: the sample-weighted mean of two copies; its compute time is
    the slower one's."""
    t = max(a.compute_s, b.compute_s)
    if a.n_trained == 0:
        return ModelCopy(b.state, b.n_trained, t)
    if b.n_trained == 0:
        return ModelCopy(a.state, a.n_trained, t)
    return ModelCopy(hogwild.weighted_mean_of([a.state, b.state], [a.n_trained, b.n_trained]),
                     a.n_trained + b.n_trained, t)


def score_sets(model: ModelCopy, *, layout, spec, train_blocks: list, valid_blocks: list):
    """The sufficient statistics (``scoring.sufficient``) of a worker's training-sample and
    validation blocks in scoring mode, in one task: (training, validation), None for a set
    without rows here. Kilobytes travel to the client, whatever the rows."""
    return score_blocks(model.state, layout, spec, train_blocks), score_blocks(model.state, layout, spec, valid_blocks)


def score_blocks(state: np.ndarray, layout, spec, blocks: list):
    """The merged sufficient statistics of some scoring blocks, or None when they hold no rows."""
    stats = None
    for X, y, w, o in map(hogwild.block_arrays, blocks):
        if len(y):
            s = evaluate.block_stats(forward(layout, state, X), X if spec.kind == "autoencoder" else y, spec, w, o)
            stats = s if stats is None else sufficient.merge(stats, s)
    return stats


def block_rows(block) -> int:
    return int(len(block[1]))


def warm_up(batch: int) -> bool:
    """Per worker process, once: import dask.dataframe (unpickling the first dataframe task would
    otherwise import it inside the fit's first round) and compile or load the fit's numba kernels."""
    import dask.dataframe  # noqa: F401
    hogwild.warm_up(batch)
    return True
