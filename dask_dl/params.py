"""Every H2O Deep Learning parameter dask_dl accepts: name, default, validation, cross-parameter rules.

This is the one place where defaults live. Estimators build their ``__init__`` signature from
``PARAMETERS``; ``resolve`` turns user values into a validated, immutable ``TrainingConfig`` before any
cluster work starts. Names and defaults follow H2O-3 (see docs/h2o-differences.md for deliberate
differences).
"""
from __future__ import annotations

import math
import numbers
import reprlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .names import (ACTIVATIONS, AUC_TYPES, CATEGORICAL_ENCODINGS, DISTRIBUTIONS, FLOAT32_MAX,  # noqa: F401
                    LOG_LINK_DISTRIBUTIONS, LOSSES, MAX_AUC_CLASSES, MISSING_HANDLING, NO_HASHING, OPTIMIZERS,
                    REGRESSION_DISTRIBUTIONS, STOPPING_METRICS, WEIGHT_DISTRIBUTIONS, best_model_metric,
                    resolve_stopping_metric)


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


def _number(lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False, integer=False, extra=(), finite=True):
    """A check for a number in [lo, hi] (open ends as asked). NaN is never a value; infinity is
    refused too unless ``finite=False`` (where it means something: max_w2=inf is "no cap")."""
    what = "integer" if integer else ("finite number" if finite else "number")

    def check(v):
        ok_type = isinstance(v, numbers.Integral) if integer else isinstance(v, numbers.Real)
        if not ok_type or _is_bool(v):
            return "an integer" if integer else f"a {what}"
        if not integer and math.isnan(float(v)):
            return f"a {what}, not NaN"
        if v in extra:
            return None
        lo_ok = v > lo if lo_open else v >= lo
        hi_ok = v < hi if hi_open else v <= hi
        if not (lo_ok and hi_ok and (math.isfinite(float(v)) or not finite)):
            left = "(" if lo_open else "["
            right = ")" if hi_open or (finite and hi == math.inf) else "]"
            allowed = f" or one of {list(extra)}" if extra else ""
            return f"{'an' if integer else 'a'} {what} in {left}{lo}, {hi}{right}{allowed}"
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


def _column_names(v):
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)) or not all(isinstance(c, str) for c in v):
        return "None or a list of column names, e.g. ['ID']"
    return None


def _nfolds(v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and (v == 0 or v >= 2):
        return None
    return "0 (no cross-validation) or an integer >= 2 (H2O refuses nfolds=1)"


def _checkpoint(v):
    model = getattr(v, "model_", v)
    if v is None or isinstance(v, str) and v or hasattr(model, "layout") and hasattr(model, "state"):
        return None
    return "None, a fitted estimator, its model_, or the URL of a saved model"


def _callbacks(v):
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        return "None or a list of callables"
    bad = [repr(f) for f in v if not callable(f)]
    return f"a list of callables (not callable: {', '.join(bad)[:80]})" if bad else None


def _optional_url(v):
    return None if v is None or isinstance(v, str) and v else "None or a folder URL, e.g. 's3://bucket/checkpoints'"


def _pretrained(v):
    model = getattr(v, "model_", v)
    if v is None or getattr(model, "kind", None) == "autoencoder":
        return None
    return "None or a fitted DeepLearningAutoencoder (or its model_)"


def _encoding(v):
    if v in ("Enum", "OneHotExplicit"):
        return f"one of {list(CATEGORICAL_ENCODINGS)} (H2O's Deep Learning refuses {v!r} too)"
    return None if isinstance(v, str) and v in CATEGORICAL_ENCODINGS else f"one of {list(CATEGORICAL_ENCODINGS)}"


def _positive_list(v):
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)) or not v or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0 for x in v):
        return "None or a list of positive numbers, one per class, e.g. [1.0, 5.0]"
    return None


def _column_name(v):
    if v is None or (isinstance(v, str) and v):
        return None
    return "None or the name of a column of X, e.g. 'exposure'"


def _initial_arrays(ndim: int):
    """None, or a list with one entry per weight matrix (input side first): None (that layer's
    default initialisation) or a ``ndim``-D array of finite numbers. Shapes are checked against
    the network once its input width is known (``nn.network.set_initial_values``)."""
    what = "2-D array (units out x units in)" if ndim == 2 else "1-D array (one value per unit)"
    expected = f"None or a list with one entry per weight matrix, input side first, each None or a {what}"

    def check(v):
        if v is None:
            return None
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
            return expected
        for i, a in enumerate(v):
            if a is None:
                continue
            try:
                arr = np.asarray(a, dtype=np.float64)
            except (TypeError, ValueError):
                return f"{expected}; entry {i} is not numeric"
            if arr.ndim != ndim:
                return f"{expected}; entry {i} has {arr.ndim} dimension(s)"
            if not np.isfinite(arr).all():
                return f"{expected}; entry {i} holds NaN or infinite values"
        return None
    return check


