"""H2O's grid search on a Dask cluster: ``GridSearch(estimator, hyper_params, search_criteria)``.

Strategies as H2O's: Cartesian (every combination) and RandomDiscrete (combinations drawn without
replacement with ``seed``, until ``max_models``, ``max_runtime_secs`` or the leaderboard stops
improving: ``stopping_rounds`` / ``stopping_metric`` / ``stopping_tolerance``). The models train
concurrently from threads of this process on one cluster (``job.MAX_CONCURRENT_FITS`` at a time,
sharing the workers); every combination's parameters are checked before any training (strict) or
its failure recorded (lenient).
"""
from __future__ import annotations

import itertools
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import numpy as np
import pandas as pd

from . import params as P
from .cluster.session import cluster_client
from .job import MAX_CONCURRENT_FITS
from .names import METRIC_DIRECTION, resolve_stopping_metric
from .scoring.history import stop_early

STRATEGIES = ("Cartesian", "RandomDiscrete")


class GridSearch:
    """Train ``estimator`` with every (or a random sample of) combination of ``hyper_params``
    ({parameter: [values]}); ``search_criteria`` as H2O's (strategy, max_models, max_runtime_secs,
    seed, stopping_rounds, stopping_metric, stopping_tolerance). ``strict=False`` records a
    combination that cannot train in ``failures_`` instead of raising before the search starts.
    After ``fit``: ``leaderboard_``, ``models_`` (in leaderboard order), ``best_model_``."""

    def __init__(self, estimator, hyper_params: dict, search_criteria: dict | None = None, *,
                 strict: bool = True, max_parallel: int = MAX_CONCURRENT_FITS):
        self.estimator, self.hyper_params = estimator, dict(hyper_params)
        self.search_criteria, self.strict, self.max_parallel = dict(search_criteria or {}), strict, max_parallel

    def fit(self, X, y=None, validation_data=None, **fit_params) -> "GridSearch":
        """Train the grid's models on (X, y); the leaderboard ranks them by their validation
        metrics when ``validation_data`` is given, else by their training metrics."""
        combos, failures = self._combinations()
        criteria = self._criteria()
        kind = getattr(self.estimator, "_kind", "regression")
        started, series, done = time.perf_counter(), [], []
        with cluster_client(self.estimator.get_params().get("client")) as client, \
                ThreadPoolExecutor(max_workers=max(1, int(self.max_parallel))) as pool:
            pending, todo = {}, list(combos)
            while todo or pending:
                while todo and len(pending) < self.max_parallel and not self._exhausted(criteria, started, done,
                                                                                         series, pending):
                    combo = todo.pop(0)
                    est = self._candidate(combo, client)
                    pending[pool.submit(est.fit, X, y, validation_data=validation_data, **fit_params)] = (combo, est)
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    combo, est = pending.pop(f)
                    if f.exception() is not None:
                        if self.strict:
                            raise f.exception()
                        failures.append({**combo, "error": f"{type(f.exception()).__name__}: {f.exception()}"})
                        continue
                    done.append((combo, est))
                    series.append(_metrics(est, validation_data is not None).get(criteria["key"], np.nan))
        self._finish(done, failures, kind, validation_data is not None, criteria)
        return self

    # --------------------------------------------------------------------------- the search
    def _criteria(self) -> dict:
        c = self.search_criteria
        strategy = c.get("strategy", "Cartesian")
        if strategy not in STRATEGIES:
            raise ValueError(f"search_criteria strategy={strategy!r}: expected one of {list(STRATEGIES)}")
        kind = {"classification": "binomial"}.get(getattr(self.estimator, "_kind", "regression"),
                                                  getattr(self.estimator, "_kind", "regression"))
        key = resolve_stopping_metric(c.get("stopping_metric", "AUTO"), kind)
        return {"strategy": strategy, "max_models": int(c.get("max_models", 0) or 0),
                "max_runtime_secs": float(c.get("max_runtime_secs", 0) or 0), "key": key,
                "stopping_rounds": int(c.get("stopping_rounds", 0) or 0),
                "stopping_tolerance": float(c.get("stopping_tolerance", 1e-3))}

    def _combinations(self) -> tuple[list, list]:
        """Every combination (Cartesian) or all of them in a seeded random order (RandomDiscrete),
        each checked as ``fit`` would (strict: the first bad one raises, naming it)."""
        unknown = sorted(set(self.hyper_params) - set(P.PARAMETERS))
        if unknown:
            raise ValueError(f"hyper_params names unknown parameter(s) {unknown}")
        names = list(self.hyper_params)
        combos = [dict(zip(names, values)) for values in itertools.product(*(self.hyper_params[n] for n in names))]
        if self.search_criteria.get("strategy", "Cartesian") == "RandomDiscrete":
            order = np.random.default_rng(self.search_criteria.get("seed")).permutation(len(combos))
            combos = [combos[i] for i in order]
        good, failures = [], []
        for combo in combos:
            try:
                P.resolve({**self.estimator.get_params(), **combo}, getattr(self.estimator, "_kind", "regression"),
                          n_classes=2)
                good.append(combo)
            except ValueError as err:
                if self.strict:
                    raise ValueError(f"grid combination {combo}: {err}") from None
                failures.append({**combo, "error": f"ValueError: {err}"})
        return good, failures

    def _candidate(self, combo: dict, client):
        from sklearn.base import clone
        est = clone(self.estimator)
        return est.set_params(**combo, client=client)

    @staticmethod
    def _exhausted(criteria: dict, started: float, done: list, series: list, pending: dict) -> bool:
        """Whether the search stops submitting models: max_models, max_runtime_secs, or H2O's
        convergence test on the models' metrics in completion order."""
        if criteria["max_models"] and len(done) + len(pending) >= criteria["max_models"]:
            return True
        if criteria["max_runtime_secs"] and time.perf_counter() - started > criteria["max_runtime_secs"]:
            return True
        rounds = criteria["stopping_rounds"]
        return bool(rounds) and stop_early(series, rounds, criteria["stopping_tolerance"], criteria["key"])

    def _finish(self, done: list, failures: list, kind: str, on_validation: bool, criteria: dict) -> None:
        for _, est in done:  # the models keep the user's client setting, not the search's (maybe closed) one
            est.set_params(client=self.estimator.get_params().get("client"))
        rows = [{"model_id": i, **{k: _cell(v) for k, v in combo.items()}, **_metrics(est, on_validation)}
                for i, (combo, est) in enumerate(done)]
        self.sort_by_ = criteria["key"]
        board = pd.DataFrame(rows)
        if len(board):
            board = board.sort_values(self.sort_by_, ascending=not METRIC_DIRECTION[self.sort_by_].more_is_better,
                                      kind="stable", na_position="last").reset_index(drop=True)
        self.leaderboard_ = board
        self.models_ = [done[i][1] for i in board["model_id"]] if len(board) else []
        self.best_model_ = self.models_[0] if self.models_ else None
        self.failures_ = pd.DataFrame(failures)

    def get_leaderboard(self, sort_by: str, decreasing: bool | None = None) -> pd.DataFrame:
        """The leaderboard sorted by any metric column (``decreasing``: default the metric's better way)."""
        if sort_by not in self.leaderboard_.columns:
            raise ValueError(f"sort_by={sort_by!r}: the leaderboard's columns are {list(self.leaderboard_.columns)}")
        if decreasing is None:
            decreasing = sort_by in METRIC_DIRECTION and METRIC_DIRECTION[sort_by].more_is_better
        return self.leaderboard_.sort_values(sort_by, ascending=not decreasing, kind="stable").reset_index(drop=True)


def _metrics(est, on_validation: bool) -> dict:
    """The model's final metrics (validation if it had a validation frame, else training), by the
    scoring history's metric names."""
    last = est.model_.scoring_history().iloc[-1]
    prefix = "validation_" if on_validation else "training_"
    return {c[len(prefix):]: float(last[c]) for c in last.index
            if c.startswith(prefix) and isinstance(last[c], (int, float, np.number))}


def _cell(v):
    return str(v) if isinstance(v, (list, tuple)) else v
