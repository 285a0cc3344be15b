"""Put the encoded training data on the workers and remember who holds what.

One statistics pass builds the DataInfo; a second encodes every partition into a float32 block that
is persisted on the worker that computed it. The iteration loop then sends one training task per
worker over the blocks that worker already holds — data never moves through the client.
"""
from __future__ import annotations

import functools
import logging

import dask
from distributed import wait
import numpy as np

from ..data import encode
from ..data.schema import RESPONSE, build_data_info, merge_stats, partition_stats, tree_merge
from . import tasks
from .loop import TrainingData

logger = logging.getLogger("dask_dl")


def persist_if_in_memory(client, frame):
    """A frame built on persisted partitions (the user's ``df.persist()`` plus a projection, an
    ``assign``...), persisted in turn, so that the set-up passes can hand each partition's future to
    their tasks. The response rename over persisted partitions needs nothing: ``partition_calls``
    renames inside the set-up tasks.

    Why: ``to_delayed()`` of a frame built on persisted partitions makes graphs that alias each
    partition's key to its future, and distributed then re-materialises the partition in every
    pass: ~0.35-0.7 s per pass over MNIST's six 10k-row partitions, three passes per fit (statistics,
    encoding, validation), against ~0.02 s for tasks that take the futures (measured). Frames read
    from storage are left alone: persisting them would hold the raw data in memory beside the
    encoded blocks."""
    from distributed import futures_of
    if not futures_of(frame) or _direct_sources(frame) is not None:
        return frame
    frame = client.persist(frame)
    wait(frame)
    return frame


def _persisted_futures(expr, npartitions: int):
    """The futures, in partition order, of an expression that IS persisted partitions (dask's
    FromGraph over one set of futures), else None."""
    if type(expr).__name__ != "FromGraph":
        return None
    from distributed import Future
    futures = [f for f in expr.operand("layer").values() if isinstance(f, Future)]
    if len(futures) != npartitions or not all(isinstance(f.key, tuple) and len(f.key) == 2 for f in futures) \
            or len({f.key[0] for f in futures}) != 1:
        return None
    ordered = sorted(futures, key=lambda f: f.key[1])
    return ordered if [f.key[1] for f in ordered] == list(range(npartitions)) else None


def _call_on(fn, part, columns, *args):
    """``fn(part, *args)``, the partition's columns renamed first (pandas copy-on-write: no data copied)."""
    return fn(part.rename(columns=columns) if columns else part, *args)


def _direct_sources(frame):
    """[(future, columns to rename or None)] per partition when ``frame`` IS persisted partitions or
    the estimators' response rename over them, else None."""
    expr = getattr(frame, "expr", None)
    futures = _persisted_futures(expr, frame.npartitions)
    if futures is not None:
        return [(f, None) for f in futures]
    if type(expr).__name__ == "RenameFrame" and isinstance(expr.operand("columns"), dict):
        futures = _persisted_futures(expr.operand("frame"), frame.npartitions)
        if futures is not None:
            columns = dict(expr.operand("columns"))
            return [(f, columns) for f in futures]
    return None


def partition_calls(fn, frame, *args) -> list:
    """``dask.delayed(fn)(partition, *args)`` for every partition of ``frame``, in order. Persisted
    partitions go to ``fn``'s task straight from their futures, renamed inside that task where the
    frame renames them: no dask-dataframe task and no intermediate frame on the worker (storing one
    costs a ``sizeof`` walk over its columns: 10-190 ms per MNIST partition, measured). Anything
    else goes through ``to_delayed()`` (see ``persist_if_in_memory``)."""
    direct = _direct_sources(frame)
    if direct is None:
        return [dask.delayed(fn)(p, *args) for p in frame.to_delayed()]
    name = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", "partition")
    common = dask.base.tokenize(fn, *args)  # once: a DataInfo of MNIST's 717 columns takes ~20 ms
    return [dask.delayed(_call_on)(fn, f, columns, *args,
                                   dask_key_name=f"{name}-{dask.base.tokenize(common, f.key, columns)}")
            for f, columns in direct]


