"""The training job: a frame with a response column in, a ``DeepLearningModel`` out, on a Dask cluster.

The estimators, the CLI and every feature that trains models (cross-validation, grid search,
checkpoints) call ``train``. Its steps, in order: find or start the cluster, warm the workers,
partition the frame, one statistics pass (``DataInfo``), the network's layout, the encoded data on
the workers, the iteration loop, the model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import threading
import traceback
from dataclasses import dataclass

import numpy as np

from . import checkpoint as checkpoints
from . import params as P
from .cluster import loop, memory, placement
from .cluster.frames import InMemoryFrame, persist_if_in_memory
from .cluster.session import cluster_client, worker_threads
from .errors import ClusterUnavailableError, ModelDivergedError, exception_chain
from .inputs import _is_dask
from .data.schema import DataInfo
from .model import DeepLearningModel
from .nn import precompile
from .nn import settings as kernel_settings
from .nn.network import NetworkLayout, build_layout, initial_state, set_initial_values

logger = logging.getLogger("dask_dl")


@dataclass(frozen=True)
class ColumnRoles:
    """Which column is which: the frame holds the response as ``data.schema.RESPONSE``."""
    response: str | None  # the response's name as the user gave it (None: an autoencoder)
    features: dict  # feature name -> "numeric" | "categorical", in frame order


def train(frame, columns: ColumnRoles, cfg: P.TrainingConfig, *, validation=None, client=None,
          start_state: np.ndarray | None = None, info: DataInfo | None = None,
          pipeline_max_round_s: float = loop.PIPELINE_MAX_ROUND_S,
          checkpoint: DeepLearningModel | None = None, observer=None) -> DeepLearningModel:
    """Train a network on ``frame`` (pandas or dask) and return the model. ``cfg`` is resolved for
    the model's family (its class count is settled by the statistics pass); ``validation`` is a
    frame laid out like ``frame``; ``client`` a distributed.Client (None: the active one, else an
    embedded LocalCluster); ``start_state`` a flat state to train from instead of a fresh one;
    ``info`` the frame's statistics when already computed (in-memory data: on the client).
    A ModelDivergedError carries the last good model (``.last_good_model``). ``checkpoint``: a
    model this fit continues (its encoding, state and progress; checked by ``checkpoint.check``).
    ``observer``: the client's view of the fit (``progress.FitObserver``), None: one from the params."""
    family = cfg.kind if cfg.kind in ("regression", "autoencoder") else "classification"
    network, info, resume = _network_before_cluster(cfg, family, info, start_state, checkpoint)
    with cluster_client(client, mini_batch=not cfg.per_sample, thread_copies=cfg.thread_copies,
                        quiet=bool(cfg.params["quiet_mode"])) as c, \
            _training_slot(c, quiet=bool(cfg.params["quiet_mode"])), _locals_dropped_on_error():
        threads = worker_threads(c)
        if not threads:
            raise ClusterUnavailableError("the Dask cluster has no workers")
        late_warm_up = _warm_and_check_workers(c, cfg)
        frame = _partitioned(c, frame, cfg, len(threads))
        if validation is not None:
            validation = _validation_partitioned(c, validation, len(threads))
        if info is None:
            info = placement.compute_data_info(c, frame, columns.features, cfg.params, family, columns.response,
                                               cfg.distribution)
        cfg, layout, state = network or _network(cfg, family, info, start_state)
        cfg = memory.preflight(c, info, layout, cfg, n_parts=frame.npartitions,  # replication off / out of core
                               kernel_to_load=late_warm_up)
        data = placement.place_training_data(c, frame, info, validation, cfg, placement.seed_for(cfg))
        runner = loop.IterationLoop(c, cfg, info, layout, kernel_settings.settings_from_config(cfg), data, threads,
                                    pipeline_max_round_s=pipeline_max_round_s,
                                    on_scored=_exporter(cfg, layout, info, data), observer=observer)
        failed = True
        try:
            if late_warm_up:  # inside the try: a refusal here releases the placed data
                placement.warm_workers(c, cfg.mini_batch)  # the workers wait on the compile's lock, then load
                memory.check_workers(c)
            result = runner.run(state, resume)
            failed = False
        except ModelDivergedError as err:
            err.last_good_model = DeepLearningModel(layout, err.last_good_state, info, _kept(cfg.params), cfg.kind,
                                                    cfg.distribution, cfg.loss, err.history_rows)
            raise
        finally:
            runner.drop_worker_state()
            runner.release()  # a failed or interrupted fit's traceback must not keep its data on the cluster
            if failed:  # futures in the exception's reference cycles would keep this fit's tasks on the cluster
                gc.collect()
    return DeepLearningModel(layout, result.state, info, _kept(cfg.params), cfg.kind, cfg.distribution, cfg.loss,
                             result.history, threshold=result.threshold, run=_run_record(result, data, cfg),
                             metrics_stats=result.metrics_stats)


