"""Find the user's Dask client, or start (and later close) the embedded LocalCluster."""
from __future__ import annotations

import contextlib
import logging
import os

logger = logging.getLogger("dask_dl")


def active_client():
    """The Client in scope (``distributed.get_client``), or None."""
    try:
        from distributed import get_client
        return get_client()
    except ValueError:
        return None


def embedded_shape(n_cores: int, mini_batch: bool = False, thread_copies: bool = False) -> tuple[int, int]:
    """(worker processes, threads per worker) of the embedded LocalCluster on ``n_cores`` cores.

    Per sample: a worker per core, up to 4: HOGWILD! threads sharing one copy fight over its cache
    lines, while copies averaged by the reduction scale. Mini-batches (threads update their shared
    copy once per batch) and per-sample ``thread_copies`` (each thread its own copy, averaged in
    memory) get fat workers, one per 8 cores: every averaging of workers' copies costs progress per
    epoch. The measurements behind these shapes are in benchmarks/README.md."""
    n = max(1, int(n_cores))
    workers = max(1, n // 8) if (mini_batch or thread_copies) else min(n, 4)
    return workers, max(1, n // workers)


# Dask settings of the LocalClusters dask_dl starts: no statistical profiler, which wakes every 10
# ms to walk the task threads' stacks and takes CPU time from training (benchmarks/README.md).
# Users' own clusters keep their settings; the README says how to turn it off there.
LOCAL_CLUSTER_CONFIG = {"distributed.worker.profile.enabled": False}


@contextlib.contextmanager
def local_client(n_workers: int, threads_per_worker: int, **cluster_kwargs):
    """Yield a Client of a new LocalCluster of worker processes with ``LOCAL_CLUSTER_CONFIG`` (the
    embedded cluster; the benchmarks start theirs here too, so they measure what users get); both
    are closed on exit. The settings must be in place when the cluster starts: the nannies hand
    them to the worker processes then."""
    import dask
    from distributed import Client, LocalCluster
    cluster_kwargs.setdefault("dashboard_address", ":0")
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                               **cluster_kwargs)
    with cluster, Client(cluster) as client:
        yield client


@contextlib.contextmanager
def cluster_client(client=None, mini_batch: bool = False, thread_copies: bool = False, quiet: bool = False):
    """Yield a Client: the one given, the active one, or an embedded LocalCluster sized to this
    machine and kernel (``embedded_shape``), closed again on exit."""
    if client is None:
        client = active_client()
    if client is not None:
        yield client
        return
    workers, threads = embedded_shape(os.cpu_count() or 1, mini_batch, thread_copies)
    if not quiet:
        logger.info("dask_dl: no Dask client in scope; starting an embedded LocalCluster (%d worker(s) x %d "
                    "thread(s))", workers, threads)
    with local_client(workers, threads) as embedded:
        yield embedded


def worker_threads(client) -> dict:
    """{worker address: threads} of the workers currently alive."""
    return {addr: int(n) for addr, n in client.nthreads().items()}