# ------------------------------------------------------------------------------------ the table
PARAMETERS: dict[str, Param] = {
    # network
    "hidden": Param([200, 200], _hidden,
                    "sizes of the hidden layers, input side first: [200, 200] is two layers of 200 units, [] "
                    "none (a linear model on the inputs). Wider or deeper networks can fit more complex "
                    "patterns but train slower and overfit more easily"),
    "activation": Param("Rectifier", _choice(ACTIVATIONS),
                        "activation of the hidden units: 'Rectifier' (ReLU, fast, a good default), 'Tanh' "
                        "(smooth and bounded, slower) or 'Maxout' (the larger of two linear units, twice the "
                        "weights); 'RectifierWithDropout', 'TanhWithDropout' and 'MaxoutWithDropout' add "
                        "hidden dropout (see hidden_dropout_ratios)"),
    "epochs": Param(10.0, _number(0),
                    "how many times to pass over the training data (fractions allowed, e.g. 0.5); early "
                    "stopping or max_runtime_secs may end training sooner. Raise it when the validation "
                    "metric is still improving at the end"),
    "initial_weight_distribution": Param("UniformAdaptive", _choice(WEIGHT_DISTRIBUTIONS),
                                         "how weights are initialised: 'UniformAdaptive' (Glorot/Xavier "
                                         "uniform, scaled to each layer's size, a good default), 'Uniform' "
                                         "(uniform in [-initial_weight_scale, initial_weight_scale]) or "
                                         "'Normal' (Gaussian with standard deviation initial_weight_scale)"),
    "initial_weight_scale": Param(1.0, _number(0, lo_open=True),
                                  "scale of the initial weights for initial_weight_distribution 'Uniform' "
                                  "(half-width of the range) or 'Normal' (standard deviation); ignored by "
                                  "'UniformAdaptive'. Wide layers usually need small values, e.g. 0.01 to "
                                  "0.1"),
    "loss": Param("Automatic", _choice(LOSSES),
                  "the loss to minimise: 'Automatic' (chosen from distribution: CrossEntropy for "
                  "classifiers, Quadratic for gaussian), 'CrossEntropy' or 'Quadratic' for classifiers, "
                  "'Quadratic', 'Absolute', 'Huber' or 'Quantile' for regression. Absolute or Huber resist "
                  "outliers; poisson, gamma and tweedie need 'Automatic'"),
    "distribution": Param("AUTO", _choice(DISTRIBUTIONS),
                          "distribution of the response: 'AUTO' (bernoulli for 2 classes, multinomial for "
                          "more; for regression chosen from loss, gaussian by default), 'bernoulli', "
                          "'multinomial', 'gaussian', 'poisson', 'gamma', 'tweedie' (the last three with a "
                          "log link, for counts and non-negative skewed targets), 'laplace', 'quantile' or "
                          "'huber'"),
    "quantile_alpha": Param(0.5, _number(0, 1),
                            "the quantile to predict with distribution='quantile' (or loss='Quantile'), in "
                            "[0, 1]: 0.5 predicts the median, 0.9 the 90th percentile"),
    "tweedie_power": Param(1.5, _number(1, 2, lo_open=True, hi_open=True),
                           "variance power of distribution='tweedie', in (1, 2): close to 1 behaves like "
                           "Poisson, close to 2 like gamma. Suits non-negative targets with many exact "
                           "zeros, such as insurance claims"),
    "huber_alpha": Param(0.9, _number(0, 1),
                         "with distribution='huber' (loss='Huber'): errors larger than delta count linearly "
                         "instead of squared, delta being this quantile of the absolute training residuals "
                         "(refreshed at every scoring round). Lower it to make the fit more robust to "
                         "outliers"),
    # optimiser
    "adaptive_rate": Param(True, _bool,
                           "True: ADADELTA adapts a learning rate per weight (tuned by rho and epsilon), a "
                           "good default that needs little tuning; False: plain SGD with the manual rate, "
                           "rate_annealing, rate_decay and momentum_* settings. Not used with "
                           "optimizer='adam'"),
    "rho": Param(0.99, _number(0, 1, lo_open=True, hi_open=True),
                 "ADADELTA's decay factor for its running averages of squared gradients and updates "
                 "(adaptive_rate=True), in (0, 1): values closer to 1 average over more steps and adapt the "
                 "rates more smoothly; 0.9 to 0.999 is typical"),
    "epsilon": Param(1e-8, _number(0, lo_open=True),
                     "ADADELTA's smoothing constant (adaptive_rate=True): it sets the size of the first "
                     "steps and damps the rate where gradients are tiny; try 1e-10 to 1e-4 if training "
                     "starts too slowly or is unstable. With optimizer='adam' it is Adam's epsilon"),
    "rate": Param(0.005, _number(0, lo_open=True),
                  "learning rate of manual SGD (adaptive_rate=False): the step size of every update. Too "
                  "high diverges, too low learns slowly; 0.001 to 0.01 is typical. Not used by ADADELTA or "
                  "Adam (see adam_rate)"),
    "rate_annealing": Param(1e-6, _number(0),
                            "lowers the learning rate as training proceeds: rate / (1 + rate_annealing * "
                            "samples), samples being the rows trained so far (the default halves it after a "
                            "million rows); applies to manual SGD's rate and to adam_rate, 0 keeps it "
                            "constant"),
    "rate_decay": Param(1.0, _number(0, lo_open=True),
                        "manual SGD (adaptive_rate=False): weight layer l (1 = inputs to first hidden layer) "
                        "learns at rate * rate_decay**(l - 1), so values below 1 slow down the layers "
                        "nearer the output; 1 gives every layer the same rate"),
    "momentum_start": Param(0.0, _number(0, 1, hi_open=True),
                            "manual SGD (adaptive_rate=False): momentum at the start of training, in [0, 1), "
                            "ramped linearly to momentum_stable over momentum_ramp samples. Momentum speeds "
                            "up and smooths SGD; it must stay 0 with ADADELTA or Adam"),
    "momentum_ramp": Param(1e6, _number(0),
                           "manual SGD with momentum: number of training samples over which the momentum "
                           "moves linearly from momentum_start to momentum_stable"),
    "momentum_stable": Param(0.0, _number(0, 1, hi_open=True),
                             "manual SGD (adaptive_rate=False): momentum reached after momentum_ramp samples "
                             "and kept from then on, in [0, 1); 0.9 to 0.99 is typical when momentum is "
                             "used, 0 disables it"),
    "nesterov_accelerated_gradient": Param(True, _bool,
                                           "manual SGD with momentum: True uses Nesterov's look-ahead "
                                           "update, usually faster and more stable than classical momentum "
                                           "(False)"),
    # regularisation
    "input_dropout_ratio": Param(0.0, _number(0, 1, hi_open=True),
                                 "fraction of the input values set to zero at random for each training row, "
                                 "in [0, 1): 0.1 or 0.2 regularises models with many noisy or redundant "
                                 "inputs. Works with every activation"),
    "hidden_dropout_ratios": Param(None, _dropout_list,
                                   "dropout fraction of each hidden layer, one value per layer in [0, 1), "
                                   "only with a '...WithDropout' activation (None: 0.5 for every layer). "
                                   "Randomly silenced units during training reduce overfitting; predictions "
                                   "use the whole network"),
    "l1": Param(0.0, _number(0),
                "L1 penalty on the weights and biases, applied at every update: pushes many weights to "
                "exactly 0 (simpler, more stable models); try 1e-5 to 1e-3 against overfitting, 0 disables "
                "it"),
    "l2": Param(0.0, _number(0),
                "L2 penalty (weight decay) on the weights and biases, applied at every update: keeps weights "
                "small for smoother models that generalise better; try 1e-5 to 1e-3 against overfitting, 0 "
                "disables it"),
    "max_w2": Param(FLOAT32_MAX, _number(0, lo_open=True, finite=False),
                    "upper limit on the sum of the squared incoming weights of each unit: a unit that "
                    "exceeds it has its weights scaled down. The default (the float32 maximum) means no "
                    "limit; a value such as 10 to 100 can stabilise Rectifier networks"),
    # data
    "standardize": Param(True, _bool,
                         "scale numeric inputs to mean 0 and standard deviation 1 (with sparse=True: divide "
                         "by the standard deviation only), and a gaussian, laplace, quantile or huber "
                         "response too; predictions are mapped back. Keep True unless the inputs are already "
                         "on comparable scales"),
    "use_all_factor_levels": Param(True, _bool,
                                   "one-hot encode every level of each categorical column (True, helpful for "
                                   "variable importances); False drops the first level, one input fewer per "
                                   "categorical column, without loss of accuracy"),
    "missing_values_handling": Param("MeanImputation", _choice(MISSING_HANDLING),
                                     "what to do with missing predictor values: 'MeanImputation' replaces a "
                                     "numeric NA by the column's training mean and gives categorical NAs "
                                     "their own level; 'Skip' drops training rows that have any NA "
                                     "(predictions still impute)"),
    "ignore_const_cols": Param(True, _bool,
                               "drop columns that are constant or entirely missing in the training data, "
                               "since they carry no information; set False to keep every column as an input"),
    "fast_mode": Param(True, _bool,
                       "skip the update of weights whose input is 0 and of units whose gradient is 0 "
                       "(including their L1/L2 decay), as H2O: much faster with one-hot or sparse inputs and "
                       "Rectifier units, at a small approximation; False updates every weight"),
    "mini_batch_size": Param(1, _number(1, integer=True),
                             "rows per weight update (not in H2O): 1 (default) is H2O's per-sample SGD; "
                             "larger values such as 32 to 128 average the gradient over the batch and use "
                             "fast matrix products, several times faster per epoch at some accuracy per "
                             "epoch. Pair it with optimizer='adam'"),
    "sparse": Param(False, _bool,
                    "for inputs that are mostly zero (pixels, counts, one-hot data): numeric inputs are "
                    "divided by their standard deviation but not centred, so zeros stay zero and fast_mode "
                    "skips them; much faster on such data. Not with elastic_averaging"),
    "thread_local_models": Param(False, _bool,
                                 "per-sample training only (mini_batch_size=1; not in H2O): each thread of a "
                                 "worker trains its own model copy, averaged (weighted by rows) at the end "
                                 "of the worker's share of every iteration, so threads scale better and "
                                 "results no longer depend on thread timing. False: H2O's HOGWILD!, the "
                                 "threads share one copy without locks"),
    "force_load_balance": Param(True, _bool,
                                "split training data that has fewer partitions than workers so that every "
                                "worker gets rows to train on, and spread the partitions over the workers; "
                                "leave True unless you place the partitions yourself"),
    "replicate_training_data": Param(True, _bool,
                                     "give every worker a copy of the whole training data, when it fits in "
                                     "half a worker's memory limit (else each trains on its own partitions): "
                                     "each worker then samples from all rows, which usually helps accuracy; "
                                     "False saves memory"),
    "shuffle_training_data": Param(False, _bool,
                                   "H2O's name, kept for its scripts: dask_dl visits the rows in a fresh random "
                                   "order every pass either way (H2O draws a fresh random order of each chunk "
                                   "at every iteration shorter than an epoch; True also shuffles its "
                                   "whole-epoch iterations, which otherwise follow the storage order)"),
    "single_node_mode": Param(False, _bool,
                              "train on one worker only, with no model averaging (the other workers stay "
                              "idle): for comparisons with multi-worker runs, or when averaging hurts "
                              "accuracy"),
    "elastic_averaging": Param(False, _bool,
                               "elastic averaging SGD between workers (EASGD, experimental in H2O): each "
                               "worker keeps its own model, pulled towards a shared consensus model, instead "
                               "of plain averaging after each iteration. Only matters with several workers; "
                               "not with sparse=True"),
    "elastic_averaging_moving_rate": Param(0.9, _number(0, 1),
                                           "with elastic_averaging: how far the consensus model moves "
                                           "towards the workers' average after each iteration, in [0, 1] (1: "
                                           "it becomes the average)"),
    "elastic_averaging_regularization": Param(1e-3, _number(0),
                                              "with elastic_averaging: strength of the pull of each worker's "
                                              "model towards the consensus model during training; larger "
                                              "values keep the workers' models closer together, 0 lets them "
                                              "drift apart"),
    # iterations and scoring
    "seed": Param(-1, _seed,
                  "random seed for weight initialisation, row order, sampling and dropout; -1 (default) "
                  "draws a new random seed for every fit. Set it for repeatable runs (bit-identical results "
                  "also need reproducible=True)"),
    "reproducible": Param(False, _bool,
                          "bit-identical results for a given seed: trains on one worker with one thread and "
                          "one partition, in iterations of whole epochs, scoring after each. Much slower: "
                          "for debugging and comparisons, not for production"),
    "train_samples_per_iteration": Param(-2, _number(1, integer=True, extra=(0, -1, -2)),
                                         "rows trained per iteration, between model averaging and scoring: "
                                         "-2 (default) sizes iterations automatically from measured speed; 0 "
                                         "is one epoch; -1 is all the rows each worker holds (one epoch per "
                                         "worker with replicated data); N > 0 is N rows"),
    "target_ratio_comm_to_comp": Param(0.05, _number(0, lo_open=True),
                                       "with train_samples_per_iteration=-2 on several workers: the share of "
                                       "each iteration's time that communication (model averaging) may "
                                       "take, which the iteration size is tuned to; lower it for longer "
                                       "iterations and fewer averages"),
    "score_interval": Param(5.0, _number(0),
                            "minimum number of seconds between scoring rounds (metrics, early-stopping "
                            "checks, best-model choice), checked after each iteration; lower it to score and "
                            "stop more often at some cost in speed (see score_each_iteration)"),
    "score_training_samples": Param(10000, _number(0, integer=True),
                                    "number of randomly sampled training rows used for the training metrics "
                                    "(which drive early stopping when there is no validation data); 0 uses "
                                    "all rows, more precise but slower to score on large data"),
    "score_validation_samples": Param(0, _number(0, integer=True),
                                      "number of randomly sampled validation rows used for the validation "
                                      "metrics; 0 (default) uses all rows. Set it to score faster on a large "
                                      "validation set"),
    "score_duty_cycle": Param(0.1, _number(0, 1),
                              "largest fraction of the training time spent scoring, in [0, 1]: a scoring "
                              "round is skipped while the last one would take a bigger share of the time "
                              "since it started; 0 scores only at the end"),
    "score_each_iteration": Param(False, _bool,
                                  "score after every iteration, ignoring score_interval and "
                                  "score_duty_cycle: early stopping and best-model choice then no longer "
                                  "depend on timing, at some cost in speed"),
    "stopping_rounds": Param(5, _number(0, integer=True),
                             "early stopping: stop when the moving average of stopping_metric over this many "
                             "scoring rounds has not improved by stopping_tolerance on the average before "
                             "it; 0 disables early stopping and trains all epochs"),
    "stopping_metric": Param("AUTO", _choice(STOPPING_METRICS),
                             "metric for early stopping and for overwrite_with_best_model, on the validation "
                             "data if given, else on the training sample: 'AUTO' (logloss for classifiers, "
                             "deviance for regression), 'deviance', 'logloss', 'MSE', 'RMSE', 'MAE', "
                             "'RMSLE', 'AUC', 'AUCPR', 'lift_top_group', 'misclassification' or "
                             "'mean_per_class_error'"),
    "stopping_tolerance": Param(0.0, _number(0),
                                "relative improvement of stopping_metric that early stopping requires to go "
                                "on, e.g. 0.001 stops once the moving average improves by less than one part "
                                "in a thousand; 0 stops only when it no longer improves at all"),
    "max_runtime_secs": Param(0.0, _number(0),
                              "time limit for training in seconds, checked after each iteration (the best "
                              "scored model is still returned with overwrite_with_best_model); 0 (default) "
                              "means no limit"),
    "overwrite_with_best_model": Param(True, _bool,
                                       "return the model with the best stopping_metric of all scoring rounds "
                                       "(validation data if given) instead of the last one; set False to "
                                       "keep the final weights"),
    "classification_stop": Param(0.0, _number(-1, 1),
                                 "classifiers: stop once the training classification error (on the scoring "
                                 "sample) is at or below this value, in [-1, 1]; the default 0 stops only at "
                                 "a perfect fit, -1 disables the check"),
    "regression_stop": Param(1e-6, _number(-1),
                             "regression: stop once the training MSE (on the scoring sample, original scale) "
                             "is at or below this value; -1 disables the check"),
    "initial_weights": Param(None, _initial_arrays(2),
                             "start from these weights instead of random ones: a list with one array per weight "
                             "matrix, input side first, each shaped as model.weights(l) returns it (units out x "
                             "units in), or None to draw that matrix as usual; a layer takes them together with "
                             "its initial_biases entry (e.g. a model's exported weights with epochs=0 reproduce "
                             "it)"),
    "initial_biases": Param(None, _initial_arrays(1),
                            "start from these biases: a list with one array per layer, input side first, each "
                            "shaped as model.biases(l), or None for that layer's default; given or not together "
                            "with the same layer's initial_weights"),
    "ignored_columns": Param(None, _column_names,
                             "columns of X that do not train (an identifier, a leak of the response...): they "
                             "must exist in X, and may still be present in the data given to predict()"),
    "average_activation": Param(0.0, _number(),
                                "sparse autoencoders: the mean activation each hidden unit is pulled towards"),
    "sparsity_beta": Param(0.0, _number(0),
                           "autoencoders: the strength of the pull towards average_activation (0: none)"),
    "pretrained_autoencoder": Param(None, _pretrained,
                                    "a fitted DeepLearningAutoencoder (or its model_) whose hidden layers start this "
                                    "supervised network: the same inputs and hidden sizes"),
    "nfolds": Param(0, _nfolds,
                    "cross-validation: 0 (none) or the number of folds (>= 2); the fold models train concurrently, "
                    "model.cross_validation_metrics_summary() compares them"),
    "fold_assignment": Param("AUTO", _choice(("AUTO", "Random", "Modulo", "Stratified")),
                             "how rows are dealt into folds (per partition, where the data lies): AUTO (Random), "
                             "Random, Modulo (the row number) or Stratified (each class evenly)"),
    "fold_column": Param(None, _column_name,
                         "a column of X whose values are the folds (instead of nfolds); it does not train"),
    "keep_cross_validation_models": Param(True, _bool, "keep the fold models (model.cross_validation_models())"),
    "keep_cross_validation_predictions": Param(False, _bool,
                                               "keep the fold models' holdout predictions "
                                               "(model.cross_validation_holdout_predictions())"),
    "keep_cross_validation_fold_assignment": Param(False, _bool,
                                                   "keep each row's fold (model.cross_validation_fold_assignment())"),
    "checkpoint": Param(None, _checkpoint,
                        "continue training a model: a fitted estimator, its model_, or a saved model's URL; epochs "
                        "is the new total (as H2O), the parameters H2O lets change may change, the architecture, "
                        "inputs and response may not; the checkpoint itself is left as it was"),
    "warm_start": Param(False, _bool,
                        "scikit-learn's warm start: a second fit of a fitted estimator continues its model for "
                        "another `epochs` (its checkpoint)"),
    "export_checkpoints_dir": Param(None, _optional_url,
                                    "a folder URL (any fsspec URL) where every scoring round writes a loadable "
                                    "model, <dir>/<fit id>_<iteration>.npz: a fit whose driver died resumes from "
                                    "the last one with checkpoint="),
    "categorical_encoding": Param("AUTO", _encoding,
                                  "how categorical columns become inputs: AUTO / OneHotInternal (one input per "
                                  "level and a missing one), EnumLimited (one-hot of the 10 most frequent levels), "
                                  "Binary (the level's index in bits), LabelEncoder (the index as a number), "
                                  "SortByResponse (the rank by mean response as a number), Eigen (the projection "
                                  "on the one-hot data's first principal component)"),
    "max_categorical_features": Param(NO_HASHING, _number(1, integer=True),
                                      "when the one-hot inputs of all categorical columns would be more than this, "
                                      "hash them into this many inputs (H2O's MurmurHash2 of each one-hot index); "
                                      "the default never hashes"),
    "balance_classes": Param(False, _bool,
                             "classifiers: over/under-sample each class while its blocks are encoded (each partition "
                             "on its own, nothing collected) so that the classes train alike; predicted "
                             "probabilities are corrected back to the original class priors"),
    "class_sampling_factors": Param(None, _positive_list,
                                    "with balance_classes: one sampling factor per class, in the classes' order "
                                    "(default: each class up to the largest one's count)"),
    "max_after_balance_size": Param(5.0, _number(0, lo_open=True),
                                    "with balance_classes: the most rows the balanced training data may have, as a "
                                    "multiple of the training rows (all factors are scaled down to fit)"),
    "score_validation_sampling": Param("Uniform", _choice(("Uniform", "Stratified")),
                                       "how score_validation_samples draws its sample of the validation frame: "
                                       "Uniform (each row alike) or Stratified (classifiers: each class keeps its "
                                       "share, at least one row per class and partition)"),
    "auc_type": Param("AUTO", _choice(AUC_TYPES),
                      "multinomial AUC and AUCPR: averaged one-vs-rest (OVR) or one-vs-one (OVO), MACRO (each class "
                      "or pair alike) or WEIGHTED (by prevalence); AUTO and NONE compute none, as H2O "
                      "(model_performance(...).multinomial_auc_table() lists every type)"),
    "max_hit_ratio_k": Param(10, _number(0, integer=True),
                             "classifiers: the top-K hit ratios computed (K = 1..min(this, classes); 0: none)"),
    "max_confusion_matrix_size": Param(20, _number(1, integer=True),
                                       "classifiers: the most classes whose confusion matrix a printed "
                                       "model_performance(...) shows"),
    "weights_column": Param(None, _column_name,
                            "a numeric column of X holding each row's observation weight (finite, >= 0): it "
                            "multiplies the row's loss in training and its share of every metric; a weight of 0 "
                            "removes the row (fit(sample_weight=...) is the scikit-learn spelling)"),
    "offset_column": Param(None, _column_name,
                           "regression: a numeric column of X added to the output in link space (log(exposure) "
                           "for a Poisson, Gamma or Tweedie rate); required again in the data a model predicts"),
    "variable_importances": Param(True, _bool,
                                  "compute variable importances (Gedeon's method on the first two weight matrices, "
                                  "as H2O): model.varimp() lists each expanded input's relative importance"),
    "diagnostics": Param(True, _bool,
                         "the layer table's learning-rate and weight statistics (model.layer_table(), "
                         "model.summary()); False leaves only the layers' shapes"),
    "export_weights_and_biases": Param(False, _bool,
                                       "keep the weights and biases as DataFrames on the model "
                                       "(model.weights_and_biases(), named as H2O names its frames); "
                                       "model.weights(l) and model.biases(l) give the arrays either way"),
    "quiet_mode": Param(False, _bool,
                        "silence the progress dask_dl shows during training: the progress bar (with tqdm "
                        "installed) or the log lines (one per iteration and per scoring round), and its "
                        "informational messages; warnings about the data or the cluster still show"),
    "callbacks": Param(None, _callbacks,
                       "functions called on the client after every scoring round with that round's "
                       "scoring-history row as a dict (not in H2O); one that returns True stops training "
                       "cleanly (stop reason 'callback'), keeping the model trained so far"),
    # dask_dl's own (not H2O)
    "optimizer": Param("auto", _choice(OPTIMIZERS),
                       "'auto' (default): H2O's optimizers, ADADELTA with adaptive_rate=True, else SGD with "
                       "the manual rate and momentum; 'adam' (not in H2O): PyTorch's familiar Adam, with "
                       "adam_rate, adam_beta1, adam_beta2 and epsilon. With mini_batch_size 32 to 128, "
                       "'adam' is often the quickest way to an accurate model"),
    "adam_rate": Param(1e-3, _number(0, lo_open=True),
                       "Adam's step size (optimizer='adam'), annealed as adam_rate / (1 + rate_annealing * "
                       "samples): 0.001 is the usual choice, try 0.0005 to 0.003; rate_annealing=0 keeps it "
                       "constant, as torch.optim.Adam"),
    "adam_beta1": Param(0.9, _number(0, 1, hi_open=True),
                        "Adam's decay factor for its running mean of the gradients (its momentum), in [0, "
                        "1): 0.9 is standard, lower values follow new gradients faster"),
    "adam_beta2": Param(0.999, _number(0, 1, hi_open=True),
                        "Adam's decay factor for its running mean of the squared gradients, which scales "
                        "each weight's step, in [0, 1): 0.999 is standard, lower values (e.g. 0.99) adapt "
                        "faster"),
    "out_of_core": Param("auto", _auto_or_bool,
                         "read the training partitions from storage at every iteration instead of keeping "
                         "them in the workers' memory: for data larger than the cluster's memory, at the "
                         "cost of reading it again every iteration. 'auto': when the encoded data exceeds "
                         "half the workers' memory limits"),
    "client": Param(None, _any,
                    "the distributed.Client to train on; None uses the active client, or else starts an "
                    "embedded LocalCluster on this machine for the fit and closes it afterwards"),
}

