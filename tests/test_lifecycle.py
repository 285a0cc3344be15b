"""Issue 20's acceptance: the H2O tutorial's model lifecycle on covtype as one test.

random grid -> best by validation logloss -> continued from its checkpoint with more epochs and other
L1/L2 -> saved to s3:// (loopback moto) -> loaded in a new process with identical predictions ->
ONNX and numpy scorer matching -> 5-fold cross-validation of the same parameters, per-fold metrics.
"""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import dask.dataframe as dd
import numpy as np
import pytest

import dask_dl
from conftest import assert_same_predictions
from s3server import moto_s3

LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys
    import numpy as np, pandas as pd
    import dask_dl
    url, options_file, x_path, out_path = sys.argv[1:]
    with open(options_file) as f:
        model = dask_dl.load_model(url, storage_options=json.load(f))
    np.save(out_path, model.predict_proba(pd.read_parquet(x_path)))
""")


def _numpy_scorer(model, path):
    model.to_python(path)
    spec = importlib.util.spec_from_file_location("lifecycle_scorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _onnx_outputs(model, path, X):
    ort = pytest.importorskip("onnxruntime")
    model.to_onnx(path)
    session = ort.InferenceSession(path)
    feeds = {i.name: (X[i.name].astype(str).to_numpy(object) if i.type == "tensor(string)"
                      else X[i.name].to_numpy(np.float32))[:, None] for i in session.get_inputs()}
    return session.run(["output"], feeds)[0]


def test_grid_checkpoint_s3_new_process_export_and_cv(client2, covtype, tmp_path):
    df = covtype.sample(9000, random_state=7).reset_index(drop=True)
    train = dd.from_pandas(df.iloc[:6000], npartitions=4)
    valid = dd.from_pandas(df.iloc[6000:8000], npartitions=2)
    X_test = df.iloc[8000:].drop(columns="Cover_Type").reset_index(drop=True)

    # 1. a random grid of 4 models, ranked by validation logloss
    base = dask_dl.DeepLearningClassifier(epochs=1, activation="Tanh", seed=3, quiet_mode=True, client=client2)
    grid = dask_dl.GridSearch(base, {"hidden": [[16], [32], [16, 16], [32, 16]], "l1": [0.0, 1e-5]},
                              {"strategy": "RandomDiscrete", "max_models": 4, "seed": 5})
    grid.fit(train, "Cover_Type", validation_data=valid)
    board = grid.get_leaderboard("logloss")
    assert len(board) == 4 and len(grid.models_) == 4 and not len(grid.failures_)
    assert board["logloss"].is_monotonic_increasing
    best = grid.best_model_
    assert best.model_.scoring_history()["validation_logloss"].iloc[-1] == pytest.approx(board["logloss"].iloc[0])

    # 2. continued from its checkpoint: more epochs, other regularisation; the checkpoint is unchanged
    best_state = best.model_.state.copy()
    params = {**best.get_params(), "epochs": 3, "l1": 1e-5, "l2": 1e-4, "checkpoint": best}
    continued = dask_dl.DeepLearningClassifier(**params).fit(train, "Cover_Type", validation_data=valid)
    history = continued.model_.scoring_history()
    assert continued.model_.run["epochs"] == pytest.approx(3, abs=0.1)
    assert history["epochs"].iloc[0] < 1.1 < history["epochs"].iloc[-1]  # the history continues the grid model's
    np.testing.assert_array_equal(best.model_.state, best_state)
    assert history["validation_logloss"].iloc[-1] < board["logloss"].iloc[0]
    expected = continued.predict_proba(X_test)

    # 3. saved to s3:// and loaded in a new process: the same predictions
    x_path, out_path, options_file = (str(tmp_path / n) for n in ("x.parquet", "p.npy", "so.json"))
    X_test.to_parquet(x_path)
    with moto_s3("lifecycle") as (_server, so, bucket):
        url = continued.model_.save(f"s3://{bucket}/models/covtype.npz", storage_options=so)
        with open(options_file, "w") as f:
            json.dump(so, f)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        done = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, url, options_file, x_path, out_path],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        loaded = dask_dl.load_model(url, storage_options=so)
    assert_same_predictions(np.load(out_path), expected)

    # 4. deployment exports match the model
    scorer = _numpy_scorer(loaded, str(tmp_path / "scorer.py"))
    np.testing.assert_allclose(scorer.score({c: X_test[c].to_numpy() for c in X_test.columns}), expected,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_onnx_outputs(loaded, str(tmp_path / "m.onnx"), X_test), expected,
                               rtol=1e-5, atol=1e-5)

    # 5. 5-fold cross-validation of the same parameters, per-fold metrics
    cv_params = {**best.get_params(), "nfolds": 5, "fold_assignment": "Modulo"}
    cv = dask_dl.DeepLearningClassifier(**cv_params).fit(train, "Cover_Type")
    summary = cv.model_.cross_validation_metrics_summary().set_index("metric")
    fold_columns = [f"cv_{k}_valid" for k in range(1, 6)]
    assert set(fold_columns) <= set(summary.columns)
    assert summary.loc["logloss", fold_columns].notna().all()
    folds = summary.loc["classification_error", fold_columns].astype(float)
    assert summary.loc["classification_error", "mean"] == pytest.approx(folds.mean(), rel=1e-6)
    assert 0.0 < folds.min() and folds.max() < 0.5
    assert len(cv.model_.cross_validation_models()) == 5