def compute_data_info(client, frame, roles: dict, params: dict, response_kind: str, response_name: str,
                      distribution: str):
    """The one distributed statistics pass over the training frame."""
    features = [c for c in frame.columns if c != RESPONSE]
    numeric = [c for c in features if roles[c] == "numeric"]
    categorical = [c for c in features if roles[c] == "categorical"]
    stats = tree_merge(partition_calls(partition_stats, frame, numeric, categorical, response_kind), merge_stats)
    merged = client.compute(stats).result()
    return build_data_info(merged, features, roles, params, response_kind, response_name, distribution)


def _rows_of(client, futures) -> list:
    """Row counts of encoded blocks; waits for them and re-raises a worker's encoding error (e.g. an
    unseen response class) here."""
    return client.gather(client.map(tasks.block_rows, futures, pure=False))


def _submit_encoding(client, frame, info, workers=None) -> list:
    """Futures of every partition encoded into a block that stays on a worker. With ``workers``,
    partition i is encoded on workers[i % len(workers)] (round-robin), so every worker gets a share
    of the data whatever the scheduler would have chosen (``client.rebalance`` does not move small
    data)."""
    # ``info`` rides inside each task (a partial is not traversed): as a graph key of its own it was
    # one more scheduling hop before the encoding could start (~10 ms a fit, measured)
    blocks = partition_calls(functools.partial(encode.encode_training_block, info=info), frame)
    if workers:
        futures = [None] * len(blocks)
        for wi, w in enumerate(workers):
            idx = list(range(wi, len(blocks), len(workers)))
            if idx:
                for i, f in zip(idx, client.compute([blocks[i] for i in idx], workers=[w],
                                                    allow_other_workers=True)):
                    futures[i] = f
    else:
        futures = client.compute(blocks)
    return futures


def _memory_limits(client) -> list:
    """Every worker's memory limit in bytes (0 where a worker has none)."""
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # older distributed
        workers = client.scheduler_info()["workers"]
    return [w.get("memory_limit") or 0 for w in workers.values()]


def encoded_bytes(info) -> int:
    """Size of the encoded float32 training data (inputs + response)."""
    return int(info.n_rows * (info.n_inputs + 1) * 4)


def wants_streaming(client, info, params: dict) -> bool:
    """out_of_core=True/False as given; 'auto': stream when the encoded training data would take more
    than half of the workers' total memory limit (headroom below Dask's 60% spill target)."""
    choice = params["out_of_core"]
    if choice != "auto":
        return bool(choice)
    limits = _memory_limits(client)
    if not limits or min(limits) <= 0:
        return False
    return encoded_bytes(info) > 0.5 * sum(limits)