DEFAULTS: dict[str, Any] = {name: p.default for name, p in PARAMETERS.items()}


def _type_name(default: Any) -> str:
    if default is None:
        return "list of float or None"
    if isinstance(default, (list, tuple)):
        return "list of int"
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(type(default), "object")


def numpydoc_parameters() -> str:
    """The table as a numpydoc "Parameters" section (the estimators' docstrings), so ``help``
    documents every parameter with its H2O default."""
    import textwrap
    lines = ["Parameters", "----------"]
    for name, p in PARAMETERS.items():
        lines.append(f"{name} : {_type_name(p.default)}, default={p.default!r}")
        lines.append(textwrap.fill(p.doc[:1].upper() + p.doc[1:] + ".", 96, initial_indent="    ",
                                   subsequent_indent="    "))
    return "\n".join(lines)



@dataclass(frozen=True)
class TrainingConfig:
    """Validated parameters and every decision derived from them, made once (``resolve``): the
    layers below read these fields, never re-derive them from the raw values in ``params``."""
    params: dict                   # the user's values over H2O's defaults (what a model stores)
    kind: str                      # "binomial" | "multinomial" | "regression" | "autoencoder"
    distribution: str              # resolved distribution
    loss: str                      # resolved loss
    hidden: tuple
    hidden_activation: str         # "Tanh" | "Rectifier" | "Maxout"
    hidden_dropout: tuple          # one ratio per hidden layer
    seed: int
    momentum_used: bool = False
    optimizer_step: str = "ADADELTA"   # names.OPTIMIZER_STEPS
    output_error: str = "Gaussian"     # names.OUTPUT_ERRORS: what the kernels back-propagate
    mini_batch: int = 1                # rows per update (1: H2O's per-sample SGD)
    thread_copies: bool = False        # thread_local_models in effect (per sample only)
    input_major_first_layer: bool = False
    caps_weights: bool = False         # max_w2 below float32's max
    task_threads: int | None = None    # threads per training task (None: the worker's own count)
    one_partition: bool = False        # the training data in one partition, read in order
    single_worker: bool = False        # one worker trains on everything, nothing is averaged
    spread_partitions: bool = True     # encode partitions round-robin over the workers
    iteration_samples: int = -2        # train_samples_per_iteration as it applies (see _iteration_rules)
    auto_iteration_size: bool = True   # -2 in effect: H2O's auto-sized (and re-tuned) iterations
    score_every_round: bool = False    # score after every iteration
    elastic: bool = False              # elastic averaging between workers
    adapts_huber_delta: bool = False   # Huber loss: delta from the residuals at each scoring
    stopping_key: str = "deviance"     # the metrics-dict key early stopping watches
    best_key: str = "deviance"         # the key overwrite_with_best_model ranks models by

    @property
    def per_sample(self) -> bool:
        return self.mini_batch == 1

    def __getattr__(self, name):  # convenient read access to raw parameters
        try:
            return self.__dict__["params"][name]
        except KeyError:
            raise AttributeError(name) from None


