"""replicate_training_data: every worker holds a copy of every encoded block (H2O: every node)."""
from __future__ import annotations

import logging

from ..errors import ClusterUnavailableError
from ..task_names import task_key
from .memory import encoded_bytes, memory_limits
from .watch import SetupStallWatch, TasksStalled, WorkersUnavailable, wait_for

logger = logging.getLogger("dask_dl")


def wants_replication(client, info, cfg, n_workers: int) -> bool:
    """replicate_training_data, with 2+ workers and no single worker training on everything, when
    the encoded data fits in half of the smallest worker's memory limit (workers without one: this
    machine's memory split between them). H2O refuses above 90% of a node's free memory; dask_dl
    keeps the partitioned layout instead and says so."""
    if not cfg.params["replicate_training_data"] or n_workers < 2 or cfg.single_worker:
        return False
    limits = [m for m in memory_limits(client) if m > 0]
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


def replica(block):
    """The block itself, held on this worker under a key of its own (runs on the worker)."""
    return block


def submit_replicas(client, futures: list, workers: list, holders: dict | None = None) -> dict:
    """{worker: [blocks in one global order]}: each block a worker lacks fetched into a task of its
    own there (a distinct key, so the Active Memory Manager does not undo the copies as it would
    ``client.replicate``'s). ``holders``: {block key: the worker computing it}, for blocks not yet
    computed (each copy then follows as its block is done); else where the blocks are now."""
    who = {k: (w,) for k, w in holders.items()} if holders else client.who_has(futures)
    return {w: [f if w in (who.get(f.key) or ()) else
                client.submit(replica, f, workers=[w], allow_other_workers=False, key=task_key("replicate"))
                for f in futures] for w in workers}


def replicate_blocks(client, futures: list, workers: list, quiet: bool = False, submitted: dict | None = None) -> dict:
    """Give every worker a copy of every block (``submit_replicas``; ``submitted``: copies already
    asked for) and wait for them. Returns {worker: [blocks in one global order]}. A worker lost or
    paused meanwhile is left out (its copies are pinned to it and could never be made elsewhere)."""
    workers = list(workers)
    while workers:
        out = submitted or submit_replicas(client, futures, workers)
        submitted = None  # a retry looks where the blocks are
        copies = [f for fs in out.values() for f in fs]
        try:
            wait_for(client, copies, workers=workers, what="replicating the training data", quiet=quiet,
                     stalls=SetupStallWatch([f.key for f in copies]))
            return out
        except (WorkersUnavailable, TasksStalled) as gone:
            # the message, not the exception: a kept log record would keep its traceback's futures
            logger.warning("dask_dl: replicate_training_data: %s; the others hold the copies", str(gone))
            workers = [w for w in workers if w not in gone.workers]
    raise ClusterUnavailableError("replicate_training_data: no worker is left to hold the training data")
