"""H2O's vocabularies, each stated once: activations, distributions, losses, stopping metrics
(with the model kinds that compute them and the direction in which each improves).

The bottom layer with ``params`` and ``errors``: every other module takes its names from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

OPTIMIZERS = ("auto", "adam")
HIDDEN_ACTIVATIONS = ("Tanh", "Rectifier", "Maxout")
ACTIVATIONS = tuple(a + suffix for a in HIDDEN_ACTIVATIONS for suffix in ("", "WithDropout"))
WEIGHT_DISTRIBUTIONS = ("UniformAdaptive", "Uniform", "Normal")
MISSING_HANDLING = ("MeanImputation", "Skip")
LOSSES = ("Automatic", "CrossEntropy", "Quadratic", "Huber", "Absolute", "Quantile")
REGRESSION_DISTRIBUTIONS = ("gaussian", "poisson", "gamma", "tweedie", "laplace", "quantile", "huber")
LOG_LINK_DISTRIBUTIONS = ("poisson", "gamma", "tweedie")
DISTRIBUTIONS = ("AUTO", "bernoulli", "multinomial", *REGRESSION_DISTRIBUTIONS)
STOPPING_METRICS = ("AUTO", "deviance", "logloss", "MSE", "RMSE", "MAE", "RMSLE", "AUC", "AUCPR",
                    "lift_top_group", "misclassification", "mean_per_class_error")
# categorical_encoding values H2O's Deep Learning accepts (data/categorical.py); Enum and
# OneHotExplicit are refused, as H2O does
CATEGORICAL_ENCODINGS = ("AUTO", "OneHotInternal", "Binary", "Eigen", "LabelEncoder", "SortByResponse", "EnumLimited")
NO_HASHING = 2147483647  # max_categorical_features' default: no hashing
# multinomial AUC averaging (H2O's auc_type): AUTO and NONE compute none
AUC_TYPES = ("AUTO", "NONE", "MACRO_OVR", "WEIGHTED_OVR", "MACRO_OVO", "WEIGHTED_OVO")
MAX_AUC_CLASSES = 50  # H2O computes a multinomial AUC for at most this many classes
# the optimizer a fit runs (params.resolve picks it from optimizer/adaptive_rate/momentum)
OPTIMIZER_STEPS = ("ADADELTA", "SGD", "MOMENTUM", "NESTEROV", "ADAM")
# the output layer's error the kernels back-propagate (params.resolve picks it from kind, loss and
# distribution): the honoured loss, see docs/h2o-differences.md
OUTPUT_ERRORS = ("CrossEntropy", "QuadraticSoftmax", "Gaussian", "Laplace", "Quantile", "Huber", "Poisson",
                 "Gamma", "Tweedie")
# numeric limits shared by the kernels and scoring
EXP_CAP = 1e19  # H2O caps exp() of a log-link output here
FLOAT32_MAX = 3.4028235e38  # max_w2's default: no cap on a unit's squared weight norm


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
    "binomial": ("deviance", "logloss", "mse", "rmse", "auc", "pr_auc", "lift",
                 "classification_error", "mean_per_class_error"),
    "multinomial": ("deviance", "logloss", "mse", "rmse", "auc", "pr_auc", "classification_error",
                    "mean_per_class_error"),
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
            f"which dask_dl does not support; allowed: {', '.join(STOPPING_METRICS)}"
        )
    key = _SPELLINGS.get(name)
    if key is None:
        raise ValueError(
            f"unknown stopping_metric {stopping_metric!r}; allowed: {', '.join(STOPPING_METRICS)}"
        )
    if key not in allowed:
        raise ValueError(
            f"stopping_metric {stopping_metric!r} is not available for {kind} models; "
            f"allowed: AUTO, {', '.join(allowed)}"
        )
    return key


def metric_key(metric: str) -> str:
    """The scoring history's key for an H2O metric spelling (any case: "AUCPR" -> "pr_auc",
    "misclassification" -> "classification_error"); other names lower-cased, unchecked."""
    name = str(metric).strip().lower()
    return _SPELLINGS.get(name, name)


def best_model_metric(stopping_metric: str, kind: str) -> str:
    """Metric key that ``overwrite_with_best_model`` ranks models by (§11.4).

    The resolved stopping metric, except that RMSE (and AUTO) fall back to
    logloss for classifiers, MSE for autoencoders and deviance for regression,
    as H2O's ``Model.loss()`` does.
    """
    key = resolve_stopping_metric(stopping_metric, kind)
    return _DEFAULT_METRIC[kind] if key == "rmse" else key


