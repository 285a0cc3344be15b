"""The workers' memory: their limits, the encoded data's size, and the pre-flight that fits a fit to them.

Dask pauses a worker whose process memory reaches ``distributed.worker.memory.pause`` (0.8) of its
memory_limit, and a paused worker runs no task until its memory drops — which it never does when the
memory is unmanaged (imports, compiled kernels: Dask cannot spill them) or needed by the next task
(a round's blocks: spilled and read back every round). So before any data task, ``check_workers`` refuses workers that are
paused or too small to hold a warmed-up worker (the imports and kernels of ``tasks.warm_up``), and
after the statistics pass ``preflight`` estimates what each worker will hold — its measured
footprint, the model copies, its encoded blocks (all of them when replicated), the scoring samples
— and keeps the placement, turns replication off, trains out of core, or refuses, naming the numbers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import logging
import math

from .watch import worker_states

logger = logging.getLogger("dask_dl")

MiB = 2 ** 20
# room a worker needs beyond its footprint for any set-up task (a partition and its encoding pass
# through it): a worker with less is refused before the statistics pass
MIN_HEADROOM = 16 * MiB
# model copies a worker holds in a round besides its thread copies: the centre it received, the
# averaged copy the reduction tree leaves there, and the next round's centre (pipelining)
ROUND_COPIES = 3
# out of core, a worker holds two partitions in flight (the one it trains on and the one its reader
# prefetches), each as read (pyarrow), as a pandas frame and encoded: about six encoded partitions
STREAM_PARTITIONS = 6
# what loading the per-sample kernel from numba's cache adds to a worker (measured: +53 MiB); the
# first fit after an install places its data before its workers have loaded it (job.train)
KERNEL_FOOTPRINT = 64 * MiB


class WorkerMemoryError(MemoryError):
    """A fit that would not fit in the workers' memory (or workers already paused for memory): the
    message names each figure and what to change."""


def memory_limits(client) -> list:
    """Every worker's memory limit in bytes (0 where a worker has none)."""
    return [w.get("memory_limit") or 0 for w in worker_states(client).values()]


def encoded_bytes(info) -> int:
    """Size of the encoded float32 training data (inputs + response)."""
    return int(info.n_train_rows * (info.n_inputs + 1) * 4)


@dataclass(frozen=True)
class WorkerMemory:
    """One worker's memory as measured on it (``worker_memory``)."""
    address: str
    rss: int          # resident bytes now: the warmed-up process and what it holds
    limit: int        # memory_limit in bytes (0: none)
    pause: float      # the fraction of ``limit`` at which Dask pauses it
    paused: bool
    threads: int

    @property
    def usable(self) -> int:
        """Bytes the process may reach before Dask pauses it (0: no limit)."""
        return int(self.limit * self.pause) if self.limit else 0


def worker_memory(dask_worker=None) -> dict:
    """Runs on a worker (``client.run``): its resident memory, limit, pause fraction and status."""
    import psutil
    mm = dask_worker.memory_manager
    pause = mm.memory_pause_fraction or mm.memory_terminate_fraction or 1.0
    return {"rss": int(psutil.Process().memory_info().rss), "limit": int(mm.memory_limit or 0),
            "pause": float(pause), "paused": getattr(dask_worker.status, "name", "") == "paused",
            "threads": int(dask_worker.state.nthreads)}


def survey(client) -> list:
    """[WorkerMemory] of every worker, by address."""
    return [WorkerMemory(address=a, **m) for a, m in sorted(client.run(worker_memory).items())]


def _mib(n: float) -> str:
    return f"{n / MiB:.0f} MiB"


def _limit_text(w: WorkerMemory) -> str:
    return f"Dask pauses it at {_mib(w.usable)} ({w.pause:.0%} of its {_mib(w.limit)} memory_limit)"


def check_workers(client) -> list:
    """Before any data task: refuse (WorkerMemoryError) when a worker is paused for memory, or its
    warmed-up footprint plus MIN_HEADROOM reaches the point where Dask pauses it. Returns the survey."""
    workers = survey(client)
    for w in workers:
        at_least = math.ceil((w.rss + MIN_HEADROOM) / w.pause / MiB)
        if w.paused:
            raise WorkerMemoryError(
                f"dask_dl: worker {w.address} is paused for memory: it uses {_mib(w.rss)} and {_limit_text(w)}; it "
                f"would run no task of this fit. Give each worker a memory_limit of at least {at_least} MiB (or free "
                f"what it holds).")
        if w.usable and w.rss + MIN_HEADROOM > w.usable:
            raise WorkerMemoryError(
                f"dask_dl: worker {w.address} uses {_mib(w.rss)} once it has loaded the training kernels, and "
                f"{_limit_text(w)}, leaving under {_mib(MIN_HEADROOM)} for data: give each worker a "
                f"memory_limit of at least {at_least} MiB (every fit needs its footprint plus the data it holds).")
    return workers


@dataclass(frozen=True)
class Estimate:
    """Bytes one worker would hold on top of its measured footprint, per way of placing the data."""
    model: int         # model copies (thread copies, the round's copies, elastic's local model)
    partitioned: int   # its share of the encoded blocks (+ one block being encoded)
    replicated: int    # every encoded block
    streamed: int      # out of core: the partitions in flight (STREAM_PARTITIONS)
    scoring: int       # its share of the training-scoring sample and the encoded validation rows


