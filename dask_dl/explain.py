"""Permutation variable importance, H2O's ``model.permutation_importance``: model-agnostic, next to
the Gedeon importances of ``model.varimp()``.

Each ORIGINAL column is permuted as one (a categorical column's values move together, so its
one-hot inputs are never broken apart, unlike Gedeon's per-input importances), the model is scored
again, and the importance is how much the metric got worse: ``permuted - original`` for a loss
(logloss, RMSE, ...), ``original - permuted`` for a score (AUC, AUCPR, R², ...).

Why a bounded sample on the client: n_features x n_repeats scorings of the same rows. A dask frame
is sampled where it lies (one length pass, then each partition's ``sample(frac=n_samples / length)``
with the seed: about ``n_samples`` rows, never the whole frame unless ``n_samples=-1``); those rows
come to the client once and every permutation is scored there by the model's own pandas scoring path
(``model.model_performance`` on pandas: local numpy, the same metrics as on the cluster). Per
permutation that is milliseconds on 10,000 rows, where a cluster pass per permutation would pay a
round trip and a task graph each time, and a permuted dask frame would need a shuffle.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data.schema import RESPONSE
from .inputs import training_frame
from .scoring.sufficient import AVERAGED_AUC

#: metrics a model kind can be ranked by (the keys of its ``model_performance``)
KIND_METRICS: dict[str, tuple[str, ...]] = {
    "binomial": ("auc", "pr_auc", "gini", "logloss", "mse", "rmse", "r2", "mean_per_class_error",
                 "classification_error", "mean_residual_deviance", "lift_top_group"),
    "multinomial": ("logloss", "mse", "rmse", "r2", "mean_per_class_error", "classification_error",
                    "mean_residual_deviance", "auc", "pr_auc"),
    "regression": ("rmse", "mse", "mae", "rmsle", "r2", "mean_residual_deviance"),
}
AUTO_METRIC = {"binomial": "auc", "multinomial": "logloss", "regression": "rmse"}  # H2O's PermutationVarImp
HIGHER_IS_BETTER = frozenset({"auc", "pr_auc", "gini", "r2", "lift_top_group"})
ALIASES = {"aucpr": "pr_auc", "deviance": "mean_residual_deviance", "err": "classification_error"}
IMPORTANCE_COLUMNS = ["Relative Importance", "Scaled Importance", "Percentage"]


def permutation_importance(model, X, y=None, metric: str = "AUTO", n_samples: int = 10000, n_repeats: int = 1,
                           features=None, seed: int = -1) -> pd.DataFrame:
    """H2O's permutation variable importance of ``model`` on (X, y) (y as ``model_performance``
    takes it; default: the training response's column of X). One row per original column, index
    ``Variable``, sorted descending; columns Relative/Scaled Importance and Percentage, or with
    ``n_repeats > 1`` one column per run (``Run 1``..), sorted by ``Run 1``, as H2O. ``attrs``
    record the metric, the seed and the rows scored."""
    metric, features, seed = _checked(model, metric, n_samples, n_repeats, features, seed)
    frame = training_frame(X, model.info.response_name if y is None else y, "X")[0]
    sample = draw_sample(frame, n_samples, seed)
    if len(sample) < 2:
        raise ValueError(f"permutation importance needs at least 2 rows; the sample has {len(sample)} "
                         "(raise n_samples, or n_samples=-1 for all rows)")
    runs = _runs(model, sample, metric, features, n_repeats, seed)
    table = _table(runs, features)
    table.attrs.update(metric=metric, seed=seed, n_rows=len(sample))
    return table


def _checked(model, metric: str, n_samples: int, n_repeats: int, features, seed: int) -> tuple:
    """Every argument checked before any cluster work; (metric, features, seed) resolved."""
    if model.kind not in KIND_METRICS:
        raise ValueError(f"permutation importance needs a response to score; this model is a {model.kind} "
                         "model (H2O refuses autoencoders too): rank its inputs with anomaly(X, per_feature=True)")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < -1 \
            or n_samples in (0, 1):
        raise ValueError(f"n_samples={n_samples!r}: -1 (every row) or an integer of at least 2")
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, (int, np.integer)) or n_repeats < 1:
        raise ValueError(f"n_repeats={n_repeats!r}: an integer of at least 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < -1:
        raise ValueError(f"seed={seed!r}: -1 (a random seed) or an integer >= 0")
    seed = int(np.random.SeedSequence().entropy % 2**32) if seed == -1 else int(seed)
    return resolve_metric(model, metric), _features(model, features), seed


def resolve_metric(model, metric: str) -> str:
    """H2O's metric name (any case; AUTO: AUC binomial, logloss multinomial, RMSE regression)."""
    valid = list(KIND_METRICS[model.kind])
    if model.kind == "multinomial" and model.params.get("auc_type", "AUTO") not in AVERAGED_AUC:
        valid = [m for m in valid if m not in ("auc", "pr_auc")]  # computed only with an averaging auc_type
    name = str(metric).lower()
    name = AUTO_METRIC[model.kind] if name == "auto" else ALIASES.get(name, name)
    if name not in valid:
        raise ValueError(f"metric={metric!r} is not a metric of this {model.kind} model; expected 'AUTO' or one of "
                         f"{valid}")
    return name