def _short_repr(value) -> str:
    """The value as an error message shows it: arrays and long lists abbreviated."""
    text = repr(value)
    return text if len(text) <= 120 else reprlib.repr(value)


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
            problems.append(f"{name}={_short_repr(value)}: expected {err}")
    if problems:
        raise ValueError("invalid dask_dl parameters: " + "; ".join(problems))


def uses_thread_copies(params: dict) -> bool:
    """thread_local_models applies to per-sample training only: mini-batch threads share one copy
    (they update it once per batch). Decides the kernel settings and the embedded cluster's shape."""
    return bool(params["thread_local_models"]) and int(params["mini_batch_size"]) == 1


def resolve(values: dict, kind: str, n_classes: int = 0) -> TrainingConfig:
    """Validate every parameter and apply H2O's cross-parameter rules; no cluster work happens here.

    ``kind`` is "classification", "regression" or "autoencoder" (from the estimator); a
    classification becomes "binomial" or "multinomial" once ``n_classes`` is known. Every problem
    found is reported in one ValueError.
    """
    p = dict(DEFAULTS)
    p.update(values)
    check_values(p)
    if kind == "classification":
        kind = "binomial" if n_classes == 2 else "multinomial"
    problems: list = []
    hidden, ratios = _network_rules(p, problems)
    momentum_used = _optimizer_rules(p, problems)
    _autoencoder_rules(p, kind, problems)
    dist, loss = _autoencoder_loss(p, problems) if kind == "autoencoder" else _response_rules(p, kind, n_classes,
                                                                                              problems)
    stopping_key, best_key = _stopping_rules(p, kind, n_classes, problems)
    if problems:
        raise ValueError("invalid dask_dl parameters: " + "; ".join(problems))
    return TrainingConfig(
        params=p, kind=kind, distribution=dist, loss=loss, hidden=hidden,
        hidden_activation=p["activation"].replace("WithDropout", ""), hidden_dropout=ratios,
        seed=_seed_of(p), momentum_used=momentum_used, optimizer_step=_optimizer_step(p, momentum_used),
        output_error=_output_error(kind, dist, loss), stopping_key=stopping_key, best_key=best_key,
        **_execution_rules(p, hidden), **_iteration_rules(p),
        adapts_huber_delta=kind == "regression" and loss == "Huber")


