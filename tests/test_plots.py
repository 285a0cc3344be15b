"""Plots (issue 21): the scoring history, ROC / precision-recall curves, variable-importance bars and
an autoencoder's reconstruction-error histogram, drawn headless from real fitted models; the Axes
hold the models' numbers and the figures save as real PNGs."""
from io import BytesIO

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from dask_dl import DeepLearningAutoencoder, DeepLearningClassifier, DeepLearningRegressor  # noqa: E402

QUIET = dict(hidden=[8], quiet_mode=True, seed=1)


@pytest.fixture(scope="module")
def models(cluster2, prostate, iris, wine):
    """Four tiny fits on the 2-worker cluster: binomial with validation data (and its validation
    frame), multinomial, regression, autoencoder."""
    from distributed import Client
    data = prostate.drop(columns="ID").iloc[:380]
    train, valid = data.iloc[:300], data.iloc[300:]
    small_wine = wine.drop(columns="type").iloc[:300]
    with Client(cluster2) as client:
        binomial = DeepLearningClassifier(epochs=5, score_each_iteration=True, train_samples_per_iteration=100,
                                          client=client, **QUIET).fit(train, "CAPSULE", validation_data=valid)
        multinomial = DeepLearningClassifier(epochs=2, client=client, **QUIET).fit(iris, "class")
        regression = DeepLearningRegressor(epochs=2, client=client, **QUIET).fit(small_wine, "quality")
        auto = DeepLearningAutoencoder(epochs=3, client=client, **QUIET).fit(iris.drop(columns="class"))
    return {"binomial": binomial.model_, "valid": valid, "multinomial": multinomial.model_,
            "regression": regression.model_, "autoencoder": auto.model_, "iris": iris.drop(columns="class"),
            "iris_full": iris}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def assert_real_png(ax) -> None:
    """The figure saves as a PNG over 1 KB that is not one flat colour."""
    buf = BytesIO()
    ax.figure.savefig(buf, format="png")
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1024
    assert matplotlib.image.imread(BytesIO(data), format="png").std() > 0


def trapezoid(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2.0)


# ----------------------------------------------------------------------------- scoring history
def test_history_plot_draws_the_training_and_validation_columns(models):
    model = models["binomial"]
    history = model.scoring_history()
    ax = model.plot()  # AUTO: epochs, and the stopping metric (AUTO -> logloss)
    training, validation = ax.get_lines()
    np.testing.assert_array_equal(training.get_xdata(), history["epochs"].to_numpy(float))
    np.testing.assert_array_equal(training.get_ydata(), history["training_logloss"].to_numpy(float))
    np.testing.assert_array_equal(validation.get_ydata(), history["validation_logloss"].to_numpy(float))
    assert ax.get_ylabel() == "logloss" and [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["training", "validation"]
    assert_real_png(ax)


def test_history_plot_other_timesteps_and_metrics(models):
    model = models["binomial"]
    history = model.scoring_history()
    ax = model.plot(timestep="samples", metric="AUC")
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), history["samples"].to_numpy(float))
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), history["validation_auc"].to_numpy(float))
    seconds = model.plot(timestep="duration", metric="classification_error").get_lines()[0].get_xdata()
    expected = [float(s.split()[0]) for s in history["duration"]]  # H2O's "0.123 sec"
    np.testing.assert_allclose(seconds, expected)
    assert np.all(np.diff(seconds) >= 0)


def test_history_plot_auto_metric_per_kind(models):
    assert models["multinomial"].plot().get_ylabel() == "logloss"
    assert models["regression"].plot().get_ylabel() == "deviance"
    ax = models["autoencoder"].plot(timestep="iterations")
    assert ax.get_ylabel() == "mse" and len(ax.get_lines()) == 1  # no validation data: one curve
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(),
                                  models["autoencoder"].scoring_history()["training_mse"].to_numpy(float))


def test_history_plot_draws_on_the_given_axes(models):
    fig, (left, right) = plt.subplots(1, 2)
    assert models["regression"].plot(metric="rmse", ax=right) is right
    assert len(right.get_lines()) == 1 and not left.get_lines()


def test_bad_metric_and_timestep_are_refused_with_the_choices(models):
    with pytest.raises(ValueError, match=r"metric='auc' is not in .* available: AUTO, rmse, deviance, mae, r2"):
        models["regression"].plot(metric="auc")
    with pytest.raises(ValueError, match="timestep='minutes'.*epochs"):
        models["binomial"].plot(timestep="minutes")


