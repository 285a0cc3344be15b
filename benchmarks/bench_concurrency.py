"""Concurrent fits (issue 20's acceptance): a 3-fold cross-validation of each of 4 grid models on a
2-worker LocalCluster, with the fits concurrent (dask_dl's default) and one at a time.

    python benchmarks/bench_concurrency.py [--rows 6000] [--epochs 2] [--workers 2]

16 fits either way (4 models x (3 folds + the main model)), covtype, hidden [32] or [64], l1 0 or
1e-5; wall time of GridSearch.fit and every model's cross-validated logloss.
"""
from __future__ import annotations

import argparse
import os
import time

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")


def run(train, rows: int, epochs: float, workers: int, concurrent: bool) -> dict:
    import dask_dl
    from dask_dl import crossval, grid, job
    from dask_dl.cluster.session import local_client
    limit = job.MAX_CONCURRENT_FITS if concurrent else 1
    saved = (job.MAX_CONCURRENT_FITS, crossval.MAX_CONCURRENT_FITS)
    job.MAX_CONCURRENT_FITS = crossval.MAX_CONCURRENT_FITS = limit  # a new cluster's slots take it
    try:
        with local_client(workers, 1, dashboard_address=None) as client:
            est = dask_dl.DeepLearningClassifier(epochs=epochs, nfolds=3, seed=1, quiet_mode=True, client=client)
            search = grid.GridSearch(est, {"hidden": [[32], [64]], "l1": [0.0, 1e-5]}, max_parallel=limit)
            t0 = time.perf_counter()
            search.fit(train.iloc[:rows], "Cover_Type")
            wall = time.perf_counter() - t0
    finally:
        job.MAX_CONCURRENT_FITS, crossval.MAX_CONCURRENT_FITS = saved
    cv = [m.model_.cross_validation_metrics()["logloss"] for m in search.models_]
    return {"mode": "concurrent" if concurrent else "one at a time", "models": len(search.models_),
            "fits": 4 * len(search.models_), "wall_s": round(wall, 1), "cv_logloss": [round(v, 4) for v in cv]}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    train = pd.read_parquet(os.path.join(DATA, "covtype", "covtype.parquet")).sample(frac=1.0, random_state=0)
    rows = [run(train, args.rows, args.epochs, args.workers, c) for c in (True, False)]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
