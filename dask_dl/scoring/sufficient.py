"""H2O's metrics from mergeable sufficient statistics.

Each block of scored rows (a partition, on the worker that holds it) is reduced to sums and
histograms (``block_stats``); blocks' statistics add up (``merge``), so a 100-million-row frame
moves kilobytes to the client, where ``finish`` turns them into H2O's metric set. Sums give MSE,
MAE, RMSLE, R², deviance, logloss and the multinomial confusion matrix exactly. Binomial ranking
metrics (AUC, AUCPR, the max-F1 threshold and its confusion matrix, lift, gains/lift) come from a
histogram of logit(P(class 1)) in ``BINS`` equal bins: each bin counts as one tied score at its
lower edge, handed to the exact functions of ``scoring.metrics`` as a weighted row, so they are
exact for scores that do not share a bin (AUC's error is bounded by the share of positive-negative
pairs in one bin: 1e-3 or less in the tests).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..names import AUC_TYPES, MAX_AUC_CLASSES
from . import metrics

BINS = 8192                 # logit(P(class 1)) histogram of binomial scores
CLASS_BINS = 2048           # logit(P(class j)) histograms per class pair for multinomial AUC (auc_type)
AVERAGED_AUC = AUC_TYPES[2:]  # the auc_type values that average (AUTO, NONE: no multinomial AUC)
LOGIT_SPAN = 35.0           # logit range covered: p in [6e-16, 1 - 6e-16], the logloss floor
MAX_HIT_RATIO_K = 10        # H2O's default max_hit_ratio_k
ABS_RESIDUAL_BINS = 4096    # |residual| histogram for Huber's delta: log-spaced over 1e-12..1e12
GAINS_FRACTIONS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 1.0)


# ----------------------------------------------------------------------------- block -> sums
def block_stats(outputs: np.ndarray, targets: np.ndarray, weights: np.ndarray | None, *, kind: str,
                distribution: str = "gaussian", tweedie_power: float = 1.5, quantile_alpha: float = 0.5,
                max_hits: int = MAX_HIT_RATIO_K, class_auc: bool = False) -> dict:
    """The sufficient statistics of one block of scored rows. ``outputs``: class probabilities
    (n, K) or regression predictions on the response scale (n,); ``targets``: class indices or
    responses on the response scale; ``weights``: per-row weights or None (1 each); ``max_hits``:
    the top-K hit ratios kept; ``class_auc``: multinomial histograms for ``auc_type`` (K x K x
    CLASS_BINS: each class's probability per actual class)."""
    w = np.ones(len(targets)) if weights is None else np.asarray(weights, dtype=np.float64)
    if kind == "autoencoder":  # targets: the encoded inputs; H2O's MSE: the mean of the rows' mean squared errors
        row_mse = ((np.asarray(outputs, np.float64) - targets) ** 2).mean(axis=1)
        return {"w": np.array([w.sum()]), "w_sq": np.array([w @ row_mse])}
    if kind == "regression":
        return _regression_stats(np.asarray(outputs, np.float64).ravel(), np.asarray(targets, np.float64), w,
                                 distribution, tweedie_power, quantile_alpha)
    out = _classification_stats(np.asarray(outputs, np.float64), np.asarray(targets).astype(np.int64), w,
                                kind == "binomial", max_hits)
    if class_auc and kind == "multinomial" and outputs.shape[1] <= MAX_AUC_CLASSES:
        out["class_hist"] = _class_histograms(np.asarray(outputs, np.float64), np.asarray(targets).astype(np.int64), w)
    return out


def _class_histograms(proba: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """hist[j, c, b]: the weight of rows of actual class c whose P(class j) falls in bin b."""
    k = proba.shape[1]
    hist = np.empty((k, k, CLASS_BINS))
    for j in range(k):
        at = y * CLASS_BINS + score_bins(proba[:, j], CLASS_BINS)
        hist[j] = np.bincount(at, weights=w, minlength=k * CLASS_BINS).reshape(k, CLASS_BINS)
    return hist


def _regression_stats(pred, y, w, distribution, tweedie_power, quantile_alpha) -> dict:
    r = y - pred
    with np.errstate(invalid="ignore", divide="ignore"):
        sle = (np.log1p(pred) - np.log1p(y)) ** 2
        # Huber's deviance needs the delta of all rows: finish() reads it from the |residual| histogram
        dev = np.zeros_like(r) if distribution == "huber" else metrics.unit_deviance(
            y, pred, distribution, tweedie_power, quantile_alpha, None)
    abs_r = np.abs(r)
    edges = np.log10(np.maximum(abs_r, 1e-12))
    hist_at = np.clip(((edges + 12.0) / 24.0 * ABS_RESIDUAL_BINS).astype(np.int64), 0, ABS_RESIDUAL_BINS - 1)
    return {"w": np.array([w.sum()]), "w_r2": np.array([w @ (r * r)]), "w_abs": np.array([w @ abs_r]),
            "w_sle": np.array([w @ np.nan_to_num(sle, nan=0.0)]), "w_sle_bad": np.array([w @ ~np.isfinite(sle)]),
            "w_dev": np.array([w @ dev]), "w_y": np.array([w @ y]), "w_y2": np.array([w @ (y * y)]),
            "abs_r_hist": np.bincount(hist_at, weights=w, minlength=ABS_RESIDUAL_BINS)}


def _classification_stats(proba, y, w, binomial: bool, max_hits: int) -> dict:
    n, k = proba.shape
    pa = proba[np.arange(n), y]
    labels = np.argmax(proba, axis=1)
    cm = np.zeros((k, k))
    np.add.at(cm, (y, labels), w)
    # rank of the actual class (0 = top): how many classes score strictly higher
    rank = (proba > pa[:, None]).sum(axis=1)
    hits = np.array([w @ (rank < j) for j in range(1, min(max_hits, k) + 1)])
    out = {"w": np.array([w.sum()]), "w_logloss": np.array([w @ -np.log(np.maximum(metrics.LOGLOSS_EPS, pa))]),
           "w_sq": np.array([w @ (1.0 - pa) ** 2]), "w_y": np.array([w @ y]), "w_y2": np.array([w @ (y * y)]),
           "cm": cm, "hits": hits}
    if binomial:
        at = score_bins(proba[:, 1])
        out["pos"] = np.bincount(at, weights=w * (y == 1), minlength=BINS)
        out["neg"] = np.bincount(at, weights=w * (y == 0), minlength=BINS)
    return out


def score_bins(p1: np.ndarray, bins: int = BINS) -> np.ndarray:
    """The histogram bin of each P(class 1): equal bins of logit(p) over [-LOGIT_SPAN, LOGIT_SPAN]."""
    p = np.clip(p1, 1e-300, 1.0)
    with np.errstate(divide="ignore"):
        z = np.log(p) - np.log1p(-np.minimum(p, 1.0 - 1e-16))
    return np.clip(np.floor((z + LOGIT_SPAN) / (2 * LOGIT_SPAN) * bins), 0, bins - 1).astype(np.int64)


def bin_edges(bins: int = BINS) -> np.ndarray:
    """P(class 1) at each bin's lower edge: the score every row of the bin counts as."""
    z = -LOGIT_SPAN + np.arange(bins) * (2 * LOGIT_SPAN / bins)
    return 1.0 / (1.0 + np.exp(-z))


def merge(a: dict, b: dict) -> dict:
    """Two blocks' statistics as one (every entry adds)."""
    return {k: a[k] + b[k] for k in a}


# ----------------------------------------------------------------------------- sums -> metrics
def finish(stats: dict, *, kind: str, classes: list | None = None, distribution: str = "gaussian",
           huber_alpha: float = 0.9, auc_type: str = "AUTO", max_confusion_matrix_size: int = 20) -> "Performance":
    """H2O's metric set of the model kind from merged statistics (multinomial AUC and AUCPR of
    ``auc_type`` when the statistics hold the class histograms)."""
    n = float(stats["w"][0])
    if kind == "autoencoder":
        mse = _ratio(stats["w_sq"], n)
        return Performance({"mse": mse, "rmse": math.sqrt(mse) if n > 0 else math.nan}, nobs=n)
    if kind == "regression":
        values = _regression_metrics(stats, n)
        if distribution == "huber":  # H2O's delta: these rows' huber_alpha-quantile of |residual|
            values["mean_residual_deviance"] = _huber_deviance(stats, huber_delta_of(stats, huber_alpha), n)
        return Performance(values, nobs=n)
    out = {"mse": _ratio(stats["w_sq"], n), "logloss": _ratio(stats["w_logloss"], n)}
    out["rmse"] = math.sqrt(out["mse"]) if n > 0 else math.nan
    out["r2"] = _r2(out["mse"], stats, n)
    cm = stats["cm"]
    table = {"hits": stats["hits"] / n if n > 0 else stats["hits"] * math.nan}
    if kind == "binomial":
        out.update(_binomial_ranking(stats["pos"], stats["neg"]))
        cm = _threshold_cm(stats["pos"], stats["neg"], out["max_f1_threshold"])
        table["gains_lift"] = _gains_lift(stats["pos"], stats["neg"])
        table["binomial_hist"] = (stats["pos"], stats["neg"])  # for roc() and pr_curve()
    elif "class_hist" in stats and auc_type in AVERAGED_AUC:
        table["auc_table"] = multinomial_auc_table(stats["class_hist"], classes)
        row = table["auc_table"].set_index("type").loc[auc_type]
        out.update(auc=float(row["auc"]), pr_auc=float(row["pr_auc"]))
    out["classification_error"] = metrics.cm_error(cm)
    out["mean_per_class_error"] = metrics.cm_mean_per_class_error(cm)
    out["mean_residual_deviance"] = 2.0 * out["logloss"]  # a classifier's: -2 log-likelihood / n
    return Performance(out, nobs=n, confusion=cm, classes=classes, max_confusion_matrix_size=max_confusion_matrix_size,
                       **table)


def _ranking(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """(AUC, AUCPR) of one class's probability histogram against another's (CLASS_BINS bins)."""
    rows = _binned_rows(pos, neg, CLASS_BINS)
    return metrics.auc(*rows), metrics.pr_auc(*rows)


def multinomial_auc_table(hist: np.ndarray, classes=None) -> pd.DataFrame:
    """H2O's multinomial AUC table: AUC and AUCPR averaged one-vs-rest and one-vs-one, macro
    (unweighted) and weighted by class prevalence (Hand & Till for one-vs-one, as scikit-learn)."""
    k = hist.shape[0]
    n_c = np.array([hist[c, c].sum() for c in range(k)])
    ovr = [_ranking(hist[j, j], hist[j].sum(axis=0) - hist[j, j]) for j in range(k)]
    pairs, pair_w = [], []
    for j in range(k):
        for c in range(j + 1, k):
            a = [_ranking(hist[x, x], hist[x, z]) for x, z in ((j, c), (c, j))]
            pairs.append(np.mean(a, axis=0))
            pair_w.append(n_c[j] + n_c[c])
    rows = []
    for name, values, weights in (("OVR", np.array(ovr), n_c), ("OVO", np.array(pairs).reshape(-1, 2),
                                                                 np.array(pair_w, dtype=np.float64))):
        ok = np.isfinite(values).all(axis=1) & (weights > 0)
        for avg in ("MACRO", "WEIGHTED"):
            wts = np.ones(ok.sum()) if avg == "MACRO" else weights[ok]
            mean = values[ok].T @ wts / wts.sum() if ok.any() else (math.nan, math.nan)
            rows.append({"type": f"{avg}_{name}", "auc": float(mean[0]), "pr_auc": float(mean[1])})
    names = [str(c) for c in (classes or range(k))]
    rows += [{"type": f"{names[j]} vs Rest", "auc": a, "pr_auc": p} for j, (a, p) in enumerate(ovr)]
    return pd.DataFrame(rows)


def _ratio(total, n: float) -> float:
    return float(total[0] / n) if n > 0 else math.nan


def _r2(mse: float, stats: dict, n: float) -> float:
    """1 - MSE / Var_w(y) (population variance of the response, or of the class index, as H2O)."""
    if n <= 0:
        return math.nan
    mean = stats["w_y"][0] / n
    var = stats["w_y2"][0] / n - mean * mean
    return float(1.0 - mse / var) if var > 0 else math.nan


def _regression_metrics(stats: dict, n: float) -> dict:
    mse = _ratio(stats["w_r2"], n)
    bad = stats["w_sle_bad"][0] > 0
    return {"mse": mse, "rmse": math.sqrt(mse) if n > 0 else math.nan, "mae": _ratio(stats["w_abs"], n),
            "rmsle": math.nan if bad or n <= 0 else math.sqrt(stats["w_sle"][0] / n), "r2": _r2(mse, stats, n),
            "mean_residual_deviance": _ratio(stats["w_dev"], n)}


def _residual_centres() -> np.ndarray:
    """|residual| at the middle (in log scale) of each bin of the |residual| histogram."""
    return 10.0 ** (-12.0 + (np.arange(ABS_RESIDUAL_BINS) + 0.5) * 24.0 / ABS_RESIDUAL_BINS)


def huber_delta_of(stats: dict, alpha: float) -> float:
    """Huber's delta (the alpha-quantile of |residual|) from the |residual| histogram (bins 0.6%
    wide)."""
    hist = stats["abs_r_hist"]
    keep = hist > 0
    return metrics.weighted_quantile(_residual_centres()[keep], alpha, hist[keep]) if keep.any() else math.nan


def _huber_deviance(stats: dict, delta: float, n: float) -> float:
    """The mean Huber deviance from the |residual| histogram (each bin at its centre)."""
    if n <= 0 or not np.isfinite(delta):
        return math.nan
    a = _residual_centres()
    d = np.where(a <= delta, a * a, (2.0 * a - delta) * delta)
    return float(stats["abs_r_hist"] @ d / n)


def _binned_rows(pos: np.ndarray, neg: np.ndarray, bins: int = BINS):
    """The histogram as weighted rows (y, score, weight): one per non-empty (bin, class)."""
    edges = bin_edges(bins)
    ip, ineg = np.nonzero(pos)[0], np.nonzero(neg)[0]
    y = np.r_[np.ones(len(ip)), np.zeros(len(ineg))]
    return y, np.r_[edges[ip], edges[ineg]], np.r_[pos[ip], neg[ineg]]


def _binomial_ranking(pos: np.ndarray, neg: np.ndarray) -> dict:
    y, s, w = _binned_rows(pos, neg)
    auc = metrics.auc(y, s, w)
    return {"auc": auc, "pr_auc": metrics.pr_auc(y, s, w), "gini": 2 * auc - 1,
            "max_f1_threshold": metrics.max_f1_threshold(y, s, w), "lift_top_group": metrics.lift_top_group(y, s, w)}


def _threshold_cm(pos: np.ndarray, neg: np.ndarray, threshold: float) -> np.ndarray:
    """The 2x2 confusion matrix (rows actual, columns predicted) of "class 1 iff P(1) >= threshold"."""
    above = bin_edges() >= threshold
    return np.array([[neg[~above].sum(), neg[above].sum()], [pos[~above].sum(), pos[above].sum()]])


def _gains_lift(pos: np.ndarray, neg: np.ndarray) -> pd.DataFrame:
    """H2O's gains/lift table: 16 groups of the rows by descending score (top 1%, 2%, ... 100%);
    a group ends at a whole bin, so its data fraction can pass the nominal one on tied scores."""
    edges = bin_edges()[::-1]
    p, q = pos[::-1], neg[::-1]
    rows = np.cumsum(p + q)
    total, positives = rows[-1], p.sum()
    if total <= 0 or positives <= 0:
        return pd.DataFrame()
    cum_pos = np.cumsum(p)
    overall = positives / total
    out, prev_rows, prev_pos, prev_end = [], 0.0, 0.0, -1
    for g, frac in enumerate(GAINS_FRACTIONS, start=1):
        end = int(np.searchsorted(rows, frac * total - 1e-9 * total))
        end = min(max(end, prev_end + 1), len(rows) - 1)
        if rows[end] <= prev_rows:
            continue
        n_g, pos_g = rows[end] - prev_rows, cum_pos[end] - prev_pos
        rate, cum_rate = pos_g / n_g, cum_pos[end] / rows[end]
        out.append({"group": len(out) + 1, "cumulative_data_fraction": rows[end] / total,
                    "lower_threshold": edges[end], "lift": rate / overall, "cumulative_lift": cum_rate / overall,
                    "response_rate": rate, "cumulative_response_rate": cum_rate,
                    "capture_rate": pos_g / positives, "cumulative_capture_rate": cum_pos[end] / positives,
                    "gain": 100 * (rate / overall - 1), "cumulative_gain": 100 * (cum_rate / overall - 1)})
        prev_rows, prev_pos, prev_end = rows[end], cum_pos[end], end
    return pd.DataFrame(out)


class Performance(Mapping):
    """A read-only mapping of H2O's metric names (lower case) to values, with the tables H2O's
    ModelMetrics objects carry: ``confusion_matrix()``, ``hit_ratios()``, ``gains_lift()``."""

    def __init__(self, values: dict, *, nobs: float, confusion=None, classes=None, hits=None, gains_lift=None,
                 auc_table=None, max_confusion_matrix_size: int = 20, binomial_hist=None):
        self._values = {**values, "nobs": nobs}
        self._confusion, self._classes, self._hits, self._gains = confusion, classes, hits, gains_lift
        self._auc_table, self._max_cm = auc_table, int(max_confusion_matrix_size)
        self._binomial = binomial_hist  # (pos, neg) logit histograms: the ROC and PR curves

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "Performance(" + ", ".join(f"{k}={v:.6g}" for k, v in self._values.items()) + ")"

    def confusion_matrix(self) -> pd.DataFrame:
        """Rows: actual classes, columns: predicted (binomial: at the max-F1 threshold), weighted
        counts, plus H2O's Error and Rate columns."""
        if self._confusion is None:
            raise ValueError("a regression model has no confusion matrix")
        names = [str(c) for c in (self._classes or range(len(self._confusion)))]
        cm = pd.DataFrame(self._confusion, index=names, columns=names)
        actual = cm.sum(axis=1)
        wrong = actual - np.diag(self._confusion)
        cm["Error"] = np.where(actual > 0, wrong / actual.where(actual > 0, 1), 0.0)
        cm["Rate"] = [f"{w:g} / {a:g}" for w, a in zip(wrong, actual)]
        return cm

    def hit_ratios(self) -> pd.DataFrame:
        """Top-k hit ratios (the share of rows whose actual class is among the k most probable)."""
        if self._hits is None:
            raise ValueError("a regression model has no hit ratios")
        return pd.DataFrame({"k": np.arange(1, len(self._hits) + 1), "hit_ratio": self._hits})

    def gains_lift(self) -> pd.DataFrame:
        """H2O's gains/lift table (binomial models)."""
        if self._gains is None:
            raise ValueError("gains/lift is a binomial model's table")
        return self._gains.copy()

    def roc(self) -> pd.DataFrame:
        """The ROC curve (binomial): threshold, fpr, tpr from (0, 0) at threshold inf to (1, 1), one
        point per non-empty score bin, descending; the same binned rows as ``self["auc"]``, so its
        trapezoid area is that AUC."""
        tps, fps, thresholds = self._curve_counts()
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.DataFrame({"threshold": np.r_[np.inf, thresholds], "fpr": np.r_[0.0, fps] / fps[-1],
                                 "tpr": np.r_[0.0, tps] / tps[-1]})

    def pr_curve(self) -> pd.DataFrame:
        """The precision-recall curve (binomial): threshold, recall, precision per non-empty score bin,
        thresholds descending; sum(diff([0, recall]) * precision) is ``self["pr_auc"]``."""
        tps, fps, thresholds = self._curve_counts()
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.DataFrame({"threshold": thresholds, "recall": tps / tps[-1], "precision": tps / (tps + fps)})

    def _curve_counts(self) -> tuple:
        """Cumulative weighted (tp, fp, threshold) of the binned scores, as ``metrics.auc`` counts them."""
        if getattr(self, "_binomial", None) is None:
            raise ValueError("ROC and precision-recall curves are a binomial model's metrics")
        if not sum(h.sum() for h in self._binomial) > 0:
            raise ValueError("these metrics are of no rows: there is no curve to draw")
        return metrics._roc_points(*_binned_rows(*self._binomial))

    def plot(self, type: str = "roc", ax=None):
        """H2O's ``perf.plot(type="roc")``: the ROC (``"roc"``) or precision-recall (``"pr"``) curve
        on matplotlib Axes (``pip install "dask_dl[plot]"``); returns the Axes."""
        from ..plots import plot_curve
        return plot_curve(self, type, ax)

    def multinomial_auc_table(self) -> pd.DataFrame:
        """AUC and AUCPR of every averaging type and of each class against the rest (multinomial
        models trained or scored with an ``auc_type``; H2O's multinomial_auc_table)."""
        if self._auc_table is None:
            raise ValueError("no multinomial AUC here: set auc_type (e.g. 'MACRO_OVR') on a multinomial model "
                             f"of at most {MAX_AUC_CLASSES} classes")
        return self._auc_table.copy()

    def __str__(self) -> str:
        """H2O's printed metrics: the values, then the confusion matrix when the classes are at most
        ``max_confusion_matrix_size``, the hit ratios and the gains/lift table."""
        lines = [f"{k}: {v:.6g}" for k, v in self._values.items() if isinstance(v, (int, float))]
        if self._confusion is not None:
            k = len(self._confusion)
            lines += (["Confusion matrix (rows: actual, columns: predicted):", self.confusion_matrix().to_string()]
                      if k <= self._max_cm else
                      [f"Confusion matrix not shown: {k} classes > max_confusion_matrix_size={self._max_cm}"])
            lines += ["Top-k hit ratios:", self.hit_ratios().to_string(index=False)]
        if self._gains is not None and len(self._gains):
            lines += ["Gains/lift table:", self._gains.to_string(index=False)]
        return "\n".join(lines)
