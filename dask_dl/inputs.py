"""The user's X and y as one frame: numpy/pandas/dask inputs to a pandas or dask DataFrame with the
response in column ``data.schema.RESPONSE``, checked (lengths, partitions, reserved names). The
estimators' fit and every model's ``model_performance`` take their data through here."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data.schema import OFFSET, RESPONSE, ROLE_COLUMNS, WEIGHT, check_unique_columns
from .errors import DataError


def _is_dask(obj) -> bool:
    return hasattr(obj, "dask") and hasattr(obj, "__dask_graph__")


def _default_names(n: int) -> list:
    return [f"C{i + 1}" for i in range(n)]  # H2O's names for headerless data


def _as_frame(X, what: str = "X"):
    """pandas/dask DataFrame as is; numpy/dask arrays become frames with columns C1..Cn."""
    import dask.array as da
    import dask.dataframe as dd
    if isinstance(X, (pd.DataFrame, dd.DataFrame)):
        return X
    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise DataError(f"{what} must be 2-dimensional, got a dask array of shape {X.shape}")
        return dd.from_dask_array(X.rechunk({1: -1}), columns=_default_names(X.shape[1]))
    if isinstance(X, pd.Series) or (hasattr(X, "ndim") and getattr(X, "ndim", 2) == 1):
        raise DataError(f"{what} must be 2-dimensional (rows x columns), got a 1-dimensional {type(X).__name__}")
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise DataError(f"{what} must be 2-dimensional, got shape {arr.shape}")
    return pd.DataFrame(arr, columns=_default_names(arr.shape[1]))


def feature_frame(X, what: str = "X"):
    """(X as a checked frame, its columns): an autoencoder's data, which has no response."""
    frame = _as_frame(X, what)
    _check_names(frame, what)
    if not len(frame.columns):
        raise DataError(f"{what} has no columns")
    return frame, list(frame.columns)


def _check_names(frame, what: str) -> None:
    check_unique_columns(frame, what)
    reserved = [c for c in ROLE_COLUMNS if c in frame.columns]
    if reserved:
        raise DataError(f"{what} has a column named {reserved[0]!r}, a name dask_dl reserves for the response, "
                        "weights and offset; rename it")


def training_frame(X, y, what: str = "X"):
    """(frame with the response in column RESPONSE, response name, feature names)."""
    frame = _as_frame(X, what)
    _check_names(frame, what)
    if y is None:
        raise DataError(f"y is missing: pass the response as an array/Series or the name of a column of {what}")
    if isinstance(y, str):
        if y not in frame.columns:
            raise DataError(f"response column {y!r} is not a column of {what} "
                            f"(columns: {list(frame.columns)[:10]}{'...' if len(frame.columns) > 10 else ''})")
        name = y
        frame = frame.rename(columns={y: RESPONSE})
    else:
        name = getattr(y, "name", None) or "y"
        frame = _with_dask_response(frame, y, what) if _is_dask(frame) else _with_response(frame, y, what)
    features = [c for c in frame.columns if c != RESPONSE]
    if not features:
        raise DataError(f"{what} has no feature columns besides the response")
    return frame, name, features


def _with_response(frame: pd.DataFrame, y, what: str) -> pd.DataFrame:
    """An in-memory frame with y (array, Series, one-column frame; a dask y is computed) as RESPONSE."""
    if _is_dask(y):
        y = y.compute()
    if isinstance(y, pd.DataFrame) or np.ndim(y) > 1:
        shape = np.shape(y)
        if len(shape) != 2 or shape[1] != 1:
            raise DataError(f"y must hold one value per row (1-dimensional), got shape {shape}")
        y = np.asarray(y).ravel()
    yv = y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y)
    if yv.ndim != 1 or len(yv) != len(frame):
        raise DataError(f"y has {len(yv)} values but {what} has {len(frame)} rows")
    return frame.assign(**{RESPONSE: yv})


def _with_dask_response(frame, y, what: str):
    """A dask frame with a dask y as RESPONSE, once both are known to hold the same number of rows
    (``_check_aligned``)."""
    import dask.dataframe as dd
    if not _is_dask(y):
        raise DataError(f"{what} is a dask DataFrame but y is in memory; pass y as a column name of "
                        f"{what} or as a dask Series with the same partitions")
    if not isinstance(y, (dd.Series, dd.DataFrame)):
        if y.ndim != 1:
            raise DataError(f"y must hold one value per row (1-dimensional), got a dask array of shape {y.shape}")
        y = dd.from_dask_array(y)
    if isinstance(y, dd.DataFrame):
        if len(y.columns) != 1:
            raise DataError(f"y must hold one value per row, got a dask DataFrame of {len(y.columns)} columns")
        y = y.iloc[:, 0]
    _check_aligned(frame, y, "y", what)
    return frame.assign(**{RESPONSE: y})


