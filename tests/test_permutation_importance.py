"""Permutation variable importance (H2O's model.permutation_importance; issue 21 point 6): one row
per original column, on a bounded sample of pandas or dask data, scored on the client."""
import numpy as np
import pandas as pd
import pytest

from dask_dl import DeepLearningAutoencoder, DeepLearningClassifier, DeepLearningRegressor
from dask_dl.explain import permutation

QUIET = dict(seed=1, quiet_mode=True)


def _fit_in(cluster, make):
    from distributed import Client
    with Client(cluster):
        return make()


@pytest.fixture(scope="module")
def prostate_clf(cluster2, prostate):
    """CAPSULE with a pure-noise column added and ID ignored (H2O leaves ignored columns out)."""
    df = prostate.assign(NOISE=np.random.default_rng(0).normal(size=len(prostate)))
    clf = _fit_in(cluster2, lambda: DeepLearningClassifier(hidden=[16], epochs=20, ignored_columns=["ID"],
                                                           **QUIET).fit(df, "CAPSULE"))
    return clf, df


@pytest.fixture(scope="module")
def wine_reg(cluster2, wine):
    return _fit_in(cluster2, lambda: DeepLearningRegressor(hidden=[16], epochs=2, **QUIET).fit(wine, "quality"))


def _permuted(X: pd.DataFrame, model, feature: str, seed: int, run: int = 0) -> pd.DataFrame:
    """X with ``feature`` permuted as the implementation documents its row orders."""
    order = permutation(seed, run, list(model.info.feature_names).index(feature), len(X))
    return X.assign(**{feature: X[feature].to_numpy()[order]})


def test_prostate_binomial_auc_ranks_gleason_first(client2, prostate_clf):
    clf, df = prostate_clf
    table = clf.permutation_importance(df, n_samples=-1, seed=5)
    assert table.attrs["metric"] == "auc" and table.attrs["n_rows"] == len(df)  # AUTO: AUC, as H2O's binomial
    assert table.index.name == "Variable"
    assert list(table.columns) == ["Relative Importance", "Scaled Importance", "Percentage"]
    assert set(table.index) == {"AGE", "RACE", "DPROS", "DCAPS", "PSA", "VOL", "GLEASON", "NOISE"}  # no ID
    assert table["Relative Importance"].is_monotonic_decreasing
    assert table["Scaled Importance"].iloc[0] == 1.0 and table["Percentage"].sum() == pytest.approx(1.0)
    assert table.index[0] == "GLEASON" and "DPROS" in table.index[:3]  # the known strong predictors
    assert abs(table.loc["NOISE", "Relative Importance"]) < 0.2 * table.loc["GLEASON", "Relative Importance"]
    # by hand: AUC(original) - AUC(GLEASON permuted), the exact AUC from scikit-learn (dask_dl bins it)
    from sklearn.metrics import roc_auc_score
    y = df["CAPSULE"].to_numpy()
    auc = roc_auc_score(y, clf.predict_proba(df)[:, 1])
    auc_permuted = roc_auc_score(y, clf.predict_proba(_permuted(df, clf.model_, "GLEASON", 5))[:, 1])
    assert table.loc["GLEASON", "Relative Importance"] == pytest.approx(auc - auc_permuted, abs=2e-3)
    assert auc - auc_permuted > 0.05


def test_wine_value_by_hand_and_a_categorical_column_permuted_as_one(client2, wine_reg, wine):
    model = wine_reg.model_
    X, y = wine.drop(columns="quality"), wine["quality"].to_numpy()
    table = model.permutation_importance(X, wine["quality"], n_samples=-1, seed=7)
    assert table.attrs["metric"] == "rmse"  # AUTO for regression, as H2O
    assert sorted(table.index) == sorted(model.info.feature_names) and "type" in table.index
    assert not any("." in v for v in table.index)  # no one-hot level rows ...
    assert "type.red" in set(model.varimp()["variable"])  # ... which Gedeon's table has

    def rmse(frame):
        return np.sqrt(np.mean((y - model.predict(frame)) ** 2))
    for feature in ("alcohol", "type"):  # numeric, categorical (its level counts kept by the permutation)
        permuted = _permuted(X, model, feature, 7)
        expected = rmse(permuted) - rmse(X)
        assert expected > 0.01
        assert table.loc[feature, "Relative Importance"] == pytest.approx(expected, rel=1e-6)  # predict() is float32
        assert table.loc[feature, "Relative Importance"] == (model.model_performance(permuted, y)["rmse"]
                                                             - model.model_performance(X, y)["rmse"])
    # each feature's permutation is its own stream: asking for fewer features changes no value
    two = model.permutation_importance(X, y, n_samples=-1, seed=7, features=["type", "alcohol"])
    assert list(two.index) == ["alcohol", "type"]
    assert (two["Relative Importance"] == table.loc[["alcohol", "type"], "Relative Importance"]).all()


