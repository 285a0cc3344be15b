"""dask_dl.scoring.history: H2O's stopping rule, scoring schedule and best-model choice."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dask_dl.scoring import history as H

NAN = math.nan


# --------------------------------------------------------------------------- #
# METRIC_DIRECTION
# --------------------------------------------------------------------------- #


def test_metric_direction_table():
    more = {k for k, d in H.METRIC_DIRECTION.items() if d.more_is_better}
    assert more == {"auc", "pr_auc", "lift", "custom_increasing"}
    bounded = {k for k, d in H.METRIC_DIRECTION.items() if d.bounded_below_by_zero}
    assert bounded == {"logloss", "mse", "rmse", "mae", "rmsle", "auc", "pr_auc",
                       "classification_error", "mean_per_class_error"}
    assert not H.METRIC_DIRECTION["deviance"].bounded_below_by_zero
    assert not H.METRIC_DIRECTION["lift"].bounded_below_by_zero


# --------------------------------------------------------------------------- #
# resolve_stopping_metric
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind, expected", [
    ("binomial", "logloss"), ("multinomial", "logloss"), ("regression", "deviance"), ("autoencoder", "mse"),
])
def test_auto_resolution(kind, expected):
    assert H.resolve_stopping_metric("AUTO", kind) == expected
    assert H.resolve_stopping_metric("auto", kind) == expected


@pytest.mark.parametrize("name, key", [
    ("logloss", "logloss"), ("MSE", "mse"), ("RMSE", "rmse"), ("AUC", "auc"), ("AUCPR", "pr_auc"),
    ("lift_top_group", "lift"), ("misclassification", "classification_error"),
    ("mean_per_class_error", "mean_per_class_error"), ("pr_auc", "pr_auc"), ("auc", "auc"),
    ("classification_error", "classification_error"),
])
def test_binomial_spellings(name, key):
    assert H.resolve_stopping_metric(name, "binomial") == key


@pytest.mark.parametrize("name, key", [
    ("deviance", "deviance"), ("MSE", "mse"), ("RMSE", "rmse"), ("MAE", "mae"), ("RMSLE", "rmsle"), ("rmsle", "rmsle"),
])
def test_regression_spellings(name, key):
    assert H.resolve_stopping_metric(name, "regression") == key


def test_autoencoder_only_mse():
    assert H.resolve_stopping_metric("MSE", "autoencoder") == "mse"
    with pytest.raises(ValueError, match="autoencoder"):
        H.resolve_stopping_metric("RMSE", "autoencoder")


@pytest.mark.parametrize("name, kind", [
    ("lift_top_group", "multinomial"), ("logloss", "regression"), ("AUC", "regression"),
    ("misclassification", "regression"), ("mean_per_class_error", "regression"), ("MAE", "binomial"),
])
def test_metric_not_available_for_kind(name, kind):
    with pytest.raises(ValueError) as err:
        H.resolve_stopping_metric(name, kind)
    assert repr(name) in str(err.value) and kind in str(err.value)


@pytest.mark.parametrize("name, kind, key", [("deviance", "binomial", "deviance"),
                                            ("deviance", "multinomial", "deviance"),
                                            ("AUC", "multinomial", "auc"), ("AUCPR", "multinomial", "pr_auc")])
def test_classifier_deviance_and_multinomial_auc_are_stopping_metrics(name, kind, key):
    """deviance of a classifier is 2 x logloss; a multinomial AUC needs auc_type (checked in params)."""
    assert H.resolve_stopping_metric(name, kind) == key


def test_unknown_and_custom_metric_names():
    with pytest.raises(ValueError) as err:
        H.resolve_stopping_metric("r2", "regression")
    msg = str(err.value)
    assert "'r2'" in msg and "AUCPR" in msg and "lift_top_group" in msg and "misclassification" in msg
    with pytest.raises(ValueError, match="custom"):
        H.resolve_stopping_metric("custom_increasing", "binomial")
    with pytest.raises(ValueError, match="kind"):
        H.resolve_stopping_metric("AUTO", "clustering")


# --------------------------------------------------------------------------- #
# stop_early
# --------------------------------------------------------------------------- #


def test_no_stop_with_fewer_than_2k_values_or_k_zero():
    assert not H.stop_early([0.9, 0.9, 0.9], 2, 0.0, "logloss")
    assert H.stop_early([0.9, 0.9, 0.9, 0.9], 2, 0.0, "logloss")
    assert not H.stop_early([0.9] * 50, 0, 0.0, "logloss")
    # even a metric converged to its lower bound needs 2k values
    assert not H.stop_early([0.0, 0.0, 0.0], 2, 0.0, "logloss")
    assert H.stop_early([0.0, 0.0, 0.0, 0.0], 2, 0.0, "logloss")
    assert not H.stop_early([], 1, 0.0, "logloss")
    with pytest.raises(ValueError):
        H.stop_early([0.9] * 4, -1, 0.0, "logloss")
    with pytest.raises(ValueError, match="metric key"):
        H.stop_early([0.9] * 4, 1, 0.0, "AUC")


def test_less_is_better_hand_sequences():
    # MAs (k=2): .95, .90, .90 -> best .90 < ref .95: still improving
    assert not H.stop_early([1.0, 0.9, 0.9, 0.9], 2, 0.0, "logloss")
    # last 4 = [.4, .3, .35, .36]: MAs .35, .325, .355 -> .325 improves on .35
    assert not H.stop_early([0.5, 0.4, 0.3, 0.35, 0.36], 2, 0.0, "mse")
    # last 4 = [.3, .35, .36, .4]: MAs .325, .355, .38 -> nothing better than .325
    assert H.stop_early([0.5, 0.4, 0.3, 0.35, 0.36, 0.4], 2, 0.0, "mse")
    # only the last 2k values matter
    assert H.stop_early([5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0], 2, 0.0, "deviance")
    assert not H.stop_early([5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 0.9], 2, 0.0, "deviance")


def test_k3_example_from_h2o_comment():
    # 20 scoring rows incl. row 0 -> 19 values; k=3 uses the last 6 (H2O indices 14..19)
    values = [1.0] * 13 + [0.50, 0.40, 0.30, 0.31, 0.32, 0.33]
    # MAs: (.5+.4+.3)/3=.4, .3367, .31, .32 -> min .31 < .4: improving
    assert not H.stop_early(values, 3, 0.0, "logloss")
    values = [1.0] * 13 + [0.30, 0.30, 0.30, 0.31, 0.32, 0.33]
    assert H.stop_early(values, 3, 0.0, "logloss")


def test_tolerance():
    # MAs 1.0, .995, .99 -> ratio .99
    vals = [1.0, 1.0, 0.99, 0.99]
    assert not H.stop_early(vals, 2, 0.0, "logloss")
    assert not H.stop_early(vals, 2, 0.005, "logloss")
    assert H.stop_early(vals, 2, 0.02, "logloss")
    # more-is-better: MAs .80, .81, .82 -> ratio 1.025
    auc_vals = [0.80, 0.80, 0.82, 0.82]
    assert not H.stop_early(auc_vals, 2, 0.0, "auc")
    assert not H.stop_early(auc_vals, 2, 0.02, "auc")
    assert H.stop_early(auc_vals, 2, 0.03, "auc")


def test_more_is_better_direction():
    # AUC rising: MAs .75, .80, .80 -> improving
    assert not H.stop_early([0.7, 0.8, 0.8, 0.8], 2, 0.0, "auc")
    # MAs .80, .795, .795: no MA above the reference -> stop for AUC ...
    vals = [0.8, 0.8, 0.79, 0.8]
    assert H.stop_early(vals, 2, 0.0, "auc")
    assert H.stop_early(vals, 2, 0.0, "pr_auc")
    assert H.stop_early(vals, 2, 0.0, "lift")
    # ... but the same falling values are an improvement for a loss
    assert not H.stop_early(vals, 2, 0.0, "logloss")


def test_nan_handling():
    assert not H.stop_early([NAN, 0.9, 0.9, 0.9], 2, 0.0, "logloss")
    assert not H.stop_early([0.9, 0.9, 0.9, NAN], 2, 0.0, "logloss")
    # a NaN outside the last 2k values does not matter
    assert H.stop_early([NAN, 0.9, 0.9], 1, 0.0, "logloss")
    # inf averages give an inf/inf = NaN ratio: no stop
    assert not H.stop_early([math.inf] * 4, 2, 0.0, "mse")


def test_reference_zero():
    # bounded-below metrics at 0 have converged
    assert H.stop_early([0.0, 0.0, 0.0, 0.0], 2, 0.0, "classification_error")
    assert H.stop_early([0.0, 0.0, 0.1, 0.2], 2, 0.0, "mse")
    assert H.stop_early([0.0, 0.0, 0.0, 0.0], 2, 0.0, "auc")
    # unbounded metrics: 0/0 is NaN -> no stop
    assert not H.stop_early([0.0, 0.0, 0.0, 0.0], 2, 0.0, "deviance")
    assert not H.stop_early([0.0, 0.0, 0.0, 0.0], 2, 0.0, "lift")


def test_sign_rules():
    # moving averages cross zero (MAs 0, 1, 1): no stop
    assert not H.stop_early([-1.0, 1.0, 1.0, 1.0], 2, 0.0, "deviance")
    assert not H.stop_early([-1.0, -1.0, 1.0, 3.0], 2, 0.0, "deviance")
    # MAs -1, -2, 1: best (-2) and reference (-1) share a sign, but the MAs cross zero
    assert not H.stop_early([-1.0, -1.0, -3.0, 5.0], 2, 0.0, "deviance")
    # all negative: H2O's ratio rule still applies as is (min/ref = -.5/-.4 = 1.25 >= 1 -> stop)
    assert H.stop_early([-0.4, -0.4, -0.5, -0.5], 2, 0.0, "deviance")
    assert not H.stop_early([-0.5, -0.5, -0.4, -0.4], 2, 0.0, "deviance")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.floats(0.01, 100), st.integers(0, 10))
def test_constant_positive_series_stops_once_long_enough(k, value, extra):
    n = 2 * k + extra
    assert H.stop_early([value] * n, k, 0.0, "logloss")
    assert H.stop_early([value] * n, k, 0.0, "auc")
    assert not H.stop_early([value] * (2 * k - 1), k, 0.0, "logloss")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 10), st.floats(0.001, 0.5))
def test_steadily_improving_series_never_stops(k, extra, step):
    n = 2 * k + extra
    falling = [10.0 * (1.0 - step) ** i for i in range(n)]
    assert not H.stop_early(falling, k, 0.0, "deviance")
    rising = [0.5 + 0.4 * (1.0 - (1.0 - step) ** (i + 1)) for i in range(n)]
    assert not H.stop_early(rising, k, 0.0, "auc")
    # a huge tolerance accepts any improvement smaller than it
    assert H.stop_early(falling, k, 0.999999, "deviance")


# --------------------------------------------------------------------------- #
# should_score
# --------------------------------------------------------------------------- #


def _score(now=100.0, start=94.0, dur=0.5, interval=5.0, duty=0.1, first=False, final=False, each=False):
    return H.should_score(now, start, dur, interval, duty, first, final, each)


def test_should_score_schedule():
    assert _score()  # 6 s > 5 s and 0.5/6 < 0.1
    assert not _score(dur=0.7)  # 0.7/6 > 0.1: duty cycle exceeded
    assert not _score(start=96.0)  # 4 s since the last scoring started
    assert not _score(start=95.0, dur=0.0)  # exactly 5 s is not "more than"
    assert _score(start=96.0, dur=10.0, final=True)  # the final iteration always scores
    assert _score(start=99.9, dur=10.0, each=True)  # score_each_iteration
    assert not _score(duty=0.0)  # duty 0: only the final scoring
    assert _score(duty=0.0, final=True)


def test_should_score_at_each_tenth_of_the_fit():
    """dask_dl's cadence: a fit's tenth passed scores whatever the clock and the duty cycle say,
    unless the duty cycle is 0 (only the final scoring)."""
    assert H.should_score(100.0, 99.9, 10.0, 5.0, 0.1, False, False, False, cadence_due=True)
    assert not H.should_score(100.0, 99.9, 10.0, 5.0, 0.1, False, False, False, cadence_due=False)
    assert not H.should_score(100.0, 99.9, 10.0, 5.0, 0.0, False, False, False, cadence_due=True)


def test_should_score_first_iteration():
    assert H.should_score(0.5, None, 0.0, 5.0, 0.1, True, False, False)
    assert H.should_score(0.5, None, 0.0, 5.0, 0.1, False, False, False)  # no previous start = first
    assert not H.should_score(0.5, None, 0.0, 5.0, 0.0, True, False, False)
    assert H.should_score(0.5, None, 0.0, 5.0, 0.0, True, True, False)


# --------------------------------------------------------------------------- #
# overwrite_with_best_model
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("metric, kind, expected", [
    ("AUTO", "binomial", "logloss"), ("RMSE", "binomial", "logloss"), ("RMSE", "regression", "deviance"),
    ("RMSE", "autoencoder", None), ("AUTO", "autoencoder", "mse"), ("MSE", "regression", "mse"),
    ("AUC", "binomial", "auc"), ("AUCPR", "binomial", "pr_auc"), ("lift_top_group", "binomial", "lift"),
    ("misclassification", "multinomial", "classification_error"), ("MAE", "regression", "mae"),
    ("AUTO", "regression", "deviance"),
])
def test_best_model_metric(metric, kind, expected):
    if expected is None:
        with pytest.raises(ValueError):
            H.best_model_metric(metric, kind)
    else:
        assert H.best_model_metric(metric, kind) == expected


def test_model_loss():
    assert H.model_loss(0.8, "auc") == np.float32(0.2)
    assert H.model_loss(0.3, "pr_auc") == np.float32(0.7)
    assert H.model_loss(2.5, "lift") == np.float32(-2.5)
    assert H.model_loss(0.25, "logloss") == np.float32(0.25)
    assert H.model_loss(0.25, "logloss").dtype == np.float32


def test_is_better():
    assert H.is_better(0.2, 0.3, "logloss")
    assert not H.is_better(0.3, 0.2, "logloss")
    assert not H.is_better(0.3, 0.3, "mse")  # ties keep the stored model
    assert H.is_better(0.9, 0.8, "auc")  # 1 - AUC lower
    assert not H.is_better(0.7, 0.8, "pr_auc")
    assert H.is_better(3.0, 2.0, "lift")  # higher lift is better in dask_dl
    # float32 comparison: a float64 improvement below float32 resolution does not count
    assert 0.3 - 1e-10 < 0.3 and not H.is_better(0.3 - 1e-10, 0.3, "deviance")
    # NaN on either side counts as better once a best model exists
    assert H.is_better(NAN, 0.3, "logloss")
    assert H.is_better(0.3, NAN, "logloss")
    # nothing stored yet: anything finite is stored, NaN / inf are not (loss < +inf)
    assert H.is_better(5.0, None, "deviance")
    assert not H.is_better(NAN, None, "deviance")
    assert not H.is_better(math.inf, None, "deviance")