def response_as_column(frame, y, what: str = "X"):
    """(dask ``frame`` with a dask ``y`` joined as a column named after it, that name)."""
    name = str(getattr(y, "name", None) or "y")
    if name in frame.columns:
        raise DataError(f"y is named {name!r} like a column of {what}; rename one of them, or pass y as that "
                        "column's name")
    return _with_dask_response(frame, y, what).rename(columns={RESPONSE: name}), name


def _check_aligned(frame, s, label: str, what: str) -> None:
    """A dask Series ``s`` must be partitioned like ``frame`` and hold as many rows (``assign``
    aligns on the index: a shorter one would leave rows without a value, silently)."""
    import dask
    if s.npartitions != frame.npartitions:
        raise DataError(f"{label} has {s.npartitions} partitions but {what} has {frame.npartitions}; "
                        "they must be partitioned alike")
    n_x, n_s = dask.compute(frame.shape[0], s.shape[0])  # a counting pass: dask lengths are unknown
    if n_x != n_s:
        raise DataError(f"{label} has {n_s} values but {what} has {n_x} rows")


def with_weights(frame, sample_weight):
    """``frame`` with ``sample_weight`` (array, Series or a dask Series aligned with a dask frame) as
    column WEIGHT; the values are checked where each block is read (``schema.check_row_roles``)."""
    if sample_weight is None:
        return frame
    import dask.dataframe as dd
    if isinstance(frame, dd.DataFrame):
        if not isinstance(sample_weight, dd.Series):
            raise DataError("sample_weight for a dask X must be a dask Series partitioned like X")
        _check_aligned(frame, sample_weight, "sample_weight", "X")
        return frame.assign(**{WEIGHT: _numeric_weights(sample_weight, "sample_weight")})
    w = sample_weight.compute() if _is_dask(sample_weight) else sample_weight
    w = np.asarray(_numeric_weights(pd.Series(np.asarray(w)) if np.ndim(w) == 1 else np.asarray(w), "sample_weight"))
    if w.ndim != 1 or len(w) != len(frame):
        raise DataError(f"sample_weight has shape {w.shape}; expected one weight per row of X ({len(frame)})")
    return frame.assign(**{WEIGHT: w})


def _numeric_weights(s, name: str):
    """Weights or offsets as float64; anything but numbers (or booleans) is refused by name."""
    dtype = getattr(s, "dtype", None)
    if dtype is None or not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
        raise DataError(f"{name} must hold numbers, got dtype {dtype}")
    return s.astype("float64")


def with_row_roles(frame, features: list, response: str, weights_column=None, offset_column=None,
                   sample_weight=None, what: str = "X"):
    """(frame, features) with the observation weights (``weights_column`` of X or ``sample_weight``)
    as column WEIGHT and ``offset_column`` as OFFSET, both numeric and out of the features."""
    if weights_column is not None and sample_weight is not None:
        raise DataError("give observation weights once: weights_column or fit(sample_weight=...), not both")
    roles = {}
    for param, name in (("weights_column", weights_column), ("offset_column", offset_column)):
        if name is None:
            continue
        if name not in features:
            raise DataError(f"{param} {name!r} is " + ("the response" if name == response else
                                                       f"not a column of {what}"))
        roles[name] = param
    if weights_column is not None and weights_column == offset_column:
        raise DataError(f"weights_column and offset_column both name {weights_column!r}")
    for name, param in roles.items():
        frame = _take_role(frame, name, param)
    features = [c for c in features if c not in roles]
    if not features:
        raise DataError(f"{what} has no feature columns besides the response, weights and offset")
    return with_weights(frame, sample_weight), features


def with_model_roles(frame, weights_column, offset_column, what: str = "X"):
    """Data a model scores (validation, model_performance, predict) with its weights column, if
    present, as WEIGHT and its offset column, which must be there, as OFFSET."""
    if offset_column is not None:
        if offset_column not in frame.columns:
            raise DataError(f"{what} lacks the offset_column {offset_column!r}: the model was trained with offsets "
                            "and needs them for every row it scores")
        frame = _take_role(frame, offset_column, "offset_column")
    if weights_column is not None and weights_column in frame.columns:
        frame = _take_role(frame, weights_column, "weights_column")
    return frame


def _take_role(frame, name: str, param: str):
    """Column ``name`` moved to the role column of ``param`` (WEIGHT or OFFSET), as numbers."""
    role = WEIGHT if param == "weights_column" else OFFSET
    return frame.assign(**{role: _numeric_weights(frame[name], f"{param} {name!r}")}).drop(columns=[name])
