"""Put the encoded training data on the workers and remember who holds what.

One statistics pass builds the DataInfo; a second encodes every partition into a float32 block that
is persisted on the worker that computed it (or, out of core, counts the rows of partitions left in
storage: ``streaming``). The iteration loop then sends one training task per worker over the blocks
that worker already holds: data never moves through the client. Persisted-frame handling lives in
``frames``, copies of the data on every worker in ``replication``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import functools
import logging

import numpy as np

from ..data import encode
from ..data.schema import build_data_info, feature_columns, merge_stats, partition_stats, tree_merge
from . import tasks
from .frames import InMemoryFrame, partition_calls, partition_futures
from ..task_names import task_key, task_keys
from .replication import replicate_blocks, submit_replicas, wants_replication
from .streaming import place_streaming, scatter_sources, wants_streaming
from .watch import wait_all

logger = logging.getLogger("dask_dl")


@dataclass
class TrainingData:
    """Where the encoded data lives, by worker: persisted block futures, or (out of core) one
    scattered StreamSource per worker that its training task reads every round."""
    blocks_by_worker: dict          # {worker address: [future of (X, y)] or [future of a StreamSource]}
    rows_by_worker: dict            # {worker address: rows}
    score_train: list               # futures of sampled training blocks (scoring)
    score_valid: list | None        # futures of validation blocks (scoring), or None
    n_rows: int
    streaming: bool = False         # out of core: blocks_by_worker holds one StreamSource per worker
    replicated: bool = False        # replicate_training_data: every worker holds every block
    block_rows: dict = field(default_factory=dict)  # {block key: rows} (in memory)
    sources: dict | None = None     # out of core: {worker: its StreamSource}, kept on the client
    blocks: list = field(default_factory=list)  # in memory: every block once, in partition order

    def release(self) -> None:
        """Drop this fit's claim on every future it holds, at once (also when the fit failed or
        was interrupted, while a traceback still references this object)."""
        futures = [f for fs in self.blocks_by_worker.values() for f in fs]
        futures += [*self.blocks, *self.score_train, *(self.score_valid or [])]
        for f in futures:
            f.release()


def round_robin(n_items: int, workers: list) -> list:
    """[(worker, [item indices])]: item i goes to workers[i % len(workers)], so every worker gets a
    share of the data whatever the scheduler would have chosen (``client.rebalance`` does not move
    small data). Workers left without an item are omitted."""
    return [(w, list(range(wi, n_items, len(workers)))) for wi, w in enumerate(workers) if wi < n_items]


def compute_data_info(client, frame, roles: dict, params: dict, response_kind: str, response_name: str,
                      distribution: str):
    """The one distributed statistics pass over the training frame."""
    features = feature_columns(frame)
    numeric = [c for c in features if roles[c] == "numeric"]
    categorical = [c for c in features if roles[c] == "categorical"]
    names = (params.get("weights_column"), params.get("offset_column"))
    by_response = params.get("categorical_encoding") == "SortByResponse"
    stats = tree_merge(partition_calls(partition_stats, frame, numeric, categorical, response_kind, names,
                                       by_response, what="statistics"), merge_stats, what="statistics-merge")
    merged = client.compute(stats)
    wait_all(client, [merged], what="the statistics pass")
    merged = merged.result()
    return build_data_info(merged, features, roles, params, response_kind, response_name, distribution)


def _rows_of(client, futures) -> list:
    """Row counts of encoded blocks; waits for them and re-raises a worker's encoding error (e.g. an
    unseen response class) here."""
    counts = client.map(tasks.block_rows, futures, key=task_keys("rows", len(futures)))
    wait_all(client, counts, what="encoding the data")
    return client.gather(counts)


def _submit_encoding(client, frame, info, workers=None, scoring: bool = False, assigned: list | None = None) -> list:
    """Futures of every partition encoded into a block that stays on a worker (``scoring``: a
    validation block, see ``encode_training_block``); with ``workers``, spread evenly over them
    (``assigned``: each partition's worker, default ``_encoding_workers``), else where the
    scheduler chooses."""
    # ``info`` rides inside each task (a partial is not traversed): a graph key of its own delays the start
    blocks = partition_calls(functools.partial(encode.encode_training_block, info=info, scoring=scoring), frame,
                             what="encode")
    with _in_memory_rows_in_graph(frame):
        if not workers:
            return client.compute(blocks)
        futures = [None] * len(blocks)
        assigned = assigned or _encoding_workers(client, frame, workers)
        for w in workers:
            idx = [i for i, a in enumerate(assigned) if a == w]
            for i, f in zip(idx, client.compute([blocks[i] for i in idx], workers=[w], allow_other_workers=True)):
                futures[i] = f
    return futures


def _in_memory_rows_in_graph(frame):
    """A pandas frame's rows travel inside the encoding tasks by design (the client holds them, and
    the tasks keep their lineage): Dask's "Sending large graph" advice is not for the user then."""
    import contextlib
    if not isinstance(frame, InMemoryFrame):
        return contextlib.nullcontext()
    import dask
    return dask.config.set({"distributed.admin.large-graph-warning-threshold": "1 PiB"})


