"""A stacked autoencoder trained layer by layer, then a classifier started from it (H2O's R example).

    python examples/stacked_autoencoder.py [--data ../shared/data] [--rows 10000] [--layers 128 64]

Layer 1 is an autoencoder of the pixels; each next layer is an autoencoder of the previous layer's
deep features (``deepfeatures``). Their encoders' weights and biases then start a classifier with
those hidden layers (``initial_weights`` / ``initial_biases``; None leaves the output layer to
its usual draw), which trains for one epoch; the same classifier from a random start is the
comparison. The first autoencoder reads the pixels as every model does here (ignore_const_cols is
off, so the input layers match).
"""
import argparse
import os

import numpy as np
import pandas as pd

import dask_dl

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--layers", type=int, nargs="+", default=[128, 64])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    train = pd.read_parquet(os.path.join(args.data, "mnist", "train.parquet")).iloc[:args.rows]
    test = pd.read_parquet(os.path.join(args.data, "mnist", "test.parquet"))
    common = dict(activation="Tanh", seed=args.seed, quiet_mode=True, ignore_const_cols=False)
    features, weights, biases = train.drop(columns=["C785"]), [], []
    for depth, units in enumerate(args.layers, start=1):
        ae = dask_dl.DeepLearningAutoencoder(hidden=[units], epochs=2, **common).fit(features)
        print(f"layer {depth}: autoencoder {list(ae.model_.layout.units)}, "
              f"reconstruction MSE {ae.model_.scoring_history()['training_mse'].iloc[-1]:.4f}")
        weights.append(ae.model_.weights(1))
        biases.append(ae.model_.biases(1))
        features = ae.deepfeatures(features, 0)  # the next layer learns this layer's code
    X_test, y_test = test.drop(columns=["C785"]), test["C785"].to_numpy()
    # the autoencoders saw the pixels normalised, the classifier standardises them (as in H2O)
    stacked = dask_dl.DeepLearningClassifier(hidden=args.layers, epochs=1, initial_weights=weights + [None],
                                             initial_biases=biases + [None], **common).fit(train, "C785")
    scratch = dask_dl.DeepLearningClassifier(hidden=args.layers, epochs=1, **common).fit(train, "C785")
    for name, clf in (("from the stacked autoencoders", stacked), ("from a random start", scratch)):
        print(f"classifier {name}: test error {100 * np.mean(clf.predict(X_test) != y_test):.2f}%")


if __name__ == "__main__":
    main()
