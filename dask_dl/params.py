"""Every H2O Deep Learning parameter dask_dl accepts: name, default, validation, cross-parameter rules.

This is the one place where defaults live. Estimators build their ``__init__`` signature from
``PARAMETERS``; ``resolve`` turns user values into a validated, immutable ``TrainingConfig`` before any
cluster work starts. Names and defaults follow H2O-3 (see docs/h2o-differences.md for deliberate
differences).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

FLOAT32_MAX = 3.4028235e38

OPTIMIZERS = ("auto", "adam")
ACTIVATIONS = ("Tanh", "TanhWithDropout", "Rectifier", "RectifierWithDropout", "Maxout", "MaxoutWithDropout")
WEIGHT_DISTRIBUTIONS = ("UniformAdaptive", "Uniform", "Normal")
MISSING_HANDLING = ("MeanImputation", "Skip")
LOSSES = ("Automatic", "CrossEntropy", "Quadratic", "Huber", "Absolute", "Quantile")
DISTRIBUTIONS = ("AUTO", "bernoulli", "multinomial", "gaussian", "poisson", "gamma", "tweedie", "laplace",
                 "quantile", "huber")
REGRESSION_DISTRIBUTIONS = ("gaussian", "poisson", "gamma", "tweedie", "laplace", "quantile", "huber")
LOG_LINK_DISTRIBUTIONS = ("poisson", "gamma", "tweedie")
STOPPING_METRICS = ("AUTO", "deviance", "logloss", "MSE", "RMSE", "MAE", "RMSLE", "AUC", "AUCPR",
                    "lift_top_group", "misclassification", "mean_per_class_error")


@dataclass(frozen=True)
class Param:
    """One H2O parameter: its default and a check that returns an error text or None."""
    default: Any
    check: Callable[[Any], str | None]
    doc: str


# ----------------------------------------------------------------------------------------- checks
def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or (hasattr(v, "dtype") and str(getattr(v, "dtype", "")) == "bool")


def _bool(v):
    return None if _is_bool(v) else "a bool"


def _number(lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False, integer=False, extra=()):
    def check(v):
        ok_type = isinstance(v, numbers.Integral) if integer else isinstance(v, numbers.Real)
        if not ok_type or _is_bool(v) or (not integer and math.isnan(float(v))):
            return "an integer" if integer else "a number"
        if v in extra:
            return None
        lo_ok = v > lo if lo_open else v >= lo
        hi_ok = v < hi if hi_open else v <= hi
        if not (lo_ok and hi_ok):
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            allowed = f" or one of {list(extra)}" if extra else ""
            return f"a {'integer' if integer else 'number'} in {left}{lo}, {hi}{right}{allowed}"
        return None
    return check


def _choice(options: Sequence[str]):
    def check(v):
        return None if isinstance(v, str) and v in options else f"one of {list(options)}"
    return check


def _hidden(v):
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
        return "a list of positive integers, e.g. [200, 200]"
    if any(not isinstance(h, numbers.Integral) or _is_bool(h) or h <= 0 for h in v):
        return "a list of positive integers, e.g. [200, 200]"
    return None


def _dropout_list(v):
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
        return "None or a list of numbers in [0, 1), one per hidden layer"
    if any(not isinstance(r, numbers.Real) or _is_bool(r) or not 0 <= r < 1 for r in v):
        return "None or a list of numbers in [0, 1), one per hidden layer"
    return None


def _seed(v):
    if isinstance(v, numbers.Integral) and not _is_bool(v):
        return None
    return "an integer (-1 for a random seed)"


def _auto_or_bool(v):
    return None if v == "auto" and isinstance(v, str) or _is_bool(v) else "'auto', True or False"


def _any(v):
    return None


# ------------------------------------------------------------------------------------ the table
PARAMETERS: dict[str, Param] = {
    # network
    "hidden": Param([200, 200], _hidden, "hidden layer sizes"),
    "activation": Param("Rectifier", _choice(ACTIVATIONS), "hidden-layer activation"),
    "epochs": Param(10.0, _number(0), "passes over the training data (fractional allowed)"),
    "initial_weight_distribution": Param("UniformAdaptive", _choice(WEIGHT_DISTRIBUTIONS), "weight init"),
    "initial_weight_scale": Param(1.0, _number(0, lo_open=True), "Uniform half-width / Normal SD"),
    "loss": Param("Automatic", _choice(LOSSES), "loss function"),
    "distribution": Param("AUTO", _choice(DISTRIBUTIONS), "response distribution"),
    "quantile_alpha": Param(0.5, _number(0, 1), "quantile level for distribution='quantile'"),
    "tweedie_power": Param(1.5, _number(1, 2, lo_open=True, hi_open=True), "Tweedie variance power"),
    "huber_alpha": Param(0.9, _number(0, 1), "Huber delta as this quantile of |residuals|"),
    # optimiser
    "adaptive_rate": Param(True, _bool, "ADADELTA (True) or manual learning rate (False)"),
    "rho": Param(0.99, _number(0, 1, lo_open=True, hi_open=True), "ADADELTA decay"),
    "epsilon": Param(1e-8, _number(0, lo_open=True), "ADADELTA epsilon"),
    "rate": Param(0.005, _number(0, lo_open=True), "manual learning rate"),
    "rate_annealing": Param(1e-6, _number(0), "rate / (1 + rate_annealing * samples)"),
    "rate_decay": Param(1.0, _number(0, lo_open=True), "per-layer rate factor"),
    "momentum_start": Param(0.0, _number(0, 1, hi_open=True), "initial momentum"),
    "momentum_ramp": Param(1e6, _number(0), "samples over which momentum ramps"),
    "momentum_stable": Param(0.0, _number(0, 1, hi_open=True), "final momentum"),
    "nesterov_accelerated_gradient": Param(True, _bool, "Nesterov momentum"),
    # regularisation
    "input_dropout_ratio": Param(0.0, _number(0, 1, hi_open=True), "input dropout"),
    "hidden_dropout_ratios": Param(None, _dropout_list, "hidden dropout (WithDropout activations)"),
    "l1": Param(0.0, _number(0), "L1 penalty"),
    "l2": Param(0.0, _number(0), "L2 penalty"),
    "max_w2": Param(FLOAT32_MAX, _number(0, lo_open=True), "max squared norm of a unit's incoming weights"),
    # data
    "standardize": Param(True, _bool, "standardize numeric inputs (and an identity-link response)"),
    "use_all_factor_levels": Param(True, _bool, "one-hot all levels (False drops the first)"),
    "missing_values_handling": Param("MeanImputation", _choice(MISSING_HANDLING), "NA handling"),
    "ignore_const_cols": Param(True, _bool, "drop constant and all-NA columns"),
    "fast_mode": Param(True, _bool, "skip updates for zero inputs and zero unit gradients"),
    "mini_batch_size": Param(1, _number(1, integer=True),
                             "rows per update: 1 is H2O's per-sample SGD; > 1 averages the gradient over "
                             "the batch and uses BLAS-3 products (faster per epoch)"),
    "sparse": Param(False, _bool, "keep zero inputs zero (scale by 1/sigma, no centring) so fast_mode skips them"),
    "thread_local_models": Param(False, _bool,
                                 "per sample: each thread of a worker trains its own copy of the model, averaged "
                                 "(weighted by rows) at the end of the worker's share of the iteration: threads "
                                 "scale better (no two cores writing the same weights) and runs are deterministic; "
                                 "False: HOGWILD!, the threads share one copy lock-free, as H2O"),
    "force_load_balance": Param(True, _bool, "repartition small data so every worker has work"),
    "replicate_training_data": Param(True, _bool, "every worker trains on a copy of the whole data, "
                                     "when it fits in half a worker's memory limit (H2O: every node)"),
    "shuffle_training_data": Param(False, _bool, "a fresh random row order every pass"),
    "single_node_mode": Param(False, _bool, "train on one worker only (no averaging)"),
    "elastic_averaging": Param(False, _bool, "elastic averaging between workers (EASGD, as H2O)"),
    "elastic_averaging_moving_rate": Param(0.9, _number(0, 1), "centre moving rate alpha"),
    "elastic_averaging_regularization": Param(1e-3, _number(0), "elastic pull strength lambda"),
    # iterations and scoring
    "seed": Param(-1, _seed, "random seed (-1: random)"),
    "reproducible": Param(False, _bool, "one thread, bit-identical for a seed"),
    "train_samples_per_iteration": Param(-2, _number(1, integer=True, extra=(0, -1, -2)),
                                         "0: one epoch, -1: all local data, -2: auto, N: N samples"),
    "target_ratio_comm_to_comp": Param(0.05, _number(0, lo_open=True), "auto-tuning target"),
    "score_interval": Param(5.0, _number(0), "seconds between scoring rounds"),
    "score_training_samples": Param(10000, _number(0, integer=True), "training rows scored (0: all)"),
    "score_validation_samples": Param(0, _number(0, integer=True), "validation rows scored (0: all)"),
    "score_duty_cycle": Param(0.1, _number(0, 1), "max fraction of time spent scoring"),
    "score_each_iteration": Param(False, _bool, "score after every iteration"),
    "stopping_rounds": Param(5, _number(0, integer=True), "early-stopping window (0 disables)"),
    "stopping_metric": Param("AUTO", _choice(STOPPING_METRICS), "early-stopping metric"),
    "stopping_tolerance": Param(0.0, _number(0), "relative improvement required"),
    "max_runtime_secs": Param(0.0, _number(0), "time budget (0: unlimited)"),
    "overwrite_with_best_model": Param(True, _bool, "return the best scored model"),
    "classification_stop": Param(0.0, _number(-1, 1), "stop at this training error (-1 disables)"),
    "regression_stop": Param(1e-6, _number(-1), "stop at this training MSE (-1 disables)"),
    "quiet_mode": Param(False, _bool, "silence the per-iteration log"),
    # dask_dl's own (not H2O)
    "optimizer": Param("auto", _choice(OPTIMIZERS),
                       "'auto': H2O's choice (ADADELTA with adaptive_rate, else SGD with the manual rate "
                       "and momentum); 'adam': Adam (adam_rate, adam_beta1/2, epsilon), PyTorch's default "
                       "optimizer, for mini-batch training"),
    "adam_rate": Param(1e-3, _number(0, lo_open=True), "Adam's step size (optimizer='adam'), annealed by "
                       "rate_annealing: adam_rate / (1 + rate_annealing * samples)"),
    "adam_beta1": Param(0.9, _number(0, 1, hi_open=True), "Adam's first-moment decay"),
    "adam_beta2": Param(0.999, _number(0, 1, hi_open=True), "Adam's second-moment decay"),
    "out_of_core": Param("auto", _auto_or_bool,
                         "stream partitions from storage every iteration instead of persisting them "
                         "('auto': when the encoded data exceeds half the workers' memory limits)"),
    "client": Param(None, _any, "a distributed.Client; None: the active one, else an embedded LocalCluster"),
}

DEFAULTS: dict[str, Any] = {name: p.default for name, p in PARAMETERS.items()}


@dataclass(frozen=True)
class TrainingConfig:
    """Validated, resolved parameters: what the training loop and kernels actually use."""
    params: dict
    kind: str                      # "binomial" | "multinomial" | "regression"
    distribution: str              # resolved distribution
    loss: str                      # resolved loss
    hidden: tuple
    hidden_activation: str         # "Tanh" | "Rectifier" | "Maxout"
    hidden_dropout: tuple          # one ratio per hidden layer
    seed: int
    momentum_used: bool = field(default=False)

    @property
    def input_major_first_layer(self) -> bool:
        """sparse=True per-sample training with fast_mode stores the first matrix input-major (one row
        per input), so a sample's update touches only its non-zero inputs' rows (nn/network.py).
        Without fast_mode every weight moves anyway, and a dropped unit must be skipped outright,
        which the input-major update (a select on the unit's gradient) only does under fast_mode."""
        p = self.params
        return bool(p["sparse"]) and bool(p["fast_mode"]) and int(p["mini_batch_size"]) == 1 \
            and bool(self.hidden) and self.hidden_activation != "Maxout"

    @property
    def thread_copies(self) -> bool:
        """thread_local_models in effect (``uses_thread_copies``)."""
        return uses_thread_copies(self.params)

    def __getattr__(self, name):  # convenient read access to raw parameters
        try:
            return self.__dict__["params"][name]
        except KeyError:
            raise AttributeError(name) from None


def check_values(values: dict) -> None:
    """Raise ValueError naming every parameter whose value is out of range or of the wrong type."""
    problems = []
    for name, value in values.items():
        spec = PARAMETERS.get(name)
        if spec is None:
            problems.append(f"unknown parameter {name!r}")
            continue
        err = spec.check(value)
        if err:
            problems.append(f"{name}={value!r}: expected {err}")
    if problems:
        raise ValueError("invalid dask_dl parameters: " + "; ".join(problems))


def uses_thread_copies(params: dict) -> bool:
    """thread_local_models applies to per-sample training only: mini-batch threads share one copy
    (they update it once per batch). Decides the kernel settings and the embedded cluster's shape."""
    return bool(params["thread_local_models"]) and int(params["mini_batch_size"]) == 1


def resolve(values: dict, kind: str, n_classes: int = 0) -> TrainingConfig:
    """Validate every parameter and apply H2O's cross-parameter rules; no cluster work happens here.

    ``kind`` is "classification" or "regression" (from the estimator); it becomes "binomial" or
    "multinomial" once ``n_classes`` is known.
    """
    p = dict(DEFAULTS)
    p.update(values)
    check_values({k: v for k, v in p.items()})
    if kind == "classification":
        kind = "binomial" if n_classes == 2 else "multinomial"
    problems = []

    act = p["activation"]
    base_act = act.replace("WithDropout", "")
    hidden = tuple(int(h) for h in p["hidden"])
    dropout_act = act.endswith("WithDropout")
    hdr = p["hidden_dropout_ratios"]
    if hdr is not None:
        if not dropout_act:
            problems.append(f"hidden_dropout_ratios={list(hdr)!r} requires a *WithDropout activation, "
                            f"got activation={act!r}")
        elif len(hdr) != len(hidden):
            problems.append(f"hidden_dropout_ratios has {len(hdr)} values but hidden has {len(hidden)} layers")
        ratios = tuple(float(r) for r in hdr)
    else:
        ratios = tuple(0.5 if dropout_act else 0.0 for _ in hidden)

    adaptive = p["adaptive_rate"]
    momentum_used = p["momentum_start"] != 0 or p["momentum_stable"] != 0
    if p["optimizer"] == "adam" and momentum_used:
        problems.append("momentum_start/momentum_stable must be 0 with optimizer='adam' (Adam's momentum is "
                        "adam_beta1)")
    elif adaptive and momentum_used:
        problems.append("momentum_start/momentum_stable must be 0 with adaptive_rate=True "
                        "(ADADELTA has no momentum); set adaptive_rate=False to use momentum")

    if p["sparse"] and p["elastic_averaging"]:
        problems.append("sparse=True cannot be combined with elastic_averaging=True (as H2O)")

    dist, loss = p["distribution"], p["loss"]
    if kind in ("binomial", "multinomial"):
        if dist not in ("AUTO", "bernoulli", "multinomial"):
            problems.append(f"distribution={dist!r} is for regression; a classifier takes "
                            "'AUTO', 'bernoulli' or 'multinomial'")
        if dist == "bernoulli" and kind != "binomial":
            problems.append(f"distribution='bernoulli' needs 2 classes, the response has {n_classes}")
        if loss not in ("Automatic", "CrossEntropy", "Quadratic"):
            problems.append(f"loss={loss!r} is for regression; a classifier takes "
                            "'Automatic', 'CrossEntropy' or 'Quadratic'")
        dist = "bernoulli" if kind == "binomial" else "multinomial"
        loss = "CrossEntropy" if loss == "Automatic" else loss
    else:
        if dist in ("bernoulli", "multinomial"):
            problems.append(f"distribution={dist!r} is for classification; use DeepLearningClassifier")
        if loss == "CrossEntropy":
            problems.append("loss='CrossEntropy' is for classification; a regressor takes 'Automatic', "
                            "'Quadratic', 'Absolute', 'Huber' or 'Quantile'")
        by_loss = {"Automatic": "gaussian", "Quadratic": "gaussian", "Absolute": "laplace",
                   "Quantile": "quantile", "Huber": "huber", "CrossEntropy": "gaussian"}
        if dist == "AUTO":
            dist = by_loss[loss]
        required = {"laplace": "Absolute", "quantile": "Quantile", "huber": "Huber"}
        if dist in LOG_LINK_DISTRIBUTIONS and loss != "Automatic":
            problems.append(f"distribution={dist!r} requires loss='Automatic', got loss={loss!r}")
        if dist in required and loss not in ("Automatic", required[dist]):
            problems.append(f"distribution={dist!r} requires loss='Automatic' or {required[dist]!r}, "
                            f"got loss={loss!r}")
        if loss == "Automatic":
            loss = {"gaussian": "Quadratic", "laplace": "Absolute", "quantile": "Quantile",
                    "huber": "Huber"}.get(dist, "Automatic")

    metric = p["stopping_metric"]
    if kind == "regression" and metric in ("logloss", "AUC", "AUCPR", "lift_top_group", "misclassification",
                                           "mean_per_class_error"):
        problems.append(f"stopping_metric={metric!r} is a classification metric; the model is a regression")
    if kind == "multinomial" and metric in ("AUC", "AUCPR", "lift_top_group"):
        problems.append(f"stopping_metric={metric!r} needs a binary response; the response has {n_classes} classes")
    if kind in ("binomial", "multinomial") and metric in ("deviance", "RMSLE", "MAE"):
        problems.append(f"stopping_metric={metric!r} is a regression metric; the model is a classifier")
    if problems:
        raise ValueError("invalid dask_dl parameters: " + "; ".join(problems))

    seed = int(p["seed"])
    if seed == -1:
        import secrets
        seed = secrets.randbelow(2**31 - 1)
    return TrainingConfig(params=p, kind=kind, distribution=dist, loss=loss, hidden=hidden,
                          hidden_activation=base_act, hidden_dropout=ratios, seed=seed,
                          momentum_used=momentum_used)
