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

    Per sample: up to 4 workers sharing the cores as HOGWILD! threads. Per-sample threads that
    share one model copy fight over its cache lines (2 threads on 2 cores: 1.03x one thread; two
    copies averaged by the reduction: 1.7x, benchmarks/README.md), so small machines get a worker
    per core; larger ones keep a few fat workers so the averaging stays cheap.

    Mini-batches (``mini_batch_size`` > 1): threads update their shared copy once per batch, so they
    do not fight the same way, while every averaging of several workers' copies costs progress per
    epoch (MNIST, Adam, 2 cores: 2 workers x 1 thread needed ~11 epochs to 2.5% test error, 1
    worker x 2 threads 5-6). One worker per 8 cores. Per sample with ``thread_copies``
    (thread_local_models): the threads write their own copies, which the worker averages in
    memory, so fat workers too (MNIST, 2 cores: 1 worker x 2 threads 26.3-27.0k samples/s, 2
    workers x 1 thread 23.1-23.4k)."""
    n = max(1, int(n_cores))
    workers = max(1, n // 8) if (mini_batch or thread_copies) else min(n, 4)
    return workers, max(1, n // workers)


# Dask settings of the LocalClusters dask_dl starts. Each worker's statistical profiler (for the
# dashboard's profile page) wakes every 10 ms to walk the stacks of the threads running tasks: CPU
# time taken from the training threads on every core. Off, the same MNIST per-sample fit on two
# workers trained 4-15% faster (benchmarks/README.md, 2026-12-04 afternoon). Users' own clusters
# keep their settings; the README says how to turn it off there.
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
def cluster_client(client=None, mini_batch: bool = False, thread_copies: bool = False):
    """Yield a Client: the one given, the active one, or an embedded LocalCluster sized to this
    machine and kernel (``embedded_shape``), closed again on exit."""
    if client is None:
        client = active_client()
    if client is not None:
        yield client
        return
    workers, threads = embedded_shape(os.cpu_count() or 1, mini_batch, thread_copies)
    logger.info("dask_dl: no Dask client in scope; starting an embedded LocalCluster (%d worker(s) x %d "
                "thread(s))", workers, threads)
    with local_client(workers, threads) as embedded:
        yield embedded


def worker_threads(client) -> dict:
    """{worker address: threads} of the workers currently alive."""
    return {addr: int(n) for addr, n in client.nthreads().items()}
