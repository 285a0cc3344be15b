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
import time
from typing import Optional, Sequence

import numpy as np

from ..names import (KIND_STOPPING_METRICS, METRIC_DIRECTION, MetricDirection, best_model_metric,
                     resolve_stopping_metric)

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
    "metric_columns",
    "history_row",
    "metric_cells",
    "stop_reason",
]


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
    cadence_due: bool = False,
) -> bool:
    """Whether to score after the iteration that just ended (§10.1).

    Times are in seconds.  Score if this is the final iteration (epochs reached
    or stopped early), if ``score_each_iteration``, or if more than
    ``score_interval`` has passed since the last scoring *started* and the last
    scoring took less than ``score_duty_cycle`` of that time.  Before any
    scoring (``first_iteration`` or ``last_scoring_start`` None) the elapsed
    time counts as unbounded and the last duration as 0, so the first
    iteration scores unless ``score_duty_cycle`` is 0.

    dask_dl also scores when ``cadence_due`` (the fit passed one of its tenths
    since the last scoring) unless ``score_duty_cycle`` is 0: H2O's 5 s clock
    gives a fit 20x faster 20x fewer models for ``overwrite_with_best_model``.
    """
    if final or score_each_iteration:
        return True
    if first_iteration or last_scoring_start is None:
        return 0.0 < score_duty_cycle
    if cadence_due and 0.0 < score_duty_cycle:
        return True
    since = now - last_scoring_start
    if not since > score_interval or since <= 0:
        return False
    return last_scoring_duration / since < score_duty_cycle


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


def metric_columns(kind: str) -> list:
    """The metrics of each scoring-history row, per model kind (H2O's columns)."""
    if kind == "regression":
        return ["rmse", "deviance", "mae", "r2"]
    if kind == "autoencoder":
        return ["rmse", "mse"]
    if kind == "binomial":
        return ["rmse", "logloss", "r2", "auc", "pr_auc", "lift", "classification_error"]
    return ["rmse", "logloss", "r2", "auc", "pr_auc", "classification_error"]  # AUC: NaN unless auc_type


def history_row(kind: str, run_time: float, scoring_time: float, samples: int, iteration: int, n_rows: int,
                m_train: Optional[dict], m_valid: Optional[dict]) -> dict:
    """One scoring-history row as H2O prints it; ``m_valid`` None: no validation columns."""
    train_time = max(1e-9, run_time - scoring_time)
    row = {"timestamp": time.strftime("%Y-%m-%d %H:%M:%S"), "duration": f"{run_time:.3f} sec",
           "training_speed": f"{samples / train_time:.0f} obs/sec" if samples else "",
           "epochs": samples / n_rows, "iterations": iteration, "samples": float(samples)}
    for prefix, m in (("training", m_train), ("validation", m_valid)):
        if m is not None:
            row.update(metric_cells(kind, prefix, m))
    return row


def metric_cells(kind: str, prefix: str, m: dict) -> dict:
    """A history row's ``<prefix>_<metric>`` cells from metrics ``m`` (NaN where it has none)."""
    return {f"{prefix}_{key}": m.get(key, float("nan")) if m else float("nan") for key in metric_columns(kind)}


def stop_reason(cfg, m_train: dict, series: Sequence[float]) -> Optional[str]:
    """Which stopping rule ends training after a (non-final) scoring, or None: classification_stop
    and regression_stop on the training metrics, then early stopping on ``series`` (§11)."""
    p = cfg.params
    if cfg.kind in ("binomial", "multinomial") and p["classification_stop"] != -1 and m_train \
            and m_train.get("classification_error", 1.0) <= p["classification_stop"]:
        return "classification_stop"
    if cfg.kind in ("regression", "autoencoder") and p["regression_stop"] != -1 and m_train \
            and m_train.get("mse", math.inf) <= p["regression_stop"]:
        return "regression_stop"
    if p["stopping_rounds"] > 0 and stop_early(series, p["stopping_rounds"], p["stopping_tolerance"],
                                               cfg.stopping_key):
        return "early_stopping"
    return None
