"""H2O's cross-validation (§12.1) on a Dask cluster: ``nfolds`` / ``fold_column`` on the estimators.

Folds are assigned per partition where the data lies (Random, Modulo, Stratified, or a fold
column); nothing is collected. Each fold's model trains on the whole frame with weight 0 on its
holdout rows (times the user's weights) and the holdout as its validation frame, as H2O does; the
fold models train concurrently on one cluster. The main model then trains on everything (for the
fold models' mean epochs when they stopped early). Cross-validation metrics come from the fold
models' sufficient statistics on their holdouts, merged.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cluster.session import cluster_client
from .job import MAX_CONCURRENT_FITS
from .scoring import sufficient


@dataclass
class CrossValidation:
    """What a cross-validated model keeps (``DeepLearningModel.cross_validation_*``)."""
    models: list | None                 # the fold models (keep_cross_validation_models)
    holdout_predictions: object | None  # one row per training row (keep_cross_validation_predictions)
    predictions: list | None            # per fold: its predictions on its holdout rows, 0 elsewhere
    fold_assignment: object | None      # keep_cross_validation_fold_assignment
    metrics: object                     # sufficient.Performance of the merged holdout statistics
    summary: pd.DataFrame               # mean, sd and each fold's value per metric


def with_folds(X, nfolds: int, method: str, seed: int, y=None):
    """(X, each row's fold 0..nfolds-1) aligned: a pandas Series, or for dask a column of one frame
    built partition by partition (so both stay aligned). Random (AUTO), Modulo (the global row
    number), Stratified (each class dealt evenly in each partition)."""
    import dask.dataframe as dd
    method = "Random" if method in ("AUTO", "Random") else method
    if not isinstance(X, dd.DataFrame):
        labels = None if y is None else np.asarray(X[y] if isinstance(y, str) else y)
        return X, pd.Series(_block_folds(len(X), nfolds, method, seed, 0, 0, labels), index=X.index, name=FOLD)
    import dask
    starts = np.concatenate([[0], np.cumsum(X.map_partitions(len).compute())])[:-1] if method == "Modulo" else None
    blocks = [dask.delayed(_part_with_folds)(part, nfolds, method, seed, i, 0 if starts is None else int(starts[i]), y)
              for i, part in enumerate(X.to_delayed())]
    both = dd.from_delayed(blocks, meta=X._meta.assign(**{FOLD: pd.Series([], dtype=np.int64)}),
                           divisions=X.divisions)
    return both.drop(columns=[FOLD]), both[FOLD]


FOLD = "__dask_dl_fold__"


def _part_with_folds(part, nfolds, method, seed, number, start, y):
    labels = np.asarray(part[y]) if isinstance(y, str) else None
    return part.assign(**{FOLD: _block_folds(len(part), nfolds, method, seed, number, start, labels)})


def _block_folds(n: int, nfolds: int, method: str, seed: int, number: int, start: int, labels) -> np.ndarray:
    rng = np.random.default_rng([seed & 0xFFFFFFFF, number, 0xF01D])
    if method == "Modulo":
        return (start + np.arange(n)) % nfolds
    if method == "Stratified" and labels is not None:
        out = np.empty(n, dtype=np.int64)
        for value in pd.unique(labels):  # each class's rows dealt round-robin from a random fold
            rows = rng.permutation(np.flatnonzero(labels == value))
            out[rows] = (rng.integers(nfolds) + np.arange(len(rows))) % nfolds
        return out
    return rng.integers(0, nfolds, n)


def run(estimator, X, y, folds, nfolds: int, sample_weight=None, validation_data=None):
    """Train the fold models concurrently and the main model (with the user's validation data);
    returns (main estimator, CrossValidation)."""
    from sklearn.base import clone
    p = estimator.get_params()
    weights = sample_weight
    if p["weights_column"] is not None:  # the fold's 0/1 weight times the user's
        weights, X = X[p["weights_column"]], X.drop(columns=[p["weights_column"]])
    yv = X[y] if isinstance(y, str) else y
    with cluster_client(p.get("client")) as client, ThreadPoolExecutor(min(nfolds, MAX_CONCURRENT_FITS)) as pool:
        def fold_model(k):
            keep = (folds != k).astype("float64")
            est = clone(estimator).set_params(nfolds=0, fold_column=None, weights_column=None, client=client)
            holdout = (X[folds == k], None if isinstance(y, str) else yv[folds == k])
            return est.fit(X, y, sample_weight=keep if weights is None else keep * weights,
                           validation_data=holdout[0] if isinstance(y, str) else holdout)
        models = list(pool.map(fold_model, range(nfolds)))
        main = clone(estimator).set_params(nfolds=0, fold_column=None, client=client, overwrite_with_best_model=False,
                                           **_main_budget(p, models))
        main.fit(X, y, sample_weight=weights, validation_data=validation_data)
    main.set_params(client=p.get("client"), nfolds=p["nfolds"], fold_column=p["fold_column"])
    return main, _results(p, models, X, y, yv, folds, nfolds)


def _main_budget(p: dict, models: list) -> dict:
    """H2O: with early stopping (or a time limit) the main model trains for the fold models' mean
    epochs, without early stopping."""
    if not p["stopping_rounds"] and not p["max_runtime_secs"]:
        return {}
    return {"epochs": float(np.mean([m.model_.run["epochs"] for m in models])), "stopping_rounds": 0}


def _results(p: dict, models: list, X, y, yv, folds, nfolds: int) -> CrossValidation:
    stats, per_fold = None, []
    for k, m in enumerate(models):
        holdout = X[folds == k]
        s = m.model_.performance_stats(holdout, y if isinstance(y, str) else yv[folds == k])
        stats = s if stats is None else sufficient.merge(stats, s)
        per_fold.append(m.model_.performance_from_stats(s))
    metrics = models[0].model_.performance_from_stats(stats)
    names = [k for k in metrics if k != "nobs" and isinstance(metrics[k], float)]
    table = pd.DataFrame({f"cv_{k + 1}_valid": [f[n] for n in names] for k, f in enumerate(per_fold)}, index=names)
    summary = pd.concat([table.mean(axis=1).rename("mean"), table.std(axis=1).rename("sd"), table], axis=1)
    keep_pred = p["keep_cross_validation_predictions"]
    preds = [_predictions(m, X, folds, k) for k, m in enumerate(models)] if keep_pred else None
    return CrossValidation(models=[m.model_ for m in models] if p["keep_cross_validation_models"] else None,
                           holdout_predictions=sum(preds[1:], preds[0]) if keep_pred else None, predictions=preds,
                           fold_assignment=folds if p["keep_cross_validation_fold_assignment"] else None,
                           metrics=metrics, summary=summary.reset_index(names="metric"))


def _predictions(est, X, folds, k: int):
    """A fold model's predictions (probabilities for classifiers) on its holdout rows, 0 elsewhere:
    numpy for a pandas frame, a lazy dask array for a dask one (X and folds are partitioned alike)."""
    out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    mask = folds == k
    mask = mask.to_dask_array() if hasattr(mask, "to_dask_array") else mask.to_numpy()
    out = out.astype(np.float64)
    return out * (mask[:, None] if out.ndim == 2 else mask)
