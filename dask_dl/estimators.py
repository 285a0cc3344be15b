"""DeepLearningClassifier / DeepLearningRegressor: the scikit-learn facade over a Dask training job.

Constructor parameters are H2O's names and defaults (from ``params.PARAMETERS``, the one place they
live). ``fit`` accepts dask or pandas DataFrames and dask or numpy arrays; predictions on dask input
are lazy dask arrays, on in-memory input numpy arrays.
"""
from __future__ import annotations

import inspect
import logging
from typing import Any

import numpy as np
import pandas as pd

from . import params as P
from .cluster import loop, placement
from .cluster.session import cluster_client, worker_threads
from .data.schema import RESPONSE, DataError, column_role
from .model import DeepLearningModel
from .nn import hogwild
from .nn.network import build_layout, initial_state
from .scoring import metrics

logger = logging.getLogger("dask_dl")

try:  # scikit-learn is optional: with it, estimators are real sklearn estimators (tags, repr, Pipeline)
    from sklearn.base import BaseEstimator as _SkBase
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    _SkBase = object


def _is_dask(obj) -> bool:
    return hasattr(obj, "dask") and hasattr(obj, "__dask_graph__")


def _default_names(n: int) -> list:
    return [f"C{i + 1}" for i in range(n)]  # H2O's names for headerless data


def _as_frame(X, what: str = "X"):
    """pandas/dask DataFrame as is; numpy/dask arrays become frames with columns C1..Cn."""
    import dask.array as da
    import dask.dataframe as dd
    if isinstance(X, (pd.DataFrame, dd.DataFrame)):
        return X
    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise DataError(f"{what} must be 2-dimensional, got a dask array of shape {X.shape}")
        return dd.from_dask_array(X.rechunk({1: -1}), columns=_default_names(X.shape[1]))
    if isinstance(X, pd.Series) or (hasattr(X, "ndim") and getattr(X, "ndim", 2) == 1):
        raise DataError(f"{what} must be 2-dimensional (rows x columns), got a 1-dimensional {type(X).__name__}")
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise DataError(f"{what} must be 2-dimensional, got shape {arr.shape}")
    return pd.DataFrame(arr, columns=_default_names(arr.shape[1]))


