"""Checkpoints, warm starts and export_checkpoints_dir (issue 20, point 1), and scikit-learn's clone
with a client (point 3's GridSearchCV note)."""
import glob

import numpy as np
import pandas as pd
import pytest

from dask_dl import DeepLearningClassifier, DeepLearningRegressor, load_model

QUIET = dict(quiet_mode=True, seed=1)


@pytest.fixture(scope="module")
def shuffled_iris(iris):
    return iris.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_continuing_a_checkpoint_equals_one_uninterrupted_fit(client2, shuffled_iris):
    """reproducible (one worker, one thread, a fixed order): 2 epochs, then continued to 4 from the
    checkpoint, give bit for bit the weights and optimizer state of 4 epochs in one fit: the state,
    the sample count (rate schedules, the row stream) and the iteration count carry over."""
    common = dict(hidden=[8], reproducible=True, train_samples_per_iteration=75, rate_annealing=1e-4,
                  adaptive_rate=False, rate=0.01, momentum_start=0.5, momentum_ramp=100, momentum_stable=0.9,
                  client=client2, **QUIET)
    straight = DeepLearningClassifier(epochs=4, **common).fit(shuffled_iris, "class")
    first = DeepLearningClassifier(epochs=2, **common).fit(shuffled_iris, "class")
    before = (first.model_.state.copy(), len(first.model_.scoring_history()))
    second = DeepLearningClassifier(epochs=4, checkpoint=first, **common).fit(shuffled_iris, "class")
    np.testing.assert_array_equal(second.model_.state, straight.model_.state)
    np.testing.assert_array_equal(first.model_.state, before[0])  # the checkpoint is left as it was
    assert len(first.model_.scoring_history()) == before[1]
    history = second.model_.scoring_history()
    assert history.iloc[:before[1]][["epochs", "samples", "iterations"]].equals(
        first.model_.scoring_history()[["epochs", "samples", "iterations"]])  # the history goes on
    assert history["epochs"].iloc[-1] == 4.0 and history["iterations"].iloc[-1] == straight.model_.run["iterations"]
    seconds = history["duration"].str.replace(" sec", "").astype(float)
    assert seconds.is_monotonic_increasing
    assert second.model_.params["checkpoint"].startswith("multinomial model [4, 8, 3] at 2 epochs")


def test_what_may_and_may_not_change(client2, shuffled_iris, wine):
    first = DeepLearningClassifier(hidden=[8], epochs=2, client=client2, **QUIET).fit(shuffled_iris, "class")
    changed = DeepLearningClassifier(hidden=[8], epochs=4, l1=1e-4, l2=1e-3, input_dropout_ratio=0.1, seed=7,
                                     checkpoint=first.model_, client=client2, quiet_mode=True).fit(shuffled_iris,
                                                                                                   "class")
    assert changed.model_.params["l2"] == 1e-3 and changed.model_.run["epochs"] == 4.0
    X = shuffled_iris.drop(columns="class")
    for params, message in [
        (dict(hidden=[9], epochs=4), r"hidden=\[9\] \(the checkpoint's: \[8\]\) cannot change"),
        (dict(hidden=[8], epochs=4, activation="Tanh"), r"activation='Tanh' \(the checkpoint's: 'Rectifier'\)"),
        (dict(hidden=[8], epochs=2), r"epochs=2 must be above the checkpoint's 2 epochs: epochs is the total"),
    ]:
        with pytest.raises(ValueError, match=message):
            DeepLearningClassifier(checkpoint=first, client=client2, **params, **QUIET).fit(shuffled_iris, "class")
    with pytest.raises(ValueError, match=r"checkpoint was trained on response 'class', not 'Species'"):
        DeepLearningClassifier(hidden=[8], epochs=4, checkpoint=first, **QUIET).fit(
            shuffled_iris.rename(columns={"class": "Species"}), "Species")
    with pytest.raises(ValueError, match=r"checkpoint was trained on columns .* a checkpoint continues on the same"):
        DeepLearningClassifier(hidden=[8], epochs=4, checkpoint=first, **QUIET).fit(
            shuffled_iris.drop(columns="petal_wid"), "class")
    with pytest.raises(ValueError, match=r"checkpoint is a multinomial model; this fit trains a regression model"):
        DeepLearningRegressor(hidden=[8], epochs=4, checkpoint=first, **QUIET).fit(X, shuffled_iris["sepal_len"])
    with pytest.raises(ValueError, match=r"checkpoint=.*a fitted estimator, its model_, or the URL"):
        DeepLearningClassifier(checkpoint=42, **QUIET).fit(shuffled_iris, "class")


def test_export_checkpoints_dir_writes_a_resumable_model_every_scoring(client2, shuffled_iris, tmp_path):
    folder = str(tmp_path / "checkpoints")
    clf = DeepLearningClassifier(hidden=[8], epochs=3, export_checkpoints_dir=folder, client=client2,
                                 **QUIET).fit(shuffled_iris, "class")
    files = sorted(glob.glob(folder + "/*.npz"))
    assert len(files) == len(clf.model_.scoring_history()) - 1  # one per scoring round (row 0 is not one)
    last = load_model(files[-1])
    X = shuffled_iris.drop(columns="class")
    np.testing.assert_allclose(last.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    assert last.run["epochs"] == 3.0 and load_model(files[0]).run["epochs"] < 3.0
    resumed = DeepLearningClassifier(hidden=[8], epochs=5, checkpoint=files[-1], client=client2,
                                     **QUIET).fit(shuffled_iris, "class")
    assert resumed.model_.run["epochs"] == 5.0
    assert resumed.model_.params["checkpoint"] == files[-1]


def test_warm_start_trains_another_epochs(client2, shuffled_iris):
    clf = DeepLearningClassifier(hidden=[8], epochs=2, warm_start=True, client=client2, **QUIET)
    clf.fit(shuffled_iris, "class")
    first = clf.model_
    clf.fit(shuffled_iris, "class")
    assert clf.model_.run["epochs"] == 4.0 and first.run["epochs"] == 2.0
    assert len(clf.model_.scoring_history()) > len(first.scoring_history())


def test_clone_shares_the_client_and_grid_search_cv_runs(client2, shuffled_iris):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    est = DeepLearningClassifier(hidden=[4], epochs=1, client=client2, **QUIET)
    copy = clone(est)
    assert copy.client is client2 and copy.get_params()["hidden"] == [4] and copy.hidden is not est.hidden
    grid = GridSearchCV(est, {"hidden": [[4], [8]]}, cv=2).fit(shuffled_iris.drop(columns="class"),
                                                               shuffled_iris["class"])
    assert sorted(str(p["hidden"]) for p in grid.cv_results_["params"]) == ["[4]", "[8]"]
    assert np.isfinite(grid.best_score_)
