"""Turn network outputs on a scoring set into H2O's metrics (original response scale)."""
from __future__ import annotations

import numpy as np

from ..names import EXP_CAP, LOG_LINK_DISTRIBUTIONS
from . import metrics


def to_response_scale(out: np.ndarray, info, distribution: str) -> np.ndarray:
    """Regression network output (link space, maybe standardised) -> prediction on the response scale."""
    f = out[:, 0].astype(np.float64)
    if distribution in LOG_LINK_DISTRIBUTIONS:
        return np.minimum(np.exp(f), EXP_CAP)
    if info.standardize_response:
        return f * info.response_sigma + info.response_mean
    return f


def target_to_response_scale(t: np.ndarray, info) -> np.ndarray:
    t = t.astype(np.float64)
    if info.standardize_response:
        return t * info.response_sigma + info.response_mean
    return t


def score(outputs: np.ndarray, targets: np.ndarray, info, cfg) -> dict:
    """H2O metrics dict for one scoring set (keys of scoring.metrics' *_metrics functions)."""
    if len(targets) == 0:
        return {}
    if cfg.kind == "regression":
        y = target_to_response_scale(targets, info)
        pred = to_response_scale(outputs, info, cfg.distribution)
        return metrics.regression_metrics(y, pred, distribution=cfg.distribution,
                                          tweedie_power=cfg.params["tweedie_power"],
                                          quantile_alpha=cfg.params["quantile_alpha"],
                                          huber_alpha=cfg.params["huber_alpha"])
    y_idx = targets.astype(np.int64)
    proba = outputs.astype(np.float64)
    if cfg.kind == "binomial":
        return metrics.binomial_metrics(y_idx, proba[:, 1])
    return metrics.multinomial_metrics(y_idx, proba)


def huber_delta_standardised(outputs: np.ndarray, targets: np.ndarray, alpha: float) -> float:
    """Huber's delta in the training space: the alpha-quantile of |residual| (dask_dl honours huber_alpha)."""
    d = metrics.huber_delta(targets.astype(np.float64), outputs[:, 0].astype(np.float64), alpha)
    return float(d) if np.isfinite(d) and d > 0 else 1.0
