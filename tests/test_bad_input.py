"""A catalogue of bad input (issue 16, point 6; docs/bad-input.md lists every case with its message).

Each case gives one clear error that names the culprit (parameter, column, file) and what was
expected, raised before any cluster work where the data is in memory (the ``no_cluster`` fixture
fails the test if ``job.cluster_client`` is reached), before any training for dask data (the
``no_training`` fixture fails it if the iteration loop starts), and for model files before any
prediction. A few rows are deliberate non-errors (NaN predictors, NA responses, unseen predictor
levels, max_w2=inf): their tests show that they are accepted.
"""
import contextlib
import io
import json
import math

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from dask_dl import DataError, DeepLearningClassifier, DeepLearningRegressor, cli
from dask_dl import params as P
from dask_dl.errors import ModelFileError
from dask_dl.estimators import checked_training_input
from dask_dl.model import DeepLearningModel, load_model, model_from_bytes, model_to_bytes
from dask_dl.nn.network import build_layout, initial_state
from dask_dl.persist import FORMAT_VERSION

FAST = dict(hidden=[8], epochs=1, seed=1, quiet_mode=True)


@pytest.fixture
def no_training(monkeypatch):
    """Fail if the iteration loop starts (dask data: its checks belong to the statistics pass)."""
    def refuse(*a, **k):
        raise AssertionError("training started before the input was validated")
    monkeypatch.setattr("dask_dl.cluster.loop.IterationLoop.run", refuse)


def _fit(kind, X, y=None, validation_data=None, **params):
    est = DeepLearningClassifier if kind == "clf" else DeepLearningRegressor
    return est(**{**FAST, **params}).fit(X, y, validation_data=validation_data)


def _xy(iris):
    return iris.drop(columns="class"), iris["class"]


def _ids(n):
    return [f"case-{i + 1:02d}" for i in range(n)]


# ------------------------------------------------------------------------------ parameters
PARAMETER_CASES = [
    # (parameters, error type, message pattern)
    (dict(hidden=[0]), ValueError, r"hidden=\[0\]: expected a list of positive integers"),
    (dict(hidden="200"), ValueError, r"hidden='200': expected a list of positive integers"),
    (dict(epochs=-1), ValueError, r"epochs=-1: expected a finite number in \[0, inf\)"),
    (dict(epochs=math.inf), ValueError, r"epochs=inf: expected a finite number"),
    (dict(rate=math.nan), ValueError, r"rate=nan: expected a finite number, not NaN"),
    (dict(epochs="10"), ValueError, r"epochs='10': expected a finite number"),
    (dict(activation="Sigmoid"), ValueError, r"activation='Sigmoid': expected one of \['Tanh'"),
    (dict(mini_batch_size=0), ValueError, r"mini_batch_size=0: expected an integer in \[1, inf\)"),
    (dict(adaptive_rate=True, momentum_start=0.5), ValueError, r"momentum_start/momentum_stable must be 0"),
    (dict(stopping_metric="AUC"), ValueError, r"stopping_metric='AUC' is a classification metric"),
    (dict(hidden=[5], initial_weights=[np.full((5, 4), np.nan), None], initial_biases=[np.zeros(5), None]),
     ValueError, r"initial_weights=\[array\(.*entry 0 holds NaN or infinite values"),
    (dict(hidden=[5], initial_weights=[np.zeros((4, 5)), None], initial_biases=[np.zeros(5), None]),
     ValueError, r"initial_weights\[0\] has shape \(4, 5\); layer 1 of this network \(units \[4, 5, 3\]\) needs \(5, 4\)"),
    (dict(hidden=[5], initial_weights=[np.zeros((5, 4)), None], initial_biases=None),
     ValueError, r"layer 1 is given in initial_weights but not in initial_biases"),
]


