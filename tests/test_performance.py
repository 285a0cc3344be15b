"""model_performance on any data: H2O's metric set from sufficient statistics (scoring/sufficient.py),
checked against scikit-learn on the same predictions."""
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from dask_dl import DeepLearningClassifier, DeepLearningRegressor
from dask_dl.errors import DataError
from dask_dl.scoring import sufficient

QUIET = dict(seed=1, quiet_mode=True)


@pytest.fixture(scope="module")
def prostate_fit(prostate):
    df = prostate.drop(columns=["ID"]).astype({"CAPSULE": str})
    return DeepLearningClassifier(hidden=[10], epochs=5, **QUIET).fit(df, "CAPSULE"), df


def test_binomial_metrics_match_scikit_learn(client2, prostate_fit):
    clf, df = prostate_fit
    perf = clf.model_performance(df)
    p = clf.predict_proba(df.drop(columns=["CAPSULE"]))[:, 1]
    y = (df["CAPSULE"] == "1").to_numpy()
    assert perf["nobs"] == len(df)
    assert perf["logloss"] == pytest.approx(skm.log_loss(y, p), rel=1e-6)
    assert perf["mse"] == pytest.approx(skm.brier_score_loss(y, p), rel=1e-6)
    assert perf["rmse"] == pytest.approx(np.sqrt(perf["mse"]))
    assert perf["r2"] == pytest.approx(1 - perf["mse"] / y.var(), rel=1e-6)
    assert abs(perf["auc"] - skm.roc_auc_score(y, p)) < 1e-3  # binned (documented bound)
    assert abs(perf["pr_auc"] - skm.average_precision_score(y, p)) < 1e-3
    assert perf["gini"] == pytest.approx(2 * perf["auc"] - 1)
    labels = p >= perf["max_f1_threshold"]  # the reported threshold gives exactly the reported matrix
    cm = perf.confusion_matrix()
    np.testing.assert_array_equal(cm[["0", "1"]].to_numpy(), skm.confusion_matrix(y, labels))
    assert perf["classification_error"] == pytest.approx(1 - skm.accuracy_score(y, labels))
    assert perf["mean_per_class_error"] == pytest.approx(1 - skm.balanced_accuracy_score(y, labels))
    assert skm.f1_score(y, labels) == pytest.approx(max(skm.f1_score(y, p >= t) for t in np.unique(p)), abs=5e-3)
    gains = perf.gains_lift()
    assert gains["cumulative_data_fraction"].iloc[-1] == pytest.approx(1.0)
    assert gains["cumulative_capture_rate"].iloc[-1] == pytest.approx(1.0)
    top = p >= gains["lower_threshold"].iloc[0]
    assert gains["lift"].iloc[0] == pytest.approx(y[top].mean() / y.mean())


def test_multinomial_metrics_match_scikit_learn(client2, iris):
    clf = DeepLearningClassifier(hidden=[8], epochs=3, **QUIET).fit(iris, "class")
    perf = clf.model_performance(iris)
    proba = clf.predict_proba(iris.drop(columns=["class"]))
    y = pd.Categorical(iris["class"], categories=clf.classes_).codes
    labels = proba.argmax(axis=1)
    assert perf["logloss"] == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2]), rel=1e-6)
    assert perf["mse"] == pytest.approx(np.mean((1 - proba[np.arange(len(y)), y]) ** 2))
    assert perf["classification_error"] == pytest.approx(1 - skm.accuracy_score(y, labels))
    assert perf["mean_per_class_error"] == pytest.approx(1 - skm.balanced_accuracy_score(y, labels))
    np.testing.assert_array_equal(perf.confusion_matrix().iloc[:, :3].to_numpy(), skm.confusion_matrix(y, labels))
    assert list(perf.confusion_matrix().index) == [str(c) for c in clf.classes_]
    hits = perf.hit_ratios()
    for k in (1, 2, 3):
        assert hits["hit_ratio"].iloc[k - 1] == pytest.approx(skm.top_k_accuracy_score(y, proba, k=k))
    with pytest.raises(ValueError, match="binomial"):
        perf.gains_lift()
    with pytest.raises(TypeError):
        perf["auc"] = 1.0  # read-only


