"""The public API in the scikit-learn idiom, and clear errors for bad input before any cluster work."""
import os

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from dask_dl import DataError, DeepLearningClassifier, DeepLearningRegressor
from dask_dl.params import DEFAULTS

FAST = dict(hidden=[8], epochs=1, seed=1, quiet_mode=True)


def test_params_follow_h2o_names_and_defaults():
    clf = DeepLearningClassifier()
    params = clf.get_params()
    assert params["hidden"] == [200, 200] and params["epochs"] == 10 and params["activation"] == "Rectifier"
    assert params["rho"] == 0.99 and params["epsilon"] == 1e-8 and params["adaptive_rate"] is True
    assert set(params) == set(DEFAULTS)
    reg = DeepLearningRegressor(hidden=[3], l2=1e-4)
    assert reg.get_params()["hidden"] == [3] and reg.get_params()["l2"] == 1e-4


def test_clone_and_set_params():
    clf = DeepLearningClassifier(hidden=[5, 4], epochs=2.5)
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == clf.get_params()
    twin.set_params(epochs=3)
    assert twin.epochs == 3 and clf.epochs == 2.5
    with pytest.raises(ValueError, match="nonsense"):
        twin.set_params(nonsense=1)


def test_unknown_parameter_is_refused_by_name():
    with pytest.raises(TypeError, match="hiden"):
        DeepLearningClassifier(hiden=[3])


@pytest.mark.parametrize("bad, named", [
    (dict(activation="Sigmoid"), "activation"),
    (dict(epochs=-1), "epochs"),
    (dict(hidden=[10, 0]), "hidden"),
    (dict(rho=2.0), "rho"),
    (dict(input_dropout_ratio=1.0), "input_dropout_ratio"),
    (dict(hidden_dropout_ratios=[0.2]), "hidden_dropout_ratios"),
    (dict(train_samples_per_iteration=-7), "train_samples_per_iteration"),
    (dict(adaptive_rate=True, momentum_start=0.5), "momentum"),
    (dict(loss="Absolute"), "loss"),
])
def test_bad_parameters_fail_before_cluster_work(iris, no_cluster, bad, named):
    with pytest.raises(ValueError, match=named):
        DeepLearningClassifier(**{**FAST, **bad}).fit(iris, "class")


@pytest.mark.parametrize("make, message", [
    (lambda df: (df, None), "y is missing"),
    (lambda df: (df, "no_such_column"), "no_such_column"),
    (lambda df: (df.iloc[:0], "class"), "no rows"),
    (lambda df: (df.assign(**{"class": np.nan}), "class"), "entirely NA"),
    (lambda df: (df.assign(**{"class": "same"}), "class"), "single class"),
    (lambda df: (df.assign(when=pd.Timestamp("2020-01-01")), "class"), "'when'"),
    (lambda df: (df.drop(columns="class"), df["class"].iloc[:10]), "10 values"),
    (lambda df: (df["sepal_len"], "class"), "2-dimensional"),
])
def test_bad_input_is_named_before_cluster_work(iris, no_cluster, make, message):
    X, y = make(iris)
    with pytest.raises(DataError, match=message):
        DeepLearningClassifier(**FAST).fit(X, y)


def test_regression_target_checks(wine, no_cluster):
    X = wine.drop(columns=["quality"])
    y = wine["quality"].astype(float).copy()
    y.iloc[3] = np.inf
    with pytest.raises(DataError, match="infinite"):
        DeepLearningRegressor(**FAST).fit(X, y)
    with pytest.raises(DataError, match="numeric response"):
        DeepLearningRegressor(**FAST).fit(X.assign(q=wine["type"]), "q")


def test_validation_and_predict_columns_must_match(iris, client2):
    clf = DeepLearningClassifier(**FAST)
    with pytest.raises(DataError, match="lacks column"):
        clf.fit(iris, "class", validation_data=iris.drop(columns=["petal_wid"]))
    clf.fit(iris, "class")
    with pytest.raises(DataError, match="petal_len"):
        clf.predict(iris.drop(columns=["class", "petal_len"]))
    with pytest.raises(DataError, match="extra_col"):
        clf.predict(iris.assign(extra_col=1.0))
    with pytest.raises(DataError, match="categorical in X but was numeric"):
        clf.predict(iris.assign(sepal_len=iris["sepal_len"].astype(str)))
    # a validation class the training data lacks is named (the validation encoding runs beside the
    # training encoding on the workers; its error must still surface, as the DataError it is)
    train = iris[iris["class"] != "Iris-virginica"]
    with pytest.raises(DataError, match="Iris-virginica"):
        DeepLearningClassifier(**FAST).fit(train, "class", validation_data=iris)


