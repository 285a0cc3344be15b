"""MNIST autoencoders (issue 19's acceptance), over seeds: anomaly detection of an unseen digit and
pretraining a classifier from an autoencoder.

    python benchmarks/bench_autoencoder.py [--seeds 1 2 3 4 5] [--rows 20000] [--epochs 10]

1. A Tanh autoencoder [64, 16, 64] trained (``epochs``) on the digits 0-8 of all 60,000 training
   images scores the 10,000 test images: the mean reconstruction MSE of the test 9s against that of
   the test 0-8s (and the share of 9s among the 10% highest errors; 9s are 10% of the test set).
2. A Tanh classifier [128, 32] trained for one epoch on the first ``rows`` training images, from
   scratch and from an autoencoder [128, 32, 128] trained (``ae_epochs``) on those rows' pixels
   (``pretrained_autoencoder``): the test error of each.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")


def load(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    tr = pd.read_parquet(os.path.join(DATA, "mnist", "train.parquet")).iloc[:rows]
    te = pd.read_parquet(os.path.join(DATA, "mnist", "test.parquet"))
    return tr, te


def anomaly_run(tr, te, seed: int, epochs: float, client) -> dict:
    import dask_dl
    normal = tr[tr["C785"] != 9].drop(columns=["C785"])
    ae = dask_dl.DeepLearningAutoencoder(activation="Tanh", hidden=[64, 16, 64], epochs=epochs, seed=seed,
                                         quiet_mode=True, client=client).fit(normal)
    err = ae.anomaly(te.drop(columns=["C785"]))
    nine = te["C785"].to_numpy() == 9
    top = err >= np.quantile(err, 0.9)
    return {"mse_0_8": float(err[~nine].mean()), "mse_9": float(err[nine].mean()),
            "ratio": float(err[nine].mean() / err[~nine].mean()), "nines_in_top_10pct": float(nine[top].mean())}


def pretraining_run(tr, te, seed: int, ae_epochs: float, client) -> dict:
    import dask_dl
    X = te.drop(columns=["C785"])
    common = dict(activation="Tanh", epochs=1, seed=seed, quiet_mode=True, client=client)
    scratch = dask_dl.DeepLearningClassifier(hidden=[128, 32], **common).fit(tr, "C785")
    ae = dask_dl.DeepLearningAutoencoder(activation="Tanh", hidden=[128, 32, 128], epochs=ae_epochs, seed=seed,
                                         quiet_mode=True, client=client).fit(tr.drop(columns=["C785"]))
    pre = dask_dl.DeepLearningClassifier(hidden=[128, 32], pretrained_autoencoder=ae, **common).fit(tr, "C785")
    truth = te["C785"].to_numpy()
    return {"error_scratch": float(np.mean(scratch.predict(X) != truth)),
            "error_pretrained": float(np.mean(pre.predict(X) != truth))}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--epochs", type=float, default=10.0, help="the anomaly autoencoder's epochs")
    ap.add_argument("--anomaly-rows", type=int, default=60000, help="training images for the anomaly part")
    ap.add_argument("--ae-epochs", type=float, default=2.0, help="the pretraining autoencoder's epochs")
    args = ap.parse_args(argv)
    from dask_dl.cluster.session import local_client
    full, te = load(args.anomaly_rows)
    tr = full.iloc[:args.rows]
    rows = []
    with local_client(2, 1, dashboard_address=None) as client:
        for s in args.seeds:
            rows.append({"seed": s, **anomaly_run(full, te, s, args.epochs, client),
                         **pretraining_run(tr, te, s, args.ae_epochs, client)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(table.drop(columns="seed").agg(["mean", "std"]).to_string())
    return table


if __name__ == "__main__":
    main()
