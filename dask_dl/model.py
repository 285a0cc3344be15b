"""DeepLearningModel: weights + DataInfo + scoring history. It predicts (the one implementation the
estimators and the CLI use: pandas in, numpy out; dask in, lazy dask out) and saves itself."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from . import autoencoding, persist
from .data.encode import encode_features, encode_training_block, row_offsets
from .data.schema import OFFSET, DataInfo, check_columns, tree_merge
from .inputs import feature_frame, training_frame, with_model_roles, with_weights
from .names import AUC_TYPES
from .nn.forward import check_hidden_layer, forward
from .nn.network import HIDDEN_NAMES, NetworkLayout
from .scoring.evaluate import ScoringSpec, block_stats, to_response_scale, with_offsets, with_priors
from .scoring import sufficient
from .scoring.varimp import varimp_table
from .task_names import task_key


class DeepLearningModel:
    """A trained H2O-style network. Small and self-contained: it is what workers receive to predict."""

    def __init__(self, layout: NetworkLayout, state: np.ndarray, info: DataInfo, params: dict, kind: str,
                 distribution: str, loss: str, history: list, threshold: float = 0.5, run: dict | None = None,
                 metrics_stats: dict | None = None):
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
        # the final scoring's sufficient statistics ("train", "valid"): the metrics objects H2O keeps
        self.metrics_stats = dict(metrics_stats or {})

    # ---------------------------------------------------------------------------- reporting
    @property
    def classes(self) -> list:
        """The class labels of a classifier, in the order of ``predict_proba``'s columns."""
        return list(self.info.classes)

    def scoring_history(self) -> pd.DataFrame:
        """H2O's scoring history: one row per scoring event, row 0 the untrained dummy row;
        ``.attrs["training_metrics_on"]`` says which rows the training metrics are on."""
        hist = pd.DataFrame(self._history)
        hist.attrs["training_metrics_on"] = self.training_metrics_on()
        return hist

    def training_metrics(self) -> "sufficient.Performance | None":
        """The final scoring's metrics on the training sample (H2O's training_metrics), with the
        confusion matrix and curves; None for a model saved without them."""
        return self._final_metrics("train")

    def validation_metrics(self) -> "sufficient.Performance | None":
        """The final scoring's metrics on the validation frame; None without validation data."""
        return self._final_metrics("valid")

    def _final_metrics(self, which: str):
        stats = self.metrics_stats.get(which)
        return None if stats is None else self.performance_from_stats(stats)

    def training_metrics_on(self) -> str:
        """Which rows the scoring history's training metrics are on (H2O: the balanced frame)."""
        sampled = int(self.params.get("score_training_samples", 10000) or 0)
        rows = "a sample of " if 0 < sampled < self.info.n_train_rows else ""
        if self.info.class_factors:
            return (f"{rows}the class-balanced training data (balance_classes), with probabilities corrected to "
                    "the original class priors")
        return f"{rows}the training data"

    def weights(self, layer: int) -> np.ndarray:
        """Weight matrix feeding layer ``layer`` (1-based), shape (units, inputs) (Maxout: 2 rows a unit)."""
        return self.layout.weight_matrix(self.state, layer).copy()

    def biases(self, layer: int) -> np.ndarray:
        """Bias vector of layer ``layer`` (1-based, as ``weights``), one value per unit."""
        return self.layout.bias_vector(self.state, layer).copy()

    def weights_and_biases(self) -> dict:
        """With ``export_weights_and_biases=True``, H2O's exported frames as DataFrames:
        ``weights.<l>`` (rows: the receiving units, Maxout's two channels interleaved; columns: the
        expanded input names for l = 0, else ``C1..Cn``) and ``biases.<l>`` (one column ``C1``), l
        counted from 0 on the input side as H2O counts its matrices."""
        if not self.params.get("export_weights_and_biases"):
            raise ValueError("this model was trained with export_weights_and_biases=False (H2O's default): train "
                             "with export_weights_and_biases=True, or read model.weights(l) / model.biases(l)")
        out = {}
        for l in range(1, self.layout.n_layers + 1):
            W = self.weights(l)
            cols = self.info.coef_names() if l == 1 else [f"C{j + 1}" for j in range(W.shape[1])]
            out[f"weights.{l - 1}"] = pd.DataFrame(W, columns=cols)
            out[f"biases.{l - 1}"] = pd.DataFrame({"C1": self.biases(l)})
        return out

    def varimp(self) -> pd.DataFrame:
        """Variable importances (``variable_importances=True``, H2O's default): Gedeon's method on
        the expanded inputs, as H2O's table: variable, relative_importance, scaled_importance,
        percentage, most important first."""
        if not self.params.get("variable_importances", True):
            raise ValueError("this model was trained with variable_importances=False: train with "
                             "variable_importances=True (H2O's default) to read model.varimp()")
        return varimp_table(self.layout, self.state, self.info)

    def permutation_importance(self, X, y=None, metric: str = "AUTO", n_samples: int = 10000, n_repeats: int = 1,
                               features=None, seed: int = -1) -> pd.DataFrame:
        """H2O's permutation variable importance on a sample of (X, y), one row per original column
        (a categorical column permuted as one): see ``dask_dl.explain.permutation_importance``."""
        from .explain import permutation_importance
        return permutation_importance(self, X, y, metric, n_samples, n_repeats, features, seed)

    def layer_table(self) -> pd.DataFrame:
        """H2O's "Status of Neuron Layers": one row per layer (the input layer first) with its units,
        type, dropout (%), l1, l2 and, with ``diagnostics=True`` (H2O's default), the learning rate
        each weight had at the end (mean and RMS: ADADELTA's sqrt((E[dx^2]+eps)/(E[g^2]+eps)); the
        annealed, decayed rate for manual or Adam steps), the momentum, and the weights' and biases'
        mean and RMS. A model loaded for prediction only has no optimizer state: rates are NaN."""
        lay, p = self.layout, self.params
        rows = [{"layer": 1, "units": lay.units[0], "type": "Input", "dropout": 100 * lay.dropout[0]}]
        for l in range(1, lay.n_layers + 1):
            hidden = l < lay.n_layers
            typ = (HIDDEN_NAMES[lay.hidden_code] + ("Dropout" if lay.dropout[l] else "") if hidden
                   else {"regression": "Linear", "autoencoder": HIDDEN_NAMES.get(lay.output_code)}.get(self.kind,
                                                                                                     "Softmax"))
            row = {"layer": l + 1, "units": lay.units[l], "type": typ, "dropout": 100 * lay.dropout[l],
                   "l1": p["l1"], "l2": p["l2"]}
            if p.get("diagnostics", True):
                w, b = lay.weight_matrix(self.state, l), lay.bias_vector(self.state, l)
                row.update(zip(("mean_rate", "rate_rms", "momentum"), self._layer_rates(l)))
                row.update(mean_weight=float(w.mean()), weight_rms=float(np.sqrt((w.astype(np.float64) ** 2).mean())),
                           mean_bias=float(b.mean()), bias_rms=float(np.sqrt((b.astype(np.float64) ** 2).mean())))
            rows.append(row)
        return pd.DataFrame(rows)

    def _layer_rates(self, l: int) -> tuple:
        """(mean rate, rate RMS, momentum) of weight matrix l at the end of training."""
        p, lay = self.params, self.layout
        n = float(self.run.get("samples", 0))
        anneal = 1.0 + p["rate_annealing"] * n
        if p.get("optimizer") == "adam":
            rate = p["adam_rate"] / anneal
            return rate, rate, p["adam_beta1"]
        if not p["adaptive_rate"]:
            rate = p["rate"] * p["rate_decay"] ** (l - 1) / anneal
            ramp, start, stable = p["momentum_ramp"], p["momentum_start"], p["momentum_stable"]
            mom = stable if ramp <= 0 or n >= ramp else start + (stable - start) * n / ramp
            return rate, rate, mom
        if self.state.size < lay.state_size:  # weights and biases only
            return float("nan"), float("nan"), 0.0
        _, _, s1, s2, _, _ = lay.split(self.state)
        lo, hi = lay.w_offsets[l - 1], lay.w_offsets[l]
        eps = np.float64(np.float32(p["epsilon"]))
        r = np.sqrt((s2[lo:hi].astype(np.float64) + eps) / (s1[lo:hi].astype(np.float64) + eps))
        return float(r.mean()), float(np.sqrt((r ** 2).mean())), 0.0

    def summary(self) -> str:
        """H2O's "Status of Neuron Layers" table plus what the training run did."""
        lines = [f"DeepLearningModel ({self.kind}, distribution={self.distribution}, loss={self.loss})",
                 "Status of Neuron Layers:",
                 self.layer_table().to_string(index=False, na_rep="", float_format=lambda x: f"{x:.6g}")]
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
        lines.append(f"Training metrics are on {hist.attrs['training_metrics_on']}")
        if len(hist) > 1:
            last = hist.iloc[-1]
            metrics = [c for c in hist.columns if c.startswith(("training_", "validation_"))]
            lines.append("Final scoring: " + ", ".join(f"{c}={last[c]:.5g}" for c in metrics
                                                        if isinstance(last[c], float)))
        return "\n".join(lines)

    # ---------------------------------------------------------------------------- plots (dask_dl.plots)
    def plot(self, timestep: str = "AUTO", metric: str = "AUTO", ax=None):
        """H2O's ``model.plot()``: the scoring history's training and validation ``metric`` (AUTO:
        the stopping metric) against ``timestep`` ("epochs", "samples", "iterations", "duration");
        matplotlib Axes (``pip install "dask_dl[plot]"``)."""
        from .plots import plot_history
        return plot_history(self, timestep, metric, ax)

    def plot_roc(self, X=None, y=None, ax=None):
        """A binomial model's ROC curve on ``model_performance(X, y)``, else its validation metrics,
        else its training metrics; returns the Axes."""
        from .plots import curve_performance, plot_curve
        return plot_curve(curve_performance(self, X, y), "roc", ax)

    def plot_pr(self, X=None, y=None, ax=None):
        """``plot_roc``'s precision-recall curve."""
        from .plots import curve_performance, plot_curve
        return plot_curve(curve_performance(self, X, y), "pr", ax)

    def varimp_plot(self, num_of_features: int | None = None, ax=None):
        """H2O's ``varimp_plot``: bars of the scaled importances of ``varimp()`` (default: top 10)."""
        from .plots import varimp_plot
        return varimp_plot(self, num_of_features, ax)

    def plot_reconstruction_error(self, X, bins: int = 50, ax=None):
        """An autoencoder's histogram of ``anomaly(X)`` (Reconstruction.MSE per row)."""
        from .plots import plot_reconstruction_error
        return plot_reconstruction_error(self, X, bins, ax)

    def to_onnx(self, path: str) -> str:
        """Export this model and its preprocessing as an ONNX graph (one input per original
        column, named after it; output ``output``: what predict_proba / predict / reconstruct
        give). Needs the ``onnx`` package; one-hot categorical encodings only."""
        from .onnx_export import to_onnx
        return to_onnx(self, path)

    def to_python(self, url: str, storage_options: dict | None = None) -> str:
        """Export this model as one Python file needing only numpy: its ``score(columns)`` (a dict
        of column name -> array) returns what ``predict_proba`` (classifiers), ``predict``
        (regressors) or ``reconstruct`` (autoencoders) returns, as arrays."""
        from .export import to_python
        return to_python(self, url, storage_options)

    def save(self, url: str, storage_options: dict | None = None) -> str:
        """Write this model to any fsspec URL (npz arrays + JSON metadata; never pickle)."""
        return persist.write_bytes(url, model_to_bytes(self), storage_options)

    def __repr__(self) -> str:
        return f"<DeepLearningModel {self.kind} {list(self.layout.units)}>"

    def describe(self) -> str:
        """The whole model page as text (what ``print(model)`` shows): parameters that differ from
        H2O's defaults, layers, run, last scoring, training / validation / cross-validation metrics."""
        from .display import model_text
        return model_text(self)

    __str__ = describe

    def _repr_html_(self) -> str:
        """Jupyter's rendering: the same page as HTML (collapsible sections)."""
        from .display import model_html
        return model_html(self)

    # ---------------------------------------------------------------------------- prediction
    def for_prediction(self) -> "DeepLearningModel":
        """A copy holding only weights and biases (what predict tasks need), a third of the state."""
        n = self.layout.n_weights + self.layout.n_biases
        light = DeepLearningModel.__new__(DeepLearningModel)
        light.__dict__.update(self.__dict__)
        light.state = self.state[:n].copy()
        light._history, light.metrics_stats = [], {}
        light.__dict__.pop("cv", None)  # the fold models stay on the client
        return light

    def output(self, df: pd.DataFrame) -> np.ndarray:
        """Network outputs in scoring mode: class probabilities (corrected to the original priors
        after class balancing), or the regression output in link space with the rows' offsets
        (``scored_frame``) added."""
        X, _ = encode_features(df, self.info)
        out = forward(self.layout, self.state, X)
        if self.kind == "regression":
            return with_offsets(out, row_offsets(df, self.info))
        return with_priors(out, self.info.prior_ratio())

    def predict_proba_frame(self, df: pd.DataFrame) -> np.ndarray:
        """Class probabilities of one pandas partition as float64 (what ``predict_proba`` runs per partition)."""
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


    # ---------------------------------------------------------------------------- performance
    def model_performance(self, X, y=None, sample_weight=None, auc_type: str | None = None) -> "sufficient.Performance":
        """H2O's metric set of this model on any data: ``X`` a pandas or dask frame holding the
        training columns; ``y`` the response (a column name, default the training response's, or an
        array / Series / dask Series aligned with X); ``sample_weight`` per-row weights (array,
        Series or dask Series). Dask data is reduced to sufficient statistics where it lies (see
        ``scoring.sufficient``); rows without a response are left out, as H2O does. Without
        ``sample_weight`` the model's ``weights_column`` weighs the rows when X holds it; a model
        trained with an ``offset_column`` needs it in X. ``auc_type``: a multinomial model's AUC
        averaging (default: the model's ``auc_type``)."""
        auc_type = auc_type or self.params.get("auc_type", "AUTO")
        return self.performance_from_stats(self.performance_stats(X, y, sample_weight, auc_type), auc_type)

    def performance_stats(self, X, y=None, sample_weight=None, auc_type: str | None = None) -> dict:
        """``model_performance``'s mergeable sufficient statistics (cross-validation merges the
        folds' holdout statistics, then ``performance_from_stats``)."""
        if self.kind == "autoencoder":  # no response: the rows' reconstruction error
            frame = feature_frame(X)[0]
        else:
            frame = training_frame(X, self.info.response_name if y is None else y, "X")[0]
        weights_column = self.params.get("weights_column") if sample_weight is None else None
        frame = with_weights(with_model_roles(frame, weights_column, self.info.offset_column), sample_weight)
        self.check_columns(frame, "X", allow_extra=self.extra_columns())
        if auc_type is not None and auc_type not in AUC_TYPES:
            raise ValueError(f"auc_type={auc_type!r}: expected one of {list(AUC_TYPES)}")
        return self._stats(frame, ScoringSpec.of(self.kind, self.distribution, self.params, self.info, auc_type))

    def performance_from_stats(self, stats: dict, auc_type: str | None = None) -> "sufficient.Performance":
        """H2O's metric set of merged sufficient statistics."""
        p = self.params
        return sufficient.finish(stats, kind=self.kind,
                                 classes=self.classes if self.kind in ("binomial", "multinomial") else None,
                                 distribution=self.distribution, huber_alpha=p.get("huber_alpha", 0.9),
                                 auc_type=auc_type or p.get("auc_type", "AUTO"),
                                 max_confusion_matrix_size=p.get("max_confusion_matrix_size", 20))

    # ------------------------------------------------------------------------- cross-validation
    def _cv_part(self, name: str, keep: str | None = None):
        cv = getattr(self, "cv", None)
        if cv is None:
            raise ValueError("this model was not cross-validated: train with nfolds >= 2 or a fold_column")
        value = getattr(cv, name)
        if value is None:
            raise ValueError(f"train with {keep}=True to keep this (H2O's default: "
                             f"{'True' if keep == 'keep_cross_validation_models' else 'False'})")
        return value

    def cross_validation_models(self) -> list:
        """The fold models (keep_cross_validation_models=True, H2O's default)."""
        return self._cv_part("models", "keep_cross_validation_models")

    def cross_validation_holdout_predictions(self):
        """One row per training row: the prediction (probabilities for classifiers) of the fold
        model that held the row out (keep_cross_validation_predictions=True)."""
        return self._cv_part("holdout_predictions", "keep_cross_validation_predictions")

    def cross_validation_predictions(self) -> list:
        """Per fold: its model's predictions on its holdout rows, 0 elsewhere."""
        return self._cv_part("predictions", "keep_cross_validation_predictions")

    def cross_validation_fold_assignment(self):
        """Each training row's fold (keep_cross_validation_fold_assignment=True)."""
        return self._cv_part("fold_assignment", "keep_cross_validation_fold_assignment")

    def cross_validation_metrics(self) -> "sufficient.Performance":
        """H2O's metrics of the holdout predictions of all folds together."""
        return self._cv_part("metrics")

    def cross_validation_metrics_summary(self) -> pd.DataFrame:
        """Per metric: the mean and sd across folds and each fold's value (``cv_<k>_valid``)."""
        return self._cv_part("summary")

    def _stats(self, frame, spec: ScoringSpec) -> dict:
        import dask.dataframe as dd
        if not isinstance(frame, dd.DataFrame):
            return _block_stats(frame, self, spec)
        import dask
        light = dask.delayed(self.for_prediction(), traverse=False)
        parts = [dask.delayed(_block_stats)(p, light, spec, dask_key_name=task_key("metrics"))
                 for p in frame.to_delayed()]
        return dask.compute(tree_merge(parts, sufficient.merge, what="metrics-merge"))[0]

    # ------------------------------------------------------------- prediction on whole frames
    def check_columns(self, frame, what: str = "X", allow_extra=()) -> None:
        """``frame`` must carry the training columns with their roles; other columns are an error
        unless named in ``allow_extra`` (True: any)."""
        check_columns(frame, self.info.feature_names, self.info.roles, what, allow_extra)

    def extra_columns(self) -> tuple:
        """Columns data given to this model may hold besides its features: the response, the
        ignored columns, the weights and the offset."""
        p = self.params
        return tuple(c for c in (self.info.response_name, *(p.get("ignored_columns") or ()), p.get("weights_column"),
                                 self.info.offset_column) if c is not None)

    def scored_frame(self, X, what: str = "X"):
        """X with the model's offset column (required when it has one) in the role the encoder reads."""
        return with_model_roles(X, None, self.info.offset_column, what)

    def predict(self, X):
        """Labels (classifier; binomial uses H2O's max-F1 threshold) or predictions (regressor):
        numpy for a pandas frame, a lazy dask array for a dask frame. An autoencoder's is its
        reconstruction (``reconstruct``), as H2O's."""
        if self.kind == "autoencoder":
            return self.reconstruct(X)
        return self._apply(self.scored_frame(X), "values")

    # ------------------------------------------------------------- deep features, autoencoders
    def deepfeatures(self, X, layer: int):
        """Hidden layer ``layer``'s activations (0-based, as H2O counts) for each row of X, in
        scoring mode: a DataFrame ``DF.L<layer+1>.C<j>`` (a lazy dask DataFrame for dask input)."""
        self.check_columns(X, "X", allow_extra=True)
        check_hidden_layer(self.layout, layer)  # here, before a lazy graph is built
        fn = functools.partial(autoencoding.deep_features, layer=int(layer))
        return autoencoding.on_frame(X, fn, self, autoencoding.feature_columns(self, int(layer)))

    def anomaly(self, X, per_feature: bool = False):
        """An autoencoder's reconstruction error per row, H2O's ``Reconstruction.MSE`` (the mean over
        the expanded inputs, in the normalised space): numpy for pandas input, a lazy dask array for
        dask. ``per_feature``: the squared error per expanded input instead, a DataFrame
        ``reconstr_<input>.SE`` (dask for dask input)."""
        self._autoencoder_only("anomaly")
        self.check_columns(X, "X", allow_extra=True)
        if per_feature:
            return autoencoding.on_frame(X, autoencoding.per_feature_errors, self, autoencoding.error_columns(self))
        scores = autoencoding.on_frame(X, autoencoding.anomaly_scores, self, ["Reconstruction.MSE"])
        column = scores["Reconstruction.MSE"]
        return column.values if hasattr(column, "dask") else column.to_numpy()

    def anomaly_frame(self, X):
        """``anomaly`` as H2O's one-column frame ``Reconstruction.MSE`` (pandas, or lazy dask)."""
        self._autoencoder_only("anomaly_frame")
        self.check_columns(X, "the data", allow_extra=True)
        return autoencoding.on_frame(X, autoencoding.anomaly_scores, self, ["Reconstruction.MSE"])

    def reconstruct(self, X):
        """An autoencoder's output per expanded input, ``reconstr_<input>`` (numeric inputs on the
        data's scale): a DataFrame, lazy for dask input."""
        self._autoencoder_only("reconstruct")
        self.check_columns(X, "X", allow_extra=True)
        return autoencoding.on_frame(X, autoencoding.reconstruction, self, autoencoding.reconstruction_columns(self))

    def _autoencoder_only(self, what: str) -> None:
        if self.kind != "autoencoder":
            raise ValueError(f"{what}() is an autoencoder's (DeepLearningAutoencoder); this model is a {self.kind} "
                             "model (deepfeatures() works for every model)")

    def predict_proba(self, X):
        """Class probabilities, one column per class (numpy, or a lazy dask array for dask input)."""
        return self._apply(X, "proba")

    def predict_frame(self, X):
        """H2O's prediction frame: ``predict`` (+ ``p_<class>`` per class), pandas or lazy dask."""
        import dask.dataframe as dd
        self.check_columns(X, "the data", allow_extra=True)
        X = self.scored_frame(X, "the data")
        columns, label_dtype = self._frame_columns()
        if not isinstance(X, dd.DataFrame):
            return _frame_block(X, self, columns, label_dtype)
        import dask
        meta = pd.DataFrame({c: pd.Series([], dtype=label_dtype if c == "predict" else np.float64)
                             for c in columns})
        light = dask.delayed(self.for_prediction(), traverse=False)
        keep = list(self.info.feature_names) + ([OFFSET] if OFFSET in X.columns else [])
        return X[keep].map_partitions(_frame_block, light, columns, label_dtype, meta=meta, token="dask_dl-predict")

    def _frame_columns(self) -> tuple[list, object]:
        if self.kind == "regression":
            return ["predict"], np.dtype(np.float64)
        cls = np.asarray(self.info.classes)
        dtype = pd.StringDtype() if cls.dtype.kind in "USO" else cls.dtype
        return ["predict"] + [f"p_{c}" for c in self.info.classes], dtype

    def _apply(self, X, what: str):
        """``what`` ('proba' or 'values') lazily on a dask frame, eagerly on a pandas one."""
        import dask.dataframe as dd
        if not isinstance(X, dd.DataFrame):
            return _array_block(X, self, what)
        import dask
        import dask.array as da
        # one shared key for the model; per-partition blocks of unknown length, concatenated (built
        # from to_delayed: map_partitions + to_dask_array fuses the model into a one-partition file's
        # graph and fails)
        model = dask.delayed(self.for_prediction(), traverse=False)
        if what == "proba":
            shape, dtype = (np.nan, len(self.info.classes)), np.float64
        else:
            shape = (np.nan,)
            dtype = np.dtype(np.float64) if self.kind == "regression" else np.asarray(self.info.classes).dtype
            dtype = np.dtype(object) if dtype.kind in "OUS" else dtype
        blocks = [da.from_delayed(dask.delayed(_array_block)(part, model, what, dask_key_name=task_key("predict")),
                                  shape=shape, dtype=dtype)
                  for part in X.to_delayed()]
        return da.concatenate(blocks, axis=0)


