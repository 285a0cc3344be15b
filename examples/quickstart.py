"""Quickstart: H2O's default deep network on MNIST, on the embedded local Dask cluster.

    python examples/quickstart.py [--epochs 1] [--data ../shared/data]

Reads MNIST from Parquet with dask (the data never passes through this process), trains the
784-200-200-10 Rectifier network with ADADELTA (H2O's defaults), validating on the test set, then
prints the scoring history and the test error.
"""
import argparse
import os
import time

import dask.dataframe as dd
import numpy as np
import pandas as pd

import dask_dl

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    train = dd.read_parquet(os.path.join(args.data, "mnist", "train.parquet"), split_row_groups=True)
    test = dd.read_parquet(os.path.join(args.data, "mnist", "test.parquet"))
    clf = dask_dl.DeepLearningClassifier(epochs=args.epochs, seed=args.seed)  # H2O defaults otherwise
    t0 = time.time()
    clf.fit(train, "C785", validation_data=test)   # no Client in scope: an embedded LocalCluster
    print(f"\ntrained in {time.time() - t0:.1f} s")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(clf.model_.scoring_history())
    print(clf.model_.summary())
    labels = test["C785"].compute().to_numpy()
    pred = clf.predict(test.drop(columns=["C785"]).compute())
    print(f"\nMNIST test error: {100 * np.mean(pred != labels):.2f}%")


if __name__ == "__main__":
    main()