@pytest.mark.parametrize("params, error, message", PARAMETER_CASES, ids=_ids(len(PARAMETER_CASES)))
def test_bad_parameters(iris, no_cluster, params, error, message):
    X, y = _xy(iris)
    kind = "reg" if "stopping_metric" in params else "clf"
    yy = iris["sepal_len"] if kind == "reg" else y
    with pytest.raises(error, match=message):
        _fit(kind, X.drop(columns="sepal_len") if kind == "reg" else X, yy, **params)


NUMBERS = [n for n, p in P.PARAMETERS.items()
           if isinstance(p.default, float) and not isinstance(p.default, bool) and n != "max_w2"]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_no_number_parameter_takes_a_non_finite_value(value):
    """case: every float parameter refuses inf/-inf/NaN (epochs=inf used to overflow in the loop)."""
    assert "epochs" in NUMBERS and "rate" in NUMBERS and len(NUMBERS) > 20
    for name in NUMBERS:
        with pytest.raises(ValueError, match=rf"{name}={value!r}: expected a finite number"):
            P.check_values({name: value})


def test_max_w2_inf_means_no_cap():
    """not an error: max_w2=inf is 'no limit', like its default (float32's max)."""
    assert P.resolve({"max_w2": math.inf}, "regression").caps_weights is False
    with pytest.raises(ValueError, match="max_w2=nan"):
        P.check_values({"max_w2": math.nan})


def test_unknown_parameter_names(no_cluster):
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['hiden'\]"):
        DeepLearningClassifier(hiden=[3])
    with pytest.raises(ValueError, match=r"invalid parameter\(s\) \['epoch'\]"):
        DeepLearningClassifier().set_params(epoch=3)
    with pytest.raises(ValueError, match="unknown parameter 'epoch'"):
        P.check_values({"epoch": 3})


# ------------------------------------------------------------------------ in-memory data
def _ids_frame(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "uid": [f"user-{i}" for i in rng.permutation(n)],
                         "y": rng.integers(0, 2, n).astype(str)})


def _wide_frame():
    """1,500 levels seen 4 times each: not an identifier, but wide."""
    n = 6000
    return pd.DataFrame({"x": np.arange(n, dtype=float), "shop": [f"s{i % 1500}" for i in range(n)],
                         "y": np.where(np.arange(n) % 3 == 0, "a", "b")})


