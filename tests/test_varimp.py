"""Variable importances (Gedeon's method, H2O §12.5) and H2O's layer table (§12.9)."""
import numpy as np
import pandas as pd
import pytest

from dask_dl import DeepLearningClassifier, DeepLearningRegressor, load_model
from dask_dl.nn.network import build_layout, initial_state
from dask_dl.scoring.varimp import gedeon

QUIET = dict(seed=1, quiet_mode=True)


def _layout_with(weights):
    lay = build_layout(len(weights[0][0]), [len(w) for w in weights[:-1]], "Rectifier", len(weights[-1]), False,
                       0.0, [0.0] * (len(weights) - 1))
    state = initial_state(lay, 1)
    for l, w in enumerate(weights, start=1):
        lay.weight_matrix(state, l)[:] = np.asarray(w, np.float32)
    return lay, state


def test_gedeon_by_hand():
    # P = [[.25, .75], [.5, .5]], R = [[.25, .75]]: Q = [.4375, .5625], the largest scaled to 1
    lay, state = _layout_with([[[1, -3], [2, 2]], [[-1, 3]]])
    np.testing.assert_allclose(gedeon(lay, state), [0.4375 / 0.5625, 1.0], rtol=1e-6)
    # no hidden layer: the column sums of |W|
    lay, state = _layout_with([[[1, -3], [2, 1]]])
    np.testing.assert_allclose(gedeon(lay, state), [0.75, 1.0])
    # only the first two matrices matter; each column of Q is normalised before summing
    lay, state = _layout_with([[[1, 3], [2, 2]], [[1, 3], [4, 0]], [[5, -7]]])
    P = np.array([[.25, .75], [.5, .5]])
    Q = P.T @ np.array([[.25, .75], [1, 0]]).T
    v = (Q / Q.sum(axis=0)).sum(axis=1)
    np.testing.assert_allclose(gedeon(lay, state), v / v.max(), rtol=1e-6)


def test_the_input_that_drives_the_response_ranks_first(client2):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(3000, 4)), columns=["signal", "noise1", "noise2", "noise3"])
    y = np.sin(2 * X["signal"]) * 3 + 0.1 * rng.normal(size=3000)
    reg = DeepLearningRegressor(hidden=[32], epochs=20, **QUIET).fit(X, pd.Series(y, name="y"))
    table = reg.model_.varimp()
    assert list(table.columns) == ["variable", "relative_importance", "scaled_importance", "percentage"]
    assert table["variable"].iloc[0] == "signal"
    assert table["scaled_importance"].iloc[1] < 0.5  # the noise inputs trail clearly (0.28 measured)
    assert table["relative_importance"].is_monotonic_decreasing
    assert table["percentage"].sum() == pytest.approx(1.0) and table["scaled_importance"].max() == 1.0


def test_categorical_levels_and_the_missing_slot(client2, iris):
    """Categorical columns are reported per level (H2O's expanded names); the missing slot of a
    column without NA in training never fired and is 0, with NA it can be more."""
    df = iris.copy()
    df["size"] = np.where(df["sepal_len"] > 5.8, "big", "small")
    df["colour"] = np.where(np.arange(len(df)) % 3 == 0, None, np.where(np.arange(len(df)) % 2 == 0, "red", "blue"))
    m = DeepLearningClassifier(hidden=[8], epochs=3, **QUIET).fit(df, "class").model_
    table = m.varimp().set_index("variable")
    assert set(table.index) == set(m.info.coef_names())
    assert {"size.big", "size.small", "size.missing(NA)", "colour.red", "colour.missing(NA)"} <= set(table.index)
    assert table.loc["size.missing(NA)", "relative_importance"] == 0.0
    assert table.loc["colour.missing(NA)", "relative_importance"] > 0.0
    with pytest.raises(ValueError, match="variable_importances=False"):
        DeepLearningClassifier(hidden=[4], epochs=1, variable_importances=False, **QUIET).fit(iris, "class").model_.varimp()


def test_layer_table_rates_momentum_and_diagnostics(client2, iris, tmp_path):
    m = DeepLearningClassifier(hidden=[5], epochs=2, **QUIET).fit(iris, "class").model_
    t = m.layer_table()
    assert list(t["type"]) == ["Input", "Rectifier", "Softmax"] and list(t["units"]) == [4, 5, 3]
    _, _, s1, s2, _, _ = m.layout.split(m.state)
    lo, hi = m.layout.w_offsets[1], m.layout.w_offsets[2]
    eps = np.float64(np.float32(1e-8))
    rate = np.sqrt((s2[lo:hi].astype(np.float64) + eps) / (s1[lo:hi].astype(np.float64) + eps))
    assert t.loc[2, "mean_rate"] == pytest.approx(rate.mean()) and t.loc[2, "momentum"] == 0.0
    assert t.loc[2, "rate_rms"] == pytest.approx(np.sqrt((rate ** 2).mean()))
    assert "mean_rate" in m.summary() and "Softmax" in m.summary()
    manual = DeepLearningClassifier(hidden=[5, 4], epochs=2, adaptive_rate=False, rate=0.01, rate_decay=0.5,
                                    rate_annealing=1e-3, momentum_start=0.2, momentum_stable=0.6, momentum_ramp=600,
                                    **QUIET).fit(iris, "class").model_.layer_table()
    anneal = 1 + 1e-3 * 300  # 2 epochs of 150 rows
    np.testing.assert_allclose(manual["mean_rate"].iloc[1:], [0.01 / anneal, 0.005 / anneal, 0.0025 / anneal])
    np.testing.assert_allclose(manual["momentum"].iloc[1:], 0.2 + 0.4 * 300 / 600)
    quiet = DeepLearningClassifier(hidden=[5], epochs=1, diagnostics=False, **QUIET).fit(iris, "class").model_
    assert "mean_rate" not in quiet.layer_table() and "weight_rms" not in quiet.layer_table()
    path = m.save(str(tmp_path / "m.npz"))
    pd.testing.assert_frame_equal(load_model(path).varimp(), m.varimp())
    assert np.isnan(m.for_prediction().layer_table().loc[2, "mean_rate"])  # no optimizer state kept