class _DeepLearningBase(_SkBase):
    """Shared fit/predict machinery; subclasses fix the model kind."""

    _kind = "regression"

    def __init__(self, **kwargs: Any):
        unknown = sorted(set(kwargs) - set(P.PARAMETERS))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown parameter(s) {unknown}; "
                            f"H2O parameter names are expected (e.g. hidden, epochs, activation)")
        for name, default in P.DEFAULTS.items():
            setattr(self, name, kwargs.get(name, default))

    # -------------------------------------------------------------- scikit-learn parameter API
    @classmethod
    def _get_param_names(cls) -> list:
        return sorted(P.PARAMETERS)

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in P.PARAMETERS}

    def set_params(self, **params: Any):
        unknown = sorted(set(params) - set(P.PARAMETERS))
        if unknown:
            raise ValueError(f"invalid parameter(s) {unknown} for {type(self).__name__}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __getstate__(self):
        state = dict(self.__dict__)
        state["client"] = None  # a Client never travels with the estimator
        return state

    # ------------------------------------------------------------------------ input handling
    def _training_frame(self, X, y, what: str = "X"):
        """(frame with the response in column RESPONSE, response name, feature names)."""
        import dask.dataframe as dd
        frame = _as_frame(X, what)
        if y is None:
            raise DataError(f"y is missing: pass the response as an array/Series or the name of a column of {what}")
        if isinstance(y, str):
            if y not in frame.columns:
                raise DataError(f"response column {y!r} is not a column of {what} "
                                f"(columns: {list(frame.columns)[:10]}{'...' if len(frame.columns) > 10 else ''})")
            name = y
            frame = frame.rename(columns={y: RESPONSE})
        else:
            name = getattr(y, "name", None) or "y"
            if isinstance(frame, dd.DataFrame):
                if not isinstance(y, (dd.Series, dd.DataFrame)) and not _is_dask(y):
                    raise DataError(f"{what} is a dask DataFrame but y is in memory; pass y as a column name of "
                                    f"{what} or as a dask Series with the same partitions")
                if _is_dask(y) and not isinstance(y, (dd.Series, dd.DataFrame)):
                    y = dd.from_dask_array(y)
                if isinstance(y, dd.DataFrame):
                    y = y.iloc[:, 0]
                if y.npartitions != frame.npartitions:
                    raise DataError(f"y has {y.npartitions} partitions but {what} has {frame.npartitions}; "
                                    "they must be partitioned alike")
                frame = frame.assign(**{RESPONSE: y})
            else:
                yv = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y).ravel() if np.ndim(y) > 1
                                                                  and np.shape(y)[1] == 1 else np.asarray(y))
                if yv.ndim != 1 or len(yv) != len(frame):
                    raise DataError(f"y has {len(yv)} values but {what} has {len(frame)} rows")
                frame = frame.assign(**{RESPONSE: yv.to_numpy()})
        features = [c for c in frame.columns if c != RESPONSE]
        if not features:
            raise DataError(f"{what} has no feature columns besides the response")
        return frame, name, features

    def _check_response(self, frame, name):
        """Response checks that need no cluster: dtype always; content when the data is in memory
        (dask data gets the same checks in the statistics pass, before any training)."""
        dtype = frame.dtypes[RESPONSE]
        if self._kind == "regression" and not (pd.api.types.is_numeric_dtype(dtype)
                                               and not pd.api.types.is_bool_dtype(dtype)):
            raise DataError(f"response {name!r} has dtype {dtype}; a DeepLearningRegressor needs a numeric "
                            "response (use DeepLearningClassifier for classes)")
        if not isinstance(frame, pd.DataFrame):
            return
        if len(frame) == 0:
            raise DataError("the training data has no rows")
        y = frame[RESPONSE]
        if y.isna().all():
            raise DataError(f"response {name!r} is entirely NA")
        if self._kind == "regression":
            if np.isinf(y.to_numpy(dtype=np.float64, na_value=np.nan)).any():
                raise DataError(f"response {name!r} holds infinite values; a regression target must be finite")
        elif y.nunique(dropna=True) < 2:
            raise DataError(f"response {name!r} has a single class {y.dropna().iloc[0]!r}; a classifier "
                            "needs at least 2")

    @staticmethod
    def _to_dask(frame, n_parts: int):
        import dask.dataframe as dd
        if isinstance(frame, dd.DataFrame):
            return frame
        return dd.from_pandas(frame, npartitions=max(1, min(n_parts, len(frame))), sort=False)

    def _check_columns(self, frame, what: str, allow_extra=()):
        """Validation/predict data must carry the training columns with the same roles."""
        cols = [c for c in frame.columns if c != RESPONSE]
        missing = [c for c in self.feature_names_in_ if c not in cols]
        if missing:
            raise DataError(f"{what} lacks column(s) {missing} that the model was trained on")
        extra = [c for c in cols if c not in self.feature_names_in_ and c not in allow_extra]
        if extra:
            raise DataError(f"{what} has column(s) {extra} that the model was not trained on")
        for c in self.feature_names_in_:
            role = column_role(c, frame.dtypes[c])
            if role != self._roles[c]:
                raise DataError(f"column {c!r} is {role} in {what} but was {self._roles[c]} in training")

    # ------------------------------------------------------------------------------------ fit
    def fit(self, X, y=None, validation_data=None):
        """Train on X/y (y: array, Series, or the name of a column of X). ``validation_data`` is an
        (X, y) pair or a DataFrame that holds the response column. Returns self."""
        values = self.get_params()
        kind = "classification" if self._kind == "classification" else "regression"
        # everything checkable without data happens before any cluster work
        pre = P.resolve(values, "binomial" if kind == "classification" else "regression", n_classes=2)
        frame, yname, features = self._training_frame(X, y)
        roles = {c: column_role(c, frame.dtypes[c]) for c in features}
        self._check_response(frame, yname)
        valid = None
        if validation_data is not None:
            if isinstance(validation_data, tuple):
                if len(validation_data) != 2:
                    raise DataError("validation_data must be an (X, y) pair or a DataFrame holding the response")
                vframe, _, _ = self._training_frame(validation_data[0], validation_data[1], "validation_data")
            else:
                vframe, _, _ = self._training_frame(validation_data, yname, "validation_data")
            self.feature_names_in_, self._roles = np.asarray(features, dtype=object), roles
            self._check_columns(vframe, "validation_data")
            valid = vframe
        batch = int(values["mini_batch_size"])
        with cluster_client(values.get("client"), mini_batch=batch > 1,
                            thread_copies=P.uses_thread_copies(values)) as client:
            threads = worker_threads(client)
            if not threads:
                raise RuntimeError("the Dask cluster has no workers")
            n_parts = max(len(threads), 1)
            placement.warm_workers(client, batch, bool(values["elastic_averaging"]))
            frame = self._to_dask(frame, n_parts)
            if values["reproducible"]:
                frame = frame.repartition(npartitions=1)  # H2O: one chunk, one thread, a fixed order
            elif values["force_load_balance"] and frame.npartitions < len(threads):
                frame = frame.repartition(npartitions=len(threads))
            if valid is not None:
                valid = placement.persist_if_in_memory(client, self._to_dask(valid, n_parts))
            frame = placement.persist_if_in_memory(client, frame)
            info = placement.compute_data_info(client, frame, roles, values, kind, yname, pre.distribution)
            cfg = P.resolve(values, kind, n_classes=len(info.classes))
            layout = build_layout(info.n_inputs, cfg.hidden, cfg.hidden_activation,
                                  len(info.classes) if kind == "classification" else 1,
                                  kind == "classification", values["input_dropout_ratio"], cfg.hidden_dropout,
                                  input_major=cfg.input_major_first_layer)
            ks = hogwild.settings_from_config(cfg)
            data = placement.place_training_data(client, frame, info, valid, cfg, placement.seed_for(cfg))
            state = initial_state(layout, cfg.seed, values["initial_weight_distribution"],
                                  values["initial_weight_scale"])
            runner = loop.IterationLoop(client, cfg, info, layout, ks, data, threads)
            try:
                result = runner.run(state)
            except loop.ModelDivergedError as err:
                self._set_fitted(DeepLearningModel(layout, err.last_good_state, info, values, cfg.kind,
                                                   cfg.distribution, cfg.loss, err.history_rows),
                                 features, roles)
                err.last_good_model = self.model_
                raise
            finally:
                runner.drop_worker_state()
        run = {"iterations": result.iterations, "samples": result.samples, "epochs": result.epochs,
               "stop_reason": result.stop_reason, "run_seconds": result.run_seconds,
               "train_samples_per_iteration": result.train_samples_per_iteration, "workers": result.workers,
               "out_of_core": data.streaming, "replicated_training_data": data.replicated,
               **result.timings,
               "seed": cfg.seed}
        model = DeepLearningModel(layout, result.state, info, values, cfg.kind, cfg.distribution, cfg.loss,
                                  result.history, threshold=result.threshold, run=run)
        self._set_fitted(model, features, roles)
        return self

    def _set_fitted(self, model, features, roles):
        self.model_ = model
        self.feature_names_in_ = np.asarray(features, dtype=object)
        self.n_features_in_ = len(features)
        self._roles = roles
        if model.kind != "regression":
            self.classes_ = np.asarray(model.info.classes)

    # -------------------------------------------------------------------------------- predict
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def _apply(self, X, what: str):
        """Run ``what`` ('proba' or 'values') lazily on dask input, eagerly on in-memory input."""
        import dask
        import dask.array as da
        import dask.dataframe as dd
        self._check_fitted()
        model = self.model_.for_prediction()
        response = model.info.response_name
        frame = _as_frame(X)
        self._check_columns(frame, "X", allow_extra=(response,))
        n_out = len(model.info.classes) if what == "proba" else 1
        if isinstance(frame, dd.DataFrame):
            # one shared key for the model; per-partition blocks of unknown length, concatenated
            # (built from to_delayed, which also avoids dask-expr fusing the model into one partition)
            dmodel = dask.delayed(model, traverse=False)
            if what == "proba":
                shape, dtype = (np.nan, n_out), np.float64
            else:
                shape = (np.nan,)
                dtype = np.float64 if model.kind == "regression" else np.asarray(model.info.classes).dtype
                dtype = np.dtype(object) if dtype.kind in "OUS" else dtype
            blocks = [da.from_delayed(dask.delayed(_predict_block)(part, dmodel, what), shape=shape, dtype=dtype)
                      for part in frame.to_delayed()]
            return da.concatenate(blocks, axis=0)
        out = _predict_partition(frame, model, what)
        return out.to_numpy()

    def predict(self, X):
        """Class labels (classifier; binomial uses H2O's max-F1 threshold) or predictions (regressor)."""
        return self._apply(X, "values")


