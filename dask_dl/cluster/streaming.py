"""Out of core: the training partitions stay in storage and every iteration streams them again.

A set-up pass counts each partition's encoded rows and draws its training-scoring sample; each worker
then holds one ``StreamSource`` (partition references) that its training task reads.
"""
from __future__ import annotations

import logging
import operator

import dask
import numpy as np

from ..data.encode import balance_block, encode_training_block, sample_block
from ..nn import hogwild
from ..task_names import task_key
from .memory import encoded_bytes, memory_limits
from .watch import wait_all

logger = logging.getLogger("dask_dl")


class StreamSource:
    """A worker's share of the training data when it does not fit in memory: references to the
    partitions (dask Delayed objects: a Parquet row group, a CSV chunk, ...) and their row counts.
    The training task reads and encodes them one at a time, so memory stays at ~2 partitions."""

    def __init__(self, parts: list, rows: list, info, balance_seeds: list | None = None):
        self.parts, self.rows, self.info = list(parts), [int(r) for r in rows], info
        self.balance_seeds = list(balance_seeds) if balance_seeds is not None else [0] * len(self.parts)

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
        df = self.parts[i].compute(scheduler="sync")  # read on this worker thread, nothing else
        return encoded_block(df, self.info, self.balance_seeds[i])


def encoded_block(df, info, balance_seed: int):
    """A streamed partition's training block, class-balanced (balance_classes) with the partition's
    own seed: the same rows every time it is read."""
    block = encode_training_block(df, info)
    return balance_block(block, factors=info.class_factors, seed=balance_seed) if info.class_factors else block


def train_stream(state, src: StreamSource, spec, n_threads: int, center=None) -> int:
    """One round (``spec``: a tasks.RoundSpec) over a worker's stream of partitions, the next
    partition read while the current one trains (the kernels release the GIL); at most two held."""
    from concurrent.futures import ThreadPoolExecutor
    plan = src.plan(spec.n_samples, int(round(spec.position * sum(src.rows))))
    trained = 0
    with ThreadPoolExecutor(max_workers=1) as reader:
        loaded = {}  # partition index -> future of its block (the current one and the next)
        for k, (i, part_position, count) in enumerate(plan):
            if i not in loaded:
                loaded = {i: reader.submit(src.load, i)}
            nxt = plan[k + 1][0] if k + 1 < len(plan) else None
            if nxt is not None and nxt not in loaded:
                loaded[nxt] = reader.submit(src.load, nxt)
            loaded = {j: f for j, f in loaded.items() if j in (i, nxt)}
            block = loaded[i].result()
            trained += hogwild.train_shard(
                state, spec.layout, [block], n_samples=count, settings=spec.settings, n_threads=n_threads,
                rng_seeds=(*spec.rng_seeds, k), n_seen=spec.n_seen + trained,
                position=part_position, order_seed=spec.order_seed + 7919 * (i + 1), center=center,
                elastic_strength=spec.elastic_strength)
            del block
    return trained


def streamed_setup(part, *, info, fraction: float, seed: int, balance_seed: int = 0):
    """Set-up pass of the streaming mode: (encoded row count, training-scoring sample) of one partition."""
    block = encoded_block(part, info, balance_seed)
    return len(block[1]), sample_block(block, fraction=fraction, seed=seed)


def wants_streaming(client, info, cfg) -> bool:
    """out_of_core=True/False as given; 'auto': stream when the encoded training data would take more
    than half of the workers' total memory limit (headroom below Dask's 60% spill target). Never
    when one worker trains on everything (reproducible, single_node_mode)."""
    if cfg.single_worker:
        return False
    choice = cfg.params["out_of_core"]
    if choice != "auto":
        return bool(choice)
    limits = memory_limits(client)
    if not limits or min(limits) <= 0:
        return False
    return encoded_bytes(info) > 0.5 * sum(limits)


def _setup_pass(client, parts: list, info, assignment: list, fraction: float, seed: int, balance_seeds: list) -> list:
    """Futures of ``streamed_setup`` per partition, in partition order, each computed on its worker."""
    info_d = dask.delayed(info, traverse=False)
    setup = [None] * len(parts)
    for w, idx in assignment:
        calls = [dask.delayed(streamed_setup)(parts[i], info=info_d, fraction=fraction, seed=seed + i,
                                              balance_seed=balance_seeds[i],
                                              dask_key_name=task_key("stream-setup")) for i in idx]
        for i, f in zip(idx, client.compute(calls, workers=[w], allow_other_workers=True)):
            setup[i] = f
    wait_all(client, setup, what="the out-of-core set-up pass")
    return setup


def place_streaming(client, frame, info, assignment: list, fraction: float, seed: int, quiet: bool = False,
                    balance_seeds: list | None = None):
    """({worker: its StreamSource}, training-scoring sample futures, rows) of a frame left in storage;
    ``assignment``: [(worker, [partition indices])] (``placement.round_robin``); ``balance_seeds``:
    each partition's class-balancing seed."""
    parts = frame.to_delayed()
    balance_seeds = balance_seeds or [0] * len(parts)
    setup = _setup_pass(client, parts, info, assignment, fraction, seed, balance_seeds)
    rows = client.gather([client.submit(operator.itemgetter(0), f, key=task_key("rows")) for f in setup])
    score_train = [client.submit(operator.itemgetter(1), f, key=task_key("sample")) for f in setup]
    wait_all(client, score_train, what="drawing the scoring samples")
    del setup
    kept = [i for i in range(len(parts)) if rows[i] > 0]
    if not kept:
        raise ValueError("no training rows left: every row has a missing response")
    sources = {w: StreamSource([parts[i] for i in idx if rows[i] > 0], [rows[i] for i in idx if rows[i] > 0], info,
                               [balance_seeds[i] for i in idx if rows[i] > 0])
               for w, idx in assignment if any(rows[i] > 0 for i in idx)}
    if not quiet:
        logger.info("dask_dl: out of core: %d partitions streamed from storage by %d worker(s) every iteration",
                    len(parts), len(sources))
    return sources, score_train, int(sum(rows))


def scatter_sources(client, sources: dict) -> dict:
    """{worker: [future of its StreamSource]}, each source sent to its worker (the client keeps the
    objects, so a lost worker's share can be handed to another)."""
    return {w: [client.scatter(src, workers=[w], hash=False)] for w, src in sources.items()}


def regroup_sources(sources: dict, workers: list) -> dict:
    """All the partitions of ``sources``, in their order, dealt round-robin to ``workers``."""
    parts = [(p, r, b) for src in sources.values() for p, r, b in zip(src.parts, src.rows, src.balance_seeds)]
    info = next(iter(sources.values())).info
    out = {}
    for wi, w in enumerate(workers):
        mine = parts[wi::len(workers)]
        if mine:
            out[w] = StreamSource([p for p, _, _ in mine], [r for _, r, _ in mine], info, [b for _, _, b in mine])
    return out
