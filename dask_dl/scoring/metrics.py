"""Model metrics with H2O-3's definitions (semantics doc §10.4), in plain numpy.

Every function works in float64 and takes optional observation ``weights``
(``None`` means every row weighs 1).  Rows that H2O's metric builders skip are
dropped first, in one place (:func:`_valid_rows`): rows with a missing (NaN)
response, a NaN prediction, or a weight that is 0 or NaN.  Negative weights are
rejected.  A metric over no rows is NaN.

Choices made where H2O's behaviour is a quirk or unspecified:

* ``r2`` / ``classification_r2`` use the weighted *population* variance, as
  H2O's ``weightedSigma`` does; with zero variance the result is ``-inf`` (or
  NaN when the MSE is 0 too), as in H2O, not sklearn's forced-finite values.
  For multinomial models H2O's r2 divides by the variance of the class *index*
  (its metric builder accumulates the index as if it were a number); we do the
  same so that reported values match H2O.
* ``rmsle`` is NaN when any actual or prediction is below -1 (``log1p`` is
  undefined there), as H2O computes it; values in [-1, 0) are used as they are.
* AUC and AUCPR are exact (sklearn's ``roc_auc_score`` and
  ``average_precision_score``), not H2O's 400-bin approximation.
* The binomial error, mean per-class error and threshold come from the
  max-F1 threshold of the scored data itself, computed exactly; among equal
  F1 values the highest threshold wins.
* Multinomial labels are the argmax with ties going to the lowest class index
  (H2O breaks ties at random, weighted by prior class frequencies).  Their
  confusion matrix is weighted; H2O's multinomial builder counts rows
  unweighted there although its other metrics are weighted.
* The top-group lift uses the weighted 0.99-quantile of the scores with H2O's
  interpolation (:func:`weighted_quantile`); rows scoring at or above it form
  the group.  Fractional weights are used as they are (H2O truncates the
  group's weighted counts to integers).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from .. import names

__all__ = [
    "REGRESSION_DISTRIBUTIONS",
    "weighted_quantile",
    "mse",
    "rmse",
    "mae",
    "rmsle",
    "r2",
    "mean_residual_deviance",
    "huber_delta",
    "logloss",
    "classification_mse",
    "classification_rmse",
    "classification_r2",
    "confusion_matrix",
    "classification_error",
    "mean_per_class_error",
    "auc",
    "pr_auc",
    "max_f1_threshold",
    "lift_top_group",
    "regression_metrics",
    "binomial_metrics",
    "multinomial_metrics",
]

#: Distributions whose mean residual deviance :func:`mean_residual_deviance` knows.
REGRESSION_DISTRIBUTIONS = frozenset(names.REGRESSION_DISTRIBUTIONS)

#: Probability floor of H2O's logloss: -log(max(1e-15, p_actual)).
LOGLOSS_EPS = 1e-15

#: Quantile of the scores that opens H2O's first gains/lift group (top 1 %).
LIFT_TOP_QUANTILE = 0.99


# --------------------------------------------------------------------------- #
# Shared helpers
# --------------------------------------------------------------------------- #


def _as_1d(a: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _weights(weights: Optional[ArrayLike], n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = _as_1d(weights, "weights")
    if w.shape[0] != n:
        raise ValueError(f"weights has {w.shape[0]} rows, expected {n}")
    if np.any(w < 0):
        raise ValueError("observation weights must be non-negative")
    return w


def _valid_rows(
    weights: Optional[ArrayLike], *arrays: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Drop the rows H2O's metric builders skip; return (weights, arrays).

    Skipped: NaN in any of ``arrays`` (response or prediction; for 2-D arrays
    any NaN in the row), weight 0, NaN weight.
    """
    n = arrays[0].shape[0]
    for a in arrays[1:]:
        if a.shape[0] != n:
            raise ValueError(f"inputs have different numbers of rows: {n} and {a.shape[0]}")
    w = _weights(weights, n)
    keep = (w != 0) & ~np.isnan(w)
    for a in arrays:
        nan = np.isnan(a)
        keep &= ~(nan.any(axis=1) if a.ndim == 2 else nan)
    if keep.all():
        return w, arrays
    return w[keep], tuple(a[keep] for a in arrays)


