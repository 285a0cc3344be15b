"""The H2O tutorial's model lifecycle on covtype: grid -> best model -> checkpoint -> save/load -> export.

    python examples/lifecycle.py [--data ../shared/data] [--out /tmp/dask_dl_lifecycle]

1. A random grid of 4 models (hidden sizes, L1) ranked by validation logloss (dask_dl.GridSearch).
2. The best one continued from its checkpoint to more epochs with other L1/L2 (checkpoint=).
3. Saved, loaded back, predicting the same.
4. Exported as a numpy-only Python scorer and as ONNX (when the onnx package is installed).
5. 5-fold cross-validation of the same parameters, per-fold metrics.
"""
import argparse
import importlib.util
import os

import numpy as np
import pandas as pd

import dask_dl

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join("/tmp", "dask_dl_lifecycle"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    df = pd.read_parquet(os.path.join(args.data, "covtype", "covtype.parquet")).sample(frac=1.0, random_state=1)
    train, valid, test = df.iloc[:12000], df.iloc[12000:16000], df.iloc[16000:]
    X_test = test.drop(columns="Cover_Type")

    base = dask_dl.DeepLearningClassifier(epochs=2, activation="Tanh", seed=1, quiet_mode=True)
    grid = dask_dl.GridSearch(base, {"hidden": [[32], [64], [32, 32], [64, 64]], "l1": [0.0, 1e-5]},
                              {"strategy": "RandomDiscrete", "max_models": 4, "seed": 1})
    grid.fit(train, "Cover_Type", validation_data=valid)
    print("1. the grid's leaderboard:\n", grid.leaderboard_[["hidden", "l1", "logloss", "classification_error"]])
    best = grid.best_model_

    params = {**best.get_params(), "epochs": 6, "l1": 1e-5, "l2": 1e-4, "checkpoint": best}
    continued = dask_dl.DeepLearningClassifier(**params).fit(train, "Cover_Type", validation_data=valid)
    print(f"2. continued to {continued.model_.run['epochs']:.0f} epochs: validation logloss "
          f"{continued.model_.scoring_history()['validation_logloss'].iloc[-1]:.4f}")

    path = os.path.join(args.out, "best.npz")
    continued.model_.save(path)
    loaded = dask_dl.load_model(path)
    same = np.array_equal(loaded.predict_proba(X_test), continued.predict_proba(X_test))
    print(f"3. saved to {path}, loaded back: identical predictions: {same}")

    scorer_path = loaded.to_python(os.path.join(args.out, "scorer.py"))
    spec = importlib.util.spec_from_file_location("scorer", scorer_path)
    scorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scorer)
    gap = np.abs(scorer.score({c: X_test[c].to_numpy() for c in X_test.columns}) - loaded.predict_proba(X_test)).max()
    print(f"4. numpy scorer {scorer_path}: largest difference {gap:.2e}")
    try:
        import onnxruntime as ort
        onnx_path = loaded.to_onnx(os.path.join(args.out, "model.onnx"))
        session = ort.InferenceSession(onnx_path)
        feeds = {i.name: (X_test[i.name].astype(str).to_numpy(object) if i.type == "tensor(string)"
                          else X_test[i.name].to_numpy(np.float32))[:, None] for i in session.get_inputs()}
        gap = np.abs(session.run(["output"], feeds)[0] - loaded.predict_proba(X_test)).max()
        print(f"   ONNX {onnx_path}: largest difference {gap:.2e}")
    except ImportError:
        print("   (pip install onnx onnxruntime for the ONNX export)")

    cv_params = {k: v for k, v in best.get_params().items() if k not in ("client",)}
    cv = dask_dl.DeepLearningClassifier(**{**cv_params, "nfolds": 5}).fit(train, "Cover_Type")
    print("5. 5-fold cross-validation:\n", cv.model_.cross_validation_metrics_summary().head(6))


if __name__ == "__main__":
    main()
