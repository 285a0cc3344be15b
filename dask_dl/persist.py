"""The model file format: one .npz file holding the state array and a JSON metadata document
(format version, layout, DataInfo, parameters, scoring history), at any fsspec URL.

Loading never executes code: ``np.load(allow_pickle=False)`` and ``json``; no pickle anywhere.
Credentials come from fsspec/s3fs configuration or ``storage_options`` and are never written.
"""
from __future__ import annotations

import io
import json
import math

import fsspec
import numpy as np


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


def to_bytes(state: np.ndarray, meta: dict) -> bytes:
    """A model file: the state array and the metadata document (format and version added here)."""
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    buf = io.BytesIO()
    np.savez_compressed(buf, state=state,
                        metadata=np.frombuffer(json.dumps(_json_safe(doc)).encode("utf-8"), dtype=np.uint8))
    return buf.getvalue()


def from_bytes(data: bytes) -> tuple[np.ndarray, dict]:
    """(float32 state, metadata) of a model file, its format and version checked; never unpickles."""
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
        raise ValueError(f"model file format version {version} is newer than this dask_dl "
                         f"understands ({FORMAT_VERSION}); upgrade dask_dl")
    return state, meta


def write_bytes(url: str, data: bytes, storage_options: dict | None = None) -> str:
    """Write ``data`` to ``url`` (local path, s3://, hdfs://, ... any fsspec URL). Returns the URL."""
    with fsspec.open(url, "wb", **(storage_options or {})) as f:
        f.write(data)
    return url


def read_bytes(url: str, storage_options: dict | None = None) -> bytes:
    with fsspec.open(url, "rb", **(storage_options or {})) as f:
        return f.read()
