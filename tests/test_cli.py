"""The ``dask-dl`` command line: train -> save -> predict on CSV and Parquet, and one-line errors.

Most tests call ``cli.main([...])`` in process; one runs the installed console script end to end.
Training calls are few and tiny (each without --scheduler starts an embedded LocalCluster).
"""
import contextlib
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dask_dl import cli


@pytest.fixture(scope="module")
def files(tmp_path_factory, iris, wine):
    d = tmp_path_factory.mktemp("cli")
    iris.to_csv(d / "iris.csv", index=False)
    iris.to_parquet(d / "iris.parquet")
    w = wine.sample(1200, random_state=0).reset_index(drop=True)
    w.iloc[:900].to_parquet(d / "wine_train.parquet")
    w.iloc[900:].to_csv(d / "wine_valid.csv", index=False)
    return d


@pytest.fixture(scope="module")
def iris_model(files):
    """Train once (embedded LocalCluster, CSV input, classification inferred from the string response):
    (exit code, stdout, stderr, model path)."""
    path = files / "models" / "iris.npz"  # the folder does not exist yet: train creates it
    argv = ["train", str(files / "iris.csv"), "--y", "class", "--hidden", "16", "--epochs", "20",
            "--seed", "1", "--quiet_mode", "true", "--model-out", str(path)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue(), path


def _run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


def test_train_predict_iris_csv_and_parquet(files, iris_model, iris, capsys):
    code, out, err, model_path = iris_model
    assert code == 0, err
    assert "DeepLearningClassifier" in out and "by response type" in out
    assert "training_logloss" in out and "training_classification_error" in out
    assert f"model saved to {model_path}" in out
    assert model_path.exists()

    # Parquet in -> Parquet directory out
    pq_out = files / "pred_iris.parquet"
    code, out, err = _run(["predict", model_path, files / "iris.parquet", "--out", pq_out], capsys)
    assert code == 0, err
    pred = pd.read_parquet(pq_out)
    classes = sorted(iris["class"].unique())
    assert list(pred.columns) == ["predict"] + [f"p_{c}" for c in classes]
    assert len(pred) == len(iris)
    assert set(pred["predict"]) <= set(classes)
    assert (pred["predict"].to_numpy() == iris["class"].to_numpy()).mean() > 0.6
    probs = pred[[f"p_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)

    # CSV in -> one CSV file out; identical labels
    csv_out = files / "pred_iris.csv"
    code, out, err = _run(["predict", model_path, files / "iris.csv", "--out", csv_out], capsys)
    assert code == 0, err
    assert "written to" in out and "CSV" in out
    pred_csv = pd.read_csv(csv_out)
    assert len(pred_csv) == len(iris)
    assert (pred_csv["predict"].to_numpy() == pred["predict"].to_numpy()).all()


def test_regression_end_to_end_console_script(files):
    """The installed ``dask-dl`` script: numeric response -> regression, with validation data."""
    exe = shutil.which("dask-dl")
    base = [exe] if exe else [sys.executable, "-m", "dask_dl.cli"]
    model = files / "wine.npz"
    train = subprocess.run(base + ["train", str(files / "wine_train.parquet"), "--y", "quality",
                                   "--validation", str(files / "wine_valid.csv"), "--hidden", "8",
                                   "--epochs", "2", "--seed", "1", "--model-out", str(model)],
                           capture_output=True, text=True, timeout=180)
    assert train.returncode == 0, train.stderr
    assert "DeepLearningRegressor" in train.stdout
    assert "validation_rmse" in train.stdout and "training_rmse" in train.stdout
    assert "iteration" in train.stderr  # progress log (quiet_mode is off by default)
    out = files / "wine_pred.csv"
    pred = subprocess.run(base + ["predict", str(model), str(files / "wine_valid.csv"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert pred.returncode == 0, pred.stderr
    p = pd.read_csv(out)
    assert list(p.columns) == ["predict"]
    assert len(p) == 300
    assert np.issubdtype(p["predict"].dtype, np.floating) and np.isfinite(p["predict"]).all()
    assert 2 < p["predict"].mean() < 9


def test_forced_classification_on_scheduler(files, cluster_threads, capsys):
    """--classification on an integer response, trained on a cluster given by --scheduler."""
    model = files / "wine_cls.npz"
    code, out, err = _run(["train", files / "wine_train.parquet", "--y", "quality", "--classification",
                           "--hidden", "8", "--epochs", "2", "--seed", "1", "--quiet-mode", "--activation",
                           "tanh", "--scheduler", cluster_threads.scheduler_address, "--model-out", model],
                          capsys)
    assert code == 0, err
    assert "DeepLearningClassifier" in out and "training_classification_error" in out
    out_pq = files / "wine_cls_pred"
    code, out, err = _run(["predict", model, files / "wine_valid.csv", "--out", out_pq], capsys)
    assert code == 0, err
    p = pd.read_parquet(out_pq)
    assert len(p) == 300
    assert p["predict"].dtype.kind == "i"  # integer classes stay integers
    assert all(c.startswith("p_") for c in p.columns[1:])


# ------------------------------------------------------------------------------------- errors
def test_missing_response_column(files, capsys):
    code, out, err = _run(["train", files / "iris.csv", "--y", "species", "--model-out",
                           files / "x.npz"], capsys)
    assert code != 0
    line = _one_line_error(err)
    assert "'species'" in line and "class" in line


def test_unknown_parameter(files, capsys):
    code, out, err = _run(["train", files / "iris.csv", "--y", "class", "--foo", "3", "--model-out",
                           files / "x.npz"], capsys)
    assert code == 2
    assert "--foo" in _one_line_error(err)
    code, out, err = _run(["train", files / "iris.csv", "--y", "class", "--epoch", "3", "--model-out",
                           files / "x.npz"], capsys)
    assert code == 2
    line = _one_line_error(err)
    assert "--epoch " in line + " " and "--epochs" in line  # names it, suggests the real one


@pytest.mark.parametrize("args, culprit", [
    (["--epochs", "-1"], "epochs"),
    (["--activation", "Sigmoid"], "activation"),
    (["--hidden", "8", "0"], "hidden"),
    (["--standardize", "maybe"], "--standardize"),
    (["--stopping_rounds", "2.5"], "--stopping_rounds"),
])
def test_bad_parameter_values(files, capsys, args, culprit):
    code, out, err = _run(["train", files / "iris.csv", "--y", "class", "--model-out", files / "x.npz"]
                          + args, capsys)
    assert code != 0
    assert culprit in _one_line_error(err)


def test_missing_urls(files, capsys):
    for missing in (files / "nope.csv", files / "nope.parquet"):
        code, out, err = _run(["train", missing, "--y", "class", "--model-out", files / "x.npz"], capsys)
        assert code != 0
        assert str(missing) in _one_line_error(err)
    code, out, err = _run(["predict", files / "nope.npz", files / "iris.csv", "--out", files / "p.csv"], capsys)
    assert code != 0
    assert "nope.npz" in _one_line_error(err)


def test_not_a_model_file(files, capsys):
    code, out, err = _run(["predict", files / "iris.csv", files / "iris.csv", "--out", files / "p.csv"], capsys)
    assert code != 0
    assert "not a dask_dl model" in _one_line_error(err)
    np.savez(files / "other.npz", a=np.arange(3))
    code, out, err = _run(["predict", files / "other.npz", files / "iris.csv", "--out", files / "p.csv"], capsys)
    assert code != 0
    assert "not a dask_dl model" in _one_line_error(err)


def test_predict_data_lacks_a_column(files, iris_model, iris, capsys):
    assert iris_model[0] == 0, iris_model[2]
    model_path = iris_model[3]
    iris.drop(columns=["petal_wid"]).to_csv(files / "iris_short.csv", index=False)
    code, out, err = _run(["predict", model_path, files / "iris_short.csv", "--out", files / "p.csv"], capsys)
    assert code != 0
    assert "petal_wid" in _one_line_error(err)


def test_debug_reraises(files):
    with pytest.raises(Exception, match="species"):
        cli.main(["train", str(files / "iris.csv"), "--y", "species", "--model-out", str(files / "x.npz"),
                  "--debug"])


def test_help_lists_every_parameter(capsys):
    assert cli.main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    from dask_dl.params import PARAMETERS
    for name in PARAMETERS:
        if name not in cli._NOT_CLI:
            assert f"--{name}" in text
    # objects and arrays, and warm_start (a second fit of one estimator object)
    assert set(cli._NOT_CLI) == {"client", "initial_weights", "initial_biases", "pretrained_autoencoder", "warm_start"}


# -------------------------------------------------------------------------------------- units
def test_storage_options_dotted_and_json():
    so = cli.storage_options_from(["client_kwargs.endpoint_url=http://localhost:9000", "anon=true",
                                   "default_block_size=1048576", "key=abc"],
                                  '{"client_kwargs": {"region_name": "us-east-1"}}')
    assert so == {"client_kwargs": {"endpoint_url": "http://localhost:9000", "region_name": "us-east-1"},
                  "anon": True, "default_block_size": 1048576, "key": "abc"}
    with pytest.raises(cli.CliError):
        cli.storage_options_from(["novalue"])
    with pytest.raises(cli.CliError):
        cli.storage_options_from([], "[1, 2]")


def test_csv_byte_order_mark_is_dropped(wine):
    from conftest import data_path
    df = cli._read(data_path("wine", "winequality-redwhite.csv"), {}, "data")
    assert list(df.columns) == list(wine.columns)


def test_infer_kind_is_h2o_rule():
    assert cli.infer_kind(np.dtype(object)) == "classification"
    assert cli.infer_kind(pd.CategoricalDtype(["a", "b"])) == "classification"
    assert cli.infer_kind(np.dtype(bool)) == "classification"
    assert cli.infer_kind(pd.StringDtype()) == "classification"
    assert cli.infer_kind(np.dtype("int64")) == "regression"
    assert cli.infer_kind(np.dtype("float32")) == "regression"


def test_parameter_values_parse_by_default_type():
    args = cli.build_parser().parse_args(
        ["train", "d.csv", "--y", "c", "--model-out", "m.npz", "--hidden", "4", "5", "--hidden_dropout_ratios",
         "0.1", "0.2", "--epochs", "3", "--reproducible", "yes", "--standardize", "0", "--seed", "7",
         "--score_training_samples", "1e4", "--activation", "rectifierwithdropout", "--fast-mode", "false"])
    assert args.hidden == [4, 5] and args.hidden_dropout_ratios == [0.1, 0.2]
    assert args.epochs == 3.0 and isinstance(args.epochs, float)
    assert args.reproducible is True and args.standardize is False and args.fast_mode is False
    assert args.seed == 7 and args.score_training_samples == 10000
    assert args.activation == "RectifierWithDropout"
    assert not hasattr(args, "l1")  # unset parameters stay at the estimator's (H2O's) default


def test_predict_s3_with_storage_options(files, iris_model, capsys):
    """Model, data and output on S3 (moto), endpoint and keys given as --storage-option(s) values."""
    from s3server import moto_s3
    assert iris_model[0] == 0, iris_model[2]
    with moto_s3("cli-bucket") as (_server, so, bucket):
        import s3fs
        fs = s3fs.S3FileSystem(**so)
        fs.put(str(iris_model[3]), f"{bucket}/iris.npz")
        fs.put(str(files / "iris.csv"), f"{bucket}/iris.csv")
        opts = [f"--storage-option=client_kwargs.endpoint_url={so['client_kwargs']['endpoint_url']}",
                "--storage-option", f"key={so['key']}", "--storage-option", "use_listings_cache=false",
                "--storage-options", json.dumps({"secret": so["secret"]})]
        code, out, err = _run(["predict", f"s3://{bucket}/iris.npz", f"s3://{bucket}/iris.csv",
                               "--out", f"s3://{bucket}/pred.csv"] + opts, capsys)
        assert code == 0, err
        with fs.open(f"{bucket}/pred.csv") as f:
            assert len(pd.read_csv(f)) == 150
        code, out, err = _run(["predict", f"s3://{bucket}/iris.npz", f"s3://{bucket}/missing.csv",
                               "--out", f"s3://{bucket}/p2.csv"] + opts, capsys)
        assert code != 0 and f"s3://{bucket}/missing.csv" in _one_line_error(err)


def test_ignored_columns_on_the_command_line(files, capsys):
    path = files / "models" / "iris_ignored.npz"
    code, out, err = _run(["train", files / "iris.csv", "--y", "class", "--hidden", "4", "--epochs", "1",
                           "--ignored_columns", "sepal_len", "sepal_wid", "--quiet_mode", "true",
                           "--model-out", path], capsys)
    assert code == 0, err
    from dask_dl import load_model
    model = load_model(str(path))
    assert model.info.feature_names == ["petal_len", "petal_wid"]
    assert model.params["ignored_columns"] == ["sepal_len", "sepal_wid"]
    code, out, err = _run(["predict", path, files / "iris.csv", "--out", files / "pred_ignored.csv"], capsys)
    assert code == 0, err  # the ignored columns may still be in the data


def test_weights_and_offset_columns_on_the_command_line(files, capsys, wine):
    """--weights_column and --offset_column name columns of the data; predict needs the offset again."""
    data = wine.sample(600, random_state=1).reset_index(drop=True)
    data = data.assign(w=np.where(np.arange(600) % 3 == 0, 0.0, 1.0), off=np.linspace(-1, 1, 600))
    data.to_csv(files / "wine_wo.csv", index=False)
    path = files / "models" / "wine_wo.npz"
    code, out, err = _run(["train", files / "wine_wo.csv", "--y", "quality", "--regression", "--hidden", "4",
                           "--epochs", "1", "--weights_column", "w", "--offset_column", "off", "--quiet_mode",
                           "true", "--model-out", path], capsys)
    assert code == 0, err
    from dask_dl import load_model
    model = load_model(str(path))
    assert model.info.offset_column == "off" and model.info.weights_column == "w"
    assert model.info.n_rows == 400 and "w" not in model.info.feature_names
    code, out, err = _run(["predict", path, files / "wine_wo.csv", "--out", files / "pred_wo.csv"], capsys)
    assert code == 0, err
    data.drop(columns="off").to_csv(files / "wine_no_offset.csv", index=False)
    code, out, err = _run(["predict", path, files / "wine_no_offset.csv", "--out", files / "pred_no.csv"], capsys)
    assert code != 0 and "lacks the offset_column 'off'" in _one_line_error(err)


def test_autoencoder_on_the_command_line(files, capsys):
    """train --autoencoder takes every column (no --y); predict writes each row's anomaly score,
    or with --per-feature the squared error per expanded input."""
    path = files / "models" / "iris_ae.npz"
    code, out, err = _run(["train", files / "iris.csv", "--autoencoder", "--hidden", "4", "--epochs", "2",
                           "--activation", "Tanh", "--quiet_mode", "true", "--model-out", path], capsys)
    assert code == 0, err
    assert "DeepLearningAutoencoder" in out and "training_mse" in out
    code, out, err = _run(["predict", path, files / "iris.csv", "--out", files / "anomaly.csv"], capsys)
    assert code == 0, err
    scores = pd.read_csv(files / "anomaly.csv")
    assert list(scores.columns) == ["Reconstruction.MSE"] and len(scores) == 150 and (scores.iloc[:, 0] > 0).all()
    code, out, err = _run(["predict", path, files / "iris.csv", "--out", files / "per_feature.csv", "--per-feature"],
                          capsys)
    assert code == 0, err
    per = pd.read_csv(files / "per_feature.csv")
    assert per.columns[0] == "reconstr_class.Iris-setosa.SE" and per.shape == (150, 8)
    np.testing.assert_allclose(per.mean(axis=1), scores.iloc[:, 0], rtol=1e-5)
    code, out, err = _run(["train", files / "iris.csv", "--autoencoder", "--y", "class", "--model-out", path], capsys)
    assert code != 0 and "--autoencoder trains on every column: drop --y" in _one_line_error(err)
    code, out, err = _run(["train", files / "iris.csv", "--model-out", path], capsys)
    assert code != 0 and "--y COLUMN is required" in _one_line_error(err)


def test_export_a_saved_model_as_a_numpy_scorer(files, iris_model, iris, capsys):
    import importlib.util
    code, out, err, path = iris_model
    target = files / "iris_scorer.py"
    code, out, err = _run(["export", path, "--format", "python", "--out", target], capsys)
    assert code == 0, err
    spec = importlib.util.spec_from_file_location("iris_scorer", target)
    scorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scorer)
    from dask_dl import load_model
    X = iris.drop(columns="class")
    np.testing.assert_allclose(scorer.score({c: X[c].to_numpy() for c in X.columns}),
                               load_model(str(path)).predict_proba(X), rtol=1e-5, atol=1e-6)
    code, out, err = _run(["export", path, "--format", "onnx", "--out", files / "m.onnx"], capsys)
    assert code == 0, err
    import onnxruntime as ort
    session = ort.InferenceSession(str(files / "m.onnx"))
    feeds = {c: X[c].to_numpy(np.float32)[:, None] for c in X.columns}
    np.testing.assert_allclose(session.run(["output"], feeds)[0], load_model(str(path)).predict_proba(X), rtol=1e-5,
                               atol=1e-6)


def test_continue_a_saved_model_from_the_command_line(files, iris_model, capsys):
    code, out, err, path = iris_model
    more = files / "models" / "iris_more.npz"
    code, out, err = _run(["train", files / "iris.csv", "--y", "class", "--hidden", "16", "--epochs", "25",
                           "--checkpoint", path, "--quiet_mode", "true", "--model-out", more], capsys)
    assert code == 0, err
    from dask_dl import load_model
    first, second = load_model(str(path)), load_model(str(more))
    assert second.run["epochs"] == 25.0 and len(second.scoring_history()) > len(first.scoring_history())
    code, out, err = _run(["train", files / "iris.csv", "--y", "class", "--hidden", "8", "--epochs", "30",
                           "--checkpoint", path, "--model-out", more], capsys)
    assert code != 0 and "hidden=[8] (the checkpoint's: [16]) cannot change" in _one_line_error(err)
