"""The model file format: one .npz file holding the state array and a JSON metadata document
(format version, layout, DataInfo, parameters, scoring history), at any fsspec URL.

Loading never executes code: ``np.load(allow_pickle=False)`` and ``json``; no pickle anywhere.
Credentials come from fsspec/s3fs configuration or ``storage_options`` and are never written.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
import zlib

import fsspec
import numpy as np

from .errors import ModelFileError


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
    state = np.asarray(state, dtype=np.float32)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "state_sha256": state_checksum(state), **meta}
    buf = io.BytesIO()
    np.savez_compressed(buf, state=state,
                        metadata=np.frombuffer(json.dumps(_json_safe(doc)).encode("utf-8"), dtype=np.uint8))
    return buf.getvalue()


def state_checksum(state: np.ndarray) -> str:
    """SHA-256 of the float32 state's bytes: a file whose weights changed after writing is refused."""
    import hashlib
    return hashlib.sha256(np.ascontiguousarray(state, dtype=np.float32).tobytes()).hexdigest()


def damaged(source: str | None, why: str) -> ModelFileError:
    """The one error for a file that cannot be a sound model, naming the file where it is known."""
    name = f"model file {source!r}" if source else "the model file"
    return ModelFileError(f"{name} is damaged or not a dask_dl model file: {why}")


def _why(err: Exception) -> str:
    """What went wrong reading the archive, in words (numpy's own text suggests allow_pickle)."""
    if isinstance(err, zipfile.BadZipFile):
        return f"it is not a complete .npz (zip) archive; truncated or corrupted? ({err})"
    if isinstance(err, (zlib.error, EOFError)):
        return f"its compressed data is truncated or corrupted ({type(err).__name__}: {err})"
    if "pickle" in str(err):
        return "it is not an .npz archive of plain arrays (dask_dl never loads pickled objects)"
    if isinstance(err, (UnicodeDecodeError, json.JSONDecodeError)):
        return f"its metadata is not UTF-8 JSON ({type(err).__name__}: {err})"
    return f"{type(err).__name__}: {err}"


def _read_archive(data: bytes) -> tuple[np.ndarray, object]:
    """(state, metadata document) from the npz bytes; ModelFileError for a readable file of the
    wrong shape, whatever numpy/zip/zlib/json raise for an unreadable one."""
    if not data:
        raise ModelFileError("the file is empty (0 bytes)")
    z = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy array
        raise ModelFileError("it is a single .npy array, not an .npz archive")
    with z:
        if "metadata" not in z.files or "state" not in z.files:
            raise ModelFileError("not a dask_dl model file (no metadata/state arrays)")
        raw_meta, raw_state = z["metadata"], z["state"]
    if raw_meta.dtype != np.uint8 or raw_meta.ndim != 1:
        raise ModelFileError(f"its metadata array is {raw_meta.dtype} of shape {raw_meta.shape}, not UTF-8 bytes")
    if raw_state.dtype.kind != "f" or raw_state.ndim != 1:
        raise ModelFileError(f"its state array is {raw_state.dtype} of shape {raw_state.shape}, not a float vector")
    return np.array(raw_state, dtype=np.float32), json.loads(raw_meta.tobytes().decode("utf-8"))


def from_bytes(data: bytes, source: str | None = None) -> tuple[np.ndarray, dict]:
    """(float32 state, metadata) of a model file, its format and version checked; never unpickles.
    Anything unreadable is one ModelFileError naming ``source`` (the file's URL) where given."""
    try:
        state, meta = _read_archive(data)
    except ModelFileError as err:
        raise damaged(source, str(err)) from None
    except Exception as err:  # noqa: BLE001 - zip, zlib, numpy, JSON: all mean "not a sound model file"
        raise damaged(source, _why(err)) from err
    meta = _from_json(meta)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise damaged(source, f"not a dask_dl model file (its metadata format is not {FORMAT!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise damaged(source, f"format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        where = f" of {source!r}" if source else ""
        raise ModelFileError(f"model file format version {version}{where} is newer than this dask_dl "
                             f"understands ({FORMAT_VERSION}); upgrade dask_dl")
    expected = meta.pop("state_sha256", None)  # files written before the checksum have none
    if expected is not None and expected != state_checksum(state):
        raise damaged(source, "its weights do not match the checksum written with them (changed or corrupted)")
    return state, meta


_NO_AUTO_BUCKETS = ("s3", "s3a")  # fsspec filesystems that create a missing bucket on write


def check_destination(url: str, storage_options: dict | None = None) -> None:
    """Refuse to write where a write would create a bucket: an s3:// URL whose bucket does not
    exist (s3fs creates it silently, in the credentials' default region). Local folders and other
    stores are left to the write itself."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if not set(protocols) & set(_NO_AUTO_BUCKETS):
        return
    bucket = path.split("/", 1)[0]
    try:
        fs.call_s3("head_bucket", Bucket=bucket)
    except FileNotFoundError:
        raise FileNotFoundError(f"cannot write {url!r}: S3 bucket {bucket!r} does not exist (dask_dl does "
                                "not create buckets: create it first, or fix the URL)") from None
    except Exception:  # noqa: BLE001 - no right to look (403) or a flaky probe: let the write decide
        return


def write_bytes(url: str, data: bytes, storage_options: dict | None = None) -> str:
    """Write ``data`` to ``url`` (local path, s3://, hdfs://, ... any fsspec URL). Returns the URL.
    An s3:// bucket that does not exist is refused, never created."""
    check_destination(url, storage_options)
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if "file" not in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)):
        with fsspec.open(url, "wb", **(storage_options or {})) as f:  # object stores publish an object whole
            f.write(data)
        return url
    import uuid
    part = f"{path}.{uuid.uuid4().hex[:8]}.part"
    fs.makedirs(fs._parent(path), exist_ok=True)
    try:  # a local file appears whole or not at all: a process killed mid-write leaves the old one
        with fs.open(part, "wb") as f:
            f.write(data)
        fs.mv(part, path)
    except BaseException:
        if fs.exists(part):
            fs.rm(part)
        raise
    return url


def read_bytes(url: str, storage_options: dict | None = None) -> bytes:
    with fsspec.open(url, "rb", **(storage_options or {})) as f:
        return f.read()