# ----------------------------------------------------------------------------- ROC and precision-recall
def test_roc_points_are_the_auc_and_match_scikit_learn(models):
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
    model, valid = models["binomial"], models["valid"]
    perf = model.model_performance(valid)
    roc = perf.roc()
    assert list(roc.columns) == ["threshold", "fpr", "tpr"]
    assert tuple(roc[["fpr", "tpr"]].iloc[0]) == (0.0, 0.0) and tuple(roc[["fpr", "tpr"]].iloc[-1]) == (1.0, 1.0)
    assert (np.diff(roc[["fpr", "tpr"]], axis=0) >= 0).all() and (np.diff(roc["threshold"]) < 0).all()
    assert trapezoid(roc["fpr"], roc["tpr"]) == pytest.approx(perf["auc"], abs=1e-9)
    p1, y = model.predict_proba(valid)[:, 1], valid["CAPSULE"].to_numpy()
    assert perf["auc"] == pytest.approx(roc_auc_score(y, p1), abs=1e-3)
    fpr, tpr, _ = roc_curve(y, p1, drop_intermediate=False)
    # binning only merges neighbouring scores: each of our points is one of scikit-learn's points
    ours, theirs = roc[["fpr", "tpr"]].to_numpy(), np.c_[fpr, tpr]
    assert len(ours) <= len(theirs)
    assert all(np.abs(theirs - point).sum(axis=1).min() < 1e-9 for point in ours)
    pr = perf.pr_curve()
    assert list(pr.columns) == ["threshold", "recall", "precision"] and pr["recall"].iloc[-1] == 1.0
    assert float(np.sum(np.diff(np.r_[0.0, pr["recall"]]) * pr["precision"])) == pytest.approx(perf["pr_auc"], abs=1e-9)
    assert perf["pr_auc"] == pytest.approx(average_precision_score(y, p1), abs=1e-3)


def test_roc_and_pr_plots_hold_the_curves(models):
    model, valid = models["binomial"], models["valid"]
    perf = model.model_performance(valid)
    ax = model.plot_roc(valid)
    curve = ax.get_lines()[0]
    np.testing.assert_array_equal(curve.get_xdata(), perf.roc()["fpr"])
    assert trapezoid(curve.get_xdata(), curve.get_ydata()) == pytest.approx(perf["auc"], abs=1e-3)
    assert_real_png(ax)
    pr = model.plot_pr(valid, "CAPSULE").get_lines()[0]
    np.testing.assert_array_equal(pr.get_xdata(), perf.pr_curve()["recall"])
    np.testing.assert_array_equal(pr.get_ydata(), perf.pr_curve()["precision"])
    assert_real_png(perf.plot(type="pr"))
    assert perf.plot().get_title() == "ROC curve"


def test_roc_without_data_uses_the_validation_then_the_training_metrics(models, monkeypatch):
    model = models["binomial"]
    if not hasattr(model, "validation_metrics"):
        pytest.skip("DeepLearningModel.validation_metrics() not there yet")
    np.testing.assert_array_equal(model.plot_roc().get_lines()[0].get_ydata(), model.validation_metrics().roc()["tpr"])
    monkeypatch.setattr(model, "validation_metrics", lambda: None)
    np.testing.assert_array_equal(model.plot_pr().get_lines()[0].get_ydata(),
                                  model.training_metrics().pr_curve()["precision"])


def test_curves_of_other_models_are_refused(models):
    with pytest.raises(ValueError, match="binomial.*regression"):
        models["regression"].plot_roc(models["iris"])
    with pytest.raises(ValueError, match="binomial.*multinomial"):
        models["multinomial"].plot_pr()
    with pytest.raises(ValueError, match="binomial"):
        models["multinomial"].model_performance(models["iris_full"]).roc()
    with pytest.raises(ValueError, match="kind='lift'"):
        models["binomial"].model_performance(models["valid"]).plot(type="lift")


# ----------------------------------------------------------------------------- variable importances
def test_varimp_bars_are_the_scaled_importances_in_order(models):
    model = models["binomial"]
    table = model.varimp()
    ax = model.varimp_plot()
    bars = sorted(ax.patches, key=lambda b: -b.get_y())  # top to bottom
    np.testing.assert_allclose([b.get_width() for b in bars], table["scaled_importance"])
    labels = [t.get_text() for t in sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])]
    assert labels == list(table["variable"])
    assert_real_png(ax)
    top3 = model.varimp_plot(num_of_features=3)
    assert sorted((b.get_width() for b in top3.patches), reverse=True) == list(table["scaled_importance"][:3])


# ----------------------------------------------------------------------------- autoencoders
def test_reconstruction_error_histogram_counts_every_row(models):
    model, X = models["autoencoder"], models["iris"]
    ax = model.plot_reconstruction_error(X, bins=20)
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 20 and sum(heights) == len(X)
    errors = model.anomaly(X)
    assert ax.patches[0].get_x() == pytest.approx(errors.min())
    assert_real_png(ax)
    with pytest.raises(ValueError, match="autoencoder's.*binomial"):
        models["binomial"].plot_reconstruction_error(models["valid"])


def test_without_matplotlib_the_error_names_the_extra(models, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "dask_dl\[plot\]"'):
        models["binomial"].plot()