def _network_rules(p: dict, problems: list) -> tuple[tuple, tuple]:
    """(hidden sizes, one dropout ratio per hidden layer): WithDropout activations default to 0.5."""
    act = p["activation"]
    hidden = tuple(int(h) for h in p["hidden"])
    dropout_act = act.endswith("WithDropout")
    hdr = p["hidden_dropout_ratios"]
    if hdr is None:
        return hidden, tuple(0.5 if dropout_act else 0.0 for _ in hidden)
    if not dropout_act:
        problems.append(f"hidden_dropout_ratios={list(hdr)!r} requires a *WithDropout activation, "
                        f"got activation={act!r}")
    elif len(hdr) != len(hidden):
        problems.append(f"hidden_dropout_ratios has {len(hdr)} values but hidden has {len(hidden)} layers")
    return hidden, tuple(float(r) for r in hdr)


def _optimizer_rules(p: dict, problems: list) -> bool:
    """Momentum's compatibility with the optimizer; returns whether momentum is used."""
    momentum_used = p["momentum_start"] != 0 or p["momentum_stable"] != 0
    if p["optimizer"] == "adam" and momentum_used:
        problems.append("momentum_start/momentum_stable must be 0 with optimizer='adam' (Adam's momentum is "
                        "adam_beta1)")
    elif p["adaptive_rate"] and momentum_used:
        problems.append("momentum_start/momentum_stable must be 0 with adaptive_rate=True "
                        "(ADADELTA has no momentum); set adaptive_rate=False to use momentum")
    if p["sparse"] and p["elastic_averaging"]:
        problems.append("sparse=True cannot be combined with elastic_averaging=True (as H2O)")
    return momentum_used


