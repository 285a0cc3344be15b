"""Matplotlib figures of models, as H2O's Python client draws them: the scoring history
(``model.plot``), ROC and precision-recall curves of binomial metrics, variable-importance bars and an
autoencoder's reconstruction-error histogram.

matplotlib is an optional extra (``pip install "dask_dl[plot]"``), imported only when a figure is
drawn. Every function draws on the given Axes (or a new figure's), returns the Axes and never calls
``plt.show()``, so it works headless (the Agg backend) and in notebooks alike. The functions take
models and metrics by what they offer (``scoring_history()``, ``roc()``, ...), not by import, so
this module sits below the model (layer 1) and ``Performance.plot`` can use it too.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .names import metric_key, resolve_stopping_metric

TIMESTEPS = {"AUTO": "epochs", "epochs": "epochs", "samples": "samples", "iterations": "iterations",
             "duration": "duration", "time": "duration"}


def _pyplot():
    """matplotlib.pyplot, imported now: plotting is an optional extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError('dask_dl\'s plots need matplotlib: pip install "dask_dl[plot]"') from err
    return plt


def _axes(ax):
    """The Axes to draw on: ``ax``, or a new figure's (never shown: the caller decides)."""
    if ax is not None:
        _pyplot()
        return ax
    return _pyplot().subplots()[1]


# ----------------------------------------------------------------------------- scoring history
def history_metric(model, metric: str = "AUTO") -> str:
    """The history's metric key for ``metric``: AUTO is the model's stopping metric when the
    history has it, else logloss (classifiers), deviance (regression) or mse (autoencoders)."""
    history = model.scoring_history()
    available = [c[len("training_"):] for c in history.columns  # training_speed is text: not a metric
                 if c.startswith("training_") and history[c].dtype.kind in "fiu"]
    if str(metric).upper() == "AUTO":
        default = resolve_stopping_metric("AUTO", model.kind)
        try:
            key = resolve_stopping_metric(model.params.get("stopping_metric", "AUTO"), model.kind)
        except ValueError:
            key = default
        return key if key in available else default
    key = metric_key(metric)
    if key not in available:
        raise ValueError(f"metric={metric!r} is not in this model's scoring history; available: "
                         f"AUTO, {', '.join(available)}")
    return key


def timestep_values(history: pd.DataFrame, timestep: str = "AUTO") -> tuple[str, np.ndarray]:
    """(axis label, x values) of a history's ``timestep``: epochs (AUTO), samples, iterations or
    duration/time in seconds (H2O's "1.234 sec" strings, parsed)."""
    column = TIMESTEPS.get(timestep) or TIMESTEPS.get(str(timestep).lower())
    if column is None:
        raise ValueError(f"timestep={timestep!r}: expected one of {list(TIMESTEPS)}")
    values = history[column]
    if column == "duration":
        values = values.astype(str).str.extract(r"([-+0-9.eE]+)", expand=False)
        return "duration (s)", pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    return column, values.to_numpy(np.float64)


def plot_history(model, timestep: str = "AUTO", metric: str = "AUTO", ax=None):
    """The scoring history's training (and validation) ``metric`` against ``timestep``: how the
    fit progressed and whether it began to overfit."""
    history = model.scoring_history()
    key = history_metric(model, metric)
    label, x = timestep_values(history, timestep)
    ax = _axes(ax)
    for prefix in ("training", "validation"):
        column = f"{prefix}_{key}"
        if column in history.columns:
            ax.plot(x, history[column].to_numpy(np.float64), marker="o", markersize=3, label=prefix)
    ax.set(xlabel=label, ylabel=key, title=f"Scoring history: {key}")
    ax.legend()
    return ax


# ----------------------------------------------------------------------------- binomial curves
CURVES = ("roc", "pr")


def plot_curve(perf, kind: str = "roc", ax=None):
    """A binomial ``Performance``'s ROC (``kind="roc"``: TPR against FPR, area = its AUC) or
    precision-recall curve (``kind="pr"``: the steps of its AUCPR), from its binned scores."""
    if kind not in CURVES:
        raise ValueError(f"kind={kind!r}: expected one of {list(CURVES)}")
    ax = _axes(ax)
    if kind == "roc":
        points = perf.roc()
        ax.plot(points["fpr"], points["tpr"], label=f"AUC = {perf['auc']:.4f}")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    else:
        points = perf.pr_curve()
        ax.plot(points["recall"], points["precision"], drawstyle="steps-pre", label=f"AUCPR = {perf['pr_auc']:.4f}")
        ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right" if kind == "roc" else "lower left")
    return ax


def curve_performance(model, X=None, y=None):
    """The metrics a model's curve is drawn from: ``model_performance(X, y)`` with data, else its
    validation metrics, else its training metrics (binomial models only)."""
    if model.kind != "binomial":
        raise ValueError(f"ROC and precision-recall curves are a binomial model's; this model is a {model.kind} model")
    if X is not None:
        return model.model_performance(X, y)
    perf = model.validation_metrics() or model.training_metrics()
    if perf is None:
        raise ValueError("this model keeps no metrics to draw a curve from: pass the data, e.g. plot_roc(X, y)")
    return perf


# ----------------------------------------------------------------------------- variable importances
def varimp_plot(model, num_of_features: int | None = None, ax=None):
    """Horizontal bars of the scaled variable importances, the most important at the top (H2O's
    ``varimp_plot``; default: the 10 most important)."""
    table = model.varimp()
    n = 10 if num_of_features is None else int(num_of_features)
    if n < 1:
        raise ValueError(f"num_of_features={num_of_features!r}: expected a positive number")
    top = table.iloc[:n]
    ax = _axes(ax)
    ax.barh(np.arange(len(top))[::-1], top["scaled_importance"].to_numpy(np.float64),
            tick_label=top["variable"].astype(str).to_numpy())
    ax.set(xlabel="Scaled importance", title="Variable importance")
    return ax


# ----------------------------------------------------------------------------- autoencoders
def plot_reconstruction_error(model, X, bins: int = 50, ax=None):
    """A histogram of an autoencoder's per-row reconstruction error (``anomaly(X)``, H2O's
    Reconstruction.MSE): where the normal rows lie and how far the anomalies stand out."""
    if model.kind != "autoencoder":
        raise ValueError(f"a reconstruction-error histogram is an autoencoder's; this model is a {model.kind} model")
    errors = np.asarray(model.anomaly(X), dtype=np.float64)  # a dask array computes here
    ax = _axes(ax)
    ax.hist(errors, bins=bins)
    ax.set(xlabel="Reconstruction.MSE", ylabel="rows", title="Reconstruction error")
    return ax


__all__ = ["plot_history", "plot_curve", "curve_performance", "varimp_plot", "plot_reconstruction_error",
           "history_metric", "timestep_values"]
