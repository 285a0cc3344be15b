"""Deployment export (issue 20, point 4b): model.to_python(path) writes one Python file needing
only numpy whose score(columns) returns what predict_proba / predict / reconstruct return."""
import ast
import importlib.util

import numpy as np
import pandas as pd
import pytest

from dask_dl import DeepLearningAutoencoder, DeepLearningClassifier, DeepLearningRegressor

QUIET = dict(quiet_mode=True, seed=1)


def _scorer(model, tmp_path, name):
    path = tmp_path / f"{name}.py"
    model.to_python(str(path))
    tree = ast.parse(path.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    assert imported <= {"base64", "json", "numpy"}, imported  # numpy and the standard library only
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _columns(df):
    return {c: df[c].to_numpy() for c in df.columns}


@pytest.mark.parametrize("params", [dict(activation="RectifierWithDropout", hidden_dropout_ratios=[0.3]),
                                    dict(activation="Maxout", balance_classes=True),
                                    dict(categorical_encoding="Binary"),
                                    dict(max_categorical_features=8, activation="Tanh"),
                                    dict(categorical_encoding="Eigen", use_all_factor_levels=False)],
                         ids=["dropout", "maxout-balanced", "binary", "hashed", "eigen-k-1"])
def test_classifier_scorer_matches_predict_proba(client2, covtype, tmp_path, params):
    df = covtype.sample(3000, random_state=0).reset_index(drop=True)
    clf = DeepLearningClassifier(hidden=[16], epochs=1, client=client2, **QUIET, **params).fit(df, "Cover_Type")
    X = df.drop(columns="Cover_Type").iloc[:500].copy()
    X.loc[X.index[:5], "Elevation"] = np.nan  # imputation
    X["Soil_Type"] = X["Soil_Type"].astype(object)
    X.loc[X.index[5:8], "Soil_Type"] = None
    X.loc[X.index[8], "Soil_Type"] = "an unseen level"
    scorer = _scorer(clf.model_, tmp_path, "covtype_scorer")
    np.testing.assert_allclose(scorer.score(_columns(X)), clf.predict_proba(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("params", [dict(), dict(distribution="poisson", offset_column="o"),
                                    dict(distribution="tweedie", standardize=False)])
def test_regressor_scorer_matches_predict(client2, wine, tmp_path, params):
    df = wine.sample(2000, random_state=1).reset_index(drop=True).assign(o=np.linspace(-0.5, 0.5, 2000))
    if "offset_column" not in params:
        df = df.drop(columns="o")
    reg = DeepLearningRegressor(hidden=[8], epochs=1, client=client2, **QUIET, **params).fit(df, "quality")
    X = df.drop(columns="quality")
    scorer = _scorer(reg.model_, tmp_path, "wine_scorer")
    np.testing.assert_allclose(scorer.score(_columns(X)), reg.predict(X), rtol=1e-5, atol=1e-6)


def test_autoencoder_scorer_matches_reconstruct(client2, iris, tmp_path):
    ae = DeepLearningAutoencoder(hidden=[5], activation="Tanh", epochs=2, client=client2, **QUIET).fit(iris)
    scorer = _scorer(ae.model_, tmp_path, "iris_ae_scorer")
    np.testing.assert_allclose(scorer.score(_columns(iris)), ae.reconstruct(iris).to_numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError, match="column 'class' is missing"):
        scorer.score(_columns(iris.drop(columns="class")))


def _onnx_run(model, tmp_path, X, extra=None):
    import onnxruntime as ort
    path = str(tmp_path / "model.onnx")
    model.to_onnx(path)
    session = ort.InferenceSession(path)
    feeds = {}
    for inp in session.get_inputs():
        col = X[inp.name]
        if inp.type == "tensor(string)":
            feeds[inp.name] = np.array([["" if v is None or v != v else str(v)] for v in col], dtype=object)
        else:
            feeds[inp.name] = col.to_numpy(np.float32)[:, None]
    assert {i.name for i in session.get_inputs()} <= set(X.columns)  # one input per original column
    return session.run(["output"], feeds)[0]


@pytest.mark.parametrize("params", [dict(activation="RectifierWithDropout", hidden_dropout_ratios=[0.3]),
                                    dict(activation="Maxout", balance_classes=True),
                                    dict(use_all_factor_levels=False, categorical_encoding="EnumLimited")],
                         ids=["dropout", "maxout-balanced", "k-1-enum-limited"])
def test_onnx_classifier_matches_predict_proba(client2, covtype, tmp_path, params):
    df = covtype.sample(3000, random_state=0).reset_index(drop=True)
    clf = DeepLearningClassifier(hidden=[16], epochs=1, client=client2, **QUIET, **params).fit(df, "Cover_Type")
    X = df.drop(columns="Cover_Type").iloc[:300].copy()
    X.loc[X.index[:5], "Elevation"] = np.nan
    X["Soil_Type"] = X["Soil_Type"].astype(object)
    X.loc[X.index[5:8], "Soil_Type"] = None
    X.loc[X.index[8], "Soil_Type"] = "an unseen level"
    np.testing.assert_allclose(_onnx_run(clf.model_, tmp_path, X), clf.predict_proba(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("params", [dict(), dict(distribution="poisson", offset_column="o")])
def test_onnx_regressor_and_autoencoder(client2, wine, iris, tmp_path, params):
    df = wine.sample(1000, random_state=1).reset_index(drop=True).assign(o=np.linspace(-0.5, 0.5, 1000))
    if "offset_column" not in params:
        df = df.drop(columns="o")
    reg = DeepLearningRegressor(hidden=[8], epochs=1, client=client2, **QUIET, **params).fit(df, "quality")
    X = df.drop(columns="quality")
    np.testing.assert_allclose(_onnx_run(reg.model_, tmp_path, X).ravel(), reg.predict(X), rtol=1e-5, atol=1e-5)
    ae = DeepLearningAutoencoder(hidden=[5], activation="Tanh", epochs=1, client=client2, **QUIET).fit(iris)
    np.testing.assert_allclose(_onnx_run(ae.model_, tmp_path, iris), ae.reconstruct(iris).to_numpy(), rtol=1e-5,
                               atol=1e-5)


def test_onnx_refuses_encodings_it_cannot_express(client2, covtype, tmp_path):
    df = covtype.sample(500, random_state=0)
    clf = DeepLearningClassifier(hidden=[4], epochs=1, categorical_encoding="Binary", client=client2,
                                 **QUIET).fit(df, "Cover_Type")
    with pytest.raises(ValueError, match=r"to_onnx exports one-hot categorical columns.*to_python instead"):
        clf.model_.to_onnx(str(tmp_path / "m.onnx"))
