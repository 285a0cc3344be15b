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


@contextlib.contextmanager
def cluster_client(client=None):
    """Yield a Client: the one given, the active one, or an embedded LocalCluster sized to this machine:
    up to 4 worker processes sharing the cores as HOGWILD! threads. Per-sample HOGWILD! threads that
    share one model copy fight over its cache lines (2 threads on 2 cores: 1.03x one thread; two
    copies averaged by the reduction: 1.7x, benchmarks/README.md), so small machines get a worker
    per core; larger ones keep a few fat workers so the averaging stays cheap."""
    if client is None:
        client = active_client()
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster
    n = os.cpu_count() or 1
    workers = min(n, 4)
    threads = max(1, n // workers)
    logger.info("dask_dl: no Dask client in scope; starting an embedded LocalCluster (%d worker(s) x %d "
                "thread(s))", workers, threads)
    with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                      dashboard_address=":0") as cluster, \
            Client(cluster) as embedded:
        yield embedded


def worker_threads(client) -> dict:
    """{worker address: threads} of the workers currently alive."""
    return {addr: int(n) for addr, n in client.nthreads().items()}
