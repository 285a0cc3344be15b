"""Anomaly detection with a deep autoencoder: the H2O booklet's ECG heartbeats.

    python examples/ecg_anomaly.py [--data ../shared/data] [--plot ecg_anomalies.png] [--seed 1]

A Tanh autoencoder (hidden [50, 20, 50], l1=1e-4, 100 epochs: the booklet's parameters) learns the
20 normal heartbeats of the training file; the test file holds those 20 and 3 anomalous beats
appended. Each test beat's reconstruction error (``anomaly``) ranks the anomalies first. With
matplotlib installed, ``--plot`` saves the errors and the worst beat with its reconstruction.
"""
import argparse
import os

import numpy as np
import pandas as pd

import dask_dl

HERE = os.path.dirname(os.path.abspath(__file__))


def load(data: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.read_csv(os.path.join(data, "ecg", "ecg_discord_train.csv"), header=None)
    test = pd.read_csv(os.path.join(data, "ecg", "ecg_discord_test.csv"), header=None)
    train.columns = test.columns = [f"C{i + 1}" for i in range(train.shape[1])]  # H2O's names
    return train, test


def plot(path: str, errors: np.ndarray, beat: pd.Series, rebuilt: pd.Series) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
    left.bar(np.arange(len(errors)), errors, color=["tab:red" if i >= 20 else "tab:blue" for i in range(len(errors))])
    left.set(xlabel="test heartbeat", ylabel="reconstruction MSE", yscale="log",
             title="anomaly scores (red: appended anomalies)")
    right.plot(beat.to_numpy(), label="heartbeat")
    right.plot(rebuilt.to_numpy(), label="reconstruction")
    right.set(title="the most anomalous beat", xlabel="sample")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot saved to {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--plot", default=None, help="save a PNG of the errors (needs matplotlib)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    train, test = load(args.data)
    ae = dask_dl.DeepLearningAutoencoder(activation="Tanh", hidden=[50, 20, 50], l1=1e-4, epochs=100,
                                         seed=args.seed, quiet_mode=True)
    ae.fit(train)  # no Client in scope: an embedded LocalCluster
    errors = ae.anomaly(test)
    ranked = np.argsort(-errors)
    print("reconstruction MSE per test heartbeat (rows 20-22 are the appended anomalies):")
    for i in ranked[:6]:
        print(f"  row {i:2d}: {errors[i]:.4f}")
    print(f"the 3 highest errors are rows {sorted(ranked[:3].tolist())}")
    if args.plot:
        try:
            worst = int(ranked[0])
            rebuilt = ae.reconstruct(test.iloc[[worst]]).iloc[0]
            plot(args.plot, errors, test.iloc[worst], rebuilt)
        except ImportError:
            print("matplotlib is not installed: no plot (pip install matplotlib)")


if __name__ == "__main__":
    main()
