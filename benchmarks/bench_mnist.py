"""MNIST, H2O's default network (784-200-200-10 Rectifier, ADADELTA), 1 epoch on the full 60k rows,
validating on the 10k test set; with --vs-h2o the same job on real H2O-3 in the same run.

    python benchmarks/bench_mnist.py [--vs-h2o] [--workers 1] [--threads 2] [--epochs 1] [--seeds 1]
        [--params '{"sparse": true}']
    python benchmarks/bench_mnist.py --rows 3000 --test-rows 500 --hidden 16   # smoke size

Both systems get the same rows and the same cores (dask_dl: --workers worker processes with
--threads HOGWILD! threads each; H2O: nthreads = workers x threads) and the same --params (but for
dask_dl-only ones). Reported per system:
  training speed  samples / training time, as H2O defines it in its scoring history
                  (excludes scoring and set-up)
  fit wall time   the whole fit/train call (dask_dl: statistics pass, encoding, JIT warm-up,
                  training, scoring; H2O: model.train after the upload)
  test error      labels from predict() on the 10k test rows
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")


def load(rows: int | None, test_rows: int | None):
    tr = pd.read_parquet(os.path.join(DATA, "mnist", "train.parquet"))
    te = pd.read_parquet(os.path.join(DATA, "mnist", "test.parquet"))
    return (tr.iloc[:rows] if rows else tr), (te.iloc[:test_rows] if test_rows else te)


def run_dask_dl(tr, te, threads: int, epochs: float, hidden, seed: int, workers: int = 1,
                params: dict | None = None, warm_up: bool = False, dask_frames: bool = False, client=None) -> dict:
    """One timed fit on a fresh cluster of ``workers`` x ``threads`` (``client``: on that one's
    cluster instead, as a session's fits after its first)."""
    import contextlib

    import dask.dataframe as dd

    import dask_dl
    from dask_dl.cluster.session import local_client
    with (contextlib.nullcontext(client) if client is not None else local_client(workers, threads)) as client:
        clf = dask_dl.DeepLearningClassifier(hidden=hidden, epochs=epochs, seed=seed, quiet_mode=True, client=client,
                                             **(params or {}))
        if len(tr) == 60000 and len(te) == 10000:  # the full files: read on the workers, as users would
            train = dd.read_parquet(os.path.join(DATA, "mnist", "train.parquet"), split_row_groups=True)
            valid = dd.read_parquet(os.path.join(DATA, "mnist", "test.parquet"))
        elif dask_frames:  # rows in memory, wrapped in dask frames
            train = dd.from_pandas(tr, npartitions=max(1, len(tr) // 10000))
            valid = dd.from_pandas(te, npartitions=1)
        else:  # rows in memory, as pandas frames
            train, valid = tr, te
        if warm_up:  # an already-working cluster: the workers' kernels loaded by an untimed 200-row fit
            dask_dl.DeepLearningClassifier(hidden=[8], epochs=1, quiet_mode=True, client=client,
                                           **(params or {})).fit(tr.iloc[:200], "C785")
        t0 = time.perf_counter()
        clf.fit(train, "C785", validation_data=valid)
        wall = time.perf_counter() - t0
    hist = clf.model_.scoring_history()
    speed = float(str(hist["training_speed"].iloc[-1]).split()[0])
    pred = clf.predict(te.drop(columns=["C785"]))
    run = clf.model_.run
    return {"system": "dask_dl", "training_speed": speed, "fit_seconds": wall,
            "train_seconds": run["train"], "setup_seconds": wall - run["run_seconds"], "samples": run["samples"],
            "test_error": float(np.mean(pred != te["C785"].to_numpy())), "iterations": run["iterations"]}


# dask_dl parameters H2O does not have (or, for mini_batch_size, ignores: it always trains per sample)
NOT_H2O = ("out_of_core", "client", "mini_batch_size", "thread_local_models")


def run_h2o(tr, te, threads: int, epochs: float, hidden, seed: int, params: dict | None = None) -> dict:
    sys.path.insert(0, HERE)
    from h2o_reference import run_h2o_deeplearning
    same = {k: v for k, v in (params or {}).items() if k not in NOT_H2O}
    r = run_h2o_deeplearning(tr, te, "C785", classification=True, nthreads=threads, hidden=list(hidden),
                             epochs=epochs, activation="Rectifier", seed=seed, **same)
    return {"system": "H2O-3", "training_speed": r["h2o_training_speed"], "fit_seconds": r["train_seconds"],
            "train_seconds": float("nan"), "samples": r.get("samples", float("nan")),
            "test_error": r["test_error"], "iterations": float("nan")}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vs-h2o", action="store_true", help="also run real H2O-3 (pip install h2o; needs Java)")
    ap.add_argument("--threads", type=int, default=2, help="dask_dl: HOGWILD! threads per worker")
    ap.add_argument("--workers", type=int, default=1, help="dask_dl: worker processes (H2O gets workers x threads)")
    ap.add_argument("--params", default="{}", help='extra parameters as JSON, e.g. \'{"sparse": true}\' '
                    '(H2O gets them too, but for dask_dl-only ones)')
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--warm-up", action="store_true",
                    help="dask_dl: an untimed 200-row fit on the cluster first (its workers' kernels loaded)")
    ap.add_argument("--session", action="store_true",
                    help="dask_dl: every seed's fit on one cluster (started and warmed up once), as a notebook "
                         "session's fits; default: a fresh cluster per seed")
    ap.add_argument("--dask-frames", action="store_true",
                    help="dask_dl: a subset of rows (--rows/--test-rows) as dd.from_pandas frames instead of pandas")
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--rows", type=int, default=None, help="training rows (default: all 60k)")
    ap.add_argument("--test-rows", type=int, default=None)
    args = ap.parse_args(argv)
    tr, te = load(args.rows, args.test_rows)
    params = json.loads(args.params)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"train {len(tr)} rows, test {len(te)} rows, hidden {args.hidden}, epochs {args.epochs}, "
          f"dask_dl {args.workers} worker(s) x {args.threads} thread(s) {params or ''}", flush=True)
    results = []
    session = None
    if args.session:
        from dask_dl.cluster.session import local_client
        session = local_client(args.workers, args.threads)
        client = session.__enter__()
    for i, seed in enumerate(args.seeds):
        results.append({**run_dask_dl(tr, te, args.threads, args.epochs, args.hidden, seed, args.workers, params,
                                      warm_up=args.warm_up and not (session and i), dask_frames=args.dask_frames,
                                      client=client if session else None), "seed": seed})
        print(results[-1], flush=True)
        if args.vs_h2o:
            results.append({**run_h2o(tr, te, args.workers * args.threads, args.epochs, args.hidden, seed, params),
                            "seed": seed})
            print(results[-1], flush=True)
    if session:
        session.__exit__(None, None, None)
    table = pd.DataFrame(results)
    summary = table.groupby("system")[["training_speed", "fit_seconds", "test_error"]].mean()
    with pd.option_context("display.width", 160):
        print("\n" + table.to_string(index=False))
        print("\nmean over seeds:\n" + summary.to_string())
    if args.vs_h2o:
        d, h = summary.loc["dask_dl"], summary.loc["H2O-3"]
        print(f"\ndask_dl / H2O-3: training speed x{d.training_speed / h.training_speed:.1f}, "
              f"fit wall time x{h.fit_seconds / d.fit_seconds:.1f} faster, "
              f"test error {100 * d.test_error:.2f}% vs {100 * h.test_error:.2f}%")
    return table


if __name__ == "__main__":
    main()
