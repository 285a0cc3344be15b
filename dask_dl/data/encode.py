"""pandas partition -> float32 design matrix (+ response), exactly as the network sees it.

The same function encodes training, validation and prediction data, so missing values are treated
identically everywhere: numeric NA -> the training mean (0 after standardisation), categorical NA and
unseen levels -> the column's "missing" slot (see docs/h2o-differences.md).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from . import categorical as encodings
from .schema import (OFFSET, RESPONSE, DataInfo, check_row_roles, level_codes, numeric_chunks, row_slices,
                     through_categories)


def encode_features(df: pd.DataFrame, info: DataInfo) -> tuple[np.ndarray, np.ndarray]:
    """Return (X float32 C-contiguous of width info.n_inputs, row_has_na bool)."""
    n = len(df)
    X = np.zeros((n, info.n_inputs), dtype=np.float32)
    has_na = np.zeros(n, dtype=bool)
    rows = np.arange(n)
    offsets = dict(zip((c.name for c in info.columns), info.offsets()))
    missing = [c.name for c in info.columns if c.name not in df.columns]
    if missing:
        raise DataError(f"column {missing[0]!r} used in training is missing from the data")
    numeric = [c for c in info.columns if c.kind == "numeric"]
    by_name = {c.name: c for c in numeric}
    for names, v, may_nan in numeric_chunks(df, [c.name for c in numeric]):
        cols = [by_name[n] for n in names]
        na = np.isnan(v) if may_nan else None
        if na is not None and na.any():
            has_na |= na.any(axis=1)
            v = np.where(na, np.array([c.mean for c in cols]), v)
        sub, mul = (np.array(t) for t in zip(*(info.sub_mul(c) for c in cols)))
        at = [offsets[n] for n in names]
        if at == list(range(at[0], at[0] + len(at))):  # adjacent slots: a slice, not a fancy-index scatter
            at = slice(at[0], at[0] + len(at))
        v -= sub  # in place: v is the chunk buffer (fresh temporaries cost page faults)
        v *= mul
        X[:, at] = v
    hashed = info.hash_tables() if info.hash_slots else {}
    for col in info.columns:
        if col.kind == "numeric":
            continue
        s = df[col.name]
        codes = level_codes(s, col.levels)  # -1: NA, or a level unseen in training (or not kept)
        has_na |= s.isna().to_numpy()
        if col.name in hashed:  # max_categorical_features: the slot's hashed input (collisions add up)
            slot = encodings.one_hot_slots(codes, len(col.levels), info.use_all_factor_levels)
            keep = slot >= 0
            X[rows[keep], hashed[col.name][slot[keep]]] += 1.0
        else:
            encodings.write(X, offsets[col.name], col, codes, info.use_all_factor_levels)
    return X, has_na


def encode_response(y: pd.Series, info: DataInfo) -> np.ndarray:
    """Training target as float32: class index (NaN if NA), or the (standardised) numeric value."""
    if info.response_kind == "classification":
        idx = pd.Index(info.classes)
        if isinstance(y.dtype, pd.CategoricalDtype):
            codes = through_categories(y, idx.get_indexer(y.cat.categories.astype(object)))
        else:
            codes = idx.get_indexer(y.astype(object).where(y.notna(), None))
        na = y.isna().to_numpy()
        unseen = (codes < 0) & ~na
        if unseen.any():
            bad = pd.unique(y[unseen])[:5]
            raise DataError(f"response {info.response_name!r} has classes {list(bad)} that the training data "
                            f"does not have (training classes: {info.classes})")
        return np.where(na, np.nan, codes).astype(np.float32)
    v = y.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(v).any():
        raise DataError(f"response {info.response_name!r} holds infinite values; a regression target must be finite")
    return info.response_to_target(v).astype(np.float32)


NONE = np.zeros(0, dtype=np.float32)  # a block's weights or offsets when the data has none


def row_weights(df: pd.DataFrame, info: DataInfo) -> np.ndarray:
    """The observation weights as float32 (checked), or NONE when the frame carries none."""
    w = check_row_roles(df, info.weights_column, info.offset_column)
    return NONE if w is None else w.astype(np.float32)


def row_offsets(df: pd.DataFrame, info: DataInfo) -> np.ndarray:
    """The offsets in the training space, float32 (added to the output's pre-activation: H2O's
    (o - mean_y) * mul_y for a standardised response), or NONE when the model has none."""
    if info.offset_column is None:
        return NONE
    if OFFSET not in df.columns:
        raise DataError(f"offset_column {info.offset_column!r} is missing from the data: this model was trained "
                        "with offsets and needs them for every row it scores")
    o = df[OFFSET].to_numpy(dtype=np.float64, na_value=np.nan)
    return info.response_to_target(o).astype(np.float32)


def encode_training_block(df: pd.DataFrame, info: DataInfo, scoring: bool = False) -> tuple:
    """(X, y, w, o) of the rows that train: rows with a response and a weight above 0 (and, with
    Skip, without any NA); ``w``, ``o`` the weights and offsets (NONE without). A block for
    ``scoring`` only (validation data) keeps rows with a missing predictor, imputed as at
    prediction time: H2O scores them too."""
    X, has_na = encode_features(df, info)
    # an autoencoder reconstructs X: its y only counts the rows
    y = np.zeros(len(X), dtype=np.float32) if info.autoencoder else encode_response(df[RESPONSE], info)
    w, o = row_weights(df, info), row_offsets(df, info)
    keep = ~np.isnan(y)
    if info.skip_missing and not scoring:
        keep &= ~has_na
    if len(w):
        keep &= w > 0
    if not keep.all():
        X, y = X[keep], y[keep]
        w, o = (a[keep] if len(a) else a for a in (w, o))
    return np.ascontiguousarray(X), y, w, o


def balance_block(block: tuple, *, factors, seed: int) -> tuple:
    """H2O's class balancing of one block (§12.2): each row of class c is emitted floor(r_c) times
    and once more with probability frac(r_c), then the block is shuffled. ``factors``: r_c per
    class index (``DataInfo.class_factors``)."""
    y = block[1]
    if len(y) == 0:
        return block
    r = np.asarray(factors, dtype=np.float64)[y.astype(np.int64)]
    rng = np.random.default_rng(seed)
    whole = np.floor(r)
    idx = np.repeat(np.arange(len(y)), (whole + (rng.random(len(y)) < r - whole)).astype(np.int64))
    rng.shuffle(idx)
    return tuple(np.ascontiguousarray(a[idx]) if len(a) else a for a in block)


def sample_block(block: tuple, *, fraction: float, seed: int, stratified: bool = False) -> tuple:
    """A Bernoulli(fraction) subset of a block's rows (at least one row), for scoring samples;
    ``stratified`` (classification blocks): round(fraction x n_c) rows of each class c present, at
    least one, so every class keeps its share."""
    y = block[1]
    if fraction >= 1.0 or len(y) == 0:
        return block
    rng = np.random.default_rng(seed)
    if stratified:
        keep = np.zeros(len(y), dtype=bool)
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            keep[rng.choice(rows, size=max(1, int(round(fraction * len(rows)))), replace=False)] = True
    else:
        keep = rng.random(len(y)) < fraction
    if not keep.any():
        keep[rng.integers(len(y))] = True
    return tuple(a[keep] if len(a) else a for a in block)


def check_validation_values(frame, info: DataInfo, what: str = "validation_data") -> None:
    """What encoding a pandas validation frame on the workers would refuse, on the client first:
    an infinite value in a column the model reads, a response class the training data lacks, an
    infinite target, bad weights or offsets. Dask frames are checked where their blocks are
    encoded, before training."""
    if not isinstance(frame, pd.DataFrame):
        return
    dtypes = frame.dtypes
    numeric = [c.name for c in info.columns if c.kind == "numeric" and pd.api.types.is_float_dtype(dtypes[c.name])]
    try:
        for part in row_slices(frame, min(len(numeric), 64)):
            for _ in numeric_chunks(part, numeric):
                pass  # numeric_chunks raises on an infinite value, naming the column
            if not info.autoencoder:
                encode_response(part[RESPONSE], info)
            check_row_roles(part, info.weights_column, info.offset_column)
    except DataError as err:
        raise DataError(f"{what}: {err}") from None