def estimate(info, layout, cfg, n_workers: int, threads: int, n_parts: int = 1, valid_rows: int = 0) -> Estimate:
    """What each of ``n_workers`` workers (``threads`` threads each) would hold for this fit, with
    the data in ``n_parts`` partitions (``valid_rows`` validation rows)."""
    row = (info.n_inputs + 1) * 4
    data = encoded_bytes(info)
    n_parts = max(1, int(n_parts))
    holders = 1 if cfg.single_worker else max(1, min(int(n_workers), n_parts))
    block = math.ceil(data / n_parts)
    share = math.ceil(n_parts / holders) * block
    copies = (max(1, int(cfg.task_threads or threads)) if cfg.thread_copies else 1) + ROUND_COPIES + 2 * cfg.elastic
    sampled = int(cfg.params["score_training_samples"]) or info.n_train_rows
    scoring = (min(sampled, info.n_train_rows) + int(valid_rows)) * row // holders
    return Estimate(model=copies * layout.state_size * 4, partitioned=share + block, replicated=data + block,
                    streamed=STREAM_PARTITIONS * block, scoring=scoring)


def preflight(client, info, layout, cfg, *, n_parts: int = 1, valid_rows: int = 0, workers: list | None = None,
              kernel_to_load: bool = False):
    """Before the data is placed: estimate each worker's memory for this fit against the point where
    Dask pauses it, and return ``cfg`` as it is, or with ``replicate_training_data`` off or
    ``out_of_core`` on (the raw parameters ``wants_replication``/``wants_streaming`` read); raise
    WorkerMemoryError, naming the numbers, when no placement fits. Workers without a limit fit anything.
    ``kernel_to_load``: the workers load the kernel after the data (``KERNEL_FOOTPRINT`` more each)."""
    workers = survey(client) if workers is None else workers
    if kernel_to_load:
        workers = [dataclasses.replace(w, rss=w.rss + KERNEL_FOOTPRINT) for w in workers]
    limited = [w for w in workers if w.usable]
    if not limited:
        return cfg
    threads = max(w.threads for w in workers)
    est = estimate(info, layout, cfg, len(workers), threads, n_parts, valid_rows)
    change, why = choose(limited, est, cfg, len(workers))
    if not change:
        return cfg
    if not cfg.params["quiet_mode"]:
        logger.info("dask_dl: memory pre-flight: %s", why)
    return dataclasses.replace(cfg, params={**cfg.params, **change})


def _tightest(workers: list, need: int) -> WorkerMemory:
    """The worker with the least room left after ``need`` more bytes."""
    return min(workers, key=lambda w: w.usable - w.rss - need)


def _fits(workers: list, need: int) -> bool:
    return all(w.rss + need <= w.usable for w in workers)


def choose(workers: list, est: Estimate, cfg, n_workers: int) -> tuple:
    """({raw parameter: new value}, the reason in words) for workers with limits; ({}, "") keeps
    ``cfg``. Raises WorkerMemoryError when no placement fits."""
    p = cfg.params
    fixed = est.model + est.scoring
    can_stream = not cfg.single_worker
    if p["out_of_core"] is True and can_stream:
        if _fits(workers, fixed + est.streamed):
            return {}, ""
        _refuse(workers, fixed, est.streamed, est, "out of core (out_of_core=True)", cfg)
    replicate = bool(p["replicate_training_data"]) and n_workers >= 2 and not cfg.single_worker
    if replicate and _fits(workers, fixed + est.replicated):
        return {}, ""
    if _fits(workers, fixed + est.partitioned):
        if not replicate:
            return {}, ""
        w = _tightest(workers, fixed + est.replicated)
        return {"replicate_training_data": False}, (
            f"replicate_training_data off: a copy of all the encoded data ({_mib(est.replicated)}) with worker "
            f"{w.address}'s {_mib(w.rss)} footprint and {_mib(fixed)} of model copies and scoring samples exceeds "
            f"{_mib(w.usable)}, where Dask pauses it; every worker trains on its own partitions")
    if p["out_of_core"] == "auto" and can_stream and _fits(workers, fixed + est.streamed):
        w = _tightest(workers, fixed + est.partitioned)
        return {"out_of_core": True, "replicate_training_data": False}, (
            f"out of core: worker {w.address} would hold {_mib(w.rss + fixed + est.partitioned)} with its share "
            f"of the encoded data in memory, over the {_mib(w.usable)} where Dask pauses it; partitions are read "
            f"from storage each round instead")
    how = "in memory on one worker (reproducible or single_node_mode)" if cfg.single_worker else "in memory"
    _refuse(workers, fixed, est.partitioned, est, how, cfg)


def _refuse(workers: list, fixed: int, data: int, est: Estimate, how: str, cfg) -> None:
    """Raise WorkerMemoryError naming the tightest worker's figures and what to change."""
    w = _tightest(workers, fixed + data)
    need = w.rss + fixed + data
    advice = [f"a memory_limit of at least {math.ceil(need / w.pause / MiB)} MiB per worker"]
    if how.startswith("in memory") and not cfg.single_worker:
        advice.append("out_of_core=True (if each partition is small)" if est.streamed + fixed + w.rss <= w.usable
                      else "out_of_core=True with smaller partitions")
    elif how.startswith("out of core"):
        advice.append("smaller partitions")
    if est.model > data:
        advice.append("fewer threads per worker, thread_local_models=False or a smaller network")
    raise WorkerMemoryError(
        f"dask_dl: this fit does not fit in the workers' memory {how}: worker {w.address} would need "
        f"~{_mib(need)} ({_mib(w.rss)} footprint + {_mib(est.model)} model copies + {_mib(data)} encoded data + "
        f"{_mib(est.scoring)} scoring samples), but {_limit_text(w)}. Use " + ", or ".join(advice) + ".")
