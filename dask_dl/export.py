"""Deployment export: a model as one Python file that needs only numpy (H2O's POJO, in Python).

``to_python(model, url)`` writes the model's encoding (the DataInfo: scaling, imputation, levels,
categorical encodings, hashing), its weights (base64 float32) and a scorer. ``score(columns)`` takes
a dict of column name -> array and returns what the model's ``predict_proba`` (classifiers),
``predict`` (regressors) or ``reconstruct`` (autoencoders, as an array) returns.
"""
from __future__ import annotations

import base64
import json

import fsspec
import numpy as np

from .names import EXP_CAP, LOG_LINK_DISTRIBUTIONS
from .nn.network import MAXOUT, RECTIFIER, SOFTMAX, TANH


def python_source(model) -> str:
    """The scorer file's text."""
    spec = {"kind": model.kind, "columns": _columns(model.info), "layers": _layers(model),
            "hash_slots": int(model.info.hash_slots), "n_inputs": int(model.info.n_inputs),
            "output": _output(model)}
    return _TEMPLATE.replace("@SPEC@", json.dumps(spec, indent=None)).replace("@KIND@", model.kind)


def to_python(model, url: str, storage_options: dict | None = None) -> str:
    """Write the scorer to ``url`` (any fsspec URL); returns it."""
    with fsspec.open(url, "w", **(storage_options or {})) as f:
        f.write(python_source(model))
    return url


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _columns(info) -> list:
    """Each input column's encoding, in input order (offsets as DataInfo lays them out)."""
    hashed = info.hash_tables() if info.hash_slots else {}
    out = []
    for col, at in zip(info.columns, info.offsets()):
        c = {"name": col.name, "kind": col.kind, "at": int(at)}
        if col.kind == "numeric":
            sub, mul = info.sub_mul(col)
            c.update(mean=float(col.mean), sub=float(sub), mul=float(mul))
        else:
            c.update(levels=list(col.levels), encoding=col.encoding, one_hot=bool(col.one_hot),
                     use_all=bool(info.use_all_factor_levels), values=list(col.values), mean=float(col.mean),
                     sigma=float(col.sigma), hashed=[int(x) for x in hashed.get(col.name, [])])
        out.append(c)
    return out


def _layers(model) -> list:
    lay = model.layout
    act = {TANH: "tanh", RECTIFIER: "relu", MAXOUT: "maxout"}
    layers = []
    for l in range(1, lay.n_layers + 1):
        W = lay.weight_matrix(model.state, l)
        hidden = l < lay.n_layers
        kind = act[lay.hidden_code] if hidden else {SOFTMAX: "softmax", TANH: "tanh", RECTIFIER: "relu"}.get(
            lay.output_code, "linear")
        layers.append({"W": _b64(W), "shape": list(W.shape), "b": _b64(lay.bias_vector(model.state, l)),
                       "act": kind, "scale": float(1.0 - lay.dropout[l]) if hidden else 1.0})
    return layers


def _output(model) -> dict:
    info = model.info
    out = {"prior_ratio": None if info.prior_ratio() is None else info.prior_ratio().tolist(),
           "log_link": model.distribution in LOG_LINK_DISTRIBUTIONS, "exp_cap": EXP_CAP,
           "standardize_response": bool(info.standardize_response), "response_mean": float(info.response_mean),
           "response_sigma": float(info.response_sigma), "offset_column": info.offset_column}
    if model.kind == "autoencoder":  # numeric reconstructions back on the data's scale
        out["numeric"] = [[c["at"], c["sub"], c["mul"]] for c in _columns(info) if c["kind"] == "numeric"]
    return out


