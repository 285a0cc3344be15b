"""DeepLearningClassifier / DeepLearningRegressor: the scikit-learn facade over a Dask training job.

Constructor parameters are H2O's names and defaults (from ``params.PARAMETERS``, the one place they
live). ``fit`` accepts dask or pandas DataFrames and dask or numpy arrays; predictions on dask input
are lazy dask arrays, on in-memory input numpy arrays.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from . import checkpoint as checkpoints
from . import params as P
from .cluster.frames import client_held_parts
from .data.encode import check_validation_values
from .data.schema import (check_columns, check_response, column_role,
                          in_memory_data_info)
from .errors import DataError
from .inputs import (_as_frame, _is_dask, feature_frame, response_as_column, training_frame, with_model_roles,
                     with_row_roles)
from .job import ColumnRoles, train
from .progress import FitObserver
from .scoring import metrics

try:  # scikit-learn is optional: with it, estimators are real sklearn estimators (tags, repr, Pipeline)
    from sklearn.base import BaseEstimator as _SkBase
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    _SkBase = object


def checked_training_input(X, y, kind: str, cfg: P.TrainingConfig, validation_data=None, what: str = "X",
                           validation_what: str = "validation_data", sample_weight=None):
    """Every check of the training (and validation) data that needs no cluster, in the order fit
    and ``dask-dl train`` run them: (frame with RESPONSE, ColumnRoles, validation frame or None,
    the DataInfo of in-memory data or None). ``validation_data``: an (X, y) pair or a frame
    holding the response column. An autoencoder's data has no response (``y`` is ignored)."""
    if kind == "autoencoder":
        return _autoencoder_input(X, cfg, validation_data, what, validation_what)
    family = "regression" if kind == "regression" else "classification"
    frame, yname, features = training_frame(X, y, what)
    frame, features = _without_ignored(frame, yname, features, cfg.params["ignored_columns"], what)
    weights_column, offset_column = cfg.params["weights_column"], cfg.params["offset_column"]
    frame, features = with_row_roles(frame, features, yname, weights_column, offset_column, sample_weight, what)
    dtypes = frame.dtypes  # once: each frame.dtypes builds a Series of every column's dtype
    roles = {c: column_role(c, dtypes[c]) for c in features}
    check_response(frame, yname, family)
    info = in_memory_data_info(frame, roles, cfg.params, family, yname, cfg.distribution,
                               parts=client_held_parts(frame) if _is_dask(frame) else None)
    valid = None
    if validation_data is not None:
        valid = _validation_frame(validation_data, yname, features, roles, validation_what,
                                  cfg.params["ignored_columns"] or (), (weights_column, offset_column))
        if info is not None:
            check_validation_values(valid, info, validation_what)
    return frame, ColumnRoles(response=yname, features=roles), valid, info


def _fold_column(frame, name):
    """(frame without the fold column, each row's fold 0..K-1, K) from a fold_column of X."""
    if name not in frame.columns:
        raise DataError(f"fold_column {name!r} is not a column of X")
    col = frame[name]
    levels = sorted(pd.unique(col.compute() if _is_dask(col) else col).tolist(), key=str)
    if len(levels) < 2:
        raise DataError(f"fold_column {name!r} holds {len(levels)} distinct value(s); cross-validation needs 2 or more")
    codes = {v: i for i, v in enumerate(levels)}
    folds = col.map(codes, meta=(name, "int64")) if _is_dask(col) else col.map(codes).astype(np.int64)
    return frame.drop(columns=[name]), folds, len(levels)


def _autoencoder_input(X, cfg: P.TrainingConfig, validation_data, what: str, validation_what: str):
    """checked_training_input for an autoencoder: X alone (and the validation X), every column an input."""
    frame, features = feature_frame(X, what)
    frame, features = _without_ignored(frame, None, features, cfg.params["ignored_columns"], what)
    dtypes = frame.dtypes
    roles = {c: column_role(c, dtypes[c]) for c in features}
    info = in_memory_data_info(frame, roles, cfg.params, "autoencoder", None, cfg.distribution,
                               parts=client_held_parts(frame) if _is_dask(frame) else None)
    valid = None
    if validation_data is not None:
        valid = _validation_frame(validation_data, None, features, roles, validation_what,
                                  cfg.params["ignored_columns"] or ())
        if info is not None:
            check_validation_values(valid, info, validation_what)
    return frame, ColumnRoles(response=None, features=roles), valid, info


