"""Scaling across workers: samples/s and test error after a fixed number of epochs, MNIST default network.

    python benchmarks/bench_scaling.py [--workers 1 2 4 8] [--threads 1] [--epochs 1]
    python benchmarks/bench_scaling.py --workers 1 2 --rows 4000 --test-rows 1000 --hidden 16   # smoke

For each worker count: a LocalCluster of that many worker processes with --threads threads each,
the same rows (shuffled, so shards are IID), the same seed; training speed as H2O defines it
(samples / training time, excluding scoring and set-up) and test error on the MNIST test set.
Parallel efficiency = speed(k workers) / (k * speed(1 worker)).
"""
from __future__ import annotations

import argparse
import os
import time

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--threads", type=int, default=1, help="threads per worker")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--test-rows", type=int, default=None)
    args = ap.parse_args(argv)

    import dask.dataframe as dd

    import dask_dl
    from dask_dl.cluster.session import local_client
    tr = pd.read_parquet(os.path.join(DATA, "mnist", "train.parquet")).sample(frac=1.0, random_state=0)
    tr = tr.iloc[:args.rows]
    te = pd.read_parquet(os.path.join(DATA, "mnist", "test.parquet")).iloc[:args.test_rows]
    rows = []
    for k in args.workers:
        with local_client(k, args.threads, dashboard_address=None) as client:
            clf = dask_dl.DeepLearningClassifier(hidden=args.hidden, epochs=args.epochs, seed=args.seed,
                                                 quiet_mode=True, client=client)
            t0 = time.perf_counter()
            clf.fit(dd.from_pandas(tr, npartitions=max(k, 2)), "C785", validation_data=te)
            wall = time.perf_counter() - t0
        hist = clf.model_.scoring_history()
        run = clf.model_.run
        rows.append({"workers": k, "trained_on": run["workers"], "threads_per_worker": args.threads,
                     "training_speed": float(str(hist["training_speed"].iloc[-1]).split()[0]),
                     "fit_seconds": wall, "iterations": run["iterations"],
                     "samples_per_iteration": run["train_samples_per_iteration"],
                     "test_error": float(hist["validation_classification_error"].iloc[-1])})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    base = table.loc[table.workers == table.workers.min()].iloc[0]
    table["efficiency"] = table.training_speed / (table.workers / base.workers * base.training_speed)
    with pd.option_context("display.width", 140):
        print(f"\n{os.cpu_count()} cores on this machine\n" + table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