def _predict_block(df: pd.DataFrame, model: DeepLearningModel, what: str) -> np.ndarray:
    out = _predict_partition(df, model, what).to_numpy()
    if what != "proba" and out.dtype.kind in "OUS":
        out = out.astype(object)
    return out


def _predict_partition(df: pd.DataFrame, model: DeepLearningModel, what: str):
    if what == "proba":
        p = model.predict_proba_frame(df)
        return pd.DataFrame(p, columns=[f"p{k}" for k in range(p.shape[1])], index=df.index)
    values = model.predict_values(df)
    return pd.Series(values, index=df.index, dtype=values.dtype)


def _with_signature(cls):
    """Give the estimator an explicit keyword signature built from the parameter table (what
    scikit-learn's clone/get_params and IDEs read)."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=p.default)
               for name, p in P.PARAMETERS.items()]
    init = cls.__init__

    def __init__(self, **kwargs):
        init(self, **kwargs)

    __init__.__signature__ = inspect.Signature(params)
    __init__.__doc__ = "Parameters (H2O names and defaults): " + ", ".join(
        f"{n}={p.default!r}" for n, p in P.PARAMETERS.items())
    cls.__init__ = __init__
    return cls


@_with_signature
class DeepLearningClassifier(_DeepLearningBase):
    """H2O-style deep feed-forward classifier (softmax output, binary or multiclass), trained on Dask."""

    _kind = "classification"
    _estimator_type = "classifier"

    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``."""
        return self._apply(X, "proba")

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy of ``predict`` (scikit-learn's classifier score)."""
        pred = np.asarray(_compute(self.predict(X)))
        yt = np.asarray(_compute(y))
        return float(np.average(pred == yt, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        from sklearn.utils import ClassifierTags
        tags.classifier_tags = ClassifierTags()
        return tags


@_with_signature
class DeepLearningRegressor(_DeepLearningBase):
    """H2O-style deep feed-forward regressor (every H2O regression distribution), trained on Dask."""

    _kind = "regression"
    _estimator_type = "regressor"

    def score(self, X, y, sample_weight=None) -> float:
        """R² of ``predict`` (scikit-learn's regressor score)."""
        return metrics.r2(np.asarray(_compute(y), dtype=np.float64),
                          np.asarray(_compute(self.predict(X)), dtype=np.float64), sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        from sklearn.utils import RegressorTags
        tags.regressor_tags = RegressorTags()
        return tags


def _compute(x):
    return x.compute() if _is_dask(x) else x
