"""Save and load models to any fsspec URL in a safe format: one .npz file holding the arrays and a
JSON metadata document (format version, layout, DataInfo, parameters, scoring history).

Loading never executes code: ``np.load(allow_pickle=False)`` and ``json``; no pickle anywhere.
Credentials come from fsspec/s3fs configuration or ``storage_options`` and are never written.
"""
from __future__ import annotations

import io
import json
import math

import fsspec
import numpy as np

from .data.schema import DataInfo
from .model import DeepLearningModel
from .nn.network import NetworkLayout

FORMAT = "dask_dl.model"
FORMAT_VERSION = 1


def _json_safe(obj):
    """Parameters and history as JSON: numpy scalars to Python, non-finite floats to strings."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in model metadata")


def _from_json(obj):
    if isinstance(obj, dict):
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return obj


def model_to_bytes(model: DeepLearningModel) -> bytes:
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "layout": model.layout.to_dict(), "info": model.info.to_dict(),
        "params": model.params, "kind": model.kind, "distribution": model.distribution, "loss": model.loss,
        "threshold": model.threshold, "run": model.run, "history": model._history,
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, state=model.state,
                        metadata=np.frombuffer(json.dumps(_json_safe(meta)).encode("utf-8"), dtype=np.uint8))
    return buf.getvalue()


def model_from_bytes(data: bytes) -> DeepLearningModel:
    try:
        return _model_from_bytes(data)
    except (KeyError, TypeError, AttributeError) as err:  # well-formed JSON, wrong document
        raise ValueError(f"not a valid dask_dl model file: malformed metadata ({type(err).__name__}: {err})") \
            from err


def _model_from_bytes(data: bytes) -> DeepLearningModel:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        if "metadata" not in z.files or "state" not in z.files:
            raise ValueError("not a dask_dl model file (no metadata/state arrays)")
        meta = _from_json(json.loads(z["metadata"].tobytes().decode("utf-8")))
        state = np.array(z["state"], dtype=np.float32)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("not a dask_dl model file")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"not a valid dask_dl model file: format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise ValueError(f"model file format version {meta['format_version']} is newer than this dask_dl "
                         f"understands ({FORMAT_VERSION}); upgrade dask_dl")
    layout = NetworkLayout.from_dict(meta["layout"])
    if state.size not in (layout.state_size, layout.n_weights + layout.n_biases):
        raise ValueError(f"model file is corrupt: state has {state.size} values, the layout needs "
                         f"{layout.state_size}")
    return DeepLearningModel(layout, state, DataInfo.from_dict(meta["info"]), meta["params"], meta["kind"],
                             meta["distribution"], meta["loss"], meta["history"], threshold=meta["threshold"],
                             run=meta["run"])


def save_model(model: DeepLearningModel, url: str, storage_options: dict | None = None) -> str:
    """Write ``model`` to ``url`` (local path, s3://, hdfs://, ... any fsspec URL). Returns the URL."""
    with fsspec.open(url, "wb", **(storage_options or {})) as f:
        f.write(model_to_bytes(model))
    return url


def load_model(url: str, storage_options: dict | None = None) -> DeepLearningModel:
    """Read a model written by ``save_model`` / ``DeepLearningModel.save``."""
    with fsspec.open(url, "rb", **(storage_options or {})) as f:
        return model_from_bytes(f.read())