def wants_replication(client, info, params: dict, n_workers: int) -> bool:
    """replicate_training_data (H2O's default): with 2+ workers, every worker holds all the data when
    it fits in half of the smallest worker's memory limit (workers without one: this machine's memory
    split between them). H2O refuses above 90% of a node's free memory; dask_dl keeps the
    partitioned layout instead and says so."""
    if not params["replicate_training_data"] or n_workers < 2 or params["reproducible"] \
            or params["single_node_mode"]:
        return False
    limits = [m for m in _memory_limits(client) if m > 0]
    if not limits:  # workers without a limit: assume they split a machine like this one
        import psutil
        limits = [psutil.virtual_memory().total // max(1, n_workers)]
    need = encoded_bytes(info)
    if need > 0.5 * min(limits):
        logger.warning("dask_dl: replicate_training_data: the encoded data (%.0f MB) exceeds half a worker's "
                    "memory limit (%.0f MB); every worker trains on its own partitions instead",
                    need / 2**20, min(limits) / 2**20)
        return False
    return True


def _replicate(client, futures: list, workers: list) -> dict:
    """Give every worker a copy of every block: each block a worker lacks is fetched into a task of
    its own there (a distinct key, so the Active Memory Manager does not undo the copies as it
    would ``client.replicate``'s). Returns {worker: [blocks in one global order]}."""
    who = client.who_has(futures)
    out = {}
    for w in workers:
        out[w] = [f if w in (who.get(f.key) or ()) else
                  client.submit(tasks.replica, f, workers=[w], allow_other_workers=False, pure=False)
                  for f in futures]
    wait([f for fs in out.values() for f in fs])
    return out


def _place_streaming(client, frame, info, cfg, seed: int):
    """Out of core: partitions stay in storage. One set-up pass (on the worker each partition is
    assigned to, round-robin) counts encoded rows and draws the training-scoring sample; each worker
    then gets one StreamSource (partition references) that its training task reads every iteration."""
    import operator
    p = cfg.params
    workers = sorted(client.nthreads())
    parts = frame.to_delayed()
    info_d = dask.delayed(info, traverse=False)
    s_train = int(p["score_training_samples"])
    frac = _sample_fraction(s_train, info.n_rows)
    setup = []
    for i, part in enumerate(parts):
        w = workers[i % len(workers)]
        setup.append((w, i, client.compute(dask.delayed(tasks.streamed_setup)(part, info_d, frac, seed + i),
                                           workers=[w], allow_other_workers=True)))
    wait([f for _, _, f in setup])
    rows = client.gather([client.submit(operator.itemgetter(0), f, pure=False) for _, _, f in setup])
    score_train = [client.submit(operator.itemgetter(1), f, pure=False) for _, _, f in setup]
    wait(score_train)
    del setup
    by_worker, rows_by_worker = {}, {}
    for wi, w in enumerate(workers):
        idx = [i for i in range(wi, len(parts), len(workers)) if rows[i] > 0]
        if not idx:
            continue
        src = tasks.StreamSource([parts[i] for i in idx], [rows[i] for i in idx], info)
        by_worker[w] = [client.scatter(src, workers=[w], hash=False)]
        rows_by_worker[w] = int(sum(rows[i] for i in idx))
    if not by_worker:
        raise ValueError("no training rows left: every row has a missing response")
    if not p["quiet_mode"]:
        logger.info("dask_dl: out of core: %d partitions streamed from storage by %d worker(s) every iteration",
                    len(parts), len(by_worker))
    return by_worker, rows_by_worker, score_train, int(sum(rows))


def _validation_blocks(client, valid_frame, info, params: dict, seed: int, vfut=None, vrows=None):
    """Scoring blocks of the validation frame (``vfut``/``vrows``: its encoding and row counts, when
    already done)."""
    if vfut is None:
        vfut = _submit_encoding(client, valid_frame, info)
    if vrows is None:
        vrows = _rows_of(client, vfut)
    n_valid = int(sum(vrows))
    if n_valid == 0:
        raise ValueError("validation_data has no rows with a response")
    s_valid = int(params["score_validation_samples"])
    vfrac = _sample_fraction(s_valid, n_valid)
    if vfrac >= 1.0:
        return vfut
    return [client.submit(encode.sample_block, f, vfrac, seed + 1 + i, pure=False) for i, f in enumerate(vfut)]


def place_training_data(client, frame, info, valid_frame, cfg, seed: int) -> TrainingData:
    """Encode + persist training (and validation) blocks; group them by worker; draw scoring samples.
    Out of core (``wants_streaming``), the training partitions stay in storage instead."""
    p = cfg.params
    if wants_streaming(client, info, p) and not (p["reproducible"] or p["single_node_mode"]):
        by_worker, rows_by_worker, score_train, n_rows = _place_streaming(client, frame, info, cfg, seed)
        score_valid = _validation_blocks(client, valid_frame, info, p, seed) if valid_frame is not None else None
        return TrainingData(blocks_by_worker=by_worker, rows_by_worker=rows_by_worker, score_train=score_train,
                            score_valid=score_valid, n_rows=n_rows, streaming=True)
    workers = sorted(client.nthreads())
    spread = p["force_load_balance"] and not (p["reproducible"] or p["single_node_mode"])
    futures = _submit_encoding(client, frame, info, workers if spread else None)
    # the validation frame is encoded at the same time (its scoring sample is drawn below)
    vfut = _submit_encoding(client, valid_frame, info) if valid_frame is not None else []
    s_train = int(p["score_training_samples"])
    score_train = None
    if not info.skip_missing:
        # every row with a response is encoded (the statistics pass counted them): the scoring
        # sample's fraction is known now, so it is drawn as each block is encoded, not one round
        # trip after the row counts come back
        score_train = _submit_scoring_samples(client, futures, _sample_fraction(s_train, info.n_rows), seed)
    rows = _rows_of(client, futures + vfut)  # one wait for both
    rows, vrows = rows[:len(futures)], rows[len(futures):]
    keep = [(f, r) for f, r in zip(futures, rows) if r > 0]
    if not keep:
        raise ValueError("no training rows left: every row has a missing response"
                         + (" or a missing predictor (missing_values_handling='Skip')" if info.skip_missing else ""))
    encoded, futures = futures, [f for f, _ in keep]
    rows_of = {f.key: r for f, r in keep}
    n_rows = int(sum(rows_of.values()))
    replicated = False
    if p["reproducible"] or p["single_node_mode"]:
        # one worker trains on everything (no averaging); reproducible also means one thread and
        # partition order: bit-identical for a seed (H2O forces one chunk)
        by_worker = {workers[0]: futures}
    elif replicated := wants_replication(client, info, p, len(workers)):
        by_worker = _replicate(client, futures, workers)
        for w, fs in by_worker.items():
            rows_of.update({f.key: rows_of[o.key] for f, o in zip(fs, futures)})
        if not p["quiet_mode"]:
            logger.info("dask_dl: replicate_training_data: each of %d workers holds all %d rows", len(workers),
                        n_rows)
    else:
        by_worker = _group_by_holder(client, futures)
    rows_by_worker = {w: sum(rows_of[f.key] for f in fs) for w, fs in by_worker.items()}
    if score_train is None:  # missing_values_handling='Skip': the fraction needs the encoded row count
        score_train = _submit_scoring_samples(client, encoded, _sample_fraction(s_train, n_rows), seed)
    score_train = [f for f, r in zip(score_train, rows) if r > 0]
    score_valid = _validation_blocks(client, valid_frame, info, p, seed, vfut, vrows) \
        if valid_frame is not None else None
    wait(score_train + (score_valid or []))
    if info.n_rows_total > n_rows and not info.skip_missing:
        logger.warning("dask_dl: %d training rows have a missing response and are skipped",
                       info.n_rows_total - n_rows)
    return TrainingData(blocks_by_worker=by_worker, rows_by_worker=rows_by_worker, score_train=score_train,
                        score_valid=score_valid, n_rows=n_rows, replicated=replicated)


def _sample_fraction(wanted: int, n: int) -> float:
    """H2O's scoring-sample rate: score_*_samples of n rows (0, or n or more: every row)."""
    return wanted / n if 0 < wanted < n else 1.0


def _submit_scoring_samples(client, futures, frac: float, seed: int) -> list:
    """The training-scoring sample of every encoded block (H2O: Bernoulli(S/N) per row, drawn once
    at set-up; block i with seed + i, empty blocks included)."""
    return [client.submit(encode.sample_block, f, frac, seed + i, pure=False) for i, f in enumerate(futures)]


def _group_by_holder(client, futures) -> dict:
    who = client.who_has(futures)
    out: dict = {}
    for f in futures:
        holders = sorted(who.get(f.key) or ())
        out.setdefault(holders[0] if holders else None, []).append(f)
    if None in out:  # not yet placed (should not happen after wait): give them to the first worker
        orphans = out.pop(None)
        first = sorted(client.nthreads())[0]
        out.setdefault(first, []).extend(orphans)
    return out


def warm_workers(client, batch: int, elastic: bool) -> None:
    """Compile or load the fit's numba kernels and import dask.dataframe on every worker, before the
    set-up's first data task (``tasks.warm_up``)."""
    client.run(tasks.warm_up, batch, elastic)


def seed_for(cfg) -> int:
    return int(np.uint32(cfg.seed))