def _optimizer_step(p: dict, momentum_used: bool) -> str:
    """H2O's choice: ADADELTA with adaptive_rate, else the manual rate (with momentum: Nesterov's or
    plain); dask_dl's optimizer='adam' overrides both."""
    if p["optimizer"] == "adam":
        return "ADAM"
    if p["adaptive_rate"]:
        return "ADADELTA"
    if momentum_used:
        return "NESTEROV" if p["nesterov_accelerated_gradient"] else "MOMENTUM"
    return "SGD"


def _response_rules(p: dict, kind: str, n_classes: int, problems: list) -> tuple[str, str]:
    """(distribution, loss) resolved from AUTO/Automatic, with H2O's compatibility rules."""
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
        if p["offset_column"] is not None:
            problems.append(f"offset_column={p['offset_column']!r} is for regression (H2O refuses an offset "
                            "with a classification response)")
        factors = p["class_sampling_factors"]
        if factors is not None and not p["balance_classes"]:
            problems.append("class_sampling_factors needs balance_classes=True")

        return ("bernoulli" if kind == "binomial" else "multinomial",
                "CrossEntropy" if loss == "Automatic" else loss)
    if dist in ("bernoulli", "multinomial"):
        problems.append(f"distribution={dist!r} is for classification; use DeepLearningClassifier")
    if p["balance_classes"] or p["class_sampling_factors"] is not None:
        problems.append("balance_classes and class_sampling_factors are for classifiers; the model is a regression")
    if loss == "CrossEntropy":
        problems.append("loss='CrossEntropy' is for classification; a regressor takes 'Automatic', "
                        "'Quadratic', 'Absolute', 'Huber' or 'Quantile'")
    by_loss = {"Absolute": "laplace", "Quantile": "quantile", "Huber": "huber"}
    if dist == "AUTO":
        dist = by_loss.get(loss, "gaussian")
    required = {"laplace": "Absolute", "quantile": "Quantile", "huber": "Huber"}
    if dist in LOG_LINK_DISTRIBUTIONS and loss != "Automatic":
        problems.append(f"distribution={dist!r} requires loss='Automatic', got loss={loss!r}")
    if dist in required and loss not in ("Automatic", required[dist]):
        problems.append(f"distribution={dist!r} requires loss='Automatic' or {required[dist]!r}, "
                        f"got loss={loss!r}")
    if loss == "Automatic":
        loss = {"gaussian": "Quadratic", **required}.get(dist, "Automatic")
    return dist, loss