def test_wine_repeats_agree_with_scikit_learn(client2, wine_reg, wine):
    from scipy.stats import spearmanr
    from sklearn.inspection import permutation_importance as sk_permutation_importance
    X, y = wine.drop(columns="quality"), wine["quality"]
    ours = wine_reg.permutation_importance(wine, n_samples=-1, n_repeats=5, seed=0)
    assert list(ours.columns) == [f"Run {k}" for k in range(1, 6)]  # H2O's n_repeats > 1 table
    assert ours["Run 1"].is_monotonic_decreasing and len(set(map(tuple, ours.to_numpy().T))) == 5
    sk = sk_permutation_importance(wine_reg, X, y,  # the fitted estimator: a scikit-learn regressor
                                   scoring="neg_root_mean_squared_error",
                                   n_repeats=5, random_state=0)
    sk_mean = pd.Series(sk.importances_mean, index=X.columns).loc[ours.index]
    sk_sd = pd.Series(sk.importances_std, index=X.columns).loc[ours.index]
    mean, sd = ours.mean(axis=1), np.sqrt((ours.std(axis=1, ddof=0) ** 2 + sk_sd ** 2) / 2)
    assert list(mean.sort_values(ascending=False).index[:2]) == list(sk_mean.sort_values(ascending=False).index[:2])
    assert spearmanr(mean, sk_mean).statistic > 0.9
    # two means of 5 independent permutations each: within 4 standard errors of their difference
    assert (abs(mean - sk_mean) <= 4 * sd * np.sqrt(2 / 5) + 1e-3).all(), pd.DataFrame({"ours": mean, "sk": sk_mean})


def test_dask_frame_is_sampled_to_about_n_samples_rows(client2, wine_reg, wine):
    import dask.dataframe as dd
    d = dd.from_pandas(wine, npartitions=4)
    a = wine_reg.permutation_importance(d, n_samples=2000, seed=3)
    assert 1900 <= a.attrs["n_rows"] <= 2100 and a.attrs["seed"] == 3
    assert a.index[0] == "alcohol"
    pd.testing.assert_frame_equal(a, wine_reg.permutation_importance(d, n_samples=2000, seed=3))  # deterministic
    # y as a dask Series: the same rows, the same table
    pd.testing.assert_frame_equal(a, wine_reg.permutation_importance(d.drop(columns="quality"), d["quality"],
                                                                     n_samples=2000, seed=3))
    other = wine_reg.permutation_importance(d, n_samples=2000, seed=4)
    assert not np.allclose(other["Relative Importance"].loc[a.index], a["Relative Importance"])
    everything = wine_reg.permutation_importance(d, n_samples=-1, seed=3)
    assert everything.attrs["n_rows"] == len(wine)
    # n_samples above the row count: every row, as H2O; pandas input is sampled to exactly n_samples
    assert wine_reg.permutation_importance(d, n_samples=10**6, seed=3).attrs["n_rows"] == len(wine)
    assert wine_reg.permutation_importance(wine, n_samples=500, seed=3).attrs["n_rows"] == 500


def test_multinomial_auto_is_logloss(client2, iris):
    clf = DeepLearningClassifier(hidden=[8], epochs=3, **QUIET).fit(iris, "class")
    table = clf.permutation_importance(iris, n_repeats=2, seed=1, metric="MEAN_PER_CLASS_ERROR")
    assert table.attrs["metric"] == "mean_per_class_error" and table.shape == (4, 2)
    assert clf.permutation_importance(iris, seed=1).attrs["metric"] == "logloss"
    with pytest.raises(ValueError, match=r"'auc'.*'logloss'"):  # no multinomial AUC without an auc_type
        clf.permutation_importance(iris, metric="auc")


def _untouchable(columns: list):
    """A dask frame whose computation fails: the checks must all come before any cluster work."""
    import dask
    import dask.dataframe as dd

    def boom():
        raise AssertionError("the frame was computed before the arguments were checked")
    return dd.from_delayed([dask.delayed(boom)()], meta=pd.DataFrame({c: pd.Series([], dtype="f8") for c in columns}))


@pytest.mark.parametrize("kwargs, message", [
    (dict(metric="auc"), r"metric='auc'.*regression.*'rmse'"),
    (dict(metric="accuracy"), r"metric='accuracy'.*'mae'"),
    (dict(features=["alcohol", "colour"]), r"\['colour'\].*'alcohol'"),
    (dict(features=["quality"]), r"\['quality'\]"),
    (dict(n_samples=1), "n_samples=1"),
    (dict(n_samples=-2), "n_samples=-2"),
    (dict(n_repeats=0), "n_repeats=0"),
    (dict(seed=-3), "seed=-3"),
])
def test_bad_arguments_are_refused_before_any_cluster_work(client2, wine_reg, wine, kwargs, message):
    untouchable = _untouchable(list(wine.columns))
    with pytest.raises(ValueError, match=message):
        wine_reg.permutation_importance(untouchable, **kwargs)


def test_autoencoders_and_unfitted_estimators_are_refused(client2, wine):
    with pytest.raises(RuntimeError, match="not fitted"):
        DeepLearningRegressor().permutation_importance(wine, "quality")
    X = wine.drop(columns=["quality", "type"]).iloc[:300]
    ae = DeepLearningAutoencoder(hidden=[4], epochs=1, **QUIET).fit(X)
    with pytest.raises(ValueError, match="autoencoder"):
        ae.permutation_importance(X)
    with pytest.raises(ValueError, match="autoencoder"):
        ae.model_.permutation_importance(X)