def _block_stats(df: pd.DataFrame, model: DeepLearningModel, spec: ScoringSpec) -> dict:
    """One partition's sufficient statistics (runs where the partition is): rows with a response
    and a weight above 0, NAs in predictors imputed (an autoencoder's targets: its inputs)."""
    X, y, w, o = encode_training_block(df, model.info, scoring=True)
    return block_stats(forward(model.layout, model.state, X), X if model.kind == "autoencoder" else y, spec, w, o)


def _array_block(df: pd.DataFrame, model: DeepLearningModel, what: str) -> np.ndarray:
    """One partition's probabilities or values as numpy (labels of string classes as objects)."""
    if what == "proba":
        return model.predict_proba_frame(df)
    out = model.predict_values(df)
    return out.astype(object) if out.dtype.kind in "OUS" else out


def _frame_block(df: pd.DataFrame, model: DeepLearningModel, columns: list, label_dtype) -> pd.DataFrame:
    """One partition's H2O prediction frame."""
    if model.kind == "regression":
        return pd.DataFrame({"predict": np.asarray(model.predict_values(df), dtype=np.float64)}, index=df.index)
    proba = model.predict_proba_frame(df)
    out = pd.DataFrame({"predict": pd.Series(model.labels_from_proba(proba), index=df.index, dtype=label_dtype)},
                       index=df.index)
    for k, name in enumerate(columns[1:]):
        out[name] = proba[:, k]
    return out