def _without_ignored(frame, yname: str, features: list, ignored, what: str):
    """(frame, features) without the ``ignored_columns``, each of which must be a feature of X."""
    if not ignored:
        return frame, features
    if yname in ignored:
        raise DataError(f"ignored_columns names the response {yname!r}; a model needs its response")
    missing = [c for c in ignored if c not in features]
    if missing:
        raise DataError(f"ignored_columns names {missing}, which {what} does not have")
    kept = [c for c in features if c not in set(ignored)]
    if not kept:
        raise DataError(f"ignored_columns leaves {what} without a feature column")
    return frame.drop(columns=list(ignored)), kept


def _validation_frame(validation_data, yname: str, features: list, roles: dict, what: str = "validation_data",
                      ignored=(), row_roles=(None, None)):
    """``validation_data`` ((X, y) or a frame holding the response) laid out like the training frame;
    ``row_roles``: the (weights, offset) columns it holds (weights optional, the offset required).
    ``yname`` None: an autoencoder's, X alone (the y of an (X, y) pair is ignored)."""
    if yname is None:
        vframe = feature_frame(validation_data[0] if isinstance(validation_data, tuple) else validation_data,
                               what)[0]
    elif isinstance(validation_data, tuple):
        if len(validation_data) != 2:
            raise DataError(f"{what} must be an (X, y) pair or a DataFrame holding the response")
        vframe, _, _ = training_frame(validation_data[0], validation_data[1], what)
    else:
        vframe, _, _ = training_frame(validation_data, yname, what)
    dropped = [c for c in ignored if c in vframe.columns]
    if dropped:
        vframe = vframe.drop(columns=dropped)
    vframe = with_model_roles(vframe, *row_roles, what)
    check_columns(vframe, features, roles, what)
    return vframe


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
        """Every parameter of the estimator and its value (scikit-learn's API; ``deep`` is ignored)."""
        return {name: getattr(self, name) for name in P.PARAMETERS}

    def set_params(self, **params: Any):
        """Set parameters by name (scikit-learn's API); an unknown name is a ValueError. Returns self."""
        unknown = sorted(set(params) - set(P.PARAMETERS))
        if unknown:
            raise ValueError(f"invalid parameter(s) {unknown} for {type(self).__name__}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    # parameters a clone shares with its original instead of copying: a Client (it cannot be copied)
    # and the models and arrays a fit only reads
    _SHARED_PARAMS = ("client", "checkpoint", "pretrained_autoencoder", "initial_weights", "initial_biases",
                      "callbacks")

    def __sklearn_clone__(self):
        """scikit-learn's clone (GridSearchCV, cross_val_score...): an unfitted estimator with the
        same parameters; the client and the models given as parameters are shared, not copied."""
        from sklearn.base import clone
        params = self.get_params()
        return type(self)(**{k: v if k in self._SHARED_PARAMS else clone(v, safe=False) for k, v in params.items()})

    def __getstate__(self):
        state = dict(self.__dict__)
        state["client"] = None  # a Client never travels with the estimator
        state.pop("_observer", None)  # nor a running fit's progress display
        return state

    # ------------------------------------------------------------------------------------ fit
    def fit(self, X, y=None, validation_data=None, sample_weight=None):
        """Train on X/y (y: array, Series, or the name of a column of X). ``validation_data`` is an
        (X, y) pair or a DataFrame that holds the response column. ``sample_weight``: observation
        weights (array, Series, or a dask Series partitioned like a dask X) multiplying each row's
        loss and every metric, as ``weights_column`` does. Returns self."""
        values = self.get_params()
        if values["nfolds"] or values["fold_column"] is not None:
            return self._cross_validate(X, y, validation_data, sample_weight)
        if values["warm_start"] and values["checkpoint"] is None and hasattr(self, "model_"):
            # scikit-learn's warm start: another `epochs` from the fitted model
            values.update(checkpoint=self.model_, epochs=self.model_.run.get("epochs", 0.0) + values["epochs"])
        # everything checkable without a cluster happens before any cluster work
        cfg = P.resolve(values, self._kind, n_classes=2)
        frame, columns, valid, info = checked_training_input(X, y, self._kind, cfg, validation_data,
                                                             sample_weight=sample_weight)
        resumed = checkpoints.for_fit(cfg.params, self._kind, columns)
        self._observer = FitObserver(values["callbacks"], quiet=values["quiet_mode"])
        try:
            model = train(frame, columns, cfg, validation=valid, client=values.get("client"), info=info,
                          checkpoint=resumed, observer=self._observer)
        finally:
            del self._observer
        return self._fitted(model, columns)

    def scoring_history(self) -> pd.DataFrame:
        """H2O's scoring history: while ``fit`` runs (read it from another thread), the rows so far;
        afterwards the fitted model's."""
        running = getattr(self, "_observer", None)
        if running is not None:
            return running.scoring_history()
        self._check_fitted()
        return self.model_.scoring_history()

    def _fitted(self, model, columns):
        self.model_ = model
        self.feature_names_in_ = np.asarray(list(columns.features), dtype=object)
        self.n_features_in_ = len(columns.features)
        self._roles = dict(columns.features)
        if model.kind in ("binomial", "multinomial"):
            self.classes_ = np.asarray(model.info.classes)
        return self

    # -------------------------------------------------------------------------------- predict
    def _cross_validate(self, X, y, validation_data, sample_weight):
        """nfolds / fold_column (H2O §12.1): the fold models, then the main model (crossval.py)."""
        from . import crossval
        p = self.get_params()
        cfg = P.resolve(p, self._kind, n_classes=2)  # the parameters, checked before any cluster work
        if self._kind == "autoencoder":
            raise ValueError("nfolds / fold_column: cross-validation is for supervised models (as in H2O)")
        if p["nfolds"] and p["fold_column"] is not None:
            raise ValueError("give nfolds or fold_column, not both (as H2O)")
        if p["checkpoint"] is not None:
            raise ValueError("nfolds / fold_column cannot continue a checkpoint (as H2O)")
        frame = _as_frame(X)
        if _is_dask(frame) and not isinstance(y, str):  # folds are dealt per partition of one frame
            frame, y = response_as_column(frame, y)
        if p["fold_column"] is not None:
            frame, folds, nfolds = _fold_column(frame, p["fold_column"])
        else:
            nfolds = p["nfolds"]
            frame, folds = crossval.with_folds(frame, nfolds, p["fold_assignment"], cfg.seed, y)
        main, cv = crossval.run(self, frame, y, folds, nfolds, sample_weight, validation_data)
        main.model_.cv = cv
        for name in ("model_", "feature_names_in_", "n_features_in_", "_roles", "classes_"):
            if hasattr(main, name):
                setattr(self, name, getattr(main, name))
        return self

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def _prediction_frame(self, X):
        """X as a frame, checked against the training columns (the response column may be there)."""
        self._check_fitted()
        frame = _as_frame(X)
        check_columns(frame, list(self.feature_names_in_), self._roles, "X", allow_extra=self.model_.extra_columns())
        return frame

    def predict(self, X):
        """Class labels (classifier; binomial uses H2O's max-F1 threshold) or predictions (regressor)."""
        frame = self._prediction_frame(X)
        return self.model_.predict(frame)

    def deepfeatures(self, X, layer: int):
        """Hidden layer ``layer``'s activations (0-based, as H2O counts): see
        ``DeepLearningModel.deepfeatures``."""
        self._check_fitted()
        return self.model_.deepfeatures(X, layer)

    def model_performance(self, X, y=None, sample_weight=None, auc_type=None):
        """H2O's metrics of the fitted model on (X, y): see ``DeepLearningModel.model_performance``."""
        self._check_fitted()
        return self.model_.model_performance(X, y, sample_weight, auc_type)

    def permutation_importance(self, X, y=None, metric="AUTO", n_samples=10000, n_repeats=1, features=None, seed=-1):
        """H2O's permutation variable importance of the fitted model on a sample of (X, y): see
        ``dask_dl.explain.permutation_importance``."""
        self._check_fitted()
        return self.model_.permutation_importance(X, y, metric, n_samples, n_repeats, features, seed)

    # ------------------------------------------------------------------ Jupyter display (display.py)
    @property
    def _repr_html_(self):
        """Fitted: the model page with this estimator's parameters; unfitted: scikit-learn's
        diagram. A property, as scikit-learn's: absent (AttributeError) when HTML is turned off."""
        from .display import estimator_html, wants_html
        if hasattr(self, "model_") and wants_html():
            return lambda: estimator_html(self)
        return super()._repr_html_

    def _repr_mimebundle_(self, **kwargs):
        """What Jupyter asks first (scikit-learn defines it): the page as text and HTML once fitted."""
        from .display import estimator_bundle
        if hasattr(self, "model_"):
            return estimator_bundle(self)
        parent = getattr(super(), "_repr_mimebundle_", None)
        return parent(**kwargs) if parent is not None else {"text/plain": repr(self)}


_ATTRIBUTES_DOC = """
Attributes
----------
model_ : DeepLearningModel
    The trained network: weights, DataInfo, scoring history (``model_.scoring_history()``), what
    the run did (``model_.run``) and ``model_.summary()``.
classes_ : ndarray
    The class labels (classifiers).
n_features_in_ : int
feature_names_in_ : ndarray of str
"""


def _with_signature(cls):
    """Give the estimator an explicit keyword signature and a numpydoc Parameters section, both
    built from the parameter table (what scikit-learn's clone/get_params, IDEs and ``help`` read)."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=p.default)
               for name, p in P.PARAMETERS.items()]
    init = cls.__init__

    def __init__(self, **kwargs):
        init(self, **kwargs)

    __init__.__signature__ = inspect.Signature(params)
    __init__.__doc__ = f"See help({cls.__name__}) for every parameter, its H2O default and meaning."
    cls.__init__ = __init__
    cls.__doc__ = inspect.cleandoc(cls.__doc__ or "") + "\n\n" + P.numpydoc_parameters() + _ATTRIBUTES_DOC
    return cls


@_with_signature
class DeepLearningClassifier(_DeepLearningBase):
    """H2O-style deep feed-forward classifier (softmax output, binary or multiclass), trained on Dask."""

    _kind = "classification"
    _estimator_type = "classifier"

    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``."""
        frame = self._prediction_frame(X)
        return self.model_.predict_proba(frame)

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


@_with_signature
class DeepLearningAutoencoder(_DeepLearningBase):
    """H2O-style deep autoencoder, trained on Dask: it learns to reconstruct its inputs (normalised
    to an interval of width 1, every factor level one-hot with a missing slot), for anomaly
    detection (``anomaly``), deep features (``transform``, ``deepfeatures``) and pretraining
    (a supervised estimator's ``pretrained_autoencoder``). ``fit(X)`` takes no response."""

    _kind = "autoencoder"

    def fit(self, X, y=None, validation_data=None):
        """Train on the columns of X (``y`` is ignored, as scikit-learn's transformers do);
        ``validation_data``: a frame laid out like X. Returns self."""
        return super().fit(X, None, validation_data=validation_data)

    def anomaly(self, X, per_feature: bool = False):
        """Each row's reconstruction MSE (or, ``per_feature``, the squared error per expanded
        input): see ``DeepLearningModel.anomaly``."""
        self._check_fitted()
        return self.model_.anomaly(X, per_feature)

    def reconstruct(self, X):
        """The reconstruction of each row (``reconstr_<input>`` columns, numerics on the data's scale)."""
        self._check_fitted()
        return self.model_.reconstruct(X)

    def predict(self, X):
        """The reconstruction, as H2O's autoencoder ``predict``."""
        return self.reconstruct(X)

    def _code_layer(self, layer) -> int:
        return (len(self.model_.layout.units) - 2) // 2 if layer is None else layer

    def transform(self, X, layer: int | None = None):
        """Deep features: hidden layer ``layer``'s activations (default the middle hidden layer,
        the code of a symmetric autoencoder), as numpy for pandas input, dask for dask."""
        self._check_fitted()
        out = self.model_.deepfeatures(X, self._code_layer(layer))
        return out.to_dask_array() if hasattr(out, "dask") else out.to_numpy()

    def inverse_transform(self, H, layer: int | None = None):
        """Decode deep features of hidden layer ``layer`` (default the middle one) through the rest
        of the network: the reconstruction in the expanded, normalised space, one column per input."""
        self._check_fitted()
        from .nn.forward import decode
        return decode(self.model_.layout, self.model_.state, np.asarray(H), self._code_layer(layer))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = None
        tags.requires_fit = True
        if tags.target_tags is not None:
            tags.target_tags.required = False
        return tags
