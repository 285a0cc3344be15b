"""Functions that run ON the workers: training a shard, scoring, and the averaging combine step.

They receive the centre state and the worker's own data blocks (Dask resolves the futures locally);
only weights and small results cross the network, never the training data.
"""
from __future__ import annotations

import numpy as np

from ..nn import hogwild
from ..nn.forward import forward


class StreamSource:
    """A worker's share of the training data when it does not fit in memory: references to the
    partitions (dask Delayed objects: a Parquet row group, a CSV chunk, ...) and their row counts.
    The training task reads and encodes them one at a time, so memory stays at ~2 partitions."""

    def __init__(self, parts: list, rows: list, info):
        self.parts, self.rows, self.info = list(parts), [int(r) for r in rows], info

    def plan(self, n_samples: int, start: int) -> list:
        """(partition, passes done over it + offset fraction, samples) pieces of the worker's stream of
        passes over its partitions, from stream position ``start``: an iteration reads only the
        partitions its samples fall in, so I/O follows the samples, not the dataset size."""
        rows = np.asarray(self.rows, dtype=np.int64)
        cum = np.concatenate([[0], np.cumsum(rows)])
        total = int(cum[-1])
        pos, left, out = int(start), int(n_samples), []
        while left > 0:
            passes, p = divmod(pos, total)
            i = int(np.searchsorted(cum, p, side="right") - 1)
            off = p - int(cum[i])
            take = min(int(rows[i]) - off, left)
            out.append((i, passes + off / rows[i], take))
            pos += take
            left -= take
        return out

    def load(self, i: int):
        from ..data.encode import encode_training_block
        df = self.parts[i].compute(scheduler="sync")  # read on this worker thread, nothing else
        return encode_training_block(df, self.info)


def streamed_setup(part, info, fraction: float, seed: int):
    """Set-up pass of the streaming mode: (encoded row count, training-scoring sample) of one partition."""
    from ..data.encode import encode_training_block, sample_block
    block = encode_training_block(part, info)
    return len(block[1]), sample_block(block, fraction, seed)


def _train_blocks(state, layout, ks, blocks, n_samples, n_threads, seed_parts, n_seen, shuffle, position,
                  fit_seed, center=None, elastic=0.0) -> int:
    """HOGWILD! over persisted blocks, or over a StreamSource read one partition at a time (the
    next partition is read while the current one trains: the kernels release the GIL)."""
    if not (len(blocks) == 1 and isinstance(blocks[0], StreamSource)):
        return hogwild.train_shard(state, layout, list(blocks), n_samples, ks, n_threads, seed_parts, n_seen,
                                   shuffle=shuffle, position=position, fit_seed=fit_seed, center=center,
                                   elastic=elastic)
    from concurrent.futures import ThreadPoolExecutor
    src = blocks[0]
    plan = src.plan(n_samples, int(round(position * sum(src.rows))))
    done = 0
    with ThreadPoolExecutor(max_workers=1) as reader:
        loaded = {}  # partition index -> future of its block (the current one and the next)
        for k, (i, part_position, count) in enumerate(plan):
            if i not in loaded:
                loaded = {i: reader.submit(src.load, i)}
            nxt = plan[k + 1][0] if k + 1 < len(plan) else None
            if nxt is not None and nxt not in loaded:
                loaded[nxt] = reader.submit(src.load, nxt)  # prefetch while this one trains
            loaded = {j: f for j, f in loaded.items() if j in (i, nxt)}  # at most two partitions held
            block = loaded[i].result()
            done += hogwild.train_shard(state, layout, [block], count, ks, n_threads, (*seed_parts, k),
                                        n_seen + done, shuffle=shuffle, position=part_position,
                                        fit_seed=fit_seed + 7919 * (i + 1), center=center, elastic=elastic)
            del block
    return done


def replica(block):
    """The block itself, held on this worker under a key of its own (replicate_training_data)."""
    return block


def block_rows(block) -> int:
    return int(len(block[1]))


def warm_up(batch: int, elastic: bool) -> bool:
    """Per worker process, once: import dask.dataframe (unpickling the first dataframe task would
    otherwise import it inside the fit's first round: 0.3-0.5 s on these VMs) and compile or load the
    fit's numba kernels."""
    import dask.dataframe  # noqa: F401
    hogwild.warm_up(batch, elastic)
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
    worker's blocks (``center``: a state or the last round's averaging result). Returns (state,
    samples trained, compute seconds)."""
    import time
    center = _state(center)
    if n_threads is None:
        from distributed import get_worker
        try:
            n_threads = get_worker().state.nthreads
        except ValueError:
            n_threads = 1
    t0 = time.perf_counter()
    if elastic is None:
        state = center.copy()
        done = _train_blocks(state, layout, ks, blocks, n_samples, n_threads, seed_parts, n_seen, shuffle,
                             position, fit_seed)
    else:
        fit_key, strength = elastic
        key = (fit_key, _worker_address())
        state = _LOCAL_MODELS.get(key)
        first = state is None  # first iteration, or a replacement worker: start from the centre (as H2O)
        if first:
            state = center.copy()
        done = _train_blocks(state, layout, ks, blocks, n_samples, n_threads, seed_parts, n_seen, shuffle,
                             position, fit_seed, center=None if first else center, elastic=strength)
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
    return hogwild.weighted_mean_of([sa, sb], [na, nb]), na + nb, t


def _state(x) -> np.ndarray:
    """A state, given as itself or as the (state, samples, seconds) result of a training/averaging
    task: the loop hands the next round's training and the scoring tasks that result where it lies,
    instead of uploading the state from the client."""
    return x[0] if isinstance(x, tuple) else x


def score_sets(state: np.ndarray, layout, n_train: int, *blocks):
    """``score_blocks`` of the first ``n_train`` blocks (training sample) and of the rest
    (validation), in one task: ((outputs, targets), (outputs, targets))."""
    state = _state(state)
    return score_blocks(state, layout, *blocks[:n_train]), score_blocks(state, layout, *blocks[n_train:])


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
