"""model_performance on a frame far larger than what reaches the client: the rows are generated on
the workers, each partition is reduced to sufficient statistics where it lies, and only those cross
(issue 18: a 10-million-row validation frame with less than 10 MB crossing to the client).

    python benchmarks/bench_performance.py [--rows 10000000] [--partitions 40] [--workers 2]

Measured: the loopback interface's bytes during model_performance (every byte between the client,
the scheduler and the workers on this machine: an upper bound on what reaches the client), the
merged statistics' size, and the time.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

FEATURES = 10


def _partition(i: int, rows: int) -> pd.DataFrame:
    """Synthetic binary data, generated on the worker: y depends on the first two features."""
    rng = np.random.default_rng(i)
    X = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    logit = 2.0 * X[:, 0] - 1.5 * X[:, 1] + rng.normal(scale=0.5, size=rows)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(FEATURES)])
    df["y"] = np.where(logit > 0, "yes", "no")
    return df


def _loopback_bytes() -> int:
    import psutil
    lo = psutil.net_io_counters(pernic=True).get("lo")
    return int(lo.bytes_recv) if lo else -1


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--partitions", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    import dask
    import dask.dataframe as dd

    import dask_dl
    from dask_dl.cluster.session import local_client
    per = args.rows // args.partitions
    meta = _partition(0, 1).iloc[:0]
    with local_client(args.workers, 1) as client:
        big = dd.from_delayed([dask.delayed(_partition)(i, per) for i in range(args.partitions)], meta=meta)
        clf = dask_dl.DeepLearningClassifier(hidden=[16], epochs=2, seed=1, quiet_mode=True, client=client)
        clf.fit(_partition(10_000, 20_000), "y")
        before, t0 = _loopback_bytes(), time.perf_counter()
        perf = clf.model_performance(big)
        seconds, moved = time.perf_counter() - t0, _loopback_bytes() - before
    out = {"rows": int(perf["nobs"]), "seconds": round(seconds, 1), "loopback_mb": round(moved / 2**20, 2),
           "auc": round(perf["auc"], 5), "logloss": round(perf["logloss"], 5),
           "classification_error": round(perf["classification_error"], 5)}
    print(out)
    return out


if __name__ == "__main__":
    main()
