"""Checkpoints (H2O §12.3): continuing a model's training where it stopped.

``checkpoint=`` names a fitted estimator, a model or a saved model's URL. Before any cluster work
the new fit is checked against it: the same kind of model, response, input columns and the
parameters H2O does not let change; ``epochs`` (the new total, as H2O) above the checkpoint's. The
fit then starts from the checkpoint's full state (weights and optimizer state), its encoding
(DataInfo: the inputs the weights were trained on) and its progress (``loop.Resume``); the
checkpoint itself is never changed.
"""
from __future__ import annotations

import json

import numpy as np

from .cluster.loop import Resume
from .model import DeepLearningModel, load_model

# the parameters a checkpoint's continuation must keep (H2O's "must not change", and dask_dl's own
# that shape the network, its inputs or its optimizer)
FIXED = ("activation", "hidden", "use_all_factor_levels", "standardize", "adaptive_rate", "rho", "epsilon", "sparse",
         "sparsity_beta", "rate", "rate_annealing", "rate_decay", "momentum_start", "momentum_ramp",
         "momentum_stable", "nesterov_accelerated_gradient", "ignore_const_cols", "max_categorical_features",
         "categorical_encoding", "distribution", "quantile_alpha", "huber_alpha", "tweedie_power", "ignored_columns",
         "weights_column", "offset_column", "balance_classes", "class_sampling_factors", "max_after_balance_size",
         "optimizer", "adam_rate", "adam_beta1", "adam_beta2")


def model_of(checkpoint, storage_options: dict | None = None) -> DeepLearningModel:
    """The model a ``checkpoint`` value names: an estimator's model_, a model, or a URL to load."""
    if isinstance(checkpoint, str):
        return load_model(checkpoint, storage_options)
    return getattr(checkpoint, "model_", checkpoint)


def for_fit(params: dict, kind: str, columns, storage_options: dict | None = None) -> DeepLearningModel | None:
    """The checked model a fit continues (``params["checkpoint"]``), or None."""
    if params.get("checkpoint") is None:
        return None
    model = model_of(params["checkpoint"], storage_options)
    check(model, kind, columns.response, columns.features, params)
    return model


def check(model: DeepLearningModel, kind: str, response, features: dict, params: dict) -> None:
    """Refuse a continuation H2O refuses, naming what differs, before any cluster work."""
    family = "classification" if model.kind in ("binomial", "multinomial") else model.kind
    if family != kind:
        raise ValueError(f"checkpoint is a {model.kind} model; this fit trains a {kind} model")
    if model.info.response_name != response:
        raise ValueError(f"checkpoint was trained on response {model.info.response_name!r}, not {response!r}")
    if list(model.info.feature_names) != list(features) or model.info.roles != {
            c: r for c, r in features.items() if c in model.info.roles}:
        raise ValueError(f"checkpoint was trained on columns {model.info.feature_names}; these data have "
                         f"{list(features)}: a checkpoint continues on the same input columns")
    changed = [n for n in FIXED if _plain(params.get(n)) != _plain(model.params.get(n, params.get(n)))]
    if changed:
        raise ValueError("checkpoint: " + ", ".join(f"{n}={params.get(n)!r} (the checkpoint's: {model.params.get(n)!r})"
                                                    for n in changed)
                         + " cannot change between checkpoints (H2O's rule: they define the network, its inputs or "
                           "its optimizer)")
    done = float(model.run.get("epochs", 0.0))
    if not float(params["epochs"]) > done:
        raise ValueError(f"epochs={params['epochs']!r} must be above the checkpoint's {done:.6g} epochs: epochs is "
                         "the total to reach, as in H2O")


def _plain(v):
    """A parameter value as JSON sees it (tuples and lists alike, numpy scalars as numbers)."""
    return json.loads(json.dumps(v, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def start(model: DeepLearningModel, layout) -> tuple[np.ndarray, Resume]:
    """(a copy of the checkpoint's full state for ``layout``, its progress). A model saved with
    weights and biases only continues with a fresh optimizer state."""
    state = np.zeros(layout.state_size, dtype=np.float32)
    state[:model.state.size] = model.state
    run = model.run
    return state, Resume(samples=int(run.get("samples", 0)), iterations=int(run.get("iterations", 0)),
                         history=[dict(r) for r in model._history], seconds=float(run.get("run_seconds", 0.0)))