def _wmean(values: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean; NaN over no rows."""
    total = w.sum()
    if total == 0:
        return math.nan
    return float(np.dot(w, values) / total)


def _sqrt(x: float) -> float:
    """math.sqrt that passes NaN and +inf through."""
    return math.sqrt(x) if x >= 0 else math.nan


def _class_indices(y_idx: ArrayLike, n_classes: Optional[int] = None) -> np.ndarray:
    """Float copy of class indices (NaN allowed, dropped later); checks integrality."""
    y = _as_1d(y_idx, "y_idx")
    finite = y[~np.isnan(y)]
    if np.any(finite != np.round(finite)) or np.any(finite < 0):
        raise ValueError("class indices must be non-negative integers")
    if n_classes is not None and finite.size and finite.max() >= n_classes:
        raise ValueError(f"class index {int(finite.max())} out of range for {n_classes} classes")
    return y


def _proba_2d(proba: ArrayLike) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must be (n, K), got shape {p.shape}")
    return p


def _p_actual(y_idx: ArrayLike, proba: ArrayLike, weights: Optional[ArrayLike]):
    """Probability given to the actual class per kept row, with the kept weights."""
    p = _proba_2d(proba)
    y = _class_indices(y_idx, p.shape[1])
    w, (y, p) = _valid_rows(weights, y, p)
    return p[np.arange(y.shape[0]), y.astype(np.intp)], y, w


def weighted_quantile(values: ArrayLike, prob: float, weights: Optional[ArrayLike] = None) -> float:
    """H2O's (weighted) quantile with linear interpolation.

    Treats a row of weight w as w copies of its value: with W = Σw the target
    rank is h = prob·(W − 1) (0-based); the result interpolates between the
    values at ranks floor(h) and floor(h) + 1.  With unit weights this equals
    ``numpy.quantile(values, prob)`` (R type 7), which is what H2O's Quantile
    gives for unweighted data.  Used for the huber Δ and the gains/lift groups.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")
    x = _as_1d(values, "values")
    w, (x,) = _valid_rows(weights, x)
    if x.size == 0:
        return math.nan
    order = np.argsort(x, kind="mergesort")
    x, w = x[order], w[order]
    cum = np.cumsum(w)
    h = prob * (cum[-1] - 1.0)
    lo_rank = math.floor(h)
    # value at 0-based rank r: the first row whose cumulative weight exceeds r
    lo_i = min(int(np.searchsorted(cum, lo_rank, side="right")), x.size - 1)
    hi_i = min(int(np.searchsorted(cum, lo_rank + 1, side="right")), x.size - 1)
    lo, hi = x[lo_i], x[hi_i]
    if lo == hi:
        return float(lo)
    return float(lo + (hi - lo) * (h - lo_rank))


# --------------------------------------------------------------------------- #
# Regression
# --------------------------------------------------------------------------- #


def _regression_rows(y: ArrayLike, pred: ArrayLike, weights: Optional[ArrayLike]):
    w, (yy, pp) = _valid_rows(weights, _as_1d(y, "y"), _as_1d(pred, "pred"))
    return yy, pp, w


def mse(y: ArrayLike, pred: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Weighted mean squared error Σw(y − ŷ)² / Σw."""
    yy, pp, w = _regression_rows(y, pred, weights)
    return _wmean((yy - pp) ** 2, w)


def rmse(y: ArrayLike, pred: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Square root of :func:`mse`."""
    return _sqrt(mse(y, pred, weights))


def mae(y: ArrayLike, pred: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Weighted mean absolute error Σw|y − ŷ| / Σw."""
    yy, pp, w = _regression_rows(y, pred, weights)
    return _wmean(np.abs(yy - pp), w)


def rmsle(y: ArrayLike, pred: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Root mean squared log error sqrt(Σw(log1p ŷ − log1p y)² / Σw).

    NaN if any actual or prediction is below -1, where log1p is undefined
    (H2O lets the NaN propagate through its sum); -1 itself gives +inf.
    """
    yy, pp, w = _regression_rows(y, pred, weights)
    if np.any(yy < -1) or np.any(pp < -1):
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = (np.log1p(pp) - np.log1p(yy)) ** 2
    return _sqrt(_wmean(sq, w))


def _r2_from(mse_value: float, y: np.ndarray, w: np.ndarray) -> float:
    """1 − MSE / Var_w(y) with the weighted population variance (H2O's sigma²)."""
    if y.size == 0:
        return math.nan
    mean = _wmean(y, w)
    var = _wmean((y - mean) ** 2, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(1.0 - np.float64(mse_value) / np.float64(var))


def r2(y: ArrayLike, pred: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Coefficient of determination 1 − MSE / Var(y), variance weighted and not
    bias-corrected (same as sklearn's ``r2_score`` except for constant y:
    -inf, or NaN if also MSE = 0, as in H2O)."""
    yy, pp, w = _regression_rows(y, pred, weights)
    return _r2_from(_wmean((yy - pp) ** 2, w), yy, w)


def unit_deviance(
    y: np.ndarray,
    f: np.ndarray,
    distribution: str,
    tweedie_power: float,
    quantile_alpha: float,
    huber_delta: Optional[float],
) -> np.ndarray:
    """Per-row deviance of H2O's Distribution classes (f = prediction, response scale)."""
    r = y - f
    if distribution == "gaussian":
        return r * r
    if distribution == "laplace":
        return np.abs(r)
    if distribution == "quantile":
        if not 0.0 <= quantile_alpha <= 1.0:
            raise ValueError(f"quantile_alpha must be in [0, 1], got {quantile_alpha}")
        return np.where(y > f, quantile_alpha * r, (1.0 - quantile_alpha) * (-r))
    if distribution == "huber":
        if huber_delta is None:
            raise ValueError("huber deviance needs huber_delta (see huber_delta())")
        a = np.abs(r)
        # r² inside the Δ band, 2Δ|r| − Δ² outside: twice the textbook Huber loss,
        # continuous at |r| = Δ (H2O's current HuberDistribution.deviance).
        return np.where(a <= huber_delta, r * r, (2.0 * a - huber_delta) * huber_delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        if distribution == "poisson":
            # 2(y log(y/ŷ) − y + ŷ) with y log y = 0 at y = 0
            ylog = np.where(y == 0, 0.0, y * np.log(np.where(y == 0, 1.0, y) / f))
            return 2.0 * (ylog - y + f)
        if distribution == "gamma":
            return 2.0 * (np.log(f / y) + y / f - 1.0)
        if distribution == "tweedie":
            p = tweedie_power
            if not 1.0 < p < 2.0:
                raise ValueError(f"tweedie_power must be in (1, 2), got {p}")
            return 2.0 * (
                np.power(y, 2.0 - p) / ((1.0 - p) * (2.0 - p))
                - y * np.power(f, 1.0 - p) / (1.0 - p)
                + np.power(f, 2.0 - p) / (2.0 - p)
            )
    raise ValueError(
        f"unknown distribution {distribution!r}; expected one of {sorted(REGRESSION_DISTRIBUTIONS)}"
    )


def mean_residual_deviance(
    y: ArrayLike,
    pred: ArrayLike,
    distribution: str,
    weights: Optional[ArrayLike] = None,
    tweedie_power: float = 1.5,
    quantile_alpha: float = 0.5,
    huber_delta: Optional[float] = None,
) -> float:
    """H2O's mean residual deviance Σw·d(y, ŷ) / Σw for a regression distribution.

    Unit deviances d (ŷ on the response scale):
    gaussian (y − ŷ)²; laplace |y − ŷ|; quantile α(y − ŷ) if y > ŷ else
    (1 − α)(ŷ − y) (pinball loss); huber (y − ŷ)² if |y − ŷ| ≤ Δ else
    2Δ|y − ŷ| − Δ² (``huber_delta`` is required); poisson 2(y log(y/ŷ) − y + ŷ);
    gamma 2(log(ŷ/y) + y/ŷ − 1); tweedie (1 < p < 2)
    2(y^(2−p)/((1−p)(2−p)) − y ŷ^(1−p)/(1−p) + ŷ^(2−p)/(2−p)).
    """
    dist = distribution.lower()
    yy, pp, w = _regression_rows(y, pred, weights)
    d = unit_deviance(yy, pp, dist, tweedie_power, quantile_alpha, huber_delta)
    return _wmean(d, w)


def huber_delta(
    y: ArrayLike, pred: ArrayLike, alpha: float, weights: Optional[ArrayLike] = None
) -> float:
    """Huber Δ as H2O computes it for the deviance metric: the weighted
    ``alpha``-quantile (``huber_alpha``) of the absolute residuals |y − ŷ|."""
    yy, pp, w = _regression_rows(y, pred, weights)
    return weighted_quantile(np.abs(yy - pp), alpha, w)


# --------------------------------------------------------------------------- #
# Classification: probabilities
# --------------------------------------------------------------------------- #


def logloss(y_idx: ArrayLike, proba: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Weighted mean of −log(max(1e-15, p_actual)); ``proba`` is (n, K), y_idx in 0..K−1."""
    pa, _, w = _p_actual(y_idx, proba, weights)
    return _wmean(-np.log(np.maximum(LOGLOSS_EPS, pa)), w)


def classification_mse(
    y_idx: ArrayLike, proba: ArrayLike, weights: Optional[ArrayLike] = None
) -> float:
    """H2O's classifier MSE: weighted mean of (1 − p_actual)² (for binomial this
    equals the Brier score mean (y − p1)²)."""
    pa, _, w = _p_actual(y_idx, proba, weights)
    return _wmean((1.0 - pa) ** 2, w)


def classification_rmse(
    y_idx: ArrayLike, proba: ArrayLike, weights: Optional[ArrayLike] = None
) -> float:
    """Square root of :func:`classification_mse`."""
    return _sqrt(classification_mse(y_idx, proba, weights))


def classification_r2(
    y_idx: ArrayLike, proba: ArrayLike, weights: Optional[ArrayLike] = None
) -> float:
    """H2O's classifier r2: 1 − MSE / Var_w(class index).

    For binomial the class index is y ∈ {0, 1}, so this is the usual
    1 − Brier / Var(y).  For multinomial H2O also divides by the (weighted,
    population) variance of the class *index* 0..K−1 — odd, since it depends
    on the order of the classes, but it is what H2O reports; kept for parity.
    """
    pa, y, w = _p_actual(y_idx, proba, weights)
    return _r2_from(_wmean((1.0 - pa) ** 2, w), y, w)


# --------------------------------------------------------------------------- #
# Classification: labels
# --------------------------------------------------------------------------- #


def confusion_matrix(
    y_idx: ArrayLike, pred_idx: ArrayLike, n_classes: int, weights: Optional[ArrayLike] = None
) -> np.ndarray:
    """(n_classes, n_classes) weighted counts; rows = actual, columns = predicted."""
    y = _class_indices(y_idx, n_classes)
    p = _class_indices(pred_idx, n_classes)
    w, (y, p) = _valid_rows(weights, y, p)
    cm = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(cm, (y.astype(np.intp), p.astype(np.intp)), w)
    return cm


def cm_error(cm: np.ndarray) -> float:
    total = cm.sum()
    return float((total - np.trace(cm)) / total) if total > 0 else math.nan


def cm_mean_per_class_error(cm: np.ndarray) -> float:
    """Mean over all K classes of 1 − recall; a class with no actual rows counts
    as error 0 but still in the denominator (H2O's ConfusionMatrix)."""
    if cm.sum() == 0:
        return math.nan
    row = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(row > 0, (row - np.diag(cm)) / row, 0.0)
    return float(err.mean())


def classification_error(
    y_idx: ArrayLike, pred_idx: ArrayLike, weights: Optional[ArrayLike] = None
) -> float:
    """Weighted share of rows whose predicted label differs from the actual one."""
    y = _class_indices(y_idx)
    p = _class_indices(pred_idx)
    w, (y, p) = _valid_rows(weights, y, p)
    return _wmean((y != p).astype(np.float64), w)


def mean_per_class_error(
    y_idx: ArrayLike, pred_idx: ArrayLike, n_classes: int, weights: Optional[ArrayLike] = None
) -> float:
    """Mean over the ``n_classes`` classes of the per-class error (1 − recall);
    classes absent from ``y_idx`` count as 0 error (H2O)."""
    return cm_mean_per_class_error(confusion_matrix(y_idx, pred_idx, n_classes, weights))


# --------------------------------------------------------------------------- #
# Binomial: ranking metrics
# --------------------------------------------------------------------------- #


def _binary_rows(y01: ArrayLike, score: ArrayLike, weights: Optional[ArrayLike]):
    y = _as_1d(y01, "y01")
    s = _as_1d(score, "score")
    w, (y, s) = _valid_rows(weights, y, s)
    if np.any((y != 0) & (y != 1)):
        raise ValueError("y01 must contain only 0 and 1")
    return y, s, w


def _roc_points(y: np.ndarray, s: np.ndarray, w: np.ndarray):
    """Cumulative weighted (tp, fp) at each distinct score, thresholds descending.

    Entry i counts the rows with score >= thresholds[i]; ties share one point.
    """
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tps = np.cumsum(w * y)[last_of_tie]
    fps = np.cumsum(w * (1.0 - y))[last_of_tie]
    return tps, fps, s[last_of_tie]


def auc(y01: ArrayLike, score: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Exact weighted ROC AUC (trapezoids over distinct thresholds, so tied scores
    count half), equal to sklearn's ``roc_auc_score``; NaN with a single class."""
    y, s, w = _binary_rows(y01, score, weights)
    if y.size == 0:
        return math.nan
    tps, fps, _ = _roc_points(y, s, w)
    pos, neg = tps[-1], fps[-1]
    if pos <= 0 or neg <= 0:
        return math.nan
    tpr = np.r_[0.0, tps] / pos
    fpr = np.r_[0.0, fps] / neg
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def pr_auc(y01: ArrayLike, score: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Area under the precision-recall curve as average precision
    Σ (R_i − R_{i−1}) P_i over distinct thresholds (sklearn's
    ``average_precision_score``); NaN without positives."""
    y, s, w = _binary_rows(y01, score, weights)
    if y.size == 0:
        return math.nan
    tps, fps, _ = _roc_points(y, s, w)
    pos = tps[-1]
    if pos <= 0:
        return math.nan
    precision = tps / (tps + fps)
    recall = tps / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def max_f1_threshold(y01: ArrayLike, score: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Score value t maximising F1 of the rule "predict 1 iff score >= t".

    Candidates are the distinct scores; F1 = 2TP / (2TP + FP + FN) with
    weighted counts (0 without positives).  Ties go to the highest threshold.
    """
    y, s, w = _binary_rows(y01, score, weights)
    if y.size == 0:
        return math.nan
    tps, fps, thresholds = _roc_points(y, s, w)
    pos = tps[-1]
    denom = tps + fps + pos  # 2TP + FP + FN; > 0 since every point holds weight
    f1 = np.where(denom > 0, 2.0 * tps / np.where(denom > 0, denom, 1.0), 0.0)
    return float(thresholds[int(np.argmax(f1))])


def lift_top_group(y01: ArrayLike, score: ArrayLike, weights: Optional[ArrayLike] = None) -> float:
    """Response rate of the top group over the overall response rate (H2O's
    gains/lift first group): the group is every row scoring at or above the
    weighted 0.99-quantile of the scores (≈ top 1 %, more with ties)."""
    y, s, w = _binary_rows(y01, score, weights)
    if y.size == 0:
        return math.nan
    q = weighted_quantile(s, LIFT_TOP_QUANTILE, w)
    top = s >= q
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(_wmean(y[top], w[top])) / np.float64(_wmean(y, w)))


# --------------------------------------------------------------------------- #
# Metric sets (one dict per model kind, the scoring-history row's metrics)
# --------------------------------------------------------------------------- #


def regression_metrics(
    y: ArrayLike,
    pred: ArrayLike,
    distribution: str = "gaussian",
    weights: Optional[ArrayLike] = None,
    **dist_kwargs: Any,
) -> dict[str, float]:
    """Regression metrics: mse, rmse, mae, rmsle, r2, deviance.

    ``dist_kwargs``: ``tweedie_power``, ``quantile_alpha``, ``huber_delta`` or
    ``huber_alpha`` (default 0.9).  For huber without an explicit
    ``huber_delta`` the Δ is recomputed from these rows, as H2O does for each
    scored data set.
    """
    allowed = {"tweedie_power", "quantile_alpha", "huber_delta", "huber_alpha"}
    unknown = set(dist_kwargs) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)}; allowed: {sorted(allowed)}")
    dist = distribution.lower()
    huber_alpha = dist_kwargs.pop("huber_alpha", 0.9)
    if dist == "huber" and dist_kwargs.get("huber_delta") is None:
        dist_kwargs["huber_delta"] = huber_delta(y, pred, huber_alpha, weights)
    m = mse(y, pred, weights)
    return {
        "mse": m,
        "rmse": rmse(y, pred, weights),
        "mae": mae(y, pred, weights),
        "rmsle": rmsle(y, pred, weights),
        "r2": r2(y, pred, weights),
        "deviance": mean_residual_deviance(y, pred, dist, weights, **dist_kwargs),
    }


def binomial_metrics(
    y01: ArrayLike, p1: ArrayLike, weights: Optional[ArrayLike] = None
) -> dict[str, float]:
    """Binomial metrics from P(class 1): mse, rmse, logloss, r2, auc, pr_auc, lift,
    classification_error and mean_per_class_error at the max-F1 threshold of
    these rows, and that threshold."""
    p = _as_1d(p1, "p1")
    proba = np.column_stack([1.0 - p, p])
    threshold = max_f1_threshold(y01, p, weights)
    with np.errstate(invalid="ignore"):
        labels = np.where(np.isnan(p), np.nan, (p >= threshold).astype(np.float64))
    return {
        "mse": classification_mse(y01, proba, weights),
        "rmse": classification_rmse(y01, proba, weights),
        "logloss": logloss(y01, proba, weights),
        "r2": classification_r2(y01, proba, weights),
        "auc": auc(y01, p, weights),
        "pr_auc": pr_auc(y01, p, weights),
        "lift": lift_top_group(y01, p, weights),
        "classification_error": classification_error(y01, labels, weights),
        "mean_per_class_error": mean_per_class_error(y01, labels, 2, weights),
        "threshold": threshold,
    }


def multinomial_metrics(
    y_idx: ArrayLike, proba: ArrayLike, weights: Optional[ArrayLike] = None
) -> dict[str, float]:
    """Multinomial metrics: mse, rmse, logloss, r2, classification_error and
    mean_per_class_error of the argmax labels; auc and pr_auc are NaN (H2O's
    default ``auc_type=AUTO`` does not compute them)."""
    p = _proba_2d(proba)
    with np.errstate(invalid="ignore"):
        labels = np.where(np.isnan(p).any(axis=1), np.nan, np.argmax(p, axis=1).astype(np.float64))
    return {
        "mse": classification_mse(y_idx, p, weights),
        "rmse": classification_rmse(y_idx, p, weights),
        "logloss": logloss(y_idx, p, weights),
        "r2": classification_r2(y_idx, p, weights),
        "classification_error": classification_error(y_idx, labels, weights),
        "mean_per_class_error": mean_per_class_error(y_idx, labels, p.shape[1], weights),
        "auc": math.nan,
        "pr_auc": math.nan,
    }
