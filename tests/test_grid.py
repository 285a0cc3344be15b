"""dask_dl.GridSearch (issue 20, point 3): H2O's Cartesian and RandomDiscrete grids on the cluster,
models trained concurrently, a leaderboard, strict and lenient checking of the combinations."""
import numpy as np
import pandas as pd
import pytest

from dask_dl import DeepLearningClassifier, DeepLearningRegressor, GridSearch

QUIET = dict(quiet_mode=True, seed=1)


@pytest.fixture(scope="module")
def data(iris):
    df = iris.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return df.iloc[:100], df.iloc[100:]


def test_cartesian_grid_ranks_every_model_by_validation_logloss(client2, data):
    train, valid = data
    grid = GridSearch(DeepLearningClassifier(epochs=5, client=client2, **QUIET),
                      {"hidden": [[4], [16]], "l2": [0.0, 1e-2]}).fit(train, "class", validation_data=valid)
    board = grid.leaderboard_
    assert len(board) == 4 and len(grid.models_) == 4 and grid.failures_.empty
    assert set(board["hidden"]) == {"[4]", "[16]"} and set(board["l2"]) == {0.0, 1e-2}
    assert board["logloss"].is_monotonic_increasing and grid.sort_by_ == "logloss"
    best = grid.best_model_
    assert best is grid.models_[0] and best.client is client2
    X, y = valid.drop(columns="class"), valid["class"]
    from sklearn.metrics import log_loss
    assert board["logloss"].iloc[0] == pytest.approx(log_loss(y, best.predict_proba(X), labels=best.classes_), rel=1e-5)
    assert list(grid.get_leaderboard("classification_error")["classification_error"]) == \
        sorted(board["classification_error"])
    assert [m.get_params()["hidden"] for m in grid.models_] == [eval(h) for h in board["hidden"]]


def test_random_discrete_stops_at_max_models_and_is_seeded(client2, data):
    train, _ = data
    criteria = {"strategy": "RandomDiscrete", "max_models": 3, "seed": 42}
    grids = [GridSearch(DeepLearningClassifier(epochs=1, client=client2, **QUIET),
                        {"hidden": [[2], [4], [8], [16]], "l1": [0.0, 1e-4]}, criteria).fit(train, "class")
             for _ in range(2)]
    assert len(grids[0].leaderboard_) == 3
    combos = [sorted(map(str, zip(g.leaderboard_["hidden"], g.leaderboard_["l1"]))) for g in grids]
    assert combos[0] == combos[1]  # the same seed draws the same models


def test_leaderboard_early_stopping(client2, data):
    """stopping_rounds on the leaderboard: identical models never improve, so the search stops
    after 2 x stopping_rounds of them (H2O's convergence test), not after all 8."""
    train, _ = data
    grid = GridSearch(DeepLearningRegressor(epochs=1, hidden=[2], client=client2, **QUIET),
                      {"seed": [1] * 8}, {"strategy": "RandomDiscrete", "stopping_rounds": 2,
                                          "stopping_tolerance": 0.5, "seed": 1}, max_parallel=1)
    grid.fit(train.drop(columns="class"), train["sepal_len"])
    assert 4 <= len(grid.leaderboard_) < 8


def test_strict_grids_refuse_a_bad_value_before_training_and_lenient_ones_record_it(no_cluster, data):
    train, _ = data
    with pytest.raises(ValueError, match=r"grid combination \{'hidden': \[0\]\}: invalid dask_dl parameters: hidden"):
        GridSearch(DeepLearningClassifier(**QUIET), {"hidden": [[4], [0]]}).fit(train, "class")
    with pytest.raises(ValueError, match=r"hyper_params names unknown parameter\(s\) \['hiden'\]"):
        GridSearch(DeepLearningClassifier(**QUIET), {"hiden": [[4]]}).fit(train, "class")
    with pytest.raises(ValueError, match=r"strategy='Random'"):
        GridSearch(DeepLearningClassifier(**QUIET), {"hidden": [[4]]}, {"strategy": "Random"}).fit(train, "class")


def test_a_lenient_grid_records_failures(client2, data):
    train, _ = data
    grid = GridSearch(DeepLearningClassifier(epochs=1, client=client2, **QUIET), {"hidden": [[4], [0]]},
                      strict=False).fit(train, "class")
    assert len(grid.leaderboard_) == 1 and len(grid.failures_) == 1
    assert "hidden=[0]" in grid.failures_["error"].iloc[0]
