"""DeepLearningModel: weights + DataInfo + scoring history; predicts on pandas partitions."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data.encode import encode_features
from .data.schema import DataInfo
from .nn.forward import forward
from .nn.network import NetworkLayout
from .scoring.evaluate import to_response_scale

_ACT_NAMES = {0: "Tanh", 1: "Rectifier", 2: "Maxout"}


class DeepLearningModel:
    """A trained H2O-style network. Small and self-contained: it is what workers receive to predict."""

    def __init__(self, layout: NetworkLayout, state: np.ndarray, info: DataInfo, params: dict, kind: str,
                 distribution: str, loss: str, history: list, threshold: float = 0.5, run: dict | None = None):
        self.layout = layout
        self.state = state
        self.info = info
        self.params = {k: v for k, v in params.items() if k != "client"}
        self.kind = kind
        self.distribution = distribution
        self.loss = loss
        self._history = list(history)
        self.threshold = float(threshold)
        self.run = dict(run or {})

    # ---------------------------------------------------------------------------- reporting
    @property
    def classes(self) -> list:
        return list(self.info.classes)

    def scoring_history(self) -> pd.DataFrame:
        """H2O's scoring history: one row per scoring event, row 0 the untrained dummy row."""
        return pd.DataFrame(self._history)

    def weights(self, layer: int) -> np.ndarray:
        """Weight matrix feeding layer ``layer`` (1-based), shape (units, inputs) (Maxout: 2 rows a unit)."""
        return self.layout.weight_matrix(self.state, layer).copy()

    def biases(self, layer: int) -> np.ndarray:
        return self.layout.bias_vector(self.state, layer).copy()

    def summary(self) -> str:
        """H2O's "Status of Neuron Layers" table plus what the training run did."""
        lay = self.layout
        lines = [f"DeepLearningModel ({self.kind}, distribution={self.distribution}, loss={self.loss})",
                 "Status of Neuron Layers:",
                 f"{'layer':>5} {'units':>6} {'type':<12} {'dropout':>8} {'l1':>8} {'l2':>8} "
                 f"{'mean_weight':>12} {'weight_rms':>11} {'mean_bias':>10} {'bias_rms':>9}"]
        lines.append(f"{1:>5} {lay.units[0]:>6} {'Input':<12} {100 * lay.dropout[0]:>7.1f}%")
        for l in range(1, lay.n_layers + 1):
            w, b = lay.weight_matrix(self.state, l), lay.bias_vector(self.state, l)
            if l < lay.n_layers:
                typ = _ACT_NAMES[lay.hidden_code] + ("Dropout" if lay.dropout[l] else "")
            else:
                typ = "Softmax" if self.kind != "regression" else "Linear"
            lines.append(f"{l + 1:>5} {lay.units[l]:>6} {typ:<12} {100 * lay.dropout[l]:>7.1f}% "
                         f"{self.params['l1']:>8.2g} {self.params['l2']:>8.2g} {float(w.mean()):>12.6f} "
                         f"{float(np.sqrt((w ** 2).mean())):>11.6f} {float(b.mean()):>10.6f} "
                         f"{float(np.sqrt((b ** 2).mean())):>9.6f}")
        r = self.run
        if r:
            lines.append(f"Training: {r.get('epochs', 0):.3f} epochs, {r.get('samples', 0)} samples, "
                         f"{r.get('iterations', 0)} iterations, {r.get('run_seconds', 0):.1f} s, "
                         f"stopped by {r.get('stop_reason', '?')}")
        if self.info.ignored:
            shown = ", ".join(f"{n} ({why})" for n, why in self.info.ignored[:8])
            more = len(self.info.ignored) - 8
            lines.append(f"Ignored columns ({len(self.info.ignored)}): {shown}" + (f", ... {more} more" if more > 0 else ""))
        hist = self.scoring_history()
        if len(hist) > 1:
            last = hist.iloc[-1]
            metrics = [c for c in hist.columns if c.startswith(("training_", "validation_"))]
            lines.append("Final scoring: " + ", ".join(f"{c}={last[c]:.5g}" for c in metrics
                                                        if isinstance(last[c], float)))
        return "\n".join(lines)

    def save(self, url: str, storage_options: dict | None = None) -> str:
        """Write this model to any fsspec URL (npz arrays + JSON metadata; never pickle)."""
        from .persist import save_model
        return save_model(self, url, storage_options)

    def __repr__(self) -> str:
        return f"<DeepLearningModel {self.kind} {list(self.layout.units)}>"

    # ---------------------------------------------------------------------------- prediction
    def for_prediction(self) -> "DeepLearningModel":
        """A copy holding only weights and biases (what predict tasks need), a third of the state."""
        n = self.layout.n_weights + self.layout.n_biases
        light = DeepLearningModel.__new__(DeepLearningModel)
        light.__dict__.update(self.__dict__)
        light.state = self.state[:n].copy()
        light._history = []
        return light

    def output(self, df: pd.DataFrame) -> np.ndarray:
        """Raw network outputs in scoring mode: class probabilities, or the regression output."""
        X, _ = encode_features(df, self.info)
        return forward(self.layout, self.state, X)

    def predict_proba_frame(self, df: pd.DataFrame) -> np.ndarray:
        return self.output(df).astype(np.float64)

    def predict_values(self, df: pd.DataFrame) -> np.ndarray:
        """Labels (classification, H2O's rule) or predictions on the response scale (regression)."""
        out = self.output(df)
        if self.kind == "regression":
            return to_response_scale(out, self.info, self.distribution)
        return self.labels_from_proba(out)

    def labels_from_proba(self, proba: np.ndarray) -> np.ndarray:
        """Binomial: class 1 when P(1) >= the max-F1 threshold (H2O's default); multinomial: argmax."""
        classes = np.asarray(self.info.classes, dtype=object)
        if self.kind == "binomial":
            idx = (proba[:, 1] >= self.threshold).astype(np.int64)
        else:
            idx = np.argmax(proba, axis=1)
        out = classes[idx]
        try:
            return out.astype(np.asarray(self.info.classes).dtype)
        except (TypeError, ValueError):
            return out
