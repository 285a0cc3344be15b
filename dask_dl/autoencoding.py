"""What a network gives besides predictions (H2O §12.6, §12.7): an autoencoder's reconstruction and
anomaly scores, and any model's deep features. Each is one function of a pandas partition (run
where the partition is) plus ``on_frame``, which applies it eagerly to pandas and lazily to dask.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data.encode import encode_features
from .nn.forward import forward, hidden_activations


def deep_features(df: pd.DataFrame, model, layer: int) -> pd.DataFrame:
    """Hidden layer ``layer``'s (0-based) activations in scoring mode, H2O's ``DF.L<layer+1>.C<j+1>``."""
    X, _ = encode_features(df, model.info)
    H = hidden_activations(model.layout, model.state, X, layer)
    return pd.DataFrame(H.astype(np.float64), index=df.index,
                        columns=[f"DF.L{layer + 1}.C{j + 1}" for j in range(H.shape[1])])


def feature_columns(model, layer: int) -> list:
    return [f"DF.L{layer + 1}.C{j + 1}" for j in range(model.layout.units[layer + 1])]


def squared_errors(df: pd.DataFrame, model) -> np.ndarray:
    """(reconstruction - input)^2 per expanded input, in the normalised space the network sees."""
    X, _ = encode_features(df, model.info)
    out = forward(model.layout, model.state, X).astype(np.float64)
    out -= X
    return np.square(out, out=out)


def anomaly_scores(df: pd.DataFrame, model) -> pd.DataFrame:
    """H2O's ``Reconstruction.MSE``: each row's mean squared error over all expanded inputs."""
    return pd.DataFrame({"Reconstruction.MSE": squared_errors(df, model).mean(axis=1)}, index=df.index)


def per_feature_errors(df: pd.DataFrame, model) -> pd.DataFrame:
    """The squared errors per expanded input, H2O's ``reconstr_<input>.SE`` columns."""
    return pd.DataFrame(squared_errors(df, model), index=df.index, columns=error_columns(model))


def error_columns(model) -> list:
    return [f"reconstr_{name}.SE" for name in model.info.coef_names()]


def reconstruction(df: pd.DataFrame, model) -> pd.DataFrame:
    """H2O's autoencoder ``predict``: the output per expanded input, ``reconstr_<input>``; numeric
    inputs mapped back to the data's scale (out / mul + sub), one-hot slots as activations."""
    X, _ = encode_features(df, model.info)
    out = forward(model.layout, model.state, X).astype(np.float64)
    return pd.DataFrame(to_data_scale(out, model.info), index=df.index, columns=reconstruction_columns(model))


def reconstruction_columns(model) -> list:
    return [f"reconstr_{name}" for name in model.info.coef_names()]


def to_data_scale(out: np.ndarray, info) -> np.ndarray:
    """Reconstructed inputs with each numeric column's normalisation undone."""
    for col, at in zip(info.columns, info.offsets()):
        if col.kind == "numeric":
            sub, mul = info.sub_mul(col)
            out[:, at] = out[:, at] / mul + sub
    return out


def on_frame(X, fn, model, columns: list):
    """``fn(partition, model)`` -> DataFrame of ``columns``: eager on pandas, lazy (one task per
    partition, the model a single shared key) on dask."""
    import dask.dataframe as dd
    if not isinstance(X, dd.DataFrame):
        return fn(X, model)
    import dask
    light = dask.delayed(model.for_prediction(), traverse=False)
    meta = pd.DataFrame({c: pd.Series([], dtype=np.float64) for c in columns})
    return X.map_partitions(fn, light, meta=meta, token="dask_dl-predict")