@contextlib.contextmanager
def _locals_dropped_on_error():
    """A failed fit leaves no task on the cluster: the set-up's futures live in the locals of the
    traceback's frames, which a kept exception (Jupyter keeps the last one) would hold. The frames
    keep their file and line for the traceback; a post-mortem debugger sees no locals below here."""
    try:
        yield
    except BaseException as err:
        for each in exception_chain(err):
            traceback.clear_frames(each.__traceback__)
        raise


def _network_before_cluster(cfg: P.TrainingConfig, family: str, info, start_state, checkpoint) -> tuple:
    """(network or None, info, resume): what can be settled before any cluster work. A
    checkpoint's encoding (the inputs its weights were trained on), state and progress; for
    in-memory data the network and its start (``initial_weights``' shapes)."""
    if checkpoint is not None:
        info = checkpoint.info
        network = _network(cfg, family, info, None)
        start_state, resume = checkpoints.start(checkpoint, network[1])
        return (network[0], network[1], start_state), info, resume
    return (_network(cfg, family, info, start_state) if info is not None else None), info, None


def _warm_and_check_workers(client, cfg: P.TrainingConfig) -> bool:
    """Warm the workers (``placement.warm_workers``), then refuse paused or too small ones before any
    data task (``memory.check_workers``). The first fit after an install, whose kernel the client's
    background compile (``nn.precompile``) is still making, warms them after placing its data
    instead: it waits until only the compile's last stage runs, on one core, and returns True."""
    late = cfg.per_sample and precompile.under_way()
    if late and not cfg.params["quiet_mode"]:
        logger.info("dask_dl: the training kernel is compiling (the first fit after an install, once per machine); "
                    "the data is placed meanwhile")
    if not late:
        placement.warm_workers(client, cfg.mini_batch)
    memory.check_workers(client)
    if late:
        precompile.wait_for_callees()
    return late


def _exporter(cfg: P.TrainingConfig, layout: NetworkLayout, info: DataInfo, data):
    """export_checkpoints_dir: a function that writes the model so far after each scoring round,
    <dir>/<fit id>_<iteration>.npz (None without the parameter)."""
    folder = cfg.params.get("export_checkpoints_dir")
    if not folder:
        return None
    import uuid
    fit_id = f"dask_dl_{uuid.uuid4().hex[:8]}"

    def export(result: loop.FitResult) -> None:
        model = DeepLearningModel(layout, result.state.copy(), info, _kept(cfg.params), cfg.kind, cfg.distribution,
                                  cfg.loss, result.history, threshold=result.threshold,
                                  run=_run_record(result, data, cfg), metrics_stats=result.metrics_stats)
        url = f"{folder.rstrip('/')}/{fit_id}_{result.iterations:05d}.npz"
        model.save(url)
        logger.debug("dask_dl: checkpoint written to %s", url)
    return export


# fits that train at once on one cluster (from threads of this process: grids, cross-validation)
MAX_CONCURRENT_FITS = 4
_SLOTS: dict = {}
_SLOTS_LOCK = threading.Lock()


@contextlib.contextmanager
def _training_slot(client, quiet: bool = False):
    """One of MAX_CONCURRENT_FITS slots of the client's scheduler; a fit that waits for one says so."""
    with _SLOTS_LOCK:
        slots = _SLOTS.setdefault(client.scheduler.address, threading.BoundedSemaphore(MAX_CONCURRENT_FITS))
    if not slots.acquire(blocking=False):
        if not quiet:
            logger.info("dask_dl: %d fits are training on this cluster; waiting for one to finish",
                        MAX_CONCURRENT_FITS)
        slots.acquire()
    try:
        yield
    finally:
        slots.release()


def _validation_partitioned(client, frame, n_workers: int):
    """The validation frame in at least one partition per worker: each worker scores its share of
    it at every scoring round (the round waits for the slowest)."""
    if not _is_dask(frame):
        return InMemoryFrame(frame, n_workers)
    return _dask_partitioned(client, frame, max(frame.npartitions, n_workers))


def _partitioned(client, frame, cfg: P.TrainingConfig, n_workers: int):
    """The training frame in one partition when reproducible (H2O: one chunk, one thread, a fixed
    order), else at least one partition per worker with force_load_balance; a frame the client
    holds (pandas, or ``dd.from_pandas`` of it) as partitions that travel inside the encoding
    tasks (``InMemoryFrame``)."""
    if not _is_dask(frame):
        return InMemoryFrame(frame, 1 if cfg.one_partition else n_workers)
    if cfg.one_partition:
        return _dask_partitioned(client, frame, 1)
    if cfg.params["force_load_balance"]:
        return _dask_partitioned(client, frame, max(frame.npartitions, n_workers))
    return _dask_partitioned(client, frame, frame.npartitions)


def _dask_partitioned(client, frame, n_parts: int):
    """A dask frame in ``n_parts`` partitions: the client's own rows re-cut where it holds them
    (``dd.from_pandas``), else repartitioned if need be and persisted when built on persisted data."""
    held = InMemoryFrame.of_dask(frame, n_parts)
    if held is not None:
        return held
    if frame.npartitions != n_parts:
        frame = frame.repartition(npartitions=n_parts)
    return persist_if_in_memory(client, frame)


