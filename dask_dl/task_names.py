"""Dask task keys that say what each task is (used by the cluster layer, the model and the data passes).

The Dask dashboard (task stream, progress bars) groups tasks by key prefix (``dask.utils.key_split``),
so every task dask_dl submits is named ``dask_dl-<what>``: statistics, encode, rows, balance,
sample, replicate, stream, train, average, score, predict, metrics.
"""
from __future__ import annotations

import uuid


def task_key(what: str, *token_of) -> str:
    """A unique key ``dask_dl-<what>-<hex>``: from ``token_of``'s dask token when given (the same
    inputs, the same key), else random (tasks that must run again each time)."""
    if token_of:
        from dask.base import tokenize
        return f"dask_dl-{what}-{tokenize(*token_of)}"
    return f"dask_dl-{what}-{uuid.uuid4().hex}"


def task_keys(what: str, n: int) -> list:
    """``n`` random keys named ``what`` (``client.map``'s ``key=``)."""
    return [task_key(what) for _ in range(n)]