DATA_CASES = [
    # (id, make(iris) -> (kind, X, y, fit kwargs), error type, message pattern)
    ("datetime column", lambda d: ("clf", d.assign(when=pd.Timestamp("2020-01-01")), "class", {}),
     DataError, r"column 'when' has dtype datetime64.*expected a numeric or categorical"),
    ("timedelta column", lambda d: ("clf", d.assign(dt=pd.to_timedelta(1, unit="s")), "class", {}),
     DataError, r"column 'dt' has dtype timedelta64"),
    ("complex column", lambda d: ("clf", d.assign(z=1 + 2j), "class", {}),
     DataError, r"column 'z' has complex dtype"),
    ("object column of Timestamps", lambda d: ("clf", d.assign(t=pd.Series([pd.Timestamp("2020-01-01")] * 150,
                                                                         dtype=object)), "class", {}),
     DataError, r"column 't' holds Timestamp values.*convert them to numbers"),
    ("object column of lists", lambda d: ("clf", d.assign(l=pd.Series([[1, 2]] * 149 + ["a"], dtype=object)),
                                          "class", {}),
     DataError, r"column 'l' holds list values.*expected strings or numbers"),
    ("object column of bytes", lambda d: ("clf", d.assign(b=pd.Series([b"x", b"y"] * 75, dtype=object)), "class", {}),
     DataError, r"column 'b' holds bytes values.*decode them"),
    ("inf in a predictor", lambda d: ("clf", d.assign(sepal_len=d["sepal_len"].where(d.index != 7, np.inf)),
                                      "class", {}),
     DataError, r"column 'sepal_len' holds infinite values; expected finite numbers or NA"),
    ("-inf in a numpy array", lambda d: ("reg", np.where(np.arange(150)[:, None] == 3, -np.inf,
                                                         d.iloc[:, 1:4].to_numpy()), d["sepal_len"], {}),
     DataError, r"column 'C1' holds infinite values"),
    ("inf in a regression response", lambda d: ("reg", d.drop(columns="sepal_len"),
                                                d["sepal_len"].where(d.index != 3, np.inf), {}),
     DataError, r"response 'sepal_len' holds infinite values; a regression target must be finite"),
    ("inf in a classification response", lambda d: ("clf", d.drop(columns=["class", "sepal_len"]),
                                                    d["sepal_len"].round().where(d.index != 3, np.inf), {}),
     DataError, r"response 'sepal_len' holds infinite values; class labels must be finite"),
    ("response entirely NA", lambda d: ("clf", d.assign(**{"class": np.nan}), "class", {}),
     DataError, r"response 'class' is entirely NA"),
    ("empty frame", lambda d: ("clf", d.iloc[:0], "class", {}), DataError, r"the training data has no rows"),
    ("one-row frame", lambda d: ("reg", d.drop(columns="class").iloc[:1], [1.5], {}),
     DataError, r"response 'y' has a value in only 1 row; training needs at least 2 rows"),
    ("one row with a response", lambda d: ("reg", d.drop(columns="class"), [1.0] + [np.nan] * 149, {}),
     DataError, r"only 1 row"),
    ("single class", lambda d: ("clf", d.assign(**{"class": "same"}), "class", {}),
     DataError, r"response 'class' has a single class 'same'; a classifier needs at least 2"),
    ("string response for a regressor", lambda d: ("reg", d, "class", {}),
     DataError, r"response 'class' has dtype .*needs a numeric response"),
    ("duplicate column names", lambda d: ("clf", pd.concat([d, d[["sepal_len", "petal_len"]]], axis=1), "class", {}),
     DataError, r"X has duplicated column name\(s\) \['sepal_len', 'petal_len'\]"),
    ("reserved column name", lambda d: ("clf", d.assign(__dask_dl_response__=1.0), "class", {}),
     DataError, r"column named '__dask_dl_response__'.*reserves"),
    ("response column missing", lambda d: ("clf", d, "species", {}),
     DataError, r"response column 'species' is not a column of X"),
    ("y missing", lambda d: ("clf", d, None, {}), DataError, r"y is missing"),
    ("X/y length mismatch", lambda d: ("clf", d.drop(columns="class"), d["class"].iloc[:10], {}),
     DataError, r"y has 10 values but X has 150 rows"),
    ("2-D y", lambda d: ("reg", d.drop(columns="class"), np.zeros((150, 2)), {}),
     DataError, r"y must hold one value per row \(1-dimensional\), got shape \(150, 2\)"),
    ("1-D X", lambda d: ("clf", d["sepal_len"], "class", {}), DataError, r"X must be 2-dimensional"),
    ("3-D X", lambda d: ("clf", np.zeros((150, 2, 2)), d["class"], {}), DataError, r"X must be 2-dimensional"),
    ("no feature columns", lambda d: ("clf", d[["class"]], "class", {}),
     DataError, r"X has no feature columns besides the response"),
    ("only constant columns", lambda d: ("clf", d.assign(sepal_len=1.0, sepal_wid=1.0, petal_len=1.0, petal_wid=1.0),
                                         "class", {}),
     DataError, r"no usable input column: every column is constant or entirely NA"),
    ("all-NA column kept", lambda d: ("clf", d.assign(z=np.nan), "class", {"ignore_const_cols": False}),
     DataError, r"column 'z' is entirely NA; drop it or set ignore_const_cols=True"),
    ("poisson with negative y", lambda d: ("reg", d.drop(columns="class"), d["sepal_len"] - 6,
                                           {"distribution": "poisson"}),
     DataError, r"response 'sepal_len' has negative values .*needs y >= 0"),
    ("high-cardinality string column", lambda d: ("clf", _ids_frame(), "y", {}),
     DataError, r"categorical column 'uid' has 3,000 distinct values in 3,000 rows: it looks like an identifier"
                r".*more than 1,000 levels.*drop the column"),
    ("input layer over the memory budget", lambda d: ("clf", _wide_frame(), "y", {"hidden": [60000]}),
     DataError, r"the input layer would have 1,50\d inputs: its weights and optimizer state for 60000 first-layer "
                r"units take 1\.01 GiB per model copy, more than dask_dl's 1 GiB limit \(widest categorical "
                r"columns: 'shop' \(1,500 levels\)\)"),
    ("dask X, in-memory y", lambda d: ("clf", dd.from_pandas(d.drop(columns="class"), npartitions=2), d["class"], {}),
     DataError, r"X is a dask DataFrame but y is in memory"),
    ("dask X/y partitioned differently", lambda d: ("clf", dd.from_pandas(d.drop(columns="class"), npartitions=2),
                                                    dd.from_pandas(d["class"], npartitions=3), {}),
     DataError, r"y has 3 partitions but X has 2"),
    ("dask X/y lengths differ, known divisions",
     lambda d: ("clf", dd.from_pandas(d.drop(columns="class"), npartitions=2),
                dd.from_pandas(d["class"].iloc[:140], npartitions=2), {}),
     DataError, r"y has 140 values but X has 150 rows"),
    ("dask X/y lengths differ, unknown divisions",
     lambda d: ("clf", dd.from_pandas(d.drop(columns="class"), npartitions=2).clear_divisions(),
                dd.from_pandas(d["class"].iloc[:149], npartitions=2).clear_divisions(), {}),
     DataError, r"y has 149 values but X has 150 rows"),
    ("dask arrays of different lengths",
     lambda d: ("clf", da.from_array(d.iloc[:, :4].to_numpy(), chunks=(75, 4)),
                da.from_array(np.arange(140) % 2, chunks=70), {}),
     DataError, r"y has 140 values but X has 150 rows"),
]


