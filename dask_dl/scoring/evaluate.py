"""Scored rows -> sufficient statistics on the workers -> H2O's metrics on the client (response scale)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..names import EXP_CAP, LOG_LINK_DISTRIBUTIONS
from . import sufficient


def with_priors(proba: np.ndarray, ratio) -> np.ndarray:
    """Class probabilities of a class-balanced model corrected back to the original priors, as H2O:
    p_c * ratio_c (``DataInfo.prior_ratio``), renormalised; ``proba`` as is when ``ratio`` is None."""
    if ratio is None:
        return proba
    proba *= np.asarray(ratio, dtype=proba.dtype)
    proba /= proba.sum(axis=1, keepdims=True)
    return proba


def with_offsets(out: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A regression network's output with the rows' offsets (training space) added in link space,
    before the inverse link; ``out`` as is when there are none."""
    if len(offsets):
        out[:, 0] += offsets
    return out


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


@dataclass(frozen=True)
class ScoringSpec:
    """What a worker needs to reduce scored rows to sufficient statistics (small: it travels with
    every scoring task): the model kind, the regression distribution and the response's scale."""
    kind: str
    distribution: str = "gaussian"
    tweedie_power: float = 1.5
    quantile_alpha: float = 0.5
    standardize_response: bool = False
    response_mean: float = 0.0
    response_sigma: float = 1.0
    max_hits: int = 10            # top-K hit ratios (max_hit_ratio_k)
    class_auc: bool = False       # multinomial: the class histograms auc_type reads
    prior_ratio: tuple | None = None  # balance_classes: the probability correction (with_priors)

    @classmethod
    def of(cls, kind: str, distribution: str, params: dict, info, auc_type: str | None = None) -> "ScoringSpec":
        auc_type = auc_type or params.get("auc_type", "AUTO")
        return cls(kind, distribution, float(params.get("tweedie_power", 1.5)),
                   float(params.get("quantile_alpha", 0.5)), bool(info.standardize_response),
                   float(info.response_mean), float(info.response_sigma), int(params.get("max_hit_ratio_k", 10)),
                   kind == "multinomial" and auc_type not in ("AUTO", "NONE"),
                   None if info.prior_ratio() is None else tuple(info.prior_ratio().tolist()))


def block_stats(outputs: np.ndarray, targets: np.ndarray, spec: ScoringSpec, weights=None, offsets=None) -> dict:
    """Sufficient statistics of scored rows: ``outputs`` the network's, ``targets`` as encoded for
    training (class index, or the response in the training space); ``weights`` and ``offsets`` as
    a block holds them (None or empty: none)."""
    weights = None if weights is None or not len(weights) else weights
    if spec.kind == "autoencoder":  # ``targets``: the encoded inputs the outputs reconstruct
        return sufficient.block_stats(outputs, targets, weights, kind="autoencoder")
    if spec.kind == "regression":
        if offsets is not None:
            outputs = with_offsets(outputs, offsets)
        return sufficient.block_stats(to_response_scale(outputs, spec, spec.distribution),
                                      target_to_response_scale(targets, spec), weights, kind="regression",
                                      distribution=spec.distribution, tweedie_power=spec.tweedie_power,
                                      quantile_alpha=spec.quantile_alpha)
    outputs = with_priors(outputs.astype(np.float64), spec.prior_ratio)
    return sufficient.block_stats(outputs, targets.astype(np.int64), weights, kind=spec.kind,
                                  max_hits=spec.max_hits, class_auc=spec.class_auc)


# the scoring history's names for the metrics of sufficient.finish
_HISTORY_KEYS = {"mean_residual_deviance": "deviance", "lift_top_group": "lift", "max_f1_threshold": "threshold"}


def metrics_from_stats(stats: dict, cfg) -> dict:
    """The scoring history's metrics dict for merged statistics (the keys of the *_metrics
    functions: ``deviance``, ``lift``, ``threshold``...)."""
    perf = sufficient.finish(stats, kind=cfg.kind, distribution=cfg.distribution,
                             huber_alpha=cfg.params["huber_alpha"], auc_type=cfg.params["auc_type"])
    out = {_HISTORY_KEYS.get(k, k): v for k, v in perf.items() if k not in ("nobs", "gini")}
    if cfg.kind == "multinomial":
        out.setdefault("auc", float("nan"))
        out.setdefault("pr_auc", float("nan"))
    return out


def huber_delta_standardised(stats: dict, alpha: float, info) -> float:
    """Huber's delta in the training space: the alpha-quantile of |residual| (dask_dl honours
    huber_alpha), from the training sample's |residual| histogram on the response scale."""
    d = sufficient.huber_delta_of(stats, alpha)
    if info.standardize_response and info.response_sigma > 0:
        d /= info.response_sigma
    return float(d) if np.isfinite(d) and d > 0 else 1.0