_TEMPLATE = '''"""A dask_dl @KIND@ model, exported by dask_dl.export.to_python: needs only numpy.

    import numpy as np, this_file
    this_file.score({"column": np.array([...]), ...})   # one array per training column
"""
import base64
import json

import numpy as np

SPEC = json.loads(r"""@SPEC@""")


def _floats(text, shape):
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape)


LAYERS = [(_floats(l["W"], l["shape"]), _floats(l["b"], (len(base64.b64decode(l["b"])) // 4,)), l["act"], l["scale"])
          for l in SPEC["layers"]]


def _level_codes(values, levels):
    """Each value's index in ``levels`` (as text), -1 for NA and unseen values."""
    index = {lv: i for i, lv in enumerate(levels)}
    out = np.full(len(values), -1, dtype=np.int64)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and v != v):
            continue
        out[i] = index.get(str(v), -1)
    return out


def encode(columns):
    """The network's inputs for the rows of ``columns`` (a dict of column name -> 1-D array)."""
    n = len(next(iter(columns.values())))
    X = np.zeros((n, SPEC["n_inputs"]), dtype=np.float32)
    rows = np.arange(n)
    for c in SPEC["columns"]:
        if c["name"] not in columns:
            raise KeyError("column %r is missing" % c["name"])
        raw = columns[c["name"]]
        if c["kind"] == "numeric":
            v = np.asarray(raw, dtype=np.float64)
            v = np.where(np.isnan(v), c["mean"], v)
            X[:, c["at"]] = (v - c["sub"]) * c["mul"]
            continue
        codes = _level_codes(list(np.asarray(raw, dtype=object)), c["levels"])
        k = len(c["levels"])
        if c["one_hot"]:
            slot = np.where(codes < 0, k, codes) if c["use_all"] else np.where(codes < 0, k - 1, codes - 1)
            keep = slot >= 0
            if c["hashed"]:
                X[rows[keep], np.asarray(c["hashed"])[slot[keep]]] += 1.0
            else:
                X[rows[keep], c["at"] + slot[keep]] = 1.0
        elif c["encoding"] == "Binary":
            for j in range(max(1, k.bit_length())):
                X[:, c["at"] + j] = ((codes + 1) >> j) & 1
        else:
            scale = 1.0 / c["sigma"] if c["sigma"] > 0 else 1.0
            vals = (np.asarray(c["values"], dtype=np.float64) - c["mean"]) * scale
            X[:, c["at"]] = np.where(codes < 0, 0.0, vals[np.maximum(codes, 0)])
    return X


def forward(X):
    """The output layer for every row of X, in scoring mode."""
    A = X.astype(np.float32)
    for W, b, act, scale in LAYERS:
        Z = A @ W.T + b
        if act == "tanh":
            A = np.tanh(Z)
        elif act == "relu":
            A = np.maximum(Z, 0.0)
        elif act == "maxout":
            A = np.maximum(Z[:, 0::2], Z[:, 1::2])
        elif act == "softmax":
            Z = np.exp(Z - Z.max(axis=1, keepdims=True))
            A = Z / Z.sum(axis=1, keepdims=True)
        else:
            A = Z
        if scale != 1.0:
            A = A * np.float32(scale)
    return A


def score(columns):
    """predict_proba (classifiers), predict (regressors) or the reconstruction (autoencoders)."""
    X = encode(columns)
    out = forward(X).astype(np.float64)
    o = SPEC["output"]
    if SPEC["kind"] in ("binomial", "multinomial"):
        if o["prior_ratio"] is not None:
            out = out * np.asarray(o["prior_ratio"])
            out = out / out.sum(axis=1, keepdims=True)
        return out
    if SPEC["kind"] == "autoencoder":
        for at, sub, mul in o["numeric"]:
            out[:, at] = out[:, at] / mul + sub
        return out
    f = out[:, 0]
    if o["offset_column"] is not None:
        offset = np.asarray(columns[o["offset_column"]], dtype=np.float64)
        f = f + ((offset - o["response_mean"]) / o["response_sigma"] if o["standardize_response"] else offset)
    if o["log_link"]:
        return np.minimum(np.exp(f), o["exp_cap"])
    return f * o["response_sigma"] + o["response_mean"] if o["standardize_response"] else f
'''
