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
    """Yield a Client: the one given, the active one, or an embedded LocalCluster sized to this machine
    (one worker process with a thread per core: HOGWILD! shares one model copy per worker)."""
    if client is None:
        client = active_client()
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster
    n = os.cpu_count() or 1
    logger.info("dask_dl: no Dask client in scope; starting an embedded LocalCluster (1 worker x %d threads)", n)
    with LocalCluster(n_workers=1, threads_per_worker=n, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as embedded:
        yield embedded


def worker_threads(client) -> dict:
    """{worker address: threads} of the workers currently alive."""
    return {addr: int(n) for addr, n in client.nthreads().items()}