# --------------------------------------------------------------------------------- persistence
def model_to_bytes(model: DeepLearningModel) -> bytes:
    meta = {"layout": model.layout.to_dict(), "info": model.info.to_dict(), "params": model.params,
            "kind": model.kind, "distribution": model.distribution, "loss": model.loss,
            "threshold": model.threshold, "run": model.run, "history": model._history,
            "metrics_stats": {k: _stats_to_json(v) for k, v in model.metrics_stats.items()}}
    return persist.to_bytes(model.state, meta)


def _stats_to_json(stats: dict) -> dict:
    """Sufficient statistics (arrays of sums and histograms) as JSON: shape and values."""
    return {k: {"shape": list(np.shape(v)), "values": np.ravel(v).tolist()} for k, v in stats.items()}


def _stats_from_json(doc: dict) -> dict:
    return {k: np.asarray(v["values"], dtype=np.float64).reshape(v["shape"]) for k, v in doc.items()}


_META_FIELDS = ("layout", "info", "params", "kind", "distribution", "loss", "threshold", "run", "history")
_KINDS = ("binomial", "multinomial", "regression", "autoencoder")


def model_from_bytes(data: bytes, source: str | None = None) -> DeepLearningModel:
    """The model in a file's bytes; ``persist.ModelFileError`` (a ValueError) naming ``source`` for
    anything that is not a sound dask_dl model: damaged archives, missing or malformed metadata
    fields, a state that does not fit the layout or holds NaN/inf, a layout that does not fit the
    columns."""
    state, meta = persist.from_bytes(data, source)
    missing = [k for k in _META_FIELDS if k not in meta]
    if missing:
        raise persist.damaged(source, f"metadata field(s) {', '.join(missing)} missing")
    try:
        layout = NetworkLayout.from_dict(meta["layout"])
        info = DataInfo.from_dict(meta["info"])
        model = DeepLearningModel(layout, state, info, meta["params"], meta["kind"], meta["distribution"],
                                  meta["loss"], meta["history"], threshold=meta["threshold"], run=meta["run"],
                                  metrics_stats={k: _stats_from_json(v)
                                                 for k, v in meta.get("metrics_stats", {}).items()})
    except (KeyError, TypeError, AttributeError, ValueError) as err:  # well-formed JSON, wrong document
        what = str(err) if isinstance(err, ValueError) else f"malformed metadata ({type(err).__name__}: {err})"
        raise persist.damaged(source, what) from err
    why = _unsound(model)
    if why:
        raise persist.damaged(source, why)
    return model