@pytest.mark.parametrize("make, error, message", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_bad_data_fails_before_cluster_work(iris, no_cluster, make, error, message):
    kind, X, y, params = make(iris)
    with pytest.raises(error, match=message):
        _fit(kind, X, y, **params)


VALIDATION_CASES = [
    ("validation lacks a column", lambda d: d.drop(columns="petal_wid"),
     r"validation_data lacks column\(s\) \['petal_wid'\] that the model was trained on"),
    ("validation has an extra column", lambda d: d.assign(extra=1.0),
     r"validation_data has column\(s\) \['extra'\] that the model was not trained on"),
    ("validation column of another type", lambda d: d.assign(sepal_len=d["sepal_len"].astype(str)),
     r"column 'sepal_len' is categorical in validation_data but was numeric in training"),
    ("validation duplicate columns", lambda d: pd.concat([d, d[["sepal_len"]]], axis=1),
     r"validation_data has duplicated column name\(s\) \['sepal_len'\]"),
    ("validation lacks the response", lambda d: d.drop(columns="class"),
     r"response column 'class' is not a column of validation_data"),
    ("validation response has a new class", lambda d: d.assign(**{"class": d["class"].where(d.index != 5, "Iris-new")}),
     r"validation_data: response 'class' has classes \['Iris-new'\] that the training data does not have"),
    ("validation inf", lambda d: d.assign(petal_len=d["petal_len"].where(d.index != 5, np.inf)),
     r"validation_data: column 'petal_len' holds infinite values"),
    ("validation as a 3-tuple", lambda d: (d, d, d),
     r"validation_data must be an \(X, y\) pair or a DataFrame holding the response"),
]


@pytest.mark.parametrize("make, message", [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
def test_bad_validation_data_fails_before_cluster_work(iris, no_cluster, make, message):
    with pytest.raises(DataError, match=message):
        _fit("clf", iris, "class", validation_data=make(iris))


def test_accepted_as_h2o_does(iris):
    """not errors: NaN predictors (mean-imputed), NA responses (rows skipped), predictor levels the
    training data lacks (the missing slot), in training and validation data."""
    cfg = P.resolve(FAST, "classification", n_classes=2)
    d = iris.assign(sepal_len=iris["sepal_len"].where(iris.index % 7 != 0), kind=np.where(iris.index % 2, "a", "b"))
    d["class"] = d["class"].where(d.index % 11 != 0)
    valid = d.assign(kind="never seen")
    frame, columns, vframe, _ = checked_training_input(d, "class", "classification", cfg, valid)
    assert columns.features["kind"] == "categorical" and vframe is not None


# -------------------------------------------------------------------- dask: statistics pass
def _dask_rows_where(d, keep):
    f = dd.from_pandas(d.assign(keep=keep), npartitions=2)
    return f[f["keep"]].drop(columns="keep")


DASK_CASES = [
    ("dask: inf in a classification response",
     lambda d: (dd.from_pandas(d.assign(c=d["sepal_len"].round().where(d.index != 100, np.inf))
                               .drop(columns="class"), npartitions=2), "c"),
     r"response 'c' holds infinite values; class labels must be finite"),
    ("dask: inf in a predictor",
     lambda d: (dd.from_pandas(d.assign(petal_wid=d["petal_wid"].where(d.index != 120, -np.inf)), npartitions=2),
                "class"),
     r"column 'petal_wid' holds infinite values"),
    ("dask: high-cardinality string column", lambda d: (dd.from_pandas(_ids_frame(), npartitions=3), "y"),
     r"categorical column 'uid' has 3,000 distinct values in 3,000 rows"),
    ("dask: empty frame", lambda d: (_dask_rows_where(d, d["sepal_len"] > 100), "class"),
     r"the training data has no rows"),
    ("dask: one row", lambda d: (dd.from_pandas(d.drop(columns="class").assign(t=[1.0] + [np.nan] * 149),
                                                npartitions=2), "t"),
     r"response 't' has a value in only 1 row"),
    ("dask: single class", lambda d: (_dask_rows_where(d, d["class"] == "Iris-setosa"), "class"),
     r"response 'class' has a single class 'Iris-setosa'"),
    ("dask: gamma with y <= 0", lambda d: (dd.from_pandas(d.drop(columns="class").assign(t=d["sepal_len"] - 5),
                                                        npartitions=2), "t"),
     r"response 't' has values <= 0 .*distribution='gamma' needs y > 0"),
]


@pytest.mark.parametrize("make, message", [c[1:] for c in DASK_CASES], ids=[c[0] for c in DASK_CASES])
def test_bad_dask_data_fails_before_training(iris, client2, no_training, make, message):
    X, y = make(iris)
    kind = "clf" if y in ("class", "c", "y") else "reg"
    with pytest.raises(DataError, match=message):
        _fit(kind, X, y, client=client2, **({"distribution": "gamma"} if "gamma" in message else {}))


def test_bad_dask_validation_fails_before_training(iris, client2, no_training):
    train = dd.from_pandas(iris[iris["class"] != "Iris-virginica"], npartitions=2)
    with pytest.raises(DataError, match="Iris-virginica"):
        _fit("clf", train, "class", validation_data=dd.from_pandas(iris, npartitions=2), client=client2)


# ----------------------------------------------------------------------------- model files
@pytest.fixture(scope="module")
def model(iris):
    return small_model(iris)


def small_model(iris):
    """A small multinomial model built without a cluster (its statistics from the in-memory pass)."""
    from dask_dl.data.schema import in_memory_data_info
    cfg = P.resolve(dict(hidden=[4], seed=1), "classification", n_classes=3)
    frame, cols, _, _ = checked_training_input(iris, "class", "classification", cfg)
    info = in_memory_data_info(frame, cols.features, cfg.params, "classification", "class", cfg.distribution)
    layout = build_layout(info.n_inputs, [4], "Rectifier", 3, True, 0.0, [0.0])
    state = initial_state(layout, 1, "UniformAdaptive", 1.0)
    return DeepLearningModel(layout, state, info, cfg.params, "multinomial", "multinomial", "CrossEntropy", [])


def _rewrite(data: bytes, edit_meta=None, state=None, checksum: bool = True) -> bytes:
    """The file with its metadata edited and/or its state replaced; ``checksum``: as written by a
    writer that produced this state (the checksum follows it), else left as it was."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        meta, old_state = json.loads(z["metadata"].tobytes().decode("utf-8")), np.array(z["state"])
    if edit_meta is not None:
        edit_meta(meta)
    if state is not None and checksum:
        from dask_dl.persist import state_checksum
        meta["state_sha256"] = state_checksum(state)
    buf = io.BytesIO()
    np.savez(buf, state=old_state if state is None else state,
             metadata=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    return buf.getvalue()


def _nan_state(m):
    s = m.state.copy()
    s[[1, 5]] = np.nan
    return s


def _flip_bytes(data: bytes) -> bytes:
    b = bytearray(data)
    b[len(b) // 2:len(b) // 2 + 32] = b"\xff" * 32
    return bytes(b)


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(3.0))
    return buf.getvalue()


MODEL_FILE_CASES = [
    ("truncated file", lambda m, b: b[:len(b) // 2], r"damaged or not a dask_dl model file: it is not a complete "
                                                     r"\.npz \(zip\) archive; truncated or corrupted"),
    ("corrupted bytes", lambda m, b: _flip_bytes(b), r"damaged or not a dask_dl model file"),
    ("empty file", lambda m, b: b"", r"damaged or not a dask_dl model file: the file is empty"),
    ("a CSV file", lambda m, b: b"a,b\n1,2\n", r"it is not an \.npz archive of plain arrays"),
    ("a bare .npy array", lambda m, b: _npy(), r"it is a single \.npy array, not an \.npz archive"),
    ("NaN weights", lambda m, b: _rewrite(b, state=_nan_state(m)), r"its weights hold 2 NaN/inf values"),
    ("missing column mean", lambda m, b: _rewrite(b, lambda d: d["info"]["columns"][0].pop("mean")),
     r"metadata field\(s\) info\.columns\[0\]\.mean \(column 'sepal_len'\) missing"),
    ("missing classes", lambda m, b: _rewrite(b, lambda d: d["info"].pop("classes")),
     r"metadata field\(s\) info\.classes missing"),
    ("missing kind", lambda m, b: _rewrite(b, lambda d: d.pop("kind")), r"metadata field\(s\) kind missing"),
    ("column sigma not a number", lambda m, b: _rewrite(b, lambda d: d["info"]["columns"][1].update(sigma=None)),
     r"info\.columns\[1\]\.sigma \(column 'sepal_wid'\) is None, not a finite number"),
    ("layout does not fit the columns", lambda m, b: _rewrite(b, lambda d: d["info"]["columns"].pop()),
     r"its layout \(4 inputs, 3 outputs\) does not fit its column metadata \(3 inputs, 3 outputs\)"),
    ("state of the wrong size", lambda m, b: _rewrite(b, state=m.state[:-7]), r"corrupt or cut short"),
    ("weights changed after writing", lambda m, b: _rewrite(b, state=_nan_state(m), checksum=False),
     r"its weights do not match the checksum written with them"),
    ("newer format version", lambda m, b: _rewrite(b, lambda d: d.update(format_version=FORMAT_VERSION + 1)),
     rf"model file format version {FORMAT_VERSION + 1} of '.*' is newer than this dask_dl understands"),
]


@pytest.mark.parametrize("make, message", [c[1:] for c in MODEL_FILE_CASES], ids=[c[0] for c in MODEL_FILE_CASES])
def test_bad_model_files_are_refused_when_loaded(model, tmp_path, make, message):
    path = tmp_path / "model.npz"
    path.write_bytes(make(model, model_to_bytes(model)))
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(str(path))
    assert str(path) in str(err.value)  # the file is named
    assert "allow_pickle" not in str(err.value)
    with pytest.raises(ValueError):  # ModelFileError is a ValueError
        model_from_bytes(path.read_bytes())


def test_a_sound_file_still_loads_and_predicts(model, tmp_path, iris):
    path = tmp_path / "ok.npz"
    model.save(str(path))
    back = load_model(str(path))
    np.testing.assert_array_equal(back.predict(iris.drop(columns="class")), model.predict(iris.drop(columns="class")))


def test_predict_frame_checks_the_columns(model, iris):
    with pytest.raises(DataError, match=r"the data lacks column\(s\) \['petal_wid'\]"):
        model.predict_frame(iris.drop(columns="petal_wid"))
    with pytest.raises(DataError, match=r"the data has duplicated column name\(s\) \['sepal_len'\]"):
        model.predict_frame(pd.concat([iris, iris[["sepal_len"]]], axis=1))


# -------------------------------------------------------------------------------- the CLI
def _cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err.getvalue(), err.getvalue()
    return code, lines[0]


def test_cli_missing_file_and_unreadable_url(tmp_path, no_cluster):
    code, line = _cli(["train", tmp_path / "nope.csv", "--y", "class", "--model-out", tmp_path / "m.npz"])
    assert code == 1 and f"cannot read training data '{tmp_path / 'nope.csv'}': no such file" in line
    from s3server import free_port
    url = f"http://127.0.0.1:{free_port()}/train.csv"  # nothing listens there
    code, line = _cli(["train", url, "--y", "class", "--model-out", tmp_path / "m.npz"])
    assert code == 1 and f"cannot read training data '{url}'" in line
    assert "no such file" not in line and "Connect" in line  # a refused connection is not a missing file


def test_cli_bad_model_files(model, tmp_path, iris, no_cluster):
    """A damaged model, one missing a metadata field (dask-dl predict used to exit 0 on it) and a
    newer format exit 1 with one line naming the file."""
    iris.to_csv(tmp_path / "iris.csv", index=False)
    data = model_to_bytes(model)
    files = {"cut.npz": data[:100], "nomean.npz": _rewrite(data, lambda d: d["info"]["columns"][2].pop("mean")),
             "future.npz": _rewrite(data, lambda d: d.update(format_version=FORMAT_VERSION + 1))}
    expect = {"cut.npz": "is damaged or not a dask_dl model file", "nomean.npz": "info.columns[2].mean",
              "future.npz": "is newer than this dask_dl understands"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        code, line = _cli(["predict", tmp_path / name, tmp_path / "iris.csv", "--out", tmp_path / "p.csv"])
        assert code == 1 and str(tmp_path / name) in line and expect[name] in line, line
        assert not (tmp_path / "p.csv").exists()


def test_saving_to_a_missing_s3_bucket_is_refused(model, iris, tmp_path, no_cluster):
    """save() used to create the bucket; the CLI refuses --model-out there before any training."""
    from s3server import moto_s3
    import s3fs
    with moto_s3("models") as (_server, so, bucket):
        with pytest.raises(FileNotFoundError, match=r"S3 bucket 'no-such-bucket' does not exist"):
            model.save("s3://no-such-bucket/m.npz", storage_options=so)
        fs = s3fs.S3FileSystem(**so)
        assert fs.ls("") == [bucket]  # nothing was created
        assert load_model(model.save(f"s3://{bucket}/m.npz", storage_options=so), so).kind == "multinomial"
        iris.to_csv(tmp_path / "iris.csv", index=False)
        opts = [f"--storage-option=client_kwargs.endpoint_url={so['client_kwargs']['endpoint_url']}",
                f"--storage-option=key={so['key']}", f"--storage-option=secret={so['secret']}"]
        code, line = _cli(["train", tmp_path / "iris.csv", "--y", "class", "--model-out", "s3://no-such-bucket/m.npz"]
                          + opts)
        assert code == 1 and "S3 bucket 'no-such-bucket' does not exist" in line
