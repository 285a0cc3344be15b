"""Elastic averaging vs plain model averaging on MNIST: test error per epoch, same epochs and seeds.

    python benchmarks/bench_elastic.py [--workers 4] [--epochs 3] [--per-epoch 4] [--seeds 1]
    python benchmarks/bench_elastic.py --rows 4000 --test-rows 1000 --hidden 16 --epochs 1   # smoke

A LocalCluster of --workers single-threaded worker processes; the default 784-200-200-10 network;
--per-epoch iterations (averaging rounds) per epoch; every iteration is scored on the test set, so
the scoring history gives the test error after each averaging round.
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
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--per-epoch", type=int, default=4, help="averaging rounds per epoch")
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--test-rows", type=int, default=None)
    args = ap.parse_args(argv)

    import dask.dataframe as dd

    import dask_dl
    from dask_dl.cluster.session import local_client
    tr = pd.read_parquet(os.path.join(DATA, "mnist", "train.parquet"))
    te = pd.read_parquet(os.path.join(DATA, "mnist", "test.parquet"))
    tr = tr.sample(frac=1.0, random_state=0).iloc[:args.rows]  # IID shards per worker
    te = te.iloc[:args.test_rows]
    rows = []
    with local_client(args.workers, 1, dashboard_address=None) as client:
        train = dd.from_pandas(tr, npartitions=args.workers)
        for seed in args.seeds:
            for elastic in (False, True):
                clf = dask_dl.DeepLearningClassifier(
                    hidden=args.hidden, epochs=args.epochs, seed=seed, quiet_mode=True, client=client,
                    elastic_averaging=elastic, score_each_iteration=True, stopping_rounds=0,
                    overwrite_with_best_model=False,
                    train_samples_per_iteration=max(1, len(tr) // args.per_epoch))
                t0 = time.perf_counter()
                clf.fit(train, "C785", validation_data=te)
                wall = time.perf_counter() - t0
                hist = clf.model_.scoring_history().iloc[1:]
                for _, h in hist.iterrows():
                    rows.append({"seed": seed, "averaging": "elastic" if elastic else "plain",
                                 "epochs": round(h["epochs"], 3), "test_error": h["validation_classification_error"],
                                 "test_logloss": h["validation_logloss"]})
                print(f"seed {seed} {'elastic' if elastic else 'plain'}: {wall:.1f} s, final test error "
                      f"{hist['validation_classification_error'].iloc[-1]:.4f}", flush=True)
    table = pd.DataFrame(rows)
    pivot = table.pivot_table(index="epochs", columns="averaging", values="test_error", aggfunc="mean")
    with pd.option_context("display.width", 120):
        print(f"\nMNIST test error per averaging round, {args.workers} workers x 1 thread, "
              f"mean over seeds {args.seeds}:\n" + pivot.to_string())
    return table


if __name__ == "__main__":
    main()
