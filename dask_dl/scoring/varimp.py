"""Variable importances by Gedeon's method (1997), as H2O computes them for Deep Learning (§12.5).

Importances are per expanded input (each one-hot slot, each numeric column), from the absolute
weights of the first two weight matrices only: how much of each first-layer unit's input comes from
input i, times how much of each next-layer unit's input comes from that first-layer unit.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..nn.network import MAXOUT, NetworkLayout


def _abs_matrix(layout: NetworkLayout, state: np.ndarray, l: int) -> np.ndarray:
    """|W_l| as (units out, units in), float32; a Maxout unit's two channels summed (H2O reads the
    interleaved channels as if they were separate units: see docs/h2o-differences.md)."""
    A = np.abs(layout.weight_matrix(state, l)).astype(np.float32)
    if layout.hidden_code == MAXOUT and l < layout.n_layers:
        A = A[0::2] + A[1::2]
    return A


def _shares(A: np.ndarray) -> np.ndarray:
    """Each row divided by its sum: the share of a unit's absolute input weight from each input."""
    s = A.sum(axis=1, keepdims=True)
    return np.divide(A, s, out=np.zeros_like(A), where=s > 0)


def gedeon(layout: NetworkLayout, state: np.ndarray) -> np.ndarray:
    """Relative importance of each expanded input, the largest being 1."""
    A = _abs_matrix(layout, state, 1)
    if layout.n_layers == 1:  # no hidden layer
        v = A.sum(axis=0)
    else:
        P = _shares(A)                                   # (u1, u0)
        R = _shares(_abs_matrix(layout, state, 2))       # (u2, u1)
        Q = P.T @ R.T                                    # (u0, u2): Q[i, k] = sum_j P[j, i] R[k, j]
        Q = _shares(Q.T).T                               # each column k normalised over the inputs
        v = Q.sum(axis=1)
    top = v.max()
    return v / top if top > 0 else v


def varimp_table(layout: NetworkLayout, state: np.ndarray, info) -> pd.DataFrame:
    """H2O's variable-importance table, sorted descending: variable (the expanded input's name),
    relative_importance, scaled_importance, percentage. A categorical column's missing slot that
    training never activated (no NA in that column of the training data) is reported as 0, as H2O
    does."""
    v = gedeon(layout, state).astype(np.float64)
    names = info.coef_names()
    for col, at in zip(info.columns, info.offsets()):
        width = info.block_width(col)
        if width and col.one_hot and col.na_count == 0:
            v[at + width - 1] = 0.0  # the missing slot is the block's last
    top, total = v.max(), v.sum()
    table = pd.DataFrame({"variable": names, "relative_importance": v,
                          "scaled_importance": v / top if top > 0 else v,
                          "percentage": v / total if total > 0 else v})
    return table.sort_values("relative_importance", ascending=False, kind="stable").reset_index(drop=True)