def test_multinomial_auc_of_every_type_matches_scikit_learn(client2, wine):
    """auc_type: one-vs-rest and one-vs-one AUC / AUCPR, macro and prevalence-weighted, from the
    per-class histograms, within 1e-3 of scikit-learn on the same probabilities; the scoring
    history and early stopping read the trained auc_type."""
    df = wine.sample(3000, random_state=2).reset_index(drop=True).astype({"quality": str})
    df = df[df.quality.isin(["4", "5", "6", "7", "8"])]
    clf = DeepLearningClassifier(hidden=[16], epochs=3, auc_type="WEIGHTED_OVO", stopping_metric="AUC",
                                 stopping_rounds=2, **QUIET).fit(df, "quality")
    assert np.isfinite(clf.model_.scoring_history()["training_auc"].iloc[-1])
    X = df.drop(columns=["quality"])
    proba = clf.predict_proba(X)
    y = pd.Categorical(df["quality"], categories=clf.classes_).codes
    k = len(clf.classes_)
    onehot = np.eye(k)[y]
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]

    def ovo(score, weighted):
        vals, wts = [], []
        for a, b in pairs:
            m = (y == a) | (y == b)
            vals.append(np.mean([score(y[m] == c, proba[m, c]) for c in (a, b)]))
            wts.append(m.mean())
        return np.average(vals, weights=wts if weighted else None)

    expect = {"MACRO_OVR": (skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
                            skm.average_precision_score(onehot, proba, average="macro")),
              "WEIGHTED_OVR": (skm.roc_auc_score(y, proba, multi_class="ovr", average="weighted"),
                               skm.average_precision_score(onehot, proba, average="weighted")),
              "MACRO_OVO": (skm.roc_auc_score(y, proba, multi_class="ovo", average="macro"),
                            ovo(skm.average_precision_score, False)),
              "WEIGHTED_OVO": (skm.roc_auc_score(y, proba, multi_class="ovo", average="weighted"),
                               ovo(skm.average_precision_score, True))}
    assert ovo(skm.roc_auc_score, True) == pytest.approx(expect["WEIGHTED_OVO"][0])  # the same weighting
    table = clf.model_performance(df).multinomial_auc_table().set_index("type")
    for auc_type, (auc, pr_auc) in expect.items():
        perf = clf.model_performance(df, auc_type=auc_type)
        assert abs(perf["auc"] - auc) < 1e-3, auc_type
        assert abs(perf["pr_auc"] - pr_auc) < 1e-3, auc_type
        assert table.loc[auc_type, "auc"] == pytest.approx(perf["auc"])
    assert 0.6 < expect["MACRO_OVR"][0] < 0.99  # a model whose ranking is neither trivial nor perfect
    for c, name in enumerate(clf.classes_):
        assert abs(table.loc[f"{name} vs Rest", "auc"] - skm.roc_auc_score(y == c, proba[:, c])) < 1e-3
    plain = clf.model_performance(df, auc_type="NONE")
    assert "auc" not in plain
    with pytest.raises(ValueError, match="set auc_type"):
        plain.multinomial_auc_table()
    assert plain["mean_residual_deviance"] == pytest.approx(2 * skm.log_loss(y, proba, labels=range(k)), rel=1e-6)


def test_confusion_matrix_printing_follows_max_confusion_matrix_size(client2, iris):
    clf = DeepLearningClassifier(hidden=[4], epochs=1, max_confusion_matrix_size=2, max_hit_ratio_k=2,
                                 **QUIET).fit(iris, "class")
    perf = clf.model_performance(iris)
    assert "Confusion matrix not shown: 3 classes > max_confusion_matrix_size=2" in str(perf)
    assert len(perf.hit_ratios()) == 2
    clf.set_params(max_confusion_matrix_size=20, max_hit_ratio_k=10)
    perf = clf.fit(iris, "class").model_performance(iris)
    assert "Confusion matrix (rows: actual" in str(perf) and "Iris-setosa" in str(perf)
    assert len(perf.hit_ratios()) == 3