_AUTOENCODER_LOSSES = {"Automatic": ("gaussian", "Quadratic"), "Quadratic": ("gaussian", "Quadratic"),
                       "Absolute": ("laplace", "Absolute"), "Huber": ("huber", "Huber")}
_SUPERVISED_ONLY = ("weights_column", "offset_column", "class_sampling_factors", "pretrained_autoencoder")


def _autoencoder_rules(p: dict, kind: str, problems: list) -> None:
    """H2O's autoencoder rules (§6.3, §7 step 5): no Maxout, sparsity only for autoencoders, the
    target activation in the activation's range; dask_dl's: no supervised-only parameters, per-sample
    sparsity, dense inputs (NORMALIZE centres them)."""
    if kind != "autoencoder":
        if p["sparsity_beta"] != 0:
            problems.append("sparsity_beta is for autoencoders (DeepLearningAutoencoder)")
        return
    act = p["activation"]
    if act.startswith("Maxout"):
        problems.append(f"activation={act!r}: an autoencoder takes Tanh or Rectifier (H2O refuses Maxout too)")
    given = [n for n in _SUPERVISED_ONLY if p[n] is not None] + (["balance_classes"] if p["balance_classes"] else [])
    if given:
        problems.append(f"{', '.join(given)}: supervised parameters, not for an autoencoder")
    if p["sparse"]:
        problems.append("sparse=True keeps zeros uncentred; an autoencoder's inputs are centred (NORMALIZE)")
    if p["sparsity_beta"] > 0:
        rho = p["average_activation"]
        if act.startswith("Tanh") and not abs(rho) < 1:
            problems.append(f"average_activation={rho!r}: Tanh units need a target in (-1, 1)")
        if act.startswith("Rectifier") and not rho > 0:
            problems.append(f"average_activation={rho!r}: Rectifier units need a target above 0")
        if int(p["mini_batch_size"]) > 1:
            problems.append("sparsity_beta trains per sample (mini_batch_size=1)")


