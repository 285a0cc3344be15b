"""dask_dl.scoring.metrics against scikit-learn / scipy and hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import huber as scipy_huber

from dask_dl.scoring import metrics as M

PROSTATE = Path("/work/shared/data/prostate/prostate.csv")
HSET = settings(max_examples=40, deadline=None)


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def prostate():
    if not PROSTATE.exists():
        pytest.skip("prostate.csv not available")
    data = np.genfromtxt(PROSTATE, delimiter=",", names=True)
    return data


@pytest.fixture(scope="module")
def binary_data(prostate):
    """CAPSULE with two real-ish scores: a continuous one and GLEASON (many ties)."""
    y = prostate["CAPSULE"].astype(float)
    z = 0.08 * prostate["PSA"] + 0.9 * (prostate["GLEASON"] - 6) - 0.02 * (prostate["AGE"] - 66) - 0.6
    p1 = 1.0 / (1.0 + np.exp(-z))
    gleason = prostate["GLEASON"].astype(float)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.2, 3.0, size=y.size)
    return y, p1, gleason, w


@pytest.fixture(scope="module")
def regression_data(prostate):
    """Predict VOL (non-negative, many zeros) from a least-squares fit on AGE, PSA, GLEASON."""
    y = prostate["VOL"].astype(float)
    X = np.column_stack([np.ones_like(y), prostate["AGE"], prostate["PSA"], prostate["GLEASON"]])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    pred = X @ beta
    rng = np.random.default_rng(1)
    w = rng.uniform(0.1, 2.0, size=y.size)
    return y, pred, w


def _weights_or_none(draw_weights: bool, w: np.ndarray):
    return w if draw_weights else None


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
weight_f = st.floats(0.01, 10.0, allow_nan=False, allow_infinity=False)


@st.composite
def regression_arrays(draw, elements=finite, pred_elements=None, min_size=2):
    n = draw(st.integers(min_size, 60))
    y = draw(hnp.arrays(np.float64, n, elements=elements))
    pred = draw(hnp.arrays(np.float64, n, elements=elements if pred_elements is None else pred_elements))
    w = draw(hnp.arrays(np.float64, n, elements=weight_f))
    return y, pred, w


@st.composite
def binary_arrays(draw):
    n = draw(st.integers(2, 80))
    y = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0])))
    y[0], y[1] = 0.0, 1.0  # both classes present
    # few distinct values -> many ties
    score = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0])
                            | st.floats(0, 1, allow_nan=False)))
    w = draw(hnp.arrays(np.float64, n, elements=weight_f))
    return y, score, w


@st.composite
def multiclass_arrays(draw):
    k = draw(st.integers(2, 5))
    n = draw(st.integers(k, 60))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    y[:k] = np.arange(k)  # every class present
    raw = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(0.01, 1.0)))
    proba = raw / raw.sum(axis=1, keepdims=True)
    w = draw(hnp.arrays(np.float64, n, elements=weight_f))
    return y, proba, w


# --------------------------------------------------------------------------- #
# Regression
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("weighted", [False, True])
def test_regression_basics_prostate(regression_data, weighted):
    y, pred, w = regression_data
    sw = _weights_or_none(weighted, w)
    assert M.mse(y, pred, sw) == pytest.approx(skm.mean_squared_error(y, pred, sample_weight=sw), rel=1e-12)
    assert M.rmse(y, pred, sw) == pytest.approx(
        math.sqrt(skm.mean_squared_error(y, pred, sample_weight=sw)), rel=1e-12)
    assert M.mae(y, pred, sw) == pytest.approx(skm.mean_absolute_error(y, pred, sample_weight=sw), rel=1e-12)
    assert M.r2(y, pred, sw) == pytest.approx(skm.r2_score(y, pred, sample_weight=sw), rel=1e-10)
    # lstsq fit on unweighted data: r2 is positive but far from 1
    assert 0.0 < M.r2(y, pred) < 0.5


@HSET
@given(regression_arrays(), st.booleans())
def test_regression_basics_property(data, weighted):
    y, pred, w = data
    sw = _weights_or_none(weighted, w)
    assert M.mse(y, pred, sw) == pytest.approx(skm.mean_squared_error(y, pred, sample_weight=sw), rel=1e-9, abs=1e-9)
    assert M.mae(y, pred, sw) == pytest.approx(skm.mean_absolute_error(y, pred, sample_weight=sw), rel=1e-9, abs=1e-9)
    if np.ptp(y) > 1e-6:
        assert M.r2(y, pred, sw) == pytest.approx(skm.r2_score(y, pred, sample_weight=sw), rel=1e-7, abs=1e-7)


@HSET
@given(regression_arrays(elements=st.floats(0, 1e3, allow_nan=False)), st.booleans())
def test_rmsle_matches_sklearn(data, weighted):
    y, pred, w = data
    sw = _weights_or_none(weighted, w)
    expected = skm.root_mean_squared_log_error(y, pred, sample_weight=sw)
    assert M.rmsle(y, pred, sw) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_rmsle_negative_values():
    # between -1 and 0 log1p is defined: H2O computes it
    assert M.rmsle([0.0, 1.0], [-0.5, 1.0]) == pytest.approx(math.sqrt(math.log(0.5) ** 2 / 2))
    assert math.isnan(M.rmsle([0.0, 1.0], [-1.5, 1.0]))
    assert math.isnan(M.rmsle([-2.0, 1.0], [0.0, 1.0]))


def test_r2_constant_response_like_h2o():
    assert M.r2([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == -math.inf
    assert math.isnan(M.r2([2.0, 2.0], [2.0, 2.0]))


def test_rows_with_nan_or_zero_weight_are_ignored():
    y = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    pred = np.array([1.5, 2.0, 3.0, np.nan, 7.0])
    w = np.array([1.0, 2.0, 1.0, 1.0, 0.0])
    # only rows 0 and 1 remain: errors 0.5 (w 1) and 0 (w 2)
    assert M.mse(y, pred, w) == pytest.approx(0.25 / 3)
    assert M.mae(y, pred, w) == pytest.approx(0.5 / 3)
    assert math.isnan(M.mse([np.nan], [1.0]))
    with pytest.raises(ValueError):
        M.mse([1.0], [1.0], [-1.0])


@pytest.mark.parametrize("weighted", [False, True])
def test_deviances_prostate(regression_data, weighted):
    y, pred, w = regression_data
    sw = _weights_or_none(weighted, w)
    mu = np.exp(0.3 * (pred - pred.mean()) / pred.std() + np.log(y.mean() + 1))  # positive predictions
    assert M.mean_residual_deviance(y, pred, "gaussian", sw) == pytest.approx(
        skm.mean_squared_error(y, pred, sample_weight=sw), rel=1e-12)
    assert M.mean_residual_deviance(y, pred, "laplace", sw) == pytest.approx(
        skm.mean_absolute_error(y, pred, sample_weight=sw), rel=1e-12)
    assert M.mean_residual_deviance(y, mu, "poisson", sw) == pytest.approx(
        skm.mean_poisson_deviance(y, mu, sample_weight=sw), rel=1e-10)
    for p in (1.2, 1.5, 1.8):
        assert M.mean_residual_deviance(y, mu, "tweedie", sw, tweedie_power=p) == pytest.approx(
            skm.mean_tweedie_deviance(y, mu, sample_weight=sw, power=p), rel=1e-10)
    for a in (0.1, 0.5, 0.9):
        assert M.mean_residual_deviance(y, pred, "quantile", sw, quantile_alpha=a) == pytest.approx(
            skm.mean_pinball_loss(y, pred, sample_weight=sw, alpha=a), rel=1e-12)
    ypos = y + 1.0
    assert M.mean_residual_deviance(ypos, mu, "gamma", sw) == pytest.approx(
        skm.mean_gamma_deviance(ypos, mu, sample_weight=sw), rel=1e-10)


@HSET
@given(regression_arrays(elements=st.floats(0, 50, allow_nan=False), pred_elements=positive), st.booleans())
def test_poisson_tweedie_property(data, weighted):
    y, mu, w = data
    sw = _weights_or_none(weighted, w)
    assert M.mean_residual_deviance(y, mu, "poisson", sw) == pytest.approx(
        skm.mean_poisson_deviance(y, mu, sample_weight=sw), rel=1e-8, abs=1e-9)
    assert M.mean_residual_deviance(y, mu, "tweedie", sw, tweedie_power=1.5) == pytest.approx(
        skm.mean_tweedie_deviance(y, mu, sample_weight=sw, power=1.5), rel=1e-8, abs=1e-9)


@HSET
@given(regression_arrays(elements=positive), st.booleans())
def test_gamma_property(data, weighted):
    y, mu, w = data
    sw = _weights_or_none(weighted, w)
    assert M.mean_residual_deviance(y, mu, "gamma", sw) == pytest.approx(
        skm.mean_gamma_deviance(y, mu, sample_weight=sw), rel=1e-8, abs=1e-9)


@HSET
@given(regression_arrays(), st.floats(0, 1), st.booleans())
def test_quantile_property(data, alpha, weighted):
    y, pred, w = data
    sw = _weights_or_none(weighted, w)
    assert M.mean_residual_deviance(y, pred, "quantile", sw, quantile_alpha=alpha) == pytest.approx(
        skm.mean_pinball_loss(y, pred, sample_weight=sw, alpha=alpha), rel=1e-9, abs=1e-9)


def test_poisson_zero_actual_and_hand_values():
    # y = 0: 2ŷ; y = 2, ŷ = 1: 2(2 log 2 − 2 + 1)
    got = M.mean_residual_deviance([0.0, 2.0], [0.5, 1.0], "poisson")
    assert got == pytest.approx((2 * 0.5 + 2 * (2 * math.log(2) - 1)) / 2)
    # gamma: 2(log(ŷ/y) + y/ŷ − 1)
    assert M.mean_residual_deviance([2.0], [1.0], "gamma") == pytest.approx(2 * (math.log(0.5) + 2 - 1))


@pytest.mark.parametrize("weighted", [False, True])
def test_huber_deviance_is_twice_scipy_huber(regression_data, weighted):
    y, pred, w = regression_data
    sw = _weights_or_none(weighted, w)
    delta = M.huber_delta(y, pred, 0.9, sw)
    expected = np.average(2 * scipy_huber(delta, y - pred), weights=sw)
    assert M.mean_residual_deviance(y, pred, "huber", sw, huber_delta=delta) == pytest.approx(expected, rel=1e-12)
    # hand values with Δ = 1: r² inside, 2|r| − 1 outside (continuous at |r| = 1)
    assert M.mean_residual_deviance([0, 0, 0], [0.5, 1.0, 3.0], "huber", huber_delta=1.0) == pytest.approx(
        (0.25 + 1.0 + 5.0) / 3)
    with pytest.raises(ValueError, match="huber_delta"):
        M.mean_residual_deviance(y, pred, "huber")


def test_huber_delta_is_weighted_quantile_of_abs_residuals(regression_data):
    y, pred, _ = regression_data
    assert M.huber_delta(y, pred, 0.9) == pytest.approx(np.quantile(np.abs(y - pred), 0.9), rel=1e-12)
    # integer weights act as repeated rows
    wi = np.arange(y.size) % 3 + 1.0
    rep = np.repeat(np.abs(y - pred), wi.astype(int))
    assert M.huber_delta(y, pred, 0.9, wi) == pytest.approx(np.quantile(rep, 0.9), rel=1e-12)


@HSET
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=finite),
       st.floats(0, 1), st.data())
def test_weighted_quantile_matches_repeated_rows(x, prob, data):
    counts = data.draw(hnp.arrays(np.int64, x.size, elements=st.integers(1, 4)))
    expected = np.quantile(np.repeat(x, counts), prob)
    assert M.weighted_quantile(x, prob, counts.astype(float)) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert M.weighted_quantile(x, prob) == pytest.approx(np.quantile(x, prob), rel=1e-9, abs=1e-9)


def test_unknown_distribution_and_bad_tweedie():
    with pytest.raises(ValueError, match="distribution"):
        M.mean_residual_deviance([1.0], [1.0], "bernoulli")
    with pytest.raises(ValueError, match="tweedie_power"):
        M.mean_residual_deviance([1.0], [1.0], "tweedie", tweedie_power=2.5)


# --------------------------------------------------------------------------- #
# Classification: probabilities
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("weighted", [False, True])
def test_binomial_probability_metrics_prostate(binary_data, weighted):
    y, p1, _, w = binary_data
    sw = _weights_or_none(weighted, w)
    proba = np.column_stack([1 - p1, p1])
    assert M.logloss(y, proba, sw) == pytest.approx(skm.log_loss(y, p1, sample_weight=sw), rel=1e-12)
    brier = skm.mean_squared_error(y, p1, sample_weight=sw)
    assert M.classification_mse(y, proba, sw) == pytest.approx(brier, rel=1e-12)
    assert M.classification_rmse(y, proba, sw) == pytest.approx(math.sqrt(brier), rel=1e-12)
    assert M.classification_r2(y, proba, sw) == pytest.approx(skm.r2_score(y, p1, sample_weight=sw), rel=1e-10)


@HSET
@given(multiclass_arrays(), st.booleans())
def test_multinomial_probability_metrics_property(data, weighted):
    y, proba, w = data
    sw = _weights_or_none(weighted, w)
    k = proba.shape[1]
    assert M.logloss(y, proba, sw) == pytest.approx(
        skm.log_loss(y, proba, sample_weight=sw, labels=list(range(k))), rel=1e-9)
    onehot = np.eye(k)[y]
    pa = proba[np.arange(y.size), y]
    expected_mse = np.average((1 - pa) ** 2, weights=sw)
    assert M.classification_mse(y, proba, sw) == pytest.approx(expected_mse, rel=1e-12)
    # the actual-class error is not the one-hot Brier score (which sums all classes)
    assert expected_mse <= np.average(((onehot - proba) ** 2).sum(axis=1), weights=sw) + 1e-12
    var_idx = np.average((y - np.average(y, weights=sw)) ** 2, weights=sw)
    assert M.classification_r2(y, proba, sw) == pytest.approx(1 - expected_mse / var_idx, rel=1e-9)


def test_logloss_floor_and_multinomial_r2_hand():
    # p_actual = 0 is floored at 1e-15
    assert M.logloss([0, 1], [[0.0, 1.0], [0.0, 1.0]]) == pytest.approx(-math.log(1e-15) / 2)
    # classes 0,1,2 once each: Var(index) = 2/3; errors (1-p_actual)^2 = .09, .04, .36
    proba = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.1, 0.6]]
    mse = (0.09 + 0.04 + 0.16) / 3
    assert M.classification_mse([0, 1, 2], proba) == pytest.approx(mse)
    assert M.classification_r2([0, 1, 2], proba) == pytest.approx(1 - mse / (2 / 3))


# --------------------------------------------------------------------------- #
# Classification: labels
# --------------------------------------------------------------------------- #


@HSET
@given(multiclass_arrays(), st.booleans(), st.data())
def test_label_metrics_property(data, weighted, more):
    y, _, w = data
    k = int(y.max()) + 1
    pred = more.draw(hnp.arrays(np.int64, y.size, elements=st.integers(0, k - 1)))
    sw = _weights_or_none(weighted, w)
    cm = M.confusion_matrix(y, pred, k, sw)
    np.testing.assert_allclose(cm, skm.confusion_matrix(y, pred, labels=list(range(k)), sample_weight=sw),
                               rtol=1e-12)
    assert M.classification_error(y, pred, sw) == pytest.approx(
        1 - skm.accuracy_score(y, pred, sample_weight=sw), abs=1e-12)
    # every class is present in y, so this equals 1 - balanced accuracy
    assert M.mean_per_class_error(y, pred, k, sw) == pytest.approx(
        1 - skm.balanced_accuracy_score(y, pred, sample_weight=sw), abs=1e-12)


def test_mean_per_class_error_counts_absent_class_as_zero():
    # class 2 never occurs: errors 0.5 (class 0), 0 (class 1), 0 (class 2) -> mean over 3
    assert M.mean_per_class_error([0, 0, 1], [0, 1, 1], 3) == pytest.approx(0.5 / 3)
    cm = M.confusion_matrix([0, 0, 1], [0, 1, 1], 3, [2.0, 1.0, 0.5])
    np.testing.assert_array_equal(cm, [[2.0, 1.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError):
        M.confusion_matrix([0, 3], [0, 1], 3)


# --------------------------------------------------------------------------- #
# Binomial ranking metrics
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("which", ["continuous", "gleason_ties"])
def test_auc_prauc_prostate(binary_data, weighted, which):
    y, p1, gleason, w = binary_data
    score = p1 if which == "continuous" else gleason
    sw = _weights_or_none(weighted, w)
    assert M.auc(y, score, sw) == pytest.approx(skm.roc_auc_score(y, score, sample_weight=sw), rel=1e-12)
    assert M.pr_auc(y, score, sw) == pytest.approx(
        skm.average_precision_score(y, score, sample_weight=sw), rel=1e-12)
    assert 0.6 < M.auc(y, score, sw) < 0.95


@HSET
@given(binary_arrays(), st.booleans())
def test_auc_prauc_property(data, weighted):
    y, score, w = data
    sw = _weights_or_none(weighted, w)
    assert M.auc(y, score, sw) == pytest.approx(skm.roc_auc_score(y, score, sample_weight=sw), rel=1e-9, abs=1e-12)
    assert M.pr_auc(y, score, sw) == pytest.approx(
        skm.average_precision_score(y, score, sample_weight=sw), rel=1e-9, abs=1e-12)


def test_auc_hand_ties_and_single_class():
    # pairs (pos, neg): (0.5 vs 0.5 tie) = 1/2, (0.9 vs 0.5) = 1 -> 0.75
    assert M.auc([0, 1, 1], [0.5, 0.5, 0.9]) == pytest.approx(0.75)
    assert math.isnan(M.auc([1, 1], [0.2, 0.3]))
    assert math.isnan(M.pr_auc([0, 0], [0.2, 0.3]))


def _brute_force_max_f1(y, score, sw):
    best_t, best_f1 = None, -1.0
    for t in np.unique(score)[::-1]:  # descending: first max = highest threshold
        f1 = skm.f1_score(y, (score >= t).astype(int), sample_weight=sw, zero_division=0.0)
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = t, f1
    return best_t, best_f1


@HSET
@given(binary_arrays(), st.booleans())
def test_max_f1_threshold_property(data, weighted):
    y, score, w = data
    sw = _weights_or_none(weighted, w)
    t = M.max_f1_threshold(y, score, sw)
    bt, bf1 = _brute_force_max_f1(y, score, sw)
    got_f1 = skm.f1_score(y, (score >= t).astype(int), sample_weight=sw, zero_division=0.0)
    assert got_f1 == pytest.approx(bf1, abs=1e-9)
    assert t == bt  # the highest threshold among equal F1 values


def test_max_f1_threshold_hand_tie_takes_highest_threshold():
    # t = 0.9: TP 1, FP 0, FN 1 -> F1 2/3;  t = 0.6: TP 2, FP 2, FN 0 -> F1 2/3 as well
    y = [1, 0, 0, 1]
    score = [0.9, 0.8, 0.7, 0.6]
    assert M.max_f1_threshold(y, score) == 0.9
    # weighting the second positive up makes t = 0.6 strictly better
    assert M.max_f1_threshold(y, score, [1, 1, 1, 3]) == 0.6
    mm = M.binomial_metrics(y, score)
    assert mm["threshold"] == 0.9
    assert mm["classification_error"] == pytest.approx(0.25)
    assert mm["mean_per_class_error"] == pytest.approx(0.25)  # class 0: 0 errors, class 1: 1 of 2


def test_lift_top_group_hand_and_prostate(binary_data):
    # 200 rows, scores 0..199: q99 = 197.01 -> top group = scores 198, 199
    score = np.arange(200.0)
    y = np.zeros(200)
    y[[199, 50, 10, 3]] = 1.0  # 1 of the 2 top rows responds; overall rate 4/200
    assert M.lift_top_group(y, score) == pytest.approx((1 / 2) / (4 / 200))
    # ties at the top enlarge the group
    score2 = score.copy()
    score2[190:] = 500.0
    assert M.lift_top_group(y, score2) == pytest.approx((1 / 10) / (4 / 200))

    yp, p1, _, w = binary_data
    for sw in (None, w):
        q = M.weighted_quantile(p1, 0.99, sw)
        top = p1 >= q
        ww = np.ones_like(p1) if sw is None else sw
        expected = (np.sum(ww[top] * yp[top]) / np.sum(ww[top])) / (np.sum(ww * yp) / np.sum(ww))
        assert M.lift_top_group(yp, p1, sw) == pytest.approx(expected, rel=1e-12)
    assert q == pytest.approx(M.weighted_quantile(p1, 0.99, w))
    assert M.lift_top_group(yp, p1) == pytest.approx(1 / np.mean(yp))  # top 1% of prostate all respond


# --------------------------------------------------------------------------- #
# Metric dicts
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("weighted", [False, True])
def test_binomial_metrics_dict(binary_data, weighted):
    y, p1, _, w = binary_data
    sw = _weights_or_none(weighted, w)
    mm = M.binomial_metrics(y, p1, sw)
    assert set(mm) == {"mse", "rmse", "logloss", "r2", "auc", "pr_auc", "lift", "classification_error",
                       "mean_per_class_error", "threshold"}
    t = mm["threshold"]
    assert t == M.max_f1_threshold(y, p1, sw)
    labels = (p1 >= t).astype(int)
    assert mm["classification_error"] == pytest.approx(1 - skm.accuracy_score(y, labels, sample_weight=sw))
    assert mm["mean_per_class_error"] == pytest.approx(1 - skm.balanced_accuracy_score(y, labels, sample_weight=sw))
    assert mm["auc"] == pytest.approx(skm.roc_auc_score(y, p1, sample_weight=sw))
    assert mm["logloss"] == pytest.approx(skm.log_loss(y, p1, sample_weight=sw))
    assert mm["rmse"] == pytest.approx(math.sqrt(mm["mse"]))
    assert mm["lift"] == pytest.approx(M.lift_top_group(y, p1, sw))


@pytest.mark.parametrize("weighted", [False, True])
def test_multinomial_metrics_dict(prostate, weighted):
    # 3 classes from DPROS-1 (values 0..3 -> merge 3 into 2) with a softmax of simple scores
    y = np.minimum(prostate["DPROS"].astype(int) - 1, 2)
    s = np.column_stack([-0.02 * prostate["PSA"], 0.01 * prostate["AGE"] - 0.6, 0.03 * prostate["PSA"] - 0.2])
    proba = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    w = np.random.default_rng(3).uniform(0.5, 2, y.size)
    sw = _weights_or_none(weighted, w)
    mm = M.multinomial_metrics(y, proba, sw)
    labels = proba.argmax(axis=1)
    assert mm["logloss"] == pytest.approx(skm.log_loss(y, proba, sample_weight=sw))
    assert mm["classification_error"] == pytest.approx(1 - skm.accuracy_score(y, labels, sample_weight=sw))
    assert mm["mean_per_class_error"] == pytest.approx(M.mean_per_class_error(y, labels, 3, sw))
    assert mm["rmse"] == pytest.approx(math.sqrt(mm["mse"]))
    assert math.isnan(mm["auc"]) and math.isnan(mm["pr_auc"])
    assert set(mm) == {"mse", "rmse", "logloss", "r2", "classification_error", "mean_per_class_error",
                       "auc", "pr_auc"}


@pytest.mark.parametrize("weighted", [False, True])
def test_regression_metrics_dict(regression_data, weighted):
    y, pred, w = regression_data
    sw = _weights_or_none(weighted, w)
    g = M.regression_metrics(y, pred, weights=sw)
    assert set(g) == {"mse", "rmse", "mae", "rmsle", "r2", "deviance"}
    assert g["deviance"] == pytest.approx(g["mse"])
    assert g["r2"] == pytest.approx(skm.r2_score(y, pred, sample_weight=sw))
    assert math.isnan(g["rmsle"]) == bool(np.any(pred < -1))
    h = M.regression_metrics(y, pred, "huber", sw, huber_alpha=0.5)
    delta = M.huber_delta(y, pred, 0.5, sw)
    assert h["deviance"] == pytest.approx(M.mean_residual_deviance(y, pred, "huber", sw, huber_delta=delta))
    h2 = M.regression_metrics(y, pred, "huber", sw, huber_delta=1.0)
    assert h2["deviance"] != pytest.approx(h["deviance"])
    q = M.regression_metrics(y, pred, "quantile", sw, quantile_alpha=0.2)
    assert q["deviance"] == pytest.approx(skm.mean_pinball_loss(y, pred, sample_weight=sw, alpha=0.2))
    with pytest.raises(TypeError):
        M.regression_metrics(y, pred, "gaussian", sw, alpha=0.3)