def _encoding_workers(client, frame, workers: list) -> list:
    """The worker that encodes each partition, every worker getting an even share: a persisted
    partition's holder while it is under its share (the raw partition, slow to move for a wide
    frame, stays where it is), else the worker with the fewest so far (round-robin for frames
    that are not persisted)."""
    sources = partition_futures(frame)
    who = client.who_has(sources) if sources else {}
    share = -(-frame.npartitions // len(workers))
    load = dict.fromkeys(workers, 0)
    out = []
    for i in range(frame.npartitions):
        held = [w for w in sorted(who.get(sources[i].key) or ()) if w in load and load[w] < share] if sources else []
        w = held[0] if held else min(workers, key=lambda w: load[w])
        load[w] += 1
        out.append(w)
    return out


def _balanced(client, futures: list, info, seed: int) -> list:
    """With balance_classes, each encoded block over/under-sampled by class where it lies (block i
    with its own seed); the unbalanced blocks are dropped."""
    if not info.class_factors:
        return futures
    return [client.submit(encode.balance_block, f, factors=info.class_factors, seed=balance_seed(seed, i),
                          key=task_key("balance")) for i, f in enumerate(futures)]


def balance_seed(seed: int, partition: int) -> int:
    """The class-balancing draw of a partition: its own stream, apart from the scoring samples'."""
    return int(np.random.SeedSequence([seed, partition, 0xBA1]).generate_state(1)[0])


def _sample_fraction(wanted: int, n: int) -> float:
    """H2O's scoring-sample rate: score_*_samples of n rows (0, or n or more: every row)."""
    return wanted / n if 0 < wanted < n else 1.0


def _submit_scoring_samples(client, futures, frac: float, seed: int) -> list:
    """The training-scoring sample of every encoded block (H2O: Bernoulli(S/N) per row, drawn once
    at set-up; block i with seed + i, empty blocks included)."""
    return [client.submit(encode.sample_block, f, fraction=frac, seed=seed + i, key=task_key("sample"))
            for i, f in enumerate(futures)]


def _validation_blocks(client, valid_frame, info, params: dict, seed: int, vfut=None, vrows=None):
    """Scoring blocks of the validation frame (``vfut``/``vrows``: its encoding and row counts, when
    already done)."""
    if vfut is None:
        vfut = _submit_encoding(client, valid_frame, info, sorted(client.nthreads()), scoring=True)
    if vrows is None:
        vrows = _rows_of(client, vfut)
    n_valid = int(sum(vrows))
    if n_valid == 0:
        raise ValueError("validation_data has no rows with a response")
    vfrac = _sample_fraction(int(params["score_validation_samples"]), n_valid)
    if vfrac >= 1.0:
        return vfut
    stratified = params["score_validation_sampling"] == "Stratified" and info.response_kind == "classification"
    return [client.submit(encode.sample_block, f, fraction=vfrac, seed=seed + 1 + i, stratified=stratified,
                          key=task_key("sample")) for i, f in enumerate(vfut)]


def place_training_data(client, frame, info, valid_frame, cfg, seed: int) -> TrainingData:
    """Encode + persist training (and validation) blocks; group them by worker; draw scoring samples.
    Out of core (``wants_streaming``), the training partitions stay in storage instead."""
    if wants_streaming(client, info, cfg):
        return _place_streamed(client, frame, info, valid_frame, cfg, seed)
    return _place_in_memory(client, frame, info, valid_frame, cfg, seed)


def _place_streamed(client, frame, info, valid_frame, cfg, seed: int) -> TrainingData:
    """Training partitions left in storage, assigned round-robin; validation blocks persisted."""
    p = cfg.params
    assignment = round_robin(frame.npartitions, sorted(client.nthreads()))
    frac = _sample_fraction(int(p["score_training_samples"]), info.n_train_rows)
    sources, score_train, n_rows = place_streaming(client, frame, info, assignment, frac, seed,
                                                   quiet=p["quiet_mode"], balance_seeds=[
                                                       balance_seed(seed, i) for i in range(frame.npartitions)])
    score_valid = _validation_blocks(client, valid_frame, info, p, seed) if valid_frame is not None else None
    log_skipped_rows(info, n_rows)
    return TrainingData(blocks_by_worker=scatter_sources(client, sources),
                        rows_by_worker={w: sum(src.rows) for w, src in sources.items()}, score_train=score_train,
                        score_valid=score_valid, n_rows=n_rows, streaming=True, sources=sources)


def _place_in_memory(client, frame, info, valid_frame, cfg, seed: int) -> TrainingData:
    """Every partition encoded into a persisted block, the validation frame's at the same time."""
    p = cfg.params
    workers = sorted(client.nthreads())
    assigned = _encoding_workers(client, frame, workers) if cfg.spread_partitions else None
    futures = _balanced(client, _submit_encoding(client, frame, info, workers if assigned else None,
                                                 assigned=assigned), info, seed)
    replicate = wants_replication(client, info, cfg, len(workers))
    # the copies follow each block as it is encoded (the replicas' transfers overlap the encoding)
    replicas = submit_replicas(client, futures, workers, {f.key: w for f, w in zip(futures, assigned)}) \
        if replicate and assigned and not info.class_factors else None
    vfut = _submit_encoding(client, valid_frame, info, workers, scoring=True) if valid_frame is not None else []
    s_train = int(p["score_training_samples"])
    score_train = None
    if not info.skip_missing:
        # every row with a response is encoded: the sample is drawn as each block is encoded
        score_train = _submit_scoring_samples(client, futures, _sample_fraction(s_train, info.n_train_rows), seed)
    rows = _rows_of(client, futures)  # the validation blocks are encoded while the replicas are made
    rows_of = {f.key: r for f, r in zip(futures, rows) if r > 0}
    if not rows_of:
        raise ValueError("no training rows left: every row has a missing response"
                         + (" or a missing predictor (missing_values_handling='Skip')" if info.skip_missing else ""))
    kept = [f for f, r in zip(futures, rows) if r > 0]
    n_rows = int(sum(rows_of.values()))
    by_worker, replicated = _assign_blocks(client, cfg, kept, rows_of, workers, replicate,
                                           _kept_copies(replicas, futures, rows))
    if score_train is None:  # missing_values_handling='Skip': the fraction needs the encoded row count
        score_train = _submit_scoring_samples(client, futures, _sample_fraction(s_train, n_rows), seed)
    score_train = [f for f, r in zip(score_train, rows) if r > 0]
    score_valid = _validation_blocks(client, valid_frame, info, p, seed, vfut, _rows_of(client, vfut)) \
        if valid_frame is not None else None
    wait_all(client, score_train + (score_valid or []), what="drawing the scoring samples")
    log_skipped_rows(info, n_rows)
    return TrainingData(blocks_by_worker=by_worker, score_train=score_train, score_valid=score_valid,
                        rows_by_worker={w: sum(rows_of[f.key] for f in fs) for w, fs in by_worker.items()},
                        n_rows=n_rows, replicated=replicated, block_rows=rows_of, blocks=kept)


def log_skipped_rows(info, n_rows: int) -> None:
    """Say how many training rows do not train (in memory and out of core alike): rows without a
    response, and with missing_values_handling='Skip' rows with a missing predictor."""
    no_response = info.n_rows_total - info.n_rows - info.zero_weight_rows  # weight-0 rows are the user's choice
    if no_response > 0:
        logger.warning("dask_dl: %d training rows have a missing response and are skipped", no_response)
    if info.skip_missing and info.n_rows > n_rows:
        logger.warning("dask_dl: missing_values_handling='Skip': %d training rows with a missing predictor are "
                       "skipped", info.n_rows - n_rows)


def _kept_copies(replicas: dict | None, blocks: list, rows: list) -> dict | None:
    """``replicas`` (``submit_replicas`` of ``blocks``) of the blocks that hold rows, the copies of
    empty blocks released; None when there are none."""
    if replicas is None:
        return None
    originals = {b.key for b in blocks}
    for fs in replicas.values():
        for f, r in zip(fs, rows):
            if r == 0 and f.key not in originals:
                f.release()
    return {w: [f for f, r in zip(fs, rows) if r > 0] for w, fs in replicas.items()}


def _assign_blocks(client, cfg, futures: list, rows_of: dict, workers: list, replicate: bool,
                   replicas: dict | None = None) -> tuple:
    """({worker: the blocks it trains on}, replicated); ``rows_of`` gains the replicas' row counts.
    ``replicate``: ``wants_replication``'s answer; ``replicas``: the copies already asked for."""
    if cfg.single_worker:
        # one worker trains on everything, in partition order (reproducible: bit-identical for a seed)
        return {workers[0]: futures}, False
    if not replicate:
        return _group_by_holder(client, futures), False
    by_worker = replicate_blocks(client, futures, workers, quiet=cfg.params["quiet_mode"], submitted=replicas)
    for fs in by_worker.values():
        rows_of.update({f.key: rows_of[o.key] for f, o in zip(fs, futures)})
    if not cfg.params["quiet_mode"]:
        logger.info("dask_dl: replicate_training_data: each of %d workers holds all %d rows", len(by_worker),
                    sum(rows_of[f.key] for f in futures))
    return by_worker, True


def _group_by_holder(client, futures) -> dict:
    """{worker: the blocks it holds}; a block not yet placed goes to the first worker."""
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


def warm_workers(client, batch: int) -> None:
    """Compile or load the fit's numba kernels and import dask.dataframe on every worker, before the
    set-up's first data task (``tasks.warm_up``). A compile under way (the client's background one
    on a fresh install, which holds its lock) is waited for, and its kernel loaded."""
    client.run(tasks.warm_up, batch)


def seed_for(cfg) -> int:
    """The fit's seed as the uint32 the workers' random streams take."""
    return int(np.uint32(cfg.seed))