def _network(cfg: P.TrainingConfig, family: str, info: DataInfo, start_state) -> tuple:
    """(the config resolved for the response's classes, the network's layout, its start state)."""
    cfg = _for_classes(cfg, family, len(info.classes))
    layout = _layout(cfg, info)
    state = _start_state(layout, cfg, start_state)
    pretrained = cfg.params.get("pretrained_autoencoder")
    if pretrained is not None and start_state is None:
        _pretrain(layout, state, info, getattr(pretrained, "model_", pretrained))
    return cfg, layout, state


def _pretrain(layout: NetworkLayout, state: np.ndarray, info: DataInfo, ae) -> None:
    """pretrained_autoencoder (H2O §12.4): the hidden layers' weights and biases come from the
    autoencoder's, which must read the same inputs and begin with the same hidden sizes; the
    output layer keeps its fresh draw."""
    if ae.info.coef_names() != info.coef_names():
        raise ValueError(f"pretrained_autoencoder was trained on other inputs ({ae.info.n_inputs}: "
                         f"{ae.info.coef_names()[:5]}...) than this network's ({info.n_inputs}: "
                         f"{info.coef_names()[:5]}...); train it on the same columns")
    hidden = layout.units[:-1]
    if tuple(ae.layout.units[:len(hidden)]) != tuple(hidden) or ae.layout.n_layers < len(hidden):
        raise ValueError(f"pretrained_autoencoder has layers {list(ae.layout.units)}; this network's input and "
                         f"hidden layers {list(hidden)} must be its first ones")
    for l in range(1, len(hidden)):
        layout.weight_matrix(state, l)[:] = ae.weights(l)
        layout.bias_vector(state, l)[:] = ae.biases(l)


def _for_classes(cfg: P.TrainingConfig, family: str, n_classes: int) -> P.TrainingConfig:
    """The config re-resolved for the response's class count (binomial or multinomial), with the
    seed already drawn."""
    if family != "classification":
        return cfg
    resolved = P.resolve(cfg.params, family, n_classes=n_classes)
    return dataclasses.replace(resolved, seed=cfg.seed)


def _layout(cfg: P.TrainingConfig, info) -> NetworkLayout:
    classifier = cfg.kind in ("binomial", "multinomial")
    n_out = len(info.classes) if classifier else info.n_inputs if cfg.kind == "autoencoder" else 1
    return build_layout(info.n_inputs, cfg.hidden, cfg.hidden_activation, n_out, classifier,
                        cfg.params["input_dropout_ratio"], cfg.hidden_dropout,
                        input_major=cfg.input_major_first_layer, autoencoder=cfg.kind == "autoencoder")


def _start_state(layout: NetworkLayout, cfg: P.TrainingConfig, given: np.ndarray | None) -> np.ndarray:
    """A fresh state drawn as H2O does (with the user's initial_weights / initial_biases), or a
    copy of ``given`` once its size is checked."""
    if given is None:
        state = initial_state(layout, cfg.seed, cfg.params["initial_weight_distribution"],
                              cfg.params["initial_weight_scale"])
        set_initial_values(layout, state, cfg.params["initial_weights"], cfg.params["initial_biases"])
        return state
    given = np.asarray(given, dtype=np.float32)
    if given.shape != (layout.state_size,):
        raise ValueError(f"start_state has shape {given.shape}; this network's state has {layout.state_size} "
                         f"values (units {list(layout.units)})")
    return given.copy()


def _kept(params: dict) -> dict:
    """The parameters as the model keeps them (and saves them): for initial_weights /
    initial_biases the shapes that were given, None for a layer left to its default."""
    kept = dict(params)
    kept["callbacks"] = None  # functions: not model data, never saved
    if kept.get("checkpoint") is not None and not isinstance(kept["checkpoint"], str):
        ckpt = getattr(kept["checkpoint"], "model_", kept["checkpoint"])  # the model it continued, described
        kept["checkpoint"] = f"{ckpt.kind} model {list(ckpt.layout.units)} at {ckpt.run.get('epochs', 0):.4g} epochs"
    for name in ("initial_weights", "initial_biases"):
        if kept.get(name) is not None:
            kept[name] = [None if a is None else list(np.shape(a)) for a in kept[name]]
    if kept.get("pretrained_autoencoder") is not None:  # the model it started from, described
        ae = getattr(kept["pretrained_autoencoder"], "model_", kept["pretrained_autoencoder"])
        kept["pretrained_autoencoder"] = f"autoencoder {list(ae.layout.units)}"
    return kept


def _run_record(result: loop.FitResult, data, cfg: P.TrainingConfig) -> dict:
    """What the run did, kept on the model (``model.run``)."""
    return {"iterations": result.iterations, "samples": result.samples, "epochs": result.epochs,
            "stop_reason": result.stop_reason, "run_seconds": result.run_seconds,
            "train_samples_per_iteration": result.train_samples_per_iteration, "workers": result.workers,
            "out_of_core": data.streaming, "replicated_training_data": data.replicated, **result.timings,
            "seed": cfg.seed}