@pytest.mark.parametrize("distribution", ["gaussian", "poisson", "huber"])
def test_regression_metrics_match_scikit_learn(client2, wine, distribution):
    reg = DeepLearningRegressor(hidden=[10], epochs=1, distribution=distribution, **QUIET).fit(wine, "quality")
    perf = reg.model_performance(wine)
    y, pred = wine["quality"].to_numpy(float), reg.predict(wine.drop(columns=["quality"]))
    assert perf["mse"] == pytest.approx(skm.mean_squared_error(y, pred), rel=1e-6)
    assert perf["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-6)
    assert perf["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-6)
    assert perf["rmsle"] == pytest.approx(np.sqrt(skm.mean_squared_log_error(y, pred)), rel=1e-6)
    if distribution == "gaussian":
        assert perf["mean_residual_deviance"] == pytest.approx(perf["mse"])
    elif distribution == "poisson":
        assert perf["mean_residual_deviance"] == pytest.approx(skm.mean_poisson_deviance(y, pred), rel=1e-6)
    else:  # delta from the |residual| histogram (bins 0.6% wide), then the exact deviance with it
        from dask_dl.scoring import metrics
        exact = metrics.mean_residual_deviance(y, pred, "huber", huber_delta=metrics.huber_delta(y, pred, 0.9))
        assert perf["mean_residual_deviance"] == pytest.approx(exact, rel=2e-2)
    with pytest.raises(ValueError, match="no confusion matrix"):
        perf.confusion_matrix()


def test_weights_scale_every_metric_and_dask_gives_the_same(client2, prostate_fit):
    """Integer weights give the metrics of repeated rows; weight 0 drops a row; a dask frame (with
    a dask Series of weights) gives what pandas gives; bad weights are refused."""
    clf, df = prostate_fit
    w = np.random.default_rng(0).integers(0, 4, len(df))
    weighted = clf.model_performance(df, sample_weight=w)
    repeated = clf.model_performance(df.loc[df.index.repeat(w)].reset_index(drop=True))
    for key in weighted:
        assert weighted[key] == pytest.approx(repeated[key], rel=1e-6), key
    ddf = dd.from_pandas(df.assign(w=w.astype(float)), npartitions=4)
    on_dask = clf.model_performance(ddf.drop(columns=["w"]), sample_weight=ddf["w"])
    for key in weighted:
        assert on_dask[key] == pytest.approx(weighted[key], rel=1e-6), key
    with pytest.raises(DataError, match=r"weights 'sample_weight' hold \d+ negative"):
        clf.model_performance(df, sample_weight=-w)
    with pytest.raises(DataError, match="one weight per row"):
        clf.model_performance(df, sample_weight=w[:5])


def test_statistics_are_small_whatever_the_rows(prostate_fit):
    """What crosses to the client per scoring is the statistics: a fixed size, not the rows'."""
    from dask_dl.data.schema import RESPONSE
    from dask_dl.model import _block_stats
    from dask_dl.scoring.evaluate import ScoringSpec
    clf, df = prostate_fit
    m = clf.model_
    spec = ScoringSpec.of(m.kind, m.distribution, m.params, m.info)

    def size(frame):
        return sum(v.nbytes for v in _block_stats(frame.rename(columns={"CAPSULE": RESPONSE}), m, spec).values())
    assert size(df) == size(pd.concat([df] * 50, ignore_index=True)) < 200_000


def test_rows_without_a_response_are_left_out_and_unseen_classes_refused(client2, prostate_fit):
    clf, df = prostate_fit
    holed = df.copy()
    holed.loc[:9, "CAPSULE"] = None
    assert clf.model_performance(holed)["nobs"] == len(df) - 10
    with pytest.raises(DataError, match="classes"):
        clf.model_performance(df.assign(CAPSULE="7"))


def test_skip_mode_scores_validation_rows_with_a_missing_predictor(client2, iris):
    """missing_values_handling='Skip' leaves rows with a missing predictor out of training only:
    validation metrics include them (imputed as predict() does), as H2O scores them."""
    valid = iris.copy()
    valid.loc[::3, "sepal_len"] = np.nan
    clf = DeepLearningClassifier(hidden=[4], epochs=2, missing_values_handling="Skip", **QUIET)
    clf.fit(iris, "class", validation_data=valid)
    last = clf.model_.scoring_history().iloc[-1]
    perf = clf.model_performance(valid)
    assert perf["nobs"] == len(valid)
    assert last["validation_logloss"] == pytest.approx(perf["logloss"], rel=1e-6)


def test_scoring_tasks_send_statistics_not_rows(prostate_fit):
    """The training loop's scoring tasks reduce their blocks on the worker (the same path as
    model_performance): the result's size does not grow with the rows scored."""
    from dask_dl.cluster import tasks
    from dask_dl.data.encode import encode_training_block
    from dask_dl.data.schema import RESPONSE
    from dask_dl.scoring.evaluate import ScoringSpec
    clf, df = prostate_fit
    m = clf.model_
    spec = ScoringSpec.of(m.kind, m.distribution, m.params, m.info)
    block = encode_training_block(df.rename(columns={"CAPSULE": RESPONSE}), m.info)
    one = tasks.score_sets(tasks.ModelCopy(m.state), layout=m.layout, spec=spec, train_blocks=[block],
                           valid_blocks=[])
    many = tasks.score_sets(tasks.ModelCopy(m.state), layout=m.layout, spec=spec, train_blocks=[block] * 20,
                            valid_blocks=[block])
    assert one[1] is None and many[0]["w"][0] == 20 * len(df)
    assert sum(v.nbytes for v in many[0].values()) == sum(v.nbytes for v in one[0].values()) < 200_000