def test_help_documents_every_parameter_with_its_default():
    from dask_dl.params import PARAMETERS
    for cls in (DeepLearningClassifier, DeepLearningRegressor):
        doc = cls.__doc__
        assert "\nParameters\n----------\n" in doc and "\nAttributes\n----------\n" in doc
        for name, p in PARAMETERS.items():
            assert f"\n{name} : " in doc and f", default={p.default!r}\n" in doc, name


def test_unfitted_predict_is_refused():
    with pytest.raises(RuntimeError, match="not fitted"):
        DeepLearningClassifier().predict(np.zeros((2, 2)))


def test_dask_in_lazy_out_and_agrees_with_pandas(iris, client2):
    ddf = dd.from_pandas(iris, npartitions=3)
    clf = DeepLearningClassifier(**FAST).fit(ddf, "class", validation_data=ddf)
    assert list(clf.classes_) == ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]
    assert clf.n_features_in_ == 4 and list(clf.feature_names_in_) == list(iris.columns[:4])
    X = iris.drop(columns=["class"])
    lazy_p = clf.predict_proba(dd.from_pandas(X, npartitions=2))
    lazy_y = clf.predict(dd.from_pandas(X, npartitions=2))
    assert isinstance(lazy_p, da.Array) and isinstance(lazy_y, da.Array)
    eager_p = clf.predict_proba(X)
    assert isinstance(eager_p, np.ndarray) and eager_p.shape == (150, 3)
    np.testing.assert_allclose(lazy_p.compute(), eager_p, atol=1e-6)
    np.testing.assert_allclose(eager_p.sum(axis=1), 1.0, atol=1e-5)
    assert (lazy_y.compute() == clf.predict(X)).all()
    assert set(clf.predict(X)) <= set(clf.classes_)


def test_numpy_and_dask_arrays(client2, iris):
    X = iris.drop(columns=["class"]).to_numpy()
    y = (iris["class"] == "Iris-setosa").to_numpy().astype(int)
    clf = DeepLearningClassifier(**{**FAST, "epochs": 20}).fit(X, y)
    assert list(clf.classes_) == [0, 1] and list(clf.feature_names_in_) == ["C1", "C2", "C3", "C4"]
    dX, dy = da.from_array(X, chunks=(50, 4)), da.from_array(y, chunks=50)
    clf2 = DeepLearningClassifier(**FAST).fit(dX, dy)
    out = clf2.predict_proba(dX)
    assert isinstance(out, da.Array) and out.compute().shape == (150, 2)
    assert clf.score(X, y) > 0.9  # setosa is linearly separable


def test_pipeline_and_score(client2, wine):
    X = wine.drop(columns=["quality", "type"])
    y = wine["quality"].astype(float)
    pipe = Pipeline([("log", FunctionTransformer(np.log1p)), ("dl", DeepLearningRegressor(**FAST))])
    pipe.fit(X, y)
    pred = pipe.predict(X)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    r2 = pipe.score(X, y)
    from sklearn.metrics import r2_score
    assert abs(r2 - r2_score(y, pred)) < 1e-9
    assert clone(pipe).named_steps["dl"].get_params()["hidden"] == [8]


def test_model_report(client2, iris):
    clf = DeepLearningClassifier(**{**FAST, "hidden": [6, 5]}).fit(iris, "class")
    hist = clf.model_.scoring_history()
    for col in ("timestamp", "duration", "training_speed", "epochs", "iterations", "samples",
                "training_rmse", "training_logloss", "training_classification_error"):
        assert col in hist.columns
    assert hist["epochs"].iloc[0] == 0 and np.isnan(hist["training_logloss"].iloc[0])  # H2O's dummy row 0
    assert hist["epochs"].iloc[-1] == pytest.approx(1.0)
    text = clf.model_.summary()
    assert "Status of Neuron Layers" in text and "Softmax" in text and "Rectifier" in text
    assert clf.model_.weights(1).shape == (6, 4) and clf.model_.weights(3).shape == (3, 5)


def test_embedded_cluster_when_no_client(iris):
    from dask_dl.cluster.session import active_client
    assert active_client() is None
    clf = DeepLearningClassifier(**FAST).fit(iris, "class")
    assert clf.model_.run["epochs"] == pytest.approx(1.0)
    assert active_client() is None  # the embedded cluster was closed again