def _features(model, features) -> list:
    """The original columns to permute, in the model's order (None or []: all of them)."""
    names = list(model.info.feature_names)
    if features is None or len(features) == 0:
        return names
    wanted = [features] if isinstance(features, str) else list(features)
    unknown = [f for f in wanted if f not in names]
    if unknown:
        raise ValueError(f"features {unknown} are not columns this model uses; its columns: {names}")
    return [f for f in names if f in wanted]


def draw_sample(frame, n_samples: int, seed: int) -> pd.DataFrame:
    """About ``n_samples`` rows of ``frame`` as pandas, index reset: a dask frame samples the same
    fraction of every partition where it lies (H2O samples its chunks so), pandas exactly n_samples."""
    if n_samples == -1 or not hasattr(frame, "dask"):
        small = n_samples == -1 or n_samples >= len(frame)
        out = frame if small else frame.sample(n=n_samples, random_state=seed % 2**32)
        return out.compute().reset_index(drop=True) if hasattr(out, "dask") else out.reset_index(drop=True)
    total = int(frame.shape[0].compute())  # a counting pass: dask lengths are unknown
    frac = n_samples / total if total else 1.0
    out = frame.sample(frac=frac, random_state=seed % 2**32).compute() if frac < 1 else frame.compute()
    return out.reset_index(drop=True)


def permutation(seed: int, run: int, position: int, n_rows: int) -> np.ndarray:
    """The row order of run ``run`` for the feature at ``position`` in the model's columns: a
    stream of its own, so a feature's importance does not depend on which others are asked for."""
    return np.random.default_rng([seed, run, position]).permutation(n_rows)


def _runs(model, sample: pd.DataFrame, metric: str, features: list, n_repeats: int, seed: int) -> np.ndarray:
    """importance[feature, run] = how much ``metric`` got worse with the feature permuted."""
    X, y = sample.drop(columns=[RESPONSE]), sample[RESPONSE].to_numpy()
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0
    original = model.model_performance(X, y)[metric]
    positions = {f: i for i, f in enumerate(model.info.feature_names)}
    out = np.empty((len(features), n_repeats))
    for j, f in enumerate(features):
        column = X[f].array
        for r in range(n_repeats):
            order = permutation(seed, r, positions[f], len(X))
            permuted = X.assign(**{f: pd.Series(column.take(order), index=X.index)})
            out[j, r] = sign * (model.model_performance(permuted, y)[metric] - original)
    return out


def _table(runs: np.ndarray, features: list) -> pd.DataFrame:
    """H2O's table: one run -> Relative/Scaled Importance and Percentage; more -> ``Run k`` columns."""
    if runs.shape[1] == 1:
        v = runs[:, 0]
        top, total = v.max(), v.sum()
        data = np.column_stack([v, v / top if top > 0 else v, v / total if total > 0 else v])
        columns = IMPORTANCE_COLUMNS
    else:
        data, columns = runs, [f"Run {k + 1}" for k in range(runs.shape[1])]
    table = pd.DataFrame(data, index=pd.Index(features, name="Variable"), columns=columns)
    return table.sort_values(columns[0], ascending=False, kind="stable")
