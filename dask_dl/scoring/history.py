"""Scoring schedule, early stopping and best-model choice, as pure functions.

Follows the semantics doc §10.1 (when to score), §11.2 (H2O's moving-average
convergence rule, ``ScoreKeeper.stopEarly``) and §11.4
(``overwrite_with_best_model``).  Metric keys are the keys of the dicts built
by :mod:`dask_dl.scoring.metrics` ("logloss", "deviance", "mse", "rmse",
"mae", "rmsle", "auc", "pr_auc", "lift", "classification_error",
"mean_per_class_error").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

__all__ = [
    "MetricDirection",
    "METRIC_DIRECTION",
    "KIND_STOPPING_METRICS",
    "resolve_stopping_metric",
    "stop_early",
    "should_score",
    "best_model_metric",
    "model_loss",
    "is_better",
]


@dataclass(frozen=True)
class MetricDirection:
    """How a stopping metric improves (H2O's ``ScoreKeeper.StoppingMetric``)."""

    more_is_better: bool
    #: The metric cannot go below 0, so a reference average of exactly 0 means
    #: it has converged to its bound (stop rule §11.2 step 5).
    bounded_below_by_zero: bool


METRIC_DIRECTION: Mapping[str, MetricDirection] = {
    "deviance": MetricDirection(more_is_better=False, bounded_below_by_zero=False),
    "logloss": MetricDirection(more_is_better=False, bounded_below_by_zero=True),
    "mse": MetricDirection(more_is_better=False, bounded_below_by_zero=True),
    "rmse": MetricDirection(more_is_better=False, bounded_below_by_zero=True),
    "mae": MetricDirection(more_is_better=False, bounded_below_by_zero=True),
    "rmsle": MetricDirection(more_is_better=False, bounded_below_by_zero=True),
    "auc": MetricDirection(more_is_better=True, bounded_below_by_zero=True),
    "pr_auc": MetricDirection(more_is_better=True, bounded_below_by_zero=True),
    "lift": MetricDirection(more_is_better=True, bounded_below_by_zero=False),
    "classification_error": MetricDirection(more_is_better=False, bounded_below_by_zero=True),
    "mean_per_class_error": MetricDirection(more_is_better=False, bounded_below_by_zero=True),
    # H2O's user-supplied metrics; dask_dl computes none, but the rule knows them.
    "custom": MetricDirection(more_is_better=False, bounded_below_by_zero=False),
    "custom_increasing": MetricDirection(more_is_better=True, bounded_below_by_zero=False),
}

#: Stopping metrics each model kind's scoring rows actually carry.  A metric a
#: kind never computes would be NaN in every row, so early stopping would
#: silently never fire (H2O accepts some of these); we reject them instead.
KIND_STOPPING_METRICS: Mapping[str, tuple[str, ...]] = {
    "binomial": ("logloss", "mse", "rmse", "auc", "pr_auc", "lift",
                 "classification_error", "mean_per_class_error"),
    "multinomial": ("logloss", "mse", "rmse", "classification_error", "mean_per_class_error"),
    "regression": ("deviance", "mse", "rmse", "mae", "rmsle"),
    "autoencoder": ("mse",),  # H2O allows only AUTO or MSE for autoencoders
}

_DEFAULT_METRIC = {
    "binomial": "logloss",
    "multinomial": "logloss",
    "regression": "deviance",
    "autoencoder": "mse",
}

# accepted spellings (compared lower-case) -> canonical key
_SPELLINGS = {
    "deviance": "deviance",
    "logloss": "logloss",
    "mse": "mse",
    "rmse": "rmse",
    "mae": "mae",
    "rmsle": "rmsle",
    "auc": "auc",
    "aucpr": "pr_auc",
    "pr_auc": "pr_auc",
    "lift_top_group": "lift",
    "lift": "lift",
    "misclassification": "classification_error",
    "classification_error": "classification_error",
    "mean_per_class_error": "mean_per_class_error",
}

_H2O_NAMES = ("AUTO", "deviance", "logloss", "MSE", "RMSE", "MAE", "RMSLE", "AUC", "AUCPR",
              "lift_top_group", "misclassification", "mean_per_class_error")


def _check_kind(kind: str) -> None:
    if kind not in _DEFAULT_METRIC:
        raise ValueError(f"kind must be one of {sorted(_DEFAULT_METRIC)}, got {kind!r}")


def resolve_stopping_metric(stopping_metric: str, kind: str) -> str:
    """Canonical metric key for an H2O ``stopping_metric`` and a model kind.

    ``AUTO`` → "logloss" for classifiers, "deviance" for regression, "mse" for
    autoencoders.  Spellings are matched case-insensitively; the metrics-dict
    keys ("pr_auc", "lift", "classification_error") are accepted too.
    Raises ValueError for unknown names, for ``custom``/``custom_increasing``
    (no custom metric functions in dask_dl) and for metrics that ``kind`` does
    not compute (e.g. AUC for multinomial, deviance for classifiers, anything
    but MSE for autoencoders).
    """
    _check_kind(kind)
    allowed = KIND_STOPPING_METRICS[kind]
    name = str(stopping_metric).strip().lower()
    if name == "auto":
        return _DEFAULT_METRIC[kind]
    if name in ("custom", "custom_increasing"):
        raise ValueError(
            f"stopping_metric={stopping_metric!r} needs a custom metric function, "
            f"which dask_dl does not support; allowed: {', '.join(_H2O_NAMES)}"
        )
    key = _SPELLINGS.get(name)
    if key is None:
        raise ValueError(
            f"unknown stopping_metric {stopping_metric!r}; allowed: {', '.join(_H2O_NAMES)}"
        )
    if key not in allowed:
        raise ValueError(
            f"stopping_metric {stopping_metric!r} is not available for {kind} models; "
            f"allowed: AUTO, {', '.join(allowed)}"
        )
    return key


def stop_early(
    values: Sequence[float],
    stopping_rounds: int,
    stopping_tolerance: float,
    metric_key: str,
) -> bool:
    """H2O's convergence test (§11.2): True when training should stop.

    ``values`` are the stopping metric's values of the scoring-history rows
    *after* row 0 (the caller drops the dummy row of supervised models or the
    null-model row of autoencoders), oldest first; the validation metric if a
    validation frame exists, else the training one.  ``metric_key`` is a key
    of :data:`METRIC_DIRECTION` (see :func:`resolve_stopping_metric`).

    With k = ``stopping_rounds`` (0 disables) and the last 2k values, the k+1
    moving averages of window k are MA_0 (the reference) .. MA_k.  Do not stop
    with fewer than 2k values or if any MA is NaN.  Stop if the metric is
    bounded below by 0 and MA_0 == 0.  Do not stop if the averages change sign
    or the best of MA_1..MA_k has another sign than MA_0.  Otherwise, with τ =
    ``stopping_tolerance``, stop iff min(MA_1..k)/MA_0 ≥ 1 − τ (less is better)
    or max(MA_1..k)/MA_0 ≤ 1 + τ (more is better); a NaN ratio never stops.
    """
    if stopping_rounds < 0:
        raise ValueError(f"stopping_rounds must be >= 0, got {stopping_rounds}")
    direction = METRIC_DIRECTION.get(metric_key)
    if direction is None:
        raise ValueError(f"unknown metric key {metric_key!r}; expected one of {sorted(METRIC_DIRECTION)}")
    k = int(stopping_rounds)
    if k == 0 or len(values) < 2 * k:
        return False
    last = [float(v) for v in values[len(values) - 2 * k:]]
    moving = []
    for i in range(k + 1):
        total = 0.0
        for v in last[i:i + k]:  # summed in order, as H2O does
            total += v
        avg = total / k
        if math.isnan(avg):
            return False
        moving.append(avg)
    ref, recent = moving[0], moving[1:]
    if direction.bounded_below_by_zero and ref == 0.0:
        return True
    best = max(recent) if direction.more_is_better else min(recent)
    if np.sign(max(moving)) != np.sign(min(moving)):
        return False
    if np.sign(best) != np.sign(ref):
        return False
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.float64(best) / np.float64(ref)
    if math.isnan(ratio):
        return False
    if direction.more_is_better:
        return bool(ratio <= 1.0 + stopping_tolerance)
    return bool(ratio >= 1.0 - stopping_tolerance)


def should_score(
    now: float,
    last_scoring_start: Optional[float],
    last_scoring_duration: float,
    score_interval: float,
    score_duty_cycle: float,
    first_iteration: bool,
    final: bool,
    score_each_iteration: bool,
) -> bool:
    """Whether to score after the iteration that just ended (§10.1).

    Times are in seconds.  Score if this is the final iteration (epochs reached
    or stopped early), if ``score_each_iteration``, or if more than
    ``score_interval`` has passed since the last scoring *started* and the last
    scoring took less than ``score_duty_cycle`` of that time.  Before any
    scoring (``first_iteration`` or ``last_scoring_start`` None) the elapsed
    time counts as unbounded and the last duration as 0, so the first
    iteration scores unless ``score_duty_cycle`` is 0.
    """
    if final or score_each_iteration:
        return True
    if first_iteration or last_scoring_start is None:
        return 0.0 < score_duty_cycle
    since = now - last_scoring_start
    if not since > score_interval or since <= 0:
        return False
    return last_scoring_duration / since < score_duty_cycle


def best_model_metric(stopping_metric: str, kind: str) -> str:
    """Metric key that ``overwrite_with_best_model`` ranks models by (§11.4).

    The resolved stopping metric, except that RMSE (and AUTO) fall back to
    logloss for classifiers, MSE for autoencoders and deviance for regression,
    as H2O's ``Model.loss()`` does.
    """
    key = resolve_stopping_metric(stopping_metric, kind)
    return _DEFAULT_METRIC[kind] if key == "rmse" else key


def model_loss(value: float, metric_key: str) -> np.float32:
    """The metric as a lower-is-better float32 loss: 1 − AUC, 1 − AUCPR, −lift,
    the value itself otherwise.

    H2O compares ``lift_top_group`` itself as lower-is-better, which keeps the
    model with the *worst* lift; dask_dl ranks it by −lift instead (project
    policy: the docs promise the best model).
    """
    direction = METRIC_DIRECTION.get(metric_key)
    if direction is None:
        raise ValueError(f"unknown metric key {metric_key!r}; expected one of {sorted(METRIC_DIRECTION)}")
    v = float(value)
    if metric_key in ("auc", "pr_auc"):
        v = 1.0 - v
    elif direction.more_is_better:
        v = -v
    return np.float32(v)


def is_better(current: float, best: Optional[float], metric_key: str) -> bool:
    """Whether the current model replaces the stored best one (§11.4).

    ``current``/``best`` are values of ``metric_key`` (see
    :func:`best_model_metric`); ``best`` None means nothing is stored yet.
    Compared as float32 losses (:func:`model_loss`).  With a stored best the
    current model wins unless its loss is >= the best loss, so a NaN on either
    side counts as better (H2O's ``!(loss >= best)``).  With nothing stored
    H2O compares against +inf with ``<``, so a NaN or +inf loss is not stored.
    """
    cur = model_loss(current, metric_key)
    if best is None:
        return bool(cur < np.float32(np.inf))
    return not bool(cur >= model_loss(best, metric_key))