def test_embedded_cluster_shape_follows_the_kernel():
    from dask_dl.cluster.session import embedded_shape
    assert embedded_shape(2) == (2, 1) and embedded_shape(16) == (4, 4)      # per sample: a worker per core, <= 4
    assert embedded_shape(2, mini_batch=True) == (1, 2)                        # mini-batches: threads share a copy
    assert embedded_shape(8, mini_batch=True) == (1, 8) and embedded_shape(16, mini_batch=True) == (2, 8)
    assert embedded_shape(1) == (1, 1) and embedded_shape(1, mini_batch=True) == (1, 1)
    # per sample with thread_local_models: the threads' own copies are averaged in memory, fat workers
    assert embedded_shape(2, thread_copies=True) == (1, 2) and embedded_shape(16, thread_copies=True) == (2, 8)


def test_embedded_cluster_for_thread_local_models_is_one_worker(iris):
    from dask_dl.cluster.session import embedded_shape
    clf = DeepLearningClassifier(**{**FAST, "thread_local_models": True}).fit(iris, "class")
    assert clf.model_.run["workers"] == embedded_shape(os.cpu_count() or 1, thread_copies=True)[0]
    assert clf.model_.run["workers"] == 1 or (os.cpu_count() or 1) >= 16
    clf = DeepLearningClassifier(**FAST).fit(iris, "class")  # H2O's shared copy: a worker per core
    assert clf.model_.run["workers"] == embedded_shape(os.cpu_count() or 1)[0]


def _profiler_state(dask_worker):
    import dask
    return dask.config.get("distributed.worker.profile.enabled"), "profile" in dask_worker.periodic_callbacks


def test_embedded_cluster_workers_run_without_the_profiler():
    """The workers of dask_dl's own LocalCluster do not sample their task threads' stacks every 10 ms
    (LOCAL_CLUSTER_CONFIG), and starting one leaves this process's Dask configuration as it was."""
    import dask

    from dask_dl.cluster.session import local_client
    before = dask.config.get("distributed.worker.profile.enabled")
    with local_client(1, 1, dashboard_address=None) as client:
        assert list(client.run(_profiler_state).values()) == [(False, False)]
    assert dask.config.get("distributed.worker.profile.enabled") == before



def test_embedded_cluster_for_mini_batches_is_one_worker(iris):
    from dask_dl.cluster.session import embedded_shape
    clf = DeepLearningClassifier(**{**FAST, "mini_batch_size": 8}).fit(iris, "class")
    assert clf.model_.run["workers"] == embedded_shape(os.cpu_count() or 1, mini_batch=True)[0]
    assert clf.model_.run["workers"] == 1 or (os.cpu_count() or 1) >= 16


def test_estimator_pickles_without_client(client2, iris):
    import pickle
    clf = DeepLearningClassifier(**FAST, client=client2).fit(iris, "class")
    back = pickle.loads(pickle.dumps(clf))
    assert back.client is None
    np.testing.assert_allclose(back.predict_proba(iris), clf.predict_proba(iris))


def test_ignored_columns_do_not_train_and_may_stay_in_the_data(client2, iris):
    X = iris.assign(ID=np.arange(len(iris)))
    clf = DeepLearningClassifier(hidden=[4], epochs=1, seed=1, quiet_mode=True, ignored_columns=["ID", "sepal_len"])
    clf.fit(X, "class", validation_data=X)
    assert list(clf.feature_names_in_) == ["sepal_wid", "petal_len", "petal_wid"]
    assert clf.model_.info.feature_names == ["sepal_wid", "petal_len", "petal_wid"]
    proba = clf.predict_proba(X.drop(columns=["class"]))  # ID and sepal_len present: allowed
    np.testing.assert_array_equal(proba, clf.predict_proba(X[["sepal_wid", "petal_len", "petal_wid"]]))
    assert clf.model_performance(X)["nobs"] == len(X)
    with pytest.raises(DataError, match=r"ignored_columns names \['nope'\], which X does not have"):
        DeepLearningClassifier(ignored_columns=["nope"]).fit(X, "class")
    with pytest.raises(DataError, match="ignored_columns names the response 'class'"):
        DeepLearningClassifier(ignored_columns=["class"]).fit(X, "class")
    with pytest.raises(ValueError, match="ignored_columns='ID': expected None or a list of column names"):
        DeepLearningClassifier(ignored_columns="ID").fit(X, "class")