def _unsound(model: DeepLearningModel) -> str | None:
    """Why a loaded model cannot predict soundly, or None."""
    layout, info = model.layout, model.info
    if model.state.size not in (layout.state_size, layout.n_weights + layout.n_biases):
        return (f"its state has {model.state.size} values where the layout needs {layout.state_size} "
                "(corrupt or cut short)")
    if not np.isfinite(model.state).all():
        return f"its weights hold {int((~np.isfinite(model.state)).sum())} NaN/inf values"
    if model.kind not in _KINDS:
        return f"metadata field kind is {model.kind!r}, not one of {list(_KINDS)}"
    n_out = {"regression": 1, "autoencoder": info.n_inputs}.get(model.kind, len(info.classes))
    if layout.units[0] != info.n_inputs or layout.units[-1] != n_out:
        return (f"its layout ({layout.units[0]} inputs, {layout.units[-1]} outputs) does not fit its column "
                f"metadata ({info.n_inputs} inputs, {n_out} outputs)")
    return None


def save_model(model: DeepLearningModel, url: str, storage_options: dict | None = None) -> str:
    """Write ``model`` to ``url`` (local path, s3://, hdfs://, ... any fsspec URL). Returns the URL."""
    return model.save(url, storage_options)


def load_model(url: str, storage_options: dict | None = None) -> DeepLearningModel:
    """Read a model written by ``save_model`` / ``DeepLearningModel.save``."""
    return model_from_bytes(persist.read_bytes(url, storage_options), source=url)
