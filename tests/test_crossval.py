"""Cross-validation (issue 20, point 2): nfolds / fold_assignment / fold_column, fold models trained
concurrently with weight 0 on their holdout, metrics from their merged holdout statistics."""
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from dask_dl import DataError, DeepLearningAutoencoder, DeepLearningClassifier, DeepLearningRegressor

QUIET = dict(quiet_mode=True, seed=1)


@pytest.fixture(scope="module")
def shuffled(iris):
    return iris.sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_nfolds_gives_fold_models_holdout_predictions_and_a_summary(client2, shuffled, dl_log):
    clf = DeepLearningClassifier(hidden=[8], epochs=20, nfolds=3, keep_cross_validation_predictions=True,
                                 keep_cross_validation_fold_assignment=True, client=client2, **QUIET)
    clf.fit(shuffled, "class")
    m = clf.model_
    folds = m.cross_validation_fold_assignment()
    assert sorted(folds.unique()) == [0, 1, 2] and len(folds) == 150
    models = m.cross_validation_models()
    X = shuffled.drop(columns="class")
    holdout = m.cross_validation_holdout_predictions()
    assert holdout.shape == (150, 3)
    for k, fold_model in enumerate(models):  # each row predicted by the model that did not train on it
        rows = (folds == k).to_numpy()
        np.testing.assert_allclose(holdout[rows], fold_model.predict_proba(X[rows]), rtol=1e-6)
        assert fold_model.info.n_rows == int((~rows).sum())  # weight 0 on its holdout
    y = pd.Categorical(shuffled["class"], categories=clf.classes_).codes
    assert m.cross_validation_metrics()["logloss"] == pytest.approx(log_loss(y, holdout), rel=1e-5)
    summary = m.cross_validation_metrics_summary().set_index("metric")
    assert list(summary.columns) == ["mean", "sd", "cv_1_valid", "cv_2_valid", "cv_3_valid"]
    assert summary.loc["logloss", "mean"] == pytest.approx(summary.loc["logloss", ["cv_1_valid", "cv_2_valid",
                                                                                   "cv_3_valid"]].mean())
    # the main model learned: this 8-unit, 20-epoch fit scores 0.79-0.92 over seeds 1-10 (a constant 0.33)
    assert clf.model_.run["epochs"] == 20.0 and clf.score(X, shuffled["class"]) > 0.75
    assert not [r for r in dl_log if "missing response" in r]


def test_dask_x_and_dask_y_give_lazy_holdout_predictions(client2, shuffled):
    X = dd.from_pandas(shuffled.drop(columns="class"), npartitions=3)
    y = dd.from_pandas(shuffled["class"].rename("species"), npartitions=3)
    clf = DeepLearningClassifier(hidden=[8], epochs=5, nfolds=3, fold_assignment="Modulo",
                                 keep_cross_validation_predictions=True, client=client2, **QUIET).fit(X, y)
    m = clf.model_
    holdout = m.cross_validation_holdout_predictions()
    assert hasattr(holdout, "dask")  # dask input gives lazy output
    holdout, folds = holdout.compute(), np.arange(150) % 3
    assert holdout.shape == (150, 3)
    for k, fold_model in enumerate(m.cross_validation_models()):
        np.testing.assert_allclose(holdout[folds == k],
                                   fold_model.predict_proba(shuffled.drop(columns="class")[folds == k]), rtol=1e-6)
    assert m.info.response_name == "species"
    with pytest.raises(DataError, match="y is named 'sepal_len' like a column of X"):
        DeepLearningClassifier(nfolds=2, client=client2, **QUIET).fit(X, y.rename("sepal_len"))


@pytest.mark.parametrize("assignment", ["Modulo", "Stratified", "Random"])
def test_fold_assignments_on_dask_partitions(assignment, client2, shuffled):
    frame = dd.from_pandas(shuffled, npartitions=3)
    clf = DeepLearningClassifier(hidden=[4], epochs=2, nfolds=3, fold_assignment=assignment,
                                 keep_cross_validation_fold_assignment=True, client=client2, **QUIET).fit(frame, "class")
    folds = clf.model_.cross_validation_fold_assignment().compute().to_numpy()
    if assignment == "Modulo":
        np.testing.assert_array_equal(folds, np.arange(150) % 3)
    counts = pd.crosstab(shuffled["class"].to_numpy(), folds)
    if assignment == "Stratified":  # each class dealt evenly: within one row per partition and fold
        assert (counts.max(axis=1) - counts.min(axis=1)).max() <= 3
    assert len(clf.model_.cross_validation_models()) == 3


def test_fold_column_and_early_stopping_budget(client2, shuffled):
    data = shuffled.assign(fold=np.arange(150) % 2)
    reg = DeepLearningRegressor(hidden=[4], epochs=30, fold_column="fold", stopping_rounds=1, stopping_tolerance=0.5,
                                score_each_iteration=True, train_samples_per_iteration=50, client=client2,
                                **QUIET).fit(data.drop(columns="class"), "sepal_len")
    fold_epochs = [m.run["epochs"] for m in reg.model_.cross_validation_models()]
    assert len(fold_epochs) == 2 and max(fold_epochs) < 30  # the holdouts stopped them early
    assert reg.model_.run["epochs"] == pytest.approx(np.mean(fold_epochs), rel=0.05)  # H2O's main-model budget
    assert "fold" not in reg.feature_names_in_


def test_h2o_refusals(no_cluster, shuffled):
    for params, message in [(dict(nfolds=1), r"nfolds=1: expected 0 \(no cross-validation\) or an integer >= 2"),
                            (dict(nfolds=3, fold_column="sepal_len"), r"give nfolds or fold_column, not both"),
                            (dict(fold_assignment="Blocked"), r"fold_assignment='Blocked'")]:
        with pytest.raises(ValueError, match=message):
            DeepLearningClassifier(**params, **QUIET).fit(shuffled, "class")
    with pytest.raises(ValueError, match=r"cross-validation is for supervised models"):
        DeepLearningAutoencoder(nfolds=3, **QUIET).fit(shuffled)
    with pytest.raises(DataError, match=r"fold_column 'nope' is not a column of X"):
        DeepLearningClassifier(fold_column="nope", **QUIET).fit(shuffled, "class")
    with pytest.raises(ValueError, match=r"cross-validation needs 2 or more"):
        DeepLearningClassifier(fold_column="f", **QUIET).fit(shuffled.assign(f=1), "class")
    with pytest.raises(ValueError, match=r"this model was not cross-validated"):
        DeepLearningModelStub().cross_validation_metrics_summary()


class DeepLearningModelStub:
    """A model without cross-validation, through the real accessor."""

    def cross_validation_metrics_summary(self):
        from dask_dl.model import DeepLearningModel
        return DeepLearningModel._cv_part(self, "summary")