def _autoencoder_loss(p: dict, problems: list) -> tuple[str, str]:
    """(distribution, loss) of a reconstruction: Quadratic by default, Absolute or Huber."""
    loss = p["loss"]
    if loss not in _AUTOENCODER_LOSSES:
        problems.append(f"loss={loss!r}: an autoencoder's reconstruction loss is 'Automatic' (Quadratic), "
                        "'Quadratic', 'Absolute' or 'Huber'")
        return "gaussian", "Quadratic"
    dist, resolved = _AUTOENCODER_LOSSES[loss]
    if p["distribution"] not in ("AUTO", dist):
        problems.append(f"distribution={p['distribution']!r}: an autoencoder's follows its loss ({dist!r} for "
                        f"loss={loss!r}); leave distribution='AUTO'")
    return dist, resolved


def _output_error(kind: str, dist: str, loss: str) -> str:
    """The output error the kernels back-propagate: the loss where one is honoured, else the
    log-link distribution's deviance gradient."""
    if kind == "autoencoder":
        return {"Quadratic": "Gaussian", "Absolute": "Laplace", "Huber": "Huber"}[loss]
    if kind != "regression":
        return "CrossEntropy" if loss == "CrossEntropy" else "QuadraticSoftmax"
    by_loss = {"Quadratic": "Gaussian", "Absolute": "Laplace", "Quantile": "Quantile", "Huber": "Huber"}
    return by_loss.get(loss) or dist.capitalize()


_CLASSIFICATION_METRICS = ("logloss", "AUC", "AUCPR", "lift_top_group", "misclassification", "mean_per_class_error")


def _stopping_rules(p: dict, kind: str, n_classes: int, problems: list) -> tuple[str, str]:
    """(stopping metric key, best-model metric key) for the model kind, or problems when the
    metric is not one this kind computes."""
    metric = p["stopping_metric"]
    if kind == "autoencoder" and metric not in ("AUTO", "MSE"):
        problems.append(f"stopping_metric={metric!r}: an autoencoder is scored by its reconstruction MSE "
                        "('AUTO' or 'MSE', as H2O)")
    elif kind == "regression" and metric in _CLASSIFICATION_METRICS:
        problems.append(f"stopping_metric={metric!r} is a classification metric; the model is a regression")
    elif kind == "multinomial" and metric == "lift_top_group":
        problems.append(f"stopping_metric={metric!r} needs a binary response; the response has {n_classes} classes")
    elif kind == "multinomial" and metric in ("AUC", "AUCPR") and p["auc_type"] in ("AUTO", "NONE"):
        problems.append(f"stopping_metric={metric!r} on a multinomial response needs auc_type, e.g. 'MACRO_OVR' "
                        f"(auc_type={p['auc_type']!r} computes no multinomial AUC, as H2O)")
    elif kind == "multinomial" and metric in ("AUC", "AUCPR") and n_classes > MAX_AUC_CLASSES:
        problems.append(f"stopping_metric={metric!r}: H2O computes a multinomial AUC for at most {MAX_AUC_CLASSES} "
                        f"classes; the response has {n_classes}")
    elif kind in ("binomial", "multinomial") and metric in ("RMSLE", "MAE"):
        problems.append(f"stopping_metric={metric!r} is a regression metric; the model is a classifier")
    else:
        return resolve_stopping_metric(metric, kind), best_model_metric(metric, kind)
    return "", ""


def _execution_rules(p: dict, hidden: tuple) -> dict:
    """How the work is laid out: threads, partitions, workers, kernel variants. ``reproducible``
    (H2O: one chunk, one thread, one node, a fixed order) implies most of them."""
    reproducible = bool(p["reproducible"])
    single_worker = reproducible or bool(p["single_node_mode"])
    batch = int(p["mini_batch_size"])
    return dict(
        mini_batch=batch, thread_copies=uses_thread_copies(p),
        # sparse per-sample training stores the first matrix input-major so a sample's update
        # touches only its non-zero inputs' rows; without fast_mode every weight moves anyway
        input_major_first_layer=bool(p["sparse"]) and bool(p["fast_mode"]) and batch == 1 and bool(hidden)
        and p["activation"].replace("WithDropout", "") != "Maxout",
        caps_weights=float(p["max_w2"]) < FLOAT32_MAX,
        task_threads=1 if reproducible else None, one_partition=reproducible, single_worker=single_worker,
        spread_partitions=bool(p["force_load_balance"]) and not single_worker,
        elastic=bool(p["elastic_averaging"]))


def _iteration_rules(p: dict) -> dict:
    """Iteration size and scoring cadence: reproducible runs iterate over whole epochs (-2 -> -1)
    and score every iteration, as H2O."""
    reproducible = bool(p["reproducible"])
    t = int(p["train_samples_per_iteration"])
    if t == -2 and reproducible:
        t = -1
    return dict(iteration_samples=t, auto_iteration_size=t == -2,
                score_every_round=bool(p["score_each_iteration"]) or reproducible)


def _seed_of(p: dict) -> int:
    """The fit's seed: the user's, or a random one for -1."""
    seed = int(p["seed"])
    if seed == -1:
        import secrets
        seed = secrets.randbelow(2**31 - 1)
    return seed
